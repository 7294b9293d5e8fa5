"""Mapping form-tool answers onto the canonical flat lead document (lead_input.v1.json).

Form tools (Typeform, Tally, Webflow, HubSpot, Google Ads lead forms) name their fields freely. Each
provider module decides *what* a value is (email answer, hidden field, column id ...); this module keeps
the shared vocabulary (label heuristics, attribute naming) and builds the document, remembering where each
value came from so a schema error points at the provider's own field path.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from leadflow import schemas
from leadflow.domain.model import TRACKING_FIELDS, LeadInput
from leadflow.sources.base import FIELD_NAMES, lead_input_from_flat, parse_time

LEAD_SCHEMA = "lead_input.v1.json"
CONSENT_TARGETS = ("consent_email", "consent_sms")
# Lead fields a label or ref may name (besides tracking fields, which map to themselves).
LEAD_TARGETS = (*FIELD_NAMES, "message", *CONSENT_TARGETS)

# Normalised label → lead field. Labels are normalised by `normalise_label` ("Work e-mail" → "work_e_mail").
LABEL_ALIASES: dict[str, str] = {
    **{name: name for name in LEAD_TARGETS},
    **{
        alias: "email"
        for alias in (
            "e_mail",
            "email_address",
            "e_mail_address",
            "your_email",
            "work_email",
            "work_e_mail",
            "business_email",
            "company_email",
            "mail",
        )
    },
    **{
        alias: "phone"
        for alias in (
            "phone_number",
            "telephone",
            "tel",
            "mobile",
            "mobile_phone",
            "mobile_number",
            "mobilephone",
            "cell_phone",
            "work_phone",
            "your_phone",
        )
    },
    **{alias: "first_name" for alias in ("firstname", "first", "given_name", "forename")},
    **{alias: "last_name" for alias in ("lastname", "last", "surname", "family_name")},
    **{alias: "full_name" for alias in ("name", "fullname", "your_name", "contact_name")},
    **{
        alias: "company"
        for alias in ("company_name", "organization", "organisation", "organization_name", "business_name", "employer")
    },
    **{alias: "job_title" for alias in ("jobtitle", "title", "role", "position", "job_role")},
    **{alias: "company_size" for alias in ("employees", "number_of_employees", "team_size", "numemployees")},
    **{alias: "country" for alias in ("country_region", "country_name")},
    **{alias: "message" for alias in ("comments", "comment", "how_can_we_help", "how_can_we_help_you", "notes")},
    **{
        alias: "consent_email"
        for alias in ("email_consent", "marketing_consent", "newsletter", "subscribe", "opt_in", "email_opt_in")
    },
    **{alias: "consent_sms" for alias in ("sms_consent", "sms_opt_in")},
}


def normalise_label(label: Any, limit: int = 64) -> str:
    """Lower-case; runs of other characters become one underscore ("Work E-mail *" → "work_e_mail")."""
    text = re.sub(r"[^a-z0-9]+", "_", str(label).strip().lower()).strip("_")
    return text[:limit].rstrip("_")


def target_for_label(label: Any) -> str | None:
    """The lead or tracking field a human label names, or None when it names neither."""
    name = normalise_label(label)
    if name in TRACKING_FIELDS or f"_{name}" in TRACKING_FIELDS:
        return name if name in TRACKING_FIELDS else f"_{name}"
    return LABEL_ALIASES.get(name)


def attribute_name(name: Any, fallback: str = "field") -> str:
    """A name that attributes accept (lead_input.v1.json: [A-Za-z0-9_.:-]{1,64})."""
    return normalise_label(name) or fallback


@dataclass
class LeadDocument:
    """A flat lead document being assembled, with the provider path of every value (for 422 paths)."""

    doc: dict[str, Any] = field(default_factory=dict)
    origins: dict[str, str] = field(default_factory=dict)

    def has(self, target: str) -> bool:
        return self.doc.get(target) not in (None, "")

    def put(self, target: str, value: Any, origin: str, *, overwrite: bool = False) -> bool:
        """Set a lead field, tracking field or `attributes.<name>`; the first non-empty value wins."""
        if value is None or value == "" or value == []:
            return False
        if target.startswith("attributes."):
            name = target.split(".", 1)[1]
            attributes = self.doc.setdefault("attributes", {})
            if name in attributes and not overwrite:
                return False
            attributes[name] = value
            self.origins[f"attributes.{name}"] = origin
            return True
        if self.has(target) and not overwrite:
            return False
        self.doc[target] = value
        self.origins[target] = origin
        return True

    def put_field(self, target: str | None, value: Any, origin: str, attribute: str) -> None:
        """A lead/tracking field when `target` names one and it is still free, else `attributes.<attribute>`."""
        if target and target in LEAD_TARGETS + TRACKING_FIELDS and self.put(target, value, origin):
            return
        self.put(f"attributes.{attribute_name(attribute)}", value, origin)

    def put_tracking(self, values: dict[str, Any], origin: str) -> None:
        """Hidden fields: utm_*, click ids and tracking cookies to tracking, anything else to attributes."""
        for name, value in values.items():
            if isinstance(value, dict | list):
                continue
            target = target_for_label(name)
            text = None if value is None else str(value)
            if target in TRACKING_FIELDS:
                self.put(target, text, f"{origin}.{name}")
            else:
                self.put_field(target, text, f"{origin}.{name}", str(name))

    def lead_input(
        self,
        *,
        source: str,
        event_key: str,
        submitted_at: Any = None,
        external_provider: str | None = None,
        is_test: bool = False,
    ) -> LeadInput:
        """Validate against lead_input.v1.json (422 with the provider's field paths) and build the input."""
        schemas.check(LEAD_SCHEMA, self.doc, rename=self.origins)
        inp = lead_input_from_flat(self.doc, source=source, event_key=event_key, external_provider=external_provider)
        # The provider's own submission time, whatever its format (never a reason to refuse a lead).
        occurred: datetime | None = parse_time(submitted_at)
        inp.occurred_at = occurred
        inp.is_test = bool(is_test)
        return inp
