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
