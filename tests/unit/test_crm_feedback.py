"""CRM feedback, pure parts: the configuration (file:line:field errors), the HubSpot event reading and the
decisions that keep a lead from moving backwards."""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import UTC, datetime

import pytest

from leadflow.crm_feedback_config import DEFAULT_FILE, load_feedback_config, load_feedback_file
from leadflow.domain.crm_feedback import CrmEvent, decide
from leadflow.errors import CrmFeedbackConfigInvalid, SignatureInvalid
from leadflow.journey_config import configured_journeys
from leadflow.sources import crm_hubspot
from leadflow.web import Request

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
SHIPPED = load_feedback_file(DEFAULT_FILE)


def test_the_shipped_configuration_names_only_configured_journeys():
    journeys = set(configured_journeys().journeys)
    named = {rule.action.journey for rule in SHIPPED.reasons if rule.action.journey}
    assert named and named <= journeys
    assert [r.id for r in SHIPPED.reasons] == ["buying-next-year", "no-need-now", "lost-to-competitor", "bad-data"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "reasons:\n  - id: a\n    match: [x]\n    action: {after_days: -1, journey: j}\n",
            "f.yaml:4: reasons[0].action.after_days:",
        ),
        ("reasons:\n  - id: a\n    match: [x]\n    action: {stage: lost}\n", "f.yaml:4: reasons[0].action.stage:"),
        (
            "reasons:\n  - id: a\n    match: [x]\n    action: {after_days: 3}\n",
            "f.yaml:4: reasons[0].action.after_days: needs a journey",
        ),
        ("reasons: []\nhubspot:\n  colour: red\n", "f.yaml:3: hubspot.colour: unknown field"),
        (
            "reasons:\n  - id: a\n    match: [x]\n    action: {stage: recycled}\n"
            "  - id: a\n    match: [y]\n    action: {stage: recycled}\n",
            "f.yaml:5: reasons[1].id:",
        ),
    ],
)
def test_a_bad_configuration_is_refused_naming_file_line_and_field(text, expected):
    with pytest.raises(CrmFeedbackConfigInvalid) as refused:
        load_feedback_config(text, "f.yaml")
    assert any(line.startswith(expected) for line in refused.value.problems), refused.value.problems


def _event(**kw) -> CrmEvent:
    base = {"crm": "hubspot", "event_id": "e1", "occurred_at": "2026-11-29T11:00:00.000Z", "kind": "outcome"}
    return CrmEvent(**{**base, **kw})


def test_a_lost_deal_never_recycles_a_customer():
    lead = {"lead_id": "l1", "lifecycle_stage": "customer", "crm_feedback": {"at": "2026-11-28T00:00:00.000Z"}}
    decision = decide(lead, _event(outcome="lost", object_type="deal", object_id="9"), SHIPPED, NOW, NOW)
    assert decision.status == "ignored" and decision.lead["lifecycle_stage"] == "customer"


def test_the_crm_echoing_the_outcome_already_applied_changes_nothing():
    lead = {"lead_id": "l1", "lifecycle_stage": "sql"}
    first = decide(lead, _event(outcome="sql"), SHIPPED, NOW, NOW)
    again = decide(first.lead, _event(outcome="sql", occurred_at="2026-11-29T11:30:00.000Z"), SHIPPED, NOW, NOW)
    assert first.status == "applied" and again.status == "ignored"


def test_hubspot_events_are_read_by_the_configured_properties():
    raw = {"eventId": 1, "portalId": 5, "occurredAt": 1795950000000, "objectId": 7}
    sql = crm_hubspot.parse_event(
        {
            **raw,
            "subscriptionType": "contact.propertyChange",
            "propertyName": "lifecyclestage",
            "propertyValue": "salesqualifiedlead",
        },
        SHIPPED,
    )
    deal = crm_hubspot.parse_event(
        {
            **raw,
            "subscriptionType": "object.propertyChange",
            "objectTypeId": "0-3",
            "propertyName": "dealstage",
            "propertyValue": "closedwon",
        },
        SHIPPED,
    )
    other = crm_hubspot.parse_event({**raw, "subscriptionType": "contact.creation"}, SHIPPED)
    assert (sql.kind, sql.outcome, sql.object_id) == ("outcome", "sql", "7")
    assert (deal.object_type, deal.outcome) == ("deal", "won")
    assert other == "ignored"
    assert crm_hubspot.parse_event({"subscriptionType": "contact.propertyChange"}, SHIPPED) != "ignored"


def test_the_signed_uri_has_hubspots_escapes_decoded(monkeypatch):
    # Given a target URL with a query whose ':' and '/' are percent-encoded (HubSpot signs them decoded)
    monkeypatch.setenv("LEADFLOW_HUBSPOT_WEBHOOK_URL", "https://h.example.com/v1/crm/hubspot/events?next=a%3Ab%2Fc%20d")
    body, ts = b"[]", "1795950000000"
    signed = b"POSThttps://h.example.com/v1/crm/hubspot/events?next=a:b/c%20d" + body + ts.encode()
    secret = "dev-hubspot-client-secret"
    sig = base64.b64encode(hmac.new(secret.encode(), signed, hashlib.sha256).digest()).decode()
    headers = {"x-hubspot-signature-v3": sig, "x-hubspot-request-timestamp": ts}
    request = Request("POST", "/v1/crm/hubspot/events", headers, {}, "", {}, {}, body)
    crm_hubspot.verify(request, now=1795950000.0)  # accepted
    with pytest.raises(SignatureInvalid):
        crm_hubspot.verify(
            Request("POST", "/x", {**headers, "x-hubspot-request-timestamp": "1795950000001"}, {}, "", {}, {}, body),
            now=1795950000.0,
        )


def test_a_crm_suppression_stops_journeys_until_its_end_only():
    from leadflow.domain.journey import exit_reason

    journey = configured_journeys().journeys["winback"]
    lead = {
        "lead_id": "l1",
        "lifecycle_stage": "recycled",
        "suppressed": {"reason": "crm:x", "until": "2026-12-01T00:00:00.000Z"},
    }
    assert exit_reason(journey, lead, datetime(2026, 11, 30, tzinfo=UTC)) == "suppressed"
    assert exit_reason(journey, lead, datetime(2026, 12, 1, 0, 0, 1, tzinfo=UTC)) is None
    unsubscribed = {**lead, "suppressed": {"reason": "unsubscribe", "since": "2026-11-01T00:00:00.000Z"}}
    assert exit_reason(journey, unsubscribed, datetime(2030, 1, 1, tzinfo=UTC)) == "suppressed"
