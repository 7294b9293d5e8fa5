"""Refusals are visible: every 401/403/422 a capture function answers for a known provider emits one `Refused`
datapoint (CloudWatch EMF on stdout, dimensions FunctionName, Route, Provider, Status, no PII), and
template.yaml alarms on that metric, with the dimensions the code emits, to the alarm topic.
"""

from __future__ import annotations

import json
import re

import pytest

from leadflow.observability import metrics
from leadflow_local.template import load_template
from tests.integration.test_callbacks import GATEWAY, baidu_query, baidu_signed
from tests.support.providers import encode, typeform_headers

EMAIL = "refused.person@example.org"
ROUTE_FUNCTIONS = {
    "form": "CaptureFormFunction",
    "webhook": "CaptureWebhookFunction",
    "callback": "CaptureCallbackFunction",
}


def _emf(captured: str) -> list[dict]:
    """The CloudWatch embedded-metric-format documents printed by the function."""
    documents = []
    for line in captured.splitlines():
        line = line.strip()
        if line.startswith("{") and '"_aws"' in line:
            documents.append(json.loads(line))
    return documents


def _refusals(captured: str) -> list[dict]:
    found = []
    for doc in _emf(captured):
        for directive in doc["_aws"]["CloudWatchMetrics"]:
            if any(m["Name"] == "Refused" for m in directive["Metrics"]):
                (dimensions,) = directive["Dimensions"]
                found.append(
                    {
                        "namespace": directive["Namespace"],
                        "dimensions": {name: doc[name] for name in dimensions},
                        "value": doc["Refused"],
                        "raw": json.dumps(doc),
                    }
                )
    return found


@pytest.fixture
def function_name(monkeypatch):
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "stack-CaptureWebhookFunction-ABC123")
    return "stack-CaptureWebhookFunction-ABC123"


def _typeform_body() -> bytes:
    return encode(
        {
            "event_id": "01REFUSED",
            "event_type": "form_response",
            "form_response": {"form_id": "lT4Z3j", "token": "t1", "answers": [{"type": "email", "email": EMAIL}]},
        }
    )


def test_a_forged_webhook_delivery_emits_one_refused_datapoint_for_its_provider(api, capsys, function_name):
    # Given a Typeform delivery signed with a secret that is not ours
    body = _typeform_body()

    # When it arrives
    reply = api.request("POST", "/v1/webhooks/typeform", body, typeform_headers(body, "not-our-secret"))

    # Then it is refused, and one Refused datapoint names the provider, route kind and status
    assert reply.status == 401
    refusals = _refusals(capsys.readouterr().out)
    assert len(refusals) == 1, refusals
    (refusal,) = refusals
    assert refusal["namespace"] == "LeadFlow"
    assert refusal["dimensions"] == {
        "FunctionName": function_name,
        "Route": "webhook",
        "Provider": "typeform",
        "Status": "401",
    }
    assert refusal["value"] in (1, 1.0, [1.0])
    # And the metric carries nothing about the person
    assert EMAIL not in refusal["raw"]


def test_a_form_post_from_a_foreign_origin_emits_a_403_refusal_for_the_form(api, capsys):
    # When a browser on another site posts to the website form
    reply = api.post_form("website", {"email": EMAIL}, headers={"origin": "https://evil.example"})

    # Then it is refused with 403 and counted for that form
    assert reply.status == 403
    (refusal,) = _refusals(capsys.readouterr().out)
    assert {k: refusal["dimensions"][k] for k in ("Route", "Provider", "Status")} == {
        "Route": "form",
        "Provider": "website",
        "Status": "403",
    }


def test_an_invalid_form_submission_emits_a_422_refusal(api, capsys):
    # When a visitor submits an email that is not one
    reply = api.post_form("website", {"email": "not-an-email", "phone": "12"})

    # Then it is a 422, counted for the form, without the value
    assert reply.status == 422
    (refusal,) = _refusals(capsys.readouterr().out)
    assert refusal["dimensions"]["Status"] == "422"
    assert refusal["dimensions"]["Provider"] == "website"
    assert "not-an-email" not in refusal["raw"]


