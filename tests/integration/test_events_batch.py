"""POST /v1/events with many events of one lead in one delivery: applied together (a fixed number of DynamoDB
calls per lead, never one read and one transaction per event), scored exactly as one by one, idempotent per
webhook-id and per event id."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import botocore.client
import pytest

HOT = {"email": "batch@bigsoft.io", "job_title": "CTO", "company_size": "1000", "industry": "software", "country": "US"}
KINDS = ["page_view", "email_click", "email_open", "webinar_attended", "content_download", "meeting_booked"]


@pytest.fixture
def calls(monkeypatch):
    made: list[str] = []
    original = botocore.client.BaseClient._make_api_call

    def recording(self, operation_name, api_params):
        if self.meta.service_model.service_name == "dynamodb":
            made.append(operation_name)
        return original(self, operation_name, api_params)

    monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", recording)
    return made


def _events(count: int, **who) -> list[dict]:
    now = datetime.now(UTC)
    events = []
    for i in range(count):
        kind = KINDS[i % len(KINDS)]
        event = {"type": kind, "occurred_at": (now - timedelta(hours=i)).isoformat(), **who}
        event["properties"] = {"url": f"https://www.example.com/pricing?i={i}"} if kind == "page_view" else {}
        events.append(event)
    return events


def _behaviour(api, lead_id: str) -> int:
    return api.request("GET", f"/v1/leads/{lead_id}").json["score"]["behaviour"]


def test_a_delivery_of_100_events_of_one_lead_costs_a_few_calls_and_scores_like_one_by_one(api, calls):
    # Given two leads alike
    one = api.post_form("website", HOT).json["lead_id"]
    other = api.post_form("website", {**HOT, "email": "alike@bigsoft.io"}).json["lead_id"]

    # When 100 events of the first arrive in one delivery
    calls.clear()
    reply = api.post_events(_events(100, lead_id=one), "msg_batch_100")

    # Then each is accepted, in order, with 3 reads and 3 transactions (40 events a transaction), no Scan
    assert reply.status == 202
    assert [r["index"] for r in reply.json["results"]] == list(range(100))
    assert {r["status"] for r in reply.json["results"]} == {"accepted"}
    assert calls == ["BatchGetItem", "TransactWriteItems"] * 3

    # and the second lead, given the same events one delivery each, ends with the same behaviour score
    for i, event in enumerate(_events(100, lead_id=other)):
        assert api.post_events(event, f"msg_single_{i}").json["results"][0]["status"] == "accepted"
    assert _behaviour(api, one) == _behaviour(api, other) > 0


def test_events_of_several_leads_in_one_delivery_cost_one_read_and_one_transaction_per_lead(api, calls):
    first = api.post_form("website", HOT).json["lead_id"]
    api.post_form("website", {"email": "second@bigsoft.io"})
    calls.clear()
    body = _events(10, lead_id=first) + _events(10, email="second@bigsoft.io")
    body = [e for pair in zip(body[:10], body[10:], strict=True) for e in pair]  # interleaved
    reply = api.post_events(body, "msg_two_leads")
    assert [r["status"] for r in reply.json["results"]] == ["accepted"] * 20
    # by lead id: read + transaction; by email: read, the lead, transaction
    assert sorted(calls) == sorted(["BatchGetItem", "TransactWriteItems"] * 2 + ["GetItem"])


def test_a_redelivered_batch_changes_nothing_and_gets_the_same_answers(api, aws, calls):
    lead_id = api.post_form("website", HOT).json["lead_id"]
    body = _events(30, lead_id=lead_id)
    first = api.post_events(body, "msg_batch_again")
    score = _behaviour(api, lead_id)
    calls.clear()
    for _ in range(5):
        again = api.post_events(body, "msg_batch_again")
        assert again.json == first.json
    assert calls == ["BatchGetItem"] * 5  # answered from the delivery items alone
    assert _behaviour(api, lead_id) == score


def test_the_same_event_id_twice_in_one_delivery_counts_once(api):
    lead_id = api.post_form("website", HOT).json["lead_id"]
    click = {"type": "email_click", "lead_id": lead_id, "occurred_at": datetime.now(UTC).isoformat(), "id": "c-1"}
    meeting = {**click, "type": "meeting_booked", "id": "m-1"}
    reply = api.post_events([click, meeting, click], "msg_same_id")
    assert [r["status"] for r in reply.json["results"]] == ["accepted", "accepted", "duplicate"]
    lead = api.request("GET", f"/v1/leads/{lead_id}").json
    counted = {item["rule"]: item.get("events") for item in lead["score"]["breakdown"] if "events" in item}
    assert sum(counted.values()) == 2


def test_a_batch_for_an_erased_or_unknown_lead_stores_nothing(api, aws):
    reply = api.post_events(_events(3, lead_id="0" * 32), "msg_unknown_lead")
    assert [r["status"] for r in reply.json["results"]] == ["rejected"] * 3
    assert api.request("GET", f"/v1/leads/{'0' * 32}").status == 404
