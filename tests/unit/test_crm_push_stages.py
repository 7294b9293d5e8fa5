"""The push stages live in two places that must agree: the CRM configuration (`push_stages`, which the router
decides with) and the CrmPushRouterFunction's FilterCriteria in template.yaml (which Lambda drops records
with before the router sees them). A stage the configuration pushes but the filter drops would never push.

The check evaluates the template's filters as Lambda does (every OR-ed pattern, leadflow_local's matcher), so
the filter may be widened (another fan-out of this router, e.g. ad-platform conversions) without this test
changing: it only requires that every configured push stage gets through.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from leadflow.crm.config import DEFAULTS, parse
from leadflow.services.push import needs_push
from leadflow_local.stream_delivery import matches_filters
from leadflow_local.template import load_template, stream_mappings

REPO = Path(__file__).resolve().parents[2]
STAGES = ("subscriber", "lead", "mql", "sql", "opportunity", "customer", "recycled", "disqualified")


def router_filters() -> tuple[dict, ...]:
    [mapping] = [m for m in stream_mappings(load_template()) if m.function_id == "CrmPushRouterFunction"]
    return mapping.filters


def lead_change(stage: str, event: str = "MODIFY") -> dict:
    """A stream record of a lead item as Lambda's filter sees it (DynamoDB JSON images)."""
    image = {"entity": {"S": "lead"}, "lead_id": {"S": "L1"}, "lifecycle_stage": {"S": stage}, "version": {"N": "2"}}
    return {"eventName": event, "dynamodb": {"NewImage": image, "OldImage": image}}


def stages_dropped_by_the_filter(push_stages) -> list[str]:
    filters = router_filters()
    return [stage for stage in push_stages if not matches_filters(filters, lead_change(stage))]


def shipped_configurations() -> list[tuple[str, dict]]:
    """Every CRM configuration the repository ships (the defaults, the local one, any packaged default)."""
    found = [("leadflow/crm/config.py DEFAULTS", DEFAULTS)]
    for path in sorted(
        {*REPO.glob("infra/**/crm*.json"), *REPO.glob("infra/crm/*.y*ml"), *REPO.glob("infra/crm/*.json")}
    ):
        text = path.read_text()
        found.append(
            (str(path.relative_to(REPO)), yaml.safe_load(text) if path.suffix != ".json" else json.loads(text))
        )
    return found


@pytest.mark.parametrize("name, document", shipped_configurations(), ids=lambda v: v if isinstance(v, str) else "")
def test_every_push_stage_of_a_shipped_configuration_passes_the_routers_filter(name, document):
    config = parse(document)
    # Then Lambda's filter lets a lead change in each of its push stages through to the router
    assert stages_dropped_by_the_filter(sorted(config.push_stages)) == [], (
        f"{name}: push_stages the CrmPushRouterFunction FilterCriteria in template.yaml drops; list them there too"
    )


def test_the_check_fails_when_configuration_and_filter_diverge():
    # Given a configuration that pushes leads from stage "lead" on, while the template filters from MQL on
    config = parse({"push_stages": ["lead", "mql"]})
    # Then the divergence is reported, naming the stage that would never push
    assert stages_dropped_by_the_filter(sorted(config.push_stages)) == ["lead"]


def test_the_filter_lets_no_item_but_leads_through():
    other = lead_change("mql")
    other["dynamodb"]["NewImage"]["entity"] = {"S": "touch"}
    assert not matches_filters(router_filters(), other)


def test_a_lead_change_a_wider_filter_lets_through_is_still_decided_by_the_configured_stages():
    # Given the default configuration and a lead change outside the push stages (a widened filter passes it)
    config = parse({})
    target = config.targets["hubspot"]
    lead = {"entity": "lead", "lead_id": "L1", "lifecycle_stage": "lead", "version": 2, "crm": {}}
    # Then the router queues no push for it, for any non-push stage
    for stage in sorted(set(STAGES) - config.push_stages):
        assert not needs_push({**lead, "version": 1}, {**lead, "lifecycle_stage": stage}, target, config.push_stages)
