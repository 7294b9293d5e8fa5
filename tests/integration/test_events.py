"""POST /v1/events: engagement events score, qualify and suppress leads; bad events never spoil a batch.

Through the real handlers (API Gateway payload-2.0 events) against moto in-process, with the shipped
default scoring model (infra/scoring/default.yaml).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from tests.support.signing import dev_secret, standard_webhook_headers

HOT = {
    "email": "grace@navy-labs.io",
    "job_title": "VP Engineering",
    "company_size": "1000",
    "industry": "software",
    "country": "US",
}


def _now(offset_minutes: float = 0) -> str:
    return (datetime.now(UTC) + timedelta(minutes=offset_minutes)).isoformat()


def _items(aws, pk: str, prefix: str = "") -> list[dict]:
    """The partition's items whose sort key starts with `prefix` (all of them without one)."""
    page = aws.query(
        TableName="LeadsTable",
        KeyConditionExpression="pk = :pk AND begins_with(sk, :p)" if prefix else "pk = :pk",
        ExpressionAttributeValues={":pk": {"S": pk}, **({":p": {"S": prefix}} if prefix else {})},
        ConsistentRead=True,
    )
    return page["Items"]


def _lead(api, lead_id: str) -> dict:
    reply = api.request("GET", f"/v1/leads/{lead_id}")
    assert reply.status == 200, reply.body
    return reply.json


def test_engagement_qualifies_a_hot_lead_to_mql_with_its_history(api, aws):
    # Given a senior person at an ICP-sized software company (grade A, no behaviour yet)
    lead_id = api.post_form("website", HOT).json["lead_id"]
    assert _lead(api, lead_id)["score"]["grade"] == "A"
    assert _lead(api, lead_id)["lifecycle_stage"] == "lead"

    # When they view pricing, click an email, attend a webinar and book a meeting (by email and by lead id)
    events = [
        {"type": "page_view", "email": HOT["email"], "occurred_at": _now(-30), "properties": {"url": "/pricing"}},
        {"type": "email_click", "email": HOT["email"], "occurred_at": _now(-20), "properties": {"campaign": "c1"}},
        {"type": "webinar_attended", "lead_id": lead_id, "occurred_at": _now(-10)},
        {"type": "meeting_booked", "lead_id": lead_id, "occurred_at": _now()},
    ]
    reply = api.post_events({"events": events}, "msg_hot_1")

    # Then every event is accepted for the lead
    assert reply.status == 202, reply.body
    assert [r["status"] for r in reply.json["results"]] == ["accepted"] * 4
    assert {r["lead_id"] for r in reply.json["results"]} == {lead_id}
    # And the lead is an MQL with its behaviour explained rule by rule
    lead = _lead(api, lead_id)
    assert lead["lifecycle_stage"] == "mql"
    assert lead["mql_at"]
    assert lead["persona"] == "mid_market"  # 1000 employees is the band 501-1000
    assert lead["score"]["behaviour"] == 10 + 5 + 15 + 30
    assert lead["score"]["total"] == lead["score"]["fit"] + lead["score"]["behaviour"]
    rules = {item["rule"] for item in lead["score"]["breakdown"]}
    assert {"pricing_page", "email_click", "webinar_attended", "meeting_booked"} <= rules
    # And the timeline's items are stored: 4 events, score changes and one stage change (no PII in details)
    assert len(_items(aws, f"LEAD#{lead_id}", "EVENT#")) == 4
    history = _items(aws, f"LEAD#{lead_id}", "HIST#")
    kinds = [item["kind"]["S"] for item in history]
    assert kinds.count("stage") == 1
    assert "score" in kinds
    stage = next(item for item in history if item["kind"]["S"] == "stage")
    assert stage["detail"]["M"]["to"]["S"] == "mql" and stage["detail"]["M"]["from"]["S"] == "lead"
    assert HOT["email"] not in json.dumps(history)


def test_a_free_mail_student_without_engagement_is_never_qualified(api):
    lead_id = api.post_form("website", {"email": "kid@gmail.com", "job_title": "Student"}).json["lead_id"]
    reply = api.post_events({"type": "email_open", "lead_id": lead_id, "occurred_at": _now()}, "msg_student")
    assert reply.json["results"][0]["status"] == "accepted"
    lead = _lead(api, lead_id)
    assert lead["score"]["grade"] == "D"
    assert lead["lifecycle_stage"] == "lead" and "mql_at" not in lead


def test_five_redeliveries_change_nothing_and_get_the_same_answer(api, aws):
    lead_id = api.post_form("website", HOT).json["lead_id"]
    body = {"type": "content_download", "lead_id": lead_id, "occurred_at": _now(), "properties": {"asset": "e"}}
    first = api.post_events(body, "msg_redeliver")
    lead = _lead(api, lead_id)

    # When the same delivery (same webhook-id) comes 5 more times
    replies = [api.post_events(body, "msg_redeliver") for _ in range(5)]

    # Then each gets the first answer and nothing changed: one event, same score, same version
    assert all(r.status == 202 and r.body == first.body for r in replies)
    assert len(_items(aws, f"LEAD#{lead_id}", "EVENT#")) == 1
    again = _lead(api, lead_id)
    assert again["score"] == lead["score"] and again["version"] == lead["version"]


