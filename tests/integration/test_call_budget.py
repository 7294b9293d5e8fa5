"""The capture path's DynamoDB budget, as the README states it: a fixed number of calls per submission."""

from __future__ import annotations

import botocore.client
import pytest


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


def test_new_lead_costs_one_batch_get_and_one_transaction(api, calls):
    # When a new person is captured
    reply = api.post_generic({"email": "budget@calls.dev", "phone": "+14155550177"}, "msg_budget_1")
    # Then two calls were made, whatever the number of identity keys
    assert reply.status == 200
    assert calls == ["BatchGetItem", "TransactWriteItems"]


def test_merge_costs_one_more_get_of_the_lead(api, calls):
    api.post_generic({"email": "budget@calls.dev"}, "msg_budget_1")
    calls.clear()
    reply = api.post_form("website", {"email": "budget@calls.dev", "company": "Calls Inc"})
    assert reply.json["status"] == "merged"
    assert calls == ["BatchGetItem", "GetItem", "TransactWriteItems"]


def test_redelivery_costs_one_read(api, calls):
    api.post_generic({"email": "budget@calls.dev"}, "msg_budget_1")
    calls.clear()
    api.post_generic({"email": "budget@calls.dev"}, "msg_budget_1")
    assert calls == ["BatchGetItem"]


def test_no_capture_or_lookup_ever_scans(api, calls):
    api.post_form("website", {"email": "scan@calls.dev"})
    api.get_lead_by_email("scan@calls.dev")
    assert "Scan" not in calls and calls


def _event(**who) -> dict:
    from datetime import UTC, datetime

    return {"type": "email_click", "occurred_at": datetime.now(UTC).isoformat(), **who}


def test_an_event_by_lead_id_costs_one_read_and_one_transaction(api, calls):
    lead_id = api.post_form("website", {"email": "budget@calls.dev"}).json["lead_id"]
    calls.clear()
    # When an event of the lead arrives (it rescoring and possibly qualifying the lead)
    reply = api.post_events(_event(lead_id=lead_id), "msg_budget_event")
    # Then: the delivery and the lead in one BatchGetItem, everything written in one transaction
    assert reply.json["results"][0]["status"] == "accepted"
    assert calls == ["BatchGetItem", "TransactWriteItems"]


def test_an_event_by_email_costs_one_more_get_of_the_lead(api, calls):
    api.post_form("website", {"email": "budget@calls.dev"})
    calls.clear()
    reply = api.post_events(_event(email="budget@calls.dev"), "msg_budget_email")
    assert reply.json["results"][0]["status"] == "accepted"
    assert calls == ["BatchGetItem", "GetItem", "TransactWriteItems"]


def test_an_anonymous_event_costs_one_read_and_one_transaction(api, calls):
    reply = api.post_events(_event(email="nobody-yet@calls.dev"), "msg_budget_anon")
    assert reply.json["results"][0]["status"] == "anonymous"
    assert calls == ["BatchGetItem", "TransactWriteItems"]


def test_a_redelivered_event_costs_one_read(api, calls):
    lead_id = api.post_form("website", {"email": "budget@calls.dev"}).json["lead_id"]
    body = _event(lead_id=lead_id)
    api.post_events(body, "msg_budget_again")
    calls.clear()
    api.post_events(body, "msg_budget_again")
    assert calls == ["BatchGetItem"]


def test_a_new_lead_with_waiting_anonymous_events_adopts_them_in_a_few_calls(api, calls):
    api.post_events([_event(email="soon@calls.dev"), _event(email="soon@calls.dev")], "msg_budget_soon")
    calls.clear()
    assert api.post_form("website", {"email": "soon@calls.dev"}).json["status"] == "created"
    # the capture's 2 calls, then: Query of the waiting events, GetItem of the lead, one transaction, the marker
    assert calls == ["BatchGetItem", "TransactWriteItems", "Query", "GetItem", "TransactWriteItems", "DeleteItem"]