def test_a_badly_signed_click_callback_emits_a_refusal_for_the_platform(api, capsys):
    # When Baidu's click server calls with a sign made with another akey
    reply = api.request("GET", baidu_signed(baidu_query(), akey="not-our-akey"), headers=GATEWAY)

    # Then it is refused and counted for baidu's callback route
    assert reply.status == 401
    (refusal,) = _refusals(capsys.readouterr().out)
    assert {k: refusal["dimensions"][k] for k in ("Route", "Provider", "Status")} == {
        "Route": "callback",
        "Provider": "baidu",
        "Status": "401",
    }


def test_accepted_deliveries_and_unknown_providers_emit_no_refusal(api, capsys):
    # When a valid form submission and a post to a provider that does not exist arrive
    accepted = api.post_form("website", {"email": EMAIL})
    unknown = api.request("POST", "/v1/webhooks/no-such-provider", b"{}", {"content-type": "application/json"})

    # Then neither is counted as a refusal (unknown names never become metric dimensions)
    assert accepted.status == 202
    assert unknown.status == 404
    assert _refusals(capsys.readouterr().out) == []


# ------------------------------------------------------------------------------------------- the alarms
def _alarm_for(template: dict, function: str) -> dict:
    found = []
    for name, resource in template["Resources"].items():
        if resource["Type"] != "AWS::CloudWatch::Alarm":
            continue
        for query in resource["Properties"].get("Metrics") or []:
            expression = query.get("Expression")
            text = expression.get("Fn::Sub") if isinstance(expression, dict) else expression
            if isinstance(text, str) and "SUM(Refused)" in text and "${" + function + "}" in text:
                found.append((name, resource["Properties"], text))
    assert len(found) == 1, f"{function}: expected one refusal alarm, found {[n for n, *_ in found]}"
    return {"name": found[0][0], "props": found[0][1], "query": found[0][2]}


@pytest.mark.parametrize("route", sorted(ROUTE_FUNCTIONS))
def test_each_capture_function_has_a_sustained_refusal_alarm_on_the_emitted_metric(route, api, capsys):
    template = load_template()
    function = ROUTE_FUNCTIONS[route]
    # Given the dimensions the code really emits for a refusal (a forged Typeform delivery)
    body = _typeform_body()
    api.request("POST", "/v1/webhooks/typeform", body, typeform_headers(body, "not-our-secret"))
    (refusal,) = _refusals(capsys.readouterr().out)

    # When the function's refusal alarm is read from the template
    alarm = _alarm_for(template, function)
    schema = re.search(r'SCHEMA\("([^"]+)",\s*([^)]*)\)', alarm["query"])
    assert schema, alarm["query"]

    # Then it queries the Refused metric in the code's namespace with exactly the emitted dimension set,
    # restricted to this stack's function
    namespace, dimensions = schema.group(1), {d.strip() for d in schema.group(2).split(",")}
    assert namespace == refusal["namespace"] == metrics.namespace
    assert template["Globals"]["Function"]["Environment"]["Variables"]["POWERTOOLS_METRICS_NAMESPACE"] == namespace
    assert dimensions == set(refusal["dimensions"])
    assert f"WHERE FunctionName = '${{{function}}}'" in alarm["query"]
    # And it fires on a sustained count (several periods), to the alarm topic, and clears itself
    props = alarm["props"]
    assert props["EvaluationPeriods"] >= 3
    assert 2 <= props["DatapointsToAlarm"] <= props["EvaluationPeriods"]
    assert props["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    assert props["AlarmActions"] == [{"Ref": "AlarmTopic"}]
    assert props["OKActions"] == [{"Ref": "AlarmTopic"}]
    assert props["TreatMissingData"] == "notBreaching"