def test_the_same_event_id_in_another_delivery_is_a_duplicate(api):
    lead_id = api.post_form("website", HOT).json["lead_id"]
    event = {"id": "esp-evt-1", "type": "email_click", "lead_id": lead_id, "occurred_at": _now()}
    assert api.post_events(event, "msg_a").json["results"][0]["status"] == "accepted"
    reply = api.post_events([event, event], "msg_b")
    assert [r["status"] for r in reply.json["results"]] == ["duplicate", "duplicate"]
    assert _lead(api, lead_id)["score"]["behaviour"] == 5


def test_a_batch_with_bad_events_keeps_the_good_ones(api, aws):
    lead_id = api.post_form("website", HOT).json["lead_id"]
    batch = [
        {"type": "email_click", "lead_id": lead_id, "occurred_at": _now()},
        {"type": "email_teleport", "lead_id": lead_id, "occurred_at": _now()},
        {"type": "email_click", "lead_id": lead_id, "occurred_at": _now(60)},  # an hour ahead
        {"type": "email_click", "lead_id": lead_id, "occurred_at": "2019-01-01T00:00:00Z"},  # ancient
        {"type": "email_click", "lead_id": lead_id, "occurred_at": "yesterday"},
        {"type": "page_view", "lead_id": lead_id, "occurred_at": _now()},  # no url
        {"type": "email_open", "lead_id": lead_id, "occurred_at": _now(), "properties": {"x": {"nested": 1}}},
        {"type": "email_open", "lead_id": lead_id, "email": HOT["email"], "occurred_at": _now()},
        {"type": "email_open", "occurred_at": _now()},
        "not an object",
        {"type": "email_open", "lead_id": lead_id, "occurred_at": _now(), "properties": {"u": "x" * 5000}},
        {"type": "email_open", "lead_id": lead_id, "occurred_at": _now()},
    ]
    reply = api.post_events({"events": batch}, "msg_mixed")
    assert reply.status == 202, reply.body
    results = reply.json["results"]
    assert [r["status"] for r in results] == ["accepted"] + ["rejected"] * 10 + ["accepted"]
    fields = [r["errors"][0]["field"] for r in results[1:11]]
    assert fields == [
        "type",
        "occurred_at",
        "occurred_at",
        "occurred_at",
        "properties.url",
        "properties.x",
        "email",
        "email",
        "",
        "properties.u",
    ]
    assert "x" * 50 not in reply.body  # messages never echo the value
    assert len(_items(aws, f"LEAD#{lead_id}", "EVENT#")) == 2


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"events": []}, 422),
        ({"events": [{"type": "email_open", "email": "a@b.io", "occurred_at": "2026-01-01T00:00:00Z"}] * 101}, 422),
        ({"events": "nope"}, 422),
        ([], 422),
    ],
)
def test_empty_or_oversize_batches_are_refused_as_a_whole(api, body, status):
    reply = api.post_events(body, "msg_whole")
    assert reply.status == status
    assert reply.headers["content-type"] == "application/problem+json"
    assert json.loads(reply.body)["errors"][0]["field"] == "events"


def test_unsigned_or_wrongly_signed_events_are_401(api):
    raw = json.dumps({"type": "email_open", "email": "a@b.io", "occurred_at": _now()}).encode()
    generic = standard_webhook_headers(raw, dev_secret("webhooks/generic"), "msg_x")  # another secret
    assert api.request("POST", "/v1/events", raw, generic).status == 401
    assert api.request("POST", "/v1/events", raw, {"content-type": "application/json"}).status == 401


def test_unsubscribe_suppresses_the_lead_and_withdraws_email_consent(api):
    lead_id = api.post_form("website", {**HOT, "consent_email": "yes"}).json["lead_id"]
    assert _lead(api, lead_id)["consent"]["email"]["granted"] is True
    at = _now()
    reply = api.post_events({"type": "unsubscribe", "email": HOT["email"], "occurred_at": at}, "msg_unsub")
    assert reply.json["results"][0]["status"] == "accepted"
    lead = _lead(api, lead_id)
    assert lead["consent"]["email"]["granted"] is False
    assert lead["suppressed"]["reason"] == "unsubscribe" and lead["suppressed"]["source"] == "events"
    assert lead["suppressed"]["since"]
    assert lead["score"]["behaviour"] == 0  # suppression gives no points


