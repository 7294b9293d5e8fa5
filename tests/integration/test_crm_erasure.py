"""Erasing a lead deletes the person in every CRM it was pushed to, over real HTTP against the local CRMs:
HubSpot's GDPR delete by contact id, Salesforce's delete of the record, a signed `lead.erased` webhook event.

The deletions go through the targets' own push queues (ids only, never personal data) with the push's
retries, backoff, DLQ and `leadflow dlq replay`.
"""

# ruff: noqa: F811 - the `receiver` fixture is imported, then named as a test argument
from __future__ import annotations

import json
import time

import pytest

from leadflow import cli
from leadflow.services import leads as lead_service
from leadflow.services import push
from leadflow.sources.base import verify_standard_webhook
from leadflow_local.local_crm import LocalCrm
from leadflow_local.local_salesforce import LocalSalesforce
from tests.integration.test_crm_push_webhook import receiver  # noqa: F401 - fixture
from tests.support.push import lead_item, push_rig, qualify
from tests.support.signing import SECRETS_FILE

pytestmark = pytest.mark.slow
ALL_THREE = {"targets": {"hubspot": {"enabled": True}, "salesforce": {"enabled": True}, "webhook": {"enabled": True}}}
TARGETS = ("hubspot", "salesforce", "webhook")


@pytest.fixture
def hubspot(monkeypatch):
    server = LocalCrm(port=0).start()
    monkeypatch.setenv("LEADFLOW_HUBSPOT_API_URL", server.url)
    yield server
    server.stop()


@pytest.fixture
def salesforce(monkeypatch):
    server = LocalSalesforce(port=0).start()
    monkeypatch.setenv("LEADFLOW_SALESFORCE_LOGIN_URL", server.url)
    yield server
    server.stop()


@pytest.fixture
def rig(aws, hubspot, salesforce, receiver, monkeypatch):
    return push_rig(monkeypatch, config=ALL_THREE)


def pushed_lead(api, rig, email: str) -> str:
    """A qualified lead delivered to all three targets."""
    reply = api.post_form("website", {"email": email, "first_name": "Erin", "last_name": "Erased", "company": "Acme"})
    lead_id = reply.json["lead_id"]
    qualify(lead_id)
    rig.settle()
    assert set(lead_item(lead_id).crm.as_dict()) == set(TARGETS)
    return lead_id


def erase(api, lead_id: str) -> None:
    assert api.request("DELETE", f"/v1/leads/{lead_id}").status == 204
    assert api.request("GET", f"/v1/leads/{lead_id}").status == 404


def queued_bodies(rig) -> list[str]:
    """Every message waiting on the push queues (left there for the push functions)."""
    bodies = []
    for target in TARGETS:
        for message in (
            rig.sqs.receive_message(QueueUrl=rig.queue(target), MaxNumberOfMessages=10).get("Messages") or []
        ):
            bodies.append(message["Body"])
            rig.sqs.change_message_visibility(
                QueueUrl=rig.queue(target), ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
            )
    return bodies


def erased_events(receiver) -> list[tuple[dict, dict, int]]:
    found = []
    for headers, body, status in receiver.received:
        event = json.loads(body)
        if event["type"] == "lead.erased":
            found.append((headers, event, status))
    return found


def test_erasing_a_pushed_lead_deletes_it_in_hubspot_salesforce_and_tells_the_webhook(
    api,
    rig,
    hubspot,
    salesforce,
    receiver,
):
    # Given a lead pushed to HubSpot, Salesforce and the webhook
    lead_id = pushed_lead(api, rig, "erin.erased@acme-corp.io")
    contact_id = hubspot.contact("erin.erased@acme-corp.io")["id"]
    record_id = salesforce.record(lead_id)["Id"]
    # When the operator erases it
    erase(api, lead_id)
    # Then the deletions wait on the targets' queues with ids only, no personal data
    bodies = queued_bodies(rig)
    assert len(bodies) == 3 and all("@" not in body and "Erin" not in body for body in bodies)
    # And once the push functions ran, the person is gone from HubSpot (GDPR delete by id) and Salesforce
    rig.settle()
    assert hubspot.contact("erin.erased@acme-corp.io") is None
    [gdpr] = [r for r in hubspot.requests() if r["path"].endswith("/gdpr-delete")]
    assert gdpr["body"] == {"objectId": contact_id} and gdpr["status"] == 204
    assert hubspot.blocklisted() == set()
    assert salesforce.record(lead_id) is None
    assert [r["path"] for r in salesforce.requests() if r["method"] == "DELETE"] == [
        f"/services/data/v60.0/sobjects/Lead/{record_id}"
    ]
    # And the webhook got one signed lead.erased event naming only the lead id
    [(headers, event, status)] = erased_events(receiver)
    secret = json.loads(SECRETS_FILE.read_text())["crm/webhook"]["secret"]
    assert verify_standard_webhook(
        headers, json.dumps(event, separators=(",", ":")).encode(), [secret], time.time(), 300
    )
    assert headers["webhook-id"] == f"{lead_id}#erase"
    assert event["data"] == {"lead_id": lead_id} and status == 200
    # And nothing is left to retry or dead-letter
    assert all(rig.dead_letters(target) == [] for target in TARGETS)


