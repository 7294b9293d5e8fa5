"""CRM push metrics are one metric per measure with a `target` dimension (Powertools EMF), and the template's
alarms on them name a metric the code emits with the dimensions it emits."""

from __future__ import annotations

import json

import pytest

from leadflow import http
from leadflow.crm import Call, hubspot
from leadflow.crm.config import parse
from leadflow.services import push
from leadflow_local.template import load_template


def emf_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.startswith('{"_aws"')]


def measures(lines: list[dict]) -> dict[str, tuple[tuple[str, ...], str]]:
    """metric name → (its dimension names, its target)"""
    found = {}
    for line in lines:
        for directive in line["_aws"]["CloudWatchMetrics"]:
            for metric in directive["Metrics"]:
                found[metric["Name"]] = (tuple(directive["Dimensions"][0]), line.get("target"))
    return found


@pytest.fixture
def emitting(monkeypatch):
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "false")
    monkeypatch.setenv("POWERTOOLS_DEV", "false")


def test_a_rate_limited_call_is_counted_under_one_metric_name_with_the_target_as_dimension(
    emitting, capsys, monkeypatch
):
    # Given HubSpot answering a batch with 429
    def answer(*args, **kwargs):
        return http.Response(429, {"retry-after": "1"}, {"policyName": "TEN_SECONDLY_ROLLING"}, 5.0)

    monkeypatch.setattr(push.http, "request", answer)
    target = parse({}).targets["hubspot"]
    monkeypatch.setattr(push, "bucket", lambda target: None)
    # When the push service sends one call
    outcomes = push.send(Call("POST", "http://crm.invalid/x", ("L1#2", "L2#2")), target, hubspot.classify)
    assert {o.status for o in outcomes.values()} == {"retry"}
    # Then latency, batch size and the 429 are CrmLatency, CrmBatchSize and CrmRateLimited, target=hubspot
    found = measures(emf_lines(capsys.readouterr().out))
    for name in ("CrmLatency", "CrmBatchSize", "CrmRateLimited"):
        assert found[name] == (("service", "target"), "hubspot"), name
    assert not [name for name in found if "_" in name]  # no per-target metric names any more


def test_every_crm_alarm_watches_a_metric_by_name_and_target_dimension():
    alarms = {
        logical_id: resource["Properties"]
        for logical_id, resource in load_template()["Resources"].items()
        if resource["Type"] == "AWS::CloudWatch::Alarm"
        and resource["Properties"].get("Namespace") == "LeadFlow"
        and str(resource["Properties"].get("MetricName", "")).startswith("Crm")
    }
    assert alarms, "no alarm on a CRM push metric"
    for logical_id, alarm in alarms.items():
        dimensions = {d["Name"]: d["Value"] for d in alarm["Dimensions"]}
        assert "_" not in alarm["MetricName"], logical_id
        assert dimensions.get("service") == "leadflow" and dimensions.get("target") in (
            "hubspot",
            "salesforce",
            "webhook",
        )