def test_an_anonymous_event_is_applied_when_its_email_becomes_a_lead(api, aws):
    # Given engagement from an email no lead holds
    events = [
        {"type": "page_view", "email": "Later@Prospect.io", "occurred_at": _now(-5), "properties": {"url": "/pricing"}},
        {"type": "webinar_registered", "email": "later@prospect.io", "occurred_at": _now()},
    ]
    reply = api.post_events(events, "msg_anon")
    assert [r["status"] for r in reply.json["results"]] == ["anonymous", "anonymous"]
    assert len(_items(aws, "ANON#later@prospect.io", "EVENT#")) == 2

    # When that email becomes a lead
    lead_id = api.post_form("website", {"email": "later@prospect.io"}).json["lead_id"]

    # Then its events count for the lead, are its events, and no longer wait
    lead = _lead(api, lead_id)
    assert lead["score"]["behaviour"] == 10 + 5
    assert len(_items(aws, f"LEAD#{lead_id}", "EVENT#")) == 2
    assert _items(aws, "ANON#later@prospect.io") == []
    # And a redelivery of the anonymous delivery changes nothing
    assert api.post_events(events, "msg_anon").body == reply.body
    assert _lead(api, lead_id)["score"]["behaviour"] == 15


def test_events_of_an_erased_lead_are_rejected_and_nothing_is_stored(api, aws):
    lead_id = api.post_form("website", HOT).json["lead_id"]
    first = {"type": "email_click", "lead_id": lead_id, "occurred_at": _now()}
    assert api.post_events(first, "msg_before_erasure").json["results"][0]["status"] == "accepted"
    assert api.request("DELETE", f"/v1/leads/{lead_id}").status == 204

    # When events for the erased lead arrive (new, and a redelivery of one stored before the erasure)
    new = api.post_events({"type": "email_click", "lead_id": lead_id, "occurred_at": _now()}, "msg_after")
    again = api.post_events(first, "msg_before_erasure")

    # Then both are rejected and nothing of the person is stored again
    assert new.json["results"][0]["status"] == "rejected"
    assert again.json["results"][0]["status"] == "rejected"
    assert _items(aws, f"LEAD#{lead_id}") == []


def test_erasure_removes_the_events_that_waited_for_the_persons_email(api, aws):
    lead_id = api.post_form("website", {"email": "ada@example.io"}).json["lead_id"]
    # Given an anonymous event still waiting for the person's email (as a failed adoption leaves it)
    aws.put_item(
        TableName="LeadsTable",
        Item={
            "pk": {"S": "ANON#ada@example.io"},
            "sk": {"S": "EVENT#2026-11-01T00:00:00.000Z#abc"},
            "entity": {"S": "anonymous_event"},
            "type": {"S": "email_open"},
            "delivery_key": {"S": "EVENT#events#msg_late#0"},
        },
    )
    # When the person is erased
    assert api.request("DELETE", f"/v1/leads/{lead_id}").status == 204
    # Then the waiting event is gone and its delivery is a tombstone (a redelivery cannot bring it back)
    assert _items(aws, "ANON#ada@example.io") == []
    tomb = aws.get_item(TableName="LeadsTable", Key={"pk": {"S": "EVENT#events#msg_late#0"}, "sk": {"S": "DELIVERY"}})
    assert tomb["Item"]["entity"]["S"] == "tombstone"


def test_operator_moves_a_lead_to_sql_and_a_forbidden_move_is_409(api, aws):
    lead_id = api.post_form("website", HOT).json["lead_id"]
    body = json.dumps({"stage": "sql", "reason": "discovery call done"})
    reply = api.request("POST", f"/v1/leads/{lead_id}/stage", body, {"content-type": "application/json"})
    assert reply.status == 200, reply.body
    assert reply.json["lifecycle_stage"] == "sql"
    back = json.dumps({"stage": "lead", "reason": "oops"})
    refused = api.request("POST", f"/v1/leads/{lead_id}/stage", back, {"content-type": "application/json"})
    assert refused.status == 409
    assert refused.headers["content-type"] == "application/problem+json"
    stages = [i for i in _items(aws, f"LEAD#{lead_id}", "HIST#") if i["kind"]["S"] == "stage"]
    assert len(stages) == 1
    assert stages[0]["detail"]["M"]["reason"]["S"] == "discovery call done"
    assert stages[0]["detail"]["M"]["source"]["S"] == "operator"
    assert _lead(api, lead_id)["lifecycle_stage"] == "sql"


def test_a_model_that_cannot_be_loaded_is_503_and_nothing_is_stored(api, aws, monkeypatch, tmp_path):
    lead_id = api.post_form("website", HOT).json["lead_id"]
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\nname: broken\n")
    monkeypatch.setenv("LEADFLOW_SCORING_MODEL_FILE", str(bad))
    from leadflow.config import settings

    settings.cache_clear()
    reply = api.post_events({"type": "email_click", "lead_id": lead_id, "occurred_at": _now()}, "msg_badmodel")
    assert reply.status == 503 and reply.headers["retry-after"]
    assert _items(aws, f"LEAD#{lead_id}", "EVENT#") == []
    monkeypatch.delenv("LEADFLOW_SCORING_MODEL_FILE")
    settings.cache_clear()
