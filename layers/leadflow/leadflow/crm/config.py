"""CRM push configuration: the stages that push, and per target its field mapping, limits and owners.

Read once per process from `LEADFLOW_CRM_CONFIG` (JSON, set by template.yaml from the `CrmConfig`
parameter) or the file `LEADFLOW_CRM_FILE`; without either, `DEFAULTS` apply. Validated at load against
schemas/crm_config.v1.json plus the checks a schema cannot make (every mapped lead field exists); a bad
configuration raises `CrmConfigInvalid` naming each offending field, so a deploy fails loudly instead of
pushing wrong data.

A field mapping is `lead field (dotted path) → CRM property` or `{property, transform, owned_by, default}`.
`owned_by: "leadflow"` (the default) fields are written on every push; `owned_by: "crm"` fields only on the
first push of a lead to that target (an initial value the sales team may then change in the CRM).

`erase` (default true): when a lead is erased, delete it in this target too (HubSpot GDPR delete, Salesforce
delete of the record, a signed `lead.erased` event). False leaves erasure in that CRM to its operators.
"""

from __future__ import annotations

import copy
import json
import os
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

from leadflow.crm import TARGETS
from leadflow.errors import ConfigurationError

LEAD_FIELDS = frozenset(
    {
        "lead_id", "email", "phone", "first_name", "last_name", "company", "job_title", "country", "attributes",
        "lifecycle_stage", "score", "attribution", "consent", "source", "persona", "mql_at", "owner",
        "created_at", "updated_at", "touch_count", "latest_touch", "stage_changed_at", "is_test",
    }
)  # fmt: skip

DEFAULTS: dict[str, Any] = {
    "push_stages": ["mql", "sql", "opportunity", "customer"],
    "targets": {
        "hubspot": {
            "enabled": True,
            "rate_limit_per_10s": 100,
            "batch_size": 100,
            "max_attempts": 8,
            "fields": {
                "email": {"property": "email", "transform": "lower"},
                "first_name": "firstname",
                "last_name": "lastname",
                "phone": "phone",
                "company": "company",
                "job_title": "jobtitle",
                "country": "country",
                "lifecycle_stage": {"property": "lifecyclestage", "transform": "hubspot_stage"},
                "score.total": {"property": "leadflow_score", "transform": "string"},
                "attribution.first_touch.source": {"property": "leadflow_source", "owned_by": "crm"},
                "attribution.first_touch.utm_campaign": {"property": "leadflow_utm_campaign", "owned_by": "crm"},
                "owner.id": {"property": "hubspot_owner_id", "transform": "owner"},
                "lead_id": "leadflow_id",
            },
        },
        "salesforce": {
            "enabled": False,
            "object": "Lead",
            "external_id_field": "LeadFlow_Id__c",
            "api_version": "v60.0",
            "batch_size": 200,
            "max_attempts": 8,
            "fields": {
                "email": {"property": "Email", "transform": "lower"},
                "first_name": "FirstName",
                "last_name": {"property": "LastName", "default": "[not provided]"},
                "company": {"property": "Company", "default": "[not provided]"},
                "phone": "Phone",
                "job_title": "Title",
                "country": "Country",
                "lifecycle_stage": {"property": "Status", "transform": "salesforce_status", "owned_by": "crm"},
                "attribution.first_touch.source": {"property": "LeadSource", "owned_by": "crm"},
                "owner.id": {"property": "OwnerId", "transform": "owner"},
            },
        },
        "webhook": {"enabled": False, "event_type": "lead.qualified", "batch_size": 10, "max_attempts": 10},
    },
}

HUBSPOT_STAGES = {
    "subscriber": "subscriber",
    "lead": "lead",
    "mql": "marketingqualifiedlead",
    "sql": "salesqualifiedlead",
    "opportunity": "opportunity",
    "customer": "customer",
}
SALESFORCE_STATUS = {
    "subscriber": "Open - Not Contacted",
    "lead": "Open - Not Contacted",
    "mql": "Open - Not Contacted",
    "sql": "Working - Contacted",
    "opportunity": "Closed - Converted",
    "customer": "Closed - Converted",
}


class CrmConfigInvalid(ConfigurationError):
    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("CRM push configuration is invalid: " + "; ".join(problems))


@dataclass(frozen=True)
class FieldMap:
    lead_field: str  # dotted path into the lead
    property: str
    transform: str = "none"
    owned_by: str = "leadflow"
    default: Any = None


@dataclass(frozen=True)
class TargetConfig:
    name: str
    enabled: bool
    fields: tuple[FieldMap, ...]
    batch_size: int
    max_attempts: int
    options: dict[str, Any]
    owners: dict[str, str]

    def watched(self) -> frozenset[str]:
        """Top-level lead fields whose change needs a new push (the mapped ones, owner and stage; with no
        mapping the whole lead JSON is sent, so every lead field but the bookkeeping ones)."""
        if not self.fields:
            return LEAD_FIELDS - {"updated_at", "touch_count", "latest_touch"}
        return frozenset({f.lead_field.split(".")[0] for f in self.fields} | {"owner", "lifecycle_stage"})


