"""The other half of least privilege: every DynamoDB action a function's code really calls is granted to it.

Each function's handlers run their paths (new lead, merge, conflict, redelivery, erasure, ...) against moto
while every AWS call is recorded; each recorded call is turned into the IAM action AWS authorises (a
TransactWriteItems is authorised per contained action: Put → PutItem, Update → UpdateItem, Delete →
DeleteItem, ConditionCheck → ConditionCheckItem; docs.aws.amazon.com/amazondynamodb/latest/developerguide/
transaction-apis-iam.html) and must be in the function's template grants. A new call (say a condition check
added to the capture transaction) fails here until template.yaml grants it; test_template_security.py keeps
the grants within each function's allow-list.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path

import botocore.client
import pytest

from leadflow_local.template import load_template
from tests.integration.test_callbacks import GATEWAY, baidu_query, baidu_signed
from tests.integration.test_provider_meta import graph_lead, leadgen_delivery, meta_headers
from tests.support.fake_graph import FakeGraph
from tests.support.fetch import fetch_queues
from tests.support.signing import dev_secret
from tests.unit.test_template_security import dynamodb_actions

TRANSACT_ACTIONS = {
    "Put": "PutItem",
    "Update": "UpdateItem",
    "Delete": "DeleteItem",
    "ConditionCheck": "ConditionCheckItem",
}


class Recorder:
    def __init__(self) -> None:
        self.actions: set[str] | None = None
        self.funnel_table: str | None = None  # its calls are recorded as `FunnelTable:<Action>`

    def _on(self, table: str | None) -> str:
        return "FunnelTable:" if table and table == self.funnel_table else ""

    def record(self, service: str, operation: str, params: dict) -> None:
        if self.actions is None or service != "dynamodb":
            return
        if operation == "TransactWriteItems":
            self.actions |= {
                self._on(part.get("TableName")) + TRANSACT_ACTIONS[kind]
                for item in params["TransactItems"]
                for kind, part in item.items()
            }
        elif operation == "TransactGetItems":
            self.actions |= {self._on(i["Get"].get("TableName")) + "GetItem" for i in params["TransactItems"]}
        elif "RequestItems" in params:
            self.actions |= {self._on(table) + operation for table in params["RequestItems"]}
        else:
            self.actions.add(self._on(params.get("TableName")) + operation)

    @contextlib.contextmanager
    def calls(self) -> Iterator[set[str]]:
        self.actions = found = set()
        try:
            yield found
        finally:
            self.actions = None


@pytest.fixture
def recorder(monkeypatch) -> Recorder:
    recorder = Recorder()
    original = botocore.client.BaseClient._make_api_call

    def recording(client, operation_name, api_params):
        recorder.record(client.meta.service_model.service_name, operation_name, api_params)
        return original(client, operation_name, api_params)

    monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", recording)
    return recorder


@pytest.fixture(scope="module")
def template() -> dict:
    return load_template(Path(__file__).resolve().parents[2] / "template.yaml")


def _assert_granted(template: dict, function: str, called: set[str]) -> None:
    assert called, f"{function}: nothing was recorded, the scenario did not reach DynamoDB"
    missing = called - dynamodb_actions(template, function)
    assert not missing, f"{function} calls {sorted(missing)} but template.yaml does not grant it"


def test_form_capture_calls_only_granted_actions(api, recorder, template):
    # When the form function creates, merges, repeats and conflicts leads
    with recorder.calls() as called:
        assert api.post_form("website", {"email": "grace@example.org", "phone": "+14155550101"}).status == 202
        assert api.post_form("website", {"email": "grace@example.org", "message": "again"}).status == 202
        repeat = {"email": "alan@example.org", "submission_id": "sub-grants-1"}
        assert api.post_form("website", repeat).status == 202
        assert api.post_form("website", repeat).status == 202
        # a submission whose email is one lead's and phone another's (a conflict between two leads)
        assert api.post_form("website", {"email": "alan@example.org", "phone": "+14155550101"}).status == 202
        assert api.post_form("website", {"email": "bot@example.org", "_hp": "filled"}).status == 202

    # Then every DynamoDB action it called is granted to CaptureFormFunction
    _assert_granted(template, "CaptureFormFunction", called)


def test_webhook_capture_calls_only_granted_actions(api, recorder, template, monkeypatch):
    fetch_queues(monkeypatch)  # meta deliveries are queued for the fetch function
    # When the webhook function captures, merges and repeats deliveries (and queues a pointer)
    with recorder.calls() as called:
        assert api.post_generic({"email": "katherine@example.org"}, "msg_grants_1").status == 200
        assert api.post_generic({"email": "katherine@example.org", "company": "NASA"}, "msg_grants_2").status == 200
        assert api.post_generic({"email": "katherine@example.org", "company": "NASA"}, "msg_grants_2").status == 200
        body = leadgen_delivery("900000000000777")
        assert api.request("POST", "/v1/webhooks/meta", body, meta_headers(body)).status == 200

    # Then every DynamoDB action it called is granted to CaptureWebhookFunction
    _assert_granted(template, "CaptureWebhookFunction", called)


def test_fetch_function_calls_only_granted_actions(api, recorder, template, monkeypatch):
    graph = FakeGraph(access_token=dev_secret("webhooks/meta")["access_token"])
    monkeypatch.setenv("LEADFLOW_META_GRAPH_URL", graph.url)
    try:
        queues = fetch_queues(monkeypatch)
        graph.add_lead("900000000000888", graph_lead("dorothy@example.org"))
        graph.add_lead("900000000000889", graph_lead("dorothy@example.org"))
        body = leadgen_delivery("900000000000888", "900000000000889")
        assert api.request("POST", "/v1/webhooks/meta", body, meta_headers(body)).status == 200

        # When the fetch function captures the leads the delivery named (a new lead, then a merge)
        with recorder.calls() as called:
            queues.drain()
    finally:
        graph.stop()

    # Then every DynamoDB action it called is granted to FetchLeadsFunction
    assert api.get_lead_by_email("dorothy@example.org").status == 200
    _assert_granted(template, "FetchLeadsFunction", called)


def test_callback_calls_only_granted_actions(api, recorder, template):
    # When a click is announced twice
    with recorder.calls() as called:
        for _ in range(2):
            assert api.request("GET", baidu_signed(baidu_query()), headers=GATEWAY).status == 200

    # Then every DynamoDB action it called is granted to CaptureCallbackFunction
    _assert_granted(template, "CaptureCallbackFunction", called)


def test_events_function_calls_only_granted_actions(api, recorder, template):
    from datetime import UTC, datetime

    at = datetime.now(UTC).isoformat()
    lead_id = api.post_form("website", {"email": "hedy@example.org"}).json["lead_id"]
    # When events arrive by id and by email, for a lead and for an unknown email, once and again
    with recorder.calls() as called:
        events = [
            {"type": "email_click", "lead_id": lead_id, "occurred_at": at},
            {"type": "unsubscribe", "email": "hedy@example.org", "occurred_at": at},
            {"type": "page_view", "email": "later@example.org", "occurred_at": at, "properties": {"url": "/pricing"}},
        ]
        assert api.post_events({"events": events}, "msg_grants_events").status == 202
        assert api.post_events({"events": events}, "msg_grants_events").status == 202
    _assert_granted(template, "CaptureEventsFunction", called)

    # And the capture that adopts the waiting event calls only what the form function is granted
    with recorder.calls() as called:
        assert api.post_form("website", {"email": "later@example.org"}).status == 202
    _assert_granted(template, "CaptureFormFunction", called)


def test_events_resuming_a_waiting_journey_call_only_granted_actions(api, recorder, template, tmp_path, monkeypatch):
    from datetime import UTC, datetime

    from leadflow.store.journeys import get_lead, update_journey
    from tests.workflow.test_journey_wait_for_event import CLICK_OR_THREE_DAYS

    journeys_file = tmp_path / "journeys.yaml"
    journeys_file.write_text(CLICK_OR_THREE_DAYS, encoding="utf-8")
    monkeypatch.setenv("LEADFLOW_JOURNEYS_FILE", str(journeys_file))
    lead_id = api.post_form("website", {"email": "ida@example.org"}).json["lead_id"]
    parked = {"name": "click", "status": "waiting_event", "waiting_for": "email_click", "task_token": "token-1"}
    update_journey(lead_id, lambda lead: {**parked, "step": 1, "enrolment": 1})
    # When the click its journey waits for arrives (the journey map and a timeline entry are written)
    with recorder.calls() as called:
        event = {"type": "email_click", "lead_id": lead_id, "occurred_at": datetime.now(UTC).isoformat()}
        assert api.post_events({"events": [event]}, "msg_grants_resume").status == 202
    assert "task_token" not in get_lead(lead_id)["journey"]  # the resume path ran
    _assert_granted(template, "CaptureEventsFunction", called)


def test_operator_api_calls_only_granted_actions(api, recorder, template):
    lead_id = api.post_form("website", {"email": "mary@example.org"}).json["lead_id"]
    api.post_form("website", {"email": "mary@example.org", "phone": "+14155550199"})
    api.post_form("website", {"email": "other@example.org", "phone": "+14155550199"})  # a conflict twin

    # When an operator reads the lead by id, its timeline and by email, erases it, and retries the erasure
    with recorder.calls() as called:
        assert api.request("GET", f"/v1/leads/{lead_id}").status == 200
        assert api.request("GET", f"/v1/leads/{lead_id}/timeline").status == 200
        assert api.get_lead_by_email("mary@example.org").status == 200
        stage = '{"stage": "recycled", "reason": "no budget this year"}'
        assert (
            api.request("POST", f"/v1/leads/{lead_id}/stage", stage, {"content-type": "application/json"}).status == 200
        )
        assert api.request("DELETE", f"/v1/leads/{lead_id}").status in (200, 204)
        assert api.request("DELETE", f"/v1/leads/{lead_id}").status in (200, 204, 404)
        assert json.loads(api.request("GET", f"/v1/leads/{lead_id}").body)["status"] == 404

    # Then every DynamoDB action it called is granted to LeadsApiFunction
    _assert_granted(template, "LeadsApiFunction", called)


def test_crm_feedback_functions_call_only_granted_actions(api, recorder, template, monkeypatch):
    import boto3

    from leadflow.services import crm_feedback
    from tests.integration.test_crm_feedback import _association, _event, post_hubspot

    monkeypatch.setenv("LEADFLOW_HUBSPOT_WEBHOOK_URL", "https://crm-hooks.example.com/v1/crm/hubspot/events")
    url = boto3.client("sqs", region_name="us-east-1").create_queue(QueueName="grants-crm-retry")["QueueUrl"]
    monkeypatch.setenv("LEADFLOW_CRM_FEEDBACK_QUEUE_URL", url)
    lead_id = api.post_form("website", {"email": "katherine@example.org"}).json["lead_id"]
    crm_feedback.on_record_linked("hubspot", "3001", lead_id, "2026-11-29T10:00:00.000Z")
    # When HubSpot sends an association, a lost deal with its reason (scheduling a journey), a duplicate, and an
    # event for a contact no lead is linked to (kept)
    with recorder.calls() as called:
        events = [
            _association(9301, 3001, minutes=-5),
            _event(9301, "closed_lost_reason", "no need now", event_id=2, minutes=-3, kind="deal.propertyChange"),
            _event(9301, "dealstage", "closedlost", event_id=3, minutes=-2, kind="deal.propertyChange"),
            _event(3999, "lifecyclestage", "salesqualifiedlead", event_id=4, minutes=-1),
        ]
        assert post_hubspot(api, events).status == 200
        assert post_hubspot(api, events[1:2]).status == 200
    _assert_granted(template, "CrmFeedbackFunction", called)

    # And the retry function applying the kept event once the push links contact 3999 calls only its grants
    other = api.post_form("website", {"email": "dorothy@example.org"}).json["lead_id"]
    crm_feedback.on_record_linked("hubspot", "3999", other, "2026-11-29T10:00:00.000Z")
    with recorder.calls() as called:
        crm_feedback.retry_messages([{"body": json.dumps({"pending": "CRMPENDING#hubspot#record#3999"})}])
    assert crm_feedback.store.pending_events("CRMPENDING#hubspot#record#3999") == []
    _assert_granted(template, "CrmFeedbackRetryFunction", called)


@pytest.fixture
def funnel_table(template, recorder, monkeypatch) -> Iterator[str]:
    """The funnel table of the template beside the leads table, as deployed (LEADFLOW_FUNNEL_TABLE_NAME)."""
    import boto3

    from leadflow.config import settings
    from leadflow.store import models
    from leadflow_local.template import dynamodb_tables

    kwargs = dynamodb_tables(template)["FunnelTable"]
    boto3.client("dynamodb", region_name="us-east-1").create_table(**{**kwargs, "TableName": "funnel-grants"})
    monkeypatch.setenv("LEADFLOW_FUNNEL_TABLE_NAME", "funnel-grants")
    settings.cache_clear()
    models.bind()
    recorder.funnel_table = "funnel-grants"
    yield "funnel-grants"
    monkeypatch.delenv("LEADFLOW_FUNNEL_TABLE_NAME")
    settings.cache_clear()
    models.bind()


def test_funnel_counting_and_report_call_only_granted_actions(api, recorder, template, funnel_table):
    from leadflow.config import settings
    from tests.integration.test_funnel_report import deliver
    from tests.support.funnel import stream_records

    api.post_form("website", {"email": "funnel@acme.io", "utm_source": "zhihu"})
    records = stream_records(settings().table_name)

    # When the journey router counts the new lead's record (marker + counter ADDs in one transaction)
    with recorder.calls() as called:
        deliver(records)
    # Then it wrote the counters to the funnel table, and what it called is granted to JourneyRouterFunction
    assert {"FunnelTable:PutItem", "FunnelTable:UpdateItem"} <= called
    _assert_granted(template, "JourneyRouterFunction", called)

    # And the report read the funnel table only, as granted to FunnelReportFunction
    with recorder.calls() as called:
        assert api.request("GET", "/v1/reports/funnel?group_by=utm_source").status == 200
    assert called == {"FunnelTable:Query", "FunnelTable:BatchGetItem"}  # roll-ups by exact key, spend by range
    _assert_granted(template, "FunnelReportFunction", called)