def test_a_lead_never_pushed_is_erased_without_calling_any_crm(api, rig, hubspot, salesforce, receiver):
    lead_id = api.post_form("website", {"email": "never.pushed@acme-corp.io"}).json["lead_id"]
    erase(api, lead_id)
    rig.settle()
    assert queued_bodies(rig) == []
    assert hubspot.requests() == [] and salesforce.requests() == [] and receiver.received == []


def test_crm_outages_during_erasure_are_retried_until_the_person_is_gone(
    api,
    rig,
    hubspot,
    salesforce,
    receiver,
):
    # Given a pushed lead, and then HubSpot failing its next 2 calls, Salesforce its next one, the webhook 503
    lead_id = pushed_lead(api, rig, "outage@acme-corp.io")
    hubspot.set_faults(fail_next=2)
    salesforce.set_faults(fail_next=1)
    receiver.script = [503]
    # When the lead is erased and the queues delivered
    erase(api, lead_id)
    rig.settle(timeout=40)
    # Then every CRM was asked again until the deletion went through
    assert hubspot.contact("outage@acme-corp.io") is None and salesforce.record(lead_id) is None
    assert [r["status"] for r in hubspot.requests() if r["path"].endswith("/gdpr-delete")] == [503, 503, 204]
    assert [r["status"] for r in salesforce.requests() if r["method"] == "DELETE"] == [503, 204]
    assert [status for _, _, status in erased_events(receiver)] == [503, 200]
    assert all(rig.dead_letters(target) == [] for target in TARGETS)


def test_a_refused_erasure_is_dead_lettered_and_replayed_after_the_fix(
    api,
    rig,
    receiver,
    capsys,
):
    # Given a pushed lead and a webhook endpoint that refuses the lead.erased event (400)
    lead_id = pushed_lead(api, rig, "refused@acme-corp.io")
    receiver.script = [400]
    erase(api, lead_id)
    rig.settle()
    # Then it is in the webhook DLQ with the reason, and `leadflow dlq list` shows it without personal data
    [dead] = rig.dead_letters("webhook")
    assert dead["lead_id"] == lead_id and dead["failure_reason"] == "HTTP 400" and dead["version"] == "erase"
    assert cli.main(["dlq", "list", "--target", "webhook", "--dlq-url", rig.dlq("webhook")]) == 0
    listed = capsys.readouterr().out
    assert lead_id in listed and "HTTP 400" in listed and "@" not in listed
    # When the endpoint is fixed and the operator replays the lead's dead letter
    args = [
        "--target",
        "webhook",
        "--lead",
        lead_id,
        "--dlq-url",
        rig.dlq("webhook"),
        "--queue-url",
        rig.queue("webhook"),
    ]
    assert cli.main(["dlq", "replay", *args]) == 0
    rig.settle()
    # Then the lead.erased event is delivered and the DLQ is empty
    assert [status for _, _, status in erased_events(receiver)] == [400, 200]
    assert rig.dead_letters("webhook") == []


def test_a_push_that_lands_while_its_lead_is_erased_is_deleted_again(api, rig, hubspot, monkeypatch):
    # Given a qualified lead whose HubSpot push read the lead just before the operator erased it
    lead_id = api.post_form("website", {"email": "in.flight@acme-corp.io", "company": "Acme"}).json["lead_id"]
    qualify(lead_id)
    real_get_leads = push.store.get_leads

    def read_then_erase(lead_ids):
        found = real_get_leads(lead_ids)
        if lead_id in lead_ids and lead_id in found:
            lead_service.erase_lead(lead_id)  # nothing was pushed yet: nothing to delete in the CRMs
        return found

    monkeypatch.setattr(push.store, "get_leads", read_then_erase)
    # When the push goes through (its write-back is refused: the lead is gone) and the queues settle
    rig.settle(targets=("hubspot",))
    # Then the contact the push created is deleted again
    upserts = [r for r in hubspot.requests() if r["path"].endswith("/batch/upsert") and r["status"] == 200]
    assert len(upserts) == 1
    assert hubspot.contact("in.flight@acme-corp.io") is None
    assert [r["status"] for r in hubspot.requests() if r["path"].endswith("/gdpr-delete")] == [204]
    assert api.request("GET", f"/v1/leads/{lead_id}").status == 404