@dataclass(frozen=True)
class CrmConfig:
    push_stages: frozenset[str]
    targets: dict[str, TargetConfig]


def parse(document: Any) -> CrmConfig:
    """Validate a configuration document (defaults filled per target) into a CrmConfig."""
    from leadflow.schemas import field_errors

    problems = [f"{e.field}: {e.message}" for e in field_errors("crm_config.v1.json", document)]
    if problems:
        raise CrmConfigInvalid(problems)
    merged = copy.deepcopy(DEFAULTS)
    merged["push_stages"] = document.get("push_stages", merged["push_stages"])
    for name, given in (document.get("targets") or {}).items():
        target = merged["targets"][name]
        if "fields" in given:  # a mapping replaces the default mapping (never a silent mix of both)
            target["fields"] = {}
        target.update(given)
    targets = {}
    for name in TARGETS:
        raw = merged["targets"][name]
        fields = []
        for lead_field, spec in (raw.get("fields") or {}).items():
            spec = {"property": spec} if isinstance(spec, str) else spec
            if lead_field.split(".")[0] not in LEAD_FIELDS:
                problems.append(f"targets.{name}.fields.{lead_field}: is not a lead field")
            fields.append(
                FieldMap(
                    lead_field,
                    spec["property"],
                    spec.get("transform", "none"),
                    spec.get("owned_by", "leadflow"),
                    spec.get("default"),
                )
            )
        properties = [f.property for f in fields]
        for duplicate in sorted({p for p in properties if properties.count(p) > 1}):
            problems.append(f"targets.{name}.fields: property {duplicate} is mapped twice")
        if name == "hubspot" and raw.get("enabled") and "email" not in properties:
            problems.append("targets.hubspot.fields.email: HubSpot upserts by email, so email must be mapped")
        options = {
            k: v for k, v in raw.items() if k not in ("enabled", "fields", "batch_size", "max_attempts", "owners")
        }
        targets[name] = TargetConfig(
            name,
            bool(raw.get("enabled")),
            tuple(fields),
            int(raw.get("batch_size", 100)),
            int(raw.get("max_attempts", 8)),
            options,
            dict(raw.get("owners") or {}),
        )
    if problems:
        raise CrmConfigInvalid(problems)
    return CrmConfig(frozenset(merged["push_stages"]), targets)


@lru_cache(maxsize=1)
def crm_config() -> CrmConfig:
    raw = os.environ.get("LEADFLOW_CRM_CONFIG")
    path = os.environ.get("LEADFLOW_CRM_FILE")
    if raw:
        source = "LEADFLOW_CRM_CONFIG"
    elif path:
        source = path
        with open(path, encoding="utf-8") as handle:
            raw = handle.read()
    else:
        return parse({})
    try:
        document = json.loads(raw)
    except ValueError as exc:
        raise CrmConfigInvalid([f"{source}: is not valid JSON"]) from exc
    return parse(document)


# ---------------------------------------------------------------------------------------------- mapping
def lead_value(lead: dict, path: str) -> Any:
    value: Any = lead
    for part in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def _transform(value: Any, how: str, target: TargetConfig) -> Any:
    if value is None or how == "none":
        return value
    if how == "lower":
        return str(value).lower()
    if how == "upper":
        return str(value).upper()
    if how == "title":
        return str(value).title()
    if how == "string":
        return str(value)
    if how == "date":
        return datetime.fromisoformat(str(value).replace("Z", "+00:00")).date().isoformat()
    if how == "owner":
        return target.owners.get(str(value), str(value))
    if how == "hubspot_stage":
        return HUBSPOT_STAGES.get(str(value), str(value))
    if how == "salesforce_status":
        return SALESFORCE_STATUS.get(str(value), str(value))
    raise ValueError(how)


def _owner_id(lead: dict, value: Any, target: TargetConfig) -> str | None:
    """The owner's id in this CRM: the target's `owners` map first, then the id routing put on the lead for
    this CRM (an owner routed by LeadFlow without one is left out: the CRM keeps its own default owner)."""
    if value is None:
        return None
    if str(value) in target.owners:
        return target.owners[str(value)]
    routed = (lead.get("owner") or {}).get("crm")
    if isinstance(routed, dict):
        return routed.get(target.name)
    return str(value)


def map_lead(lead: dict, target: TargetConfig, *, first_push: bool) -> dict[str, Any]:
    """The CRM properties of a lead for a target (CRM-owned fields only on the first push)."""
    properties: dict[str, Any] = {}
    for spec in target.fields:
        if spec.owned_by == "crm" and not first_push:
            continue
        value = lead_value(lead, spec.lead_field)
        value = (
            _owner_id(lead, value, target) if spec.transform == "owner" else _transform(value, spec.transform, target)
        )
        if value is None or value == "":
            value = spec.default
        if value is not None:
            properties[spec.property] = value
    return properties
