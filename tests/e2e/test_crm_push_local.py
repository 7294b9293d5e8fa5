"""`leadflow up` pushes qualified leads: a signed webhook makes a lead, qualification (signed engagement
events through `POST /v1/events` that the shipped default scoring model turns into an MQL; or, with an
owner routed to it, set through the store), the contact appears in the local HubSpot CRM and the local
Salesforce, and the CRM ids appear in `GET /v1/leads/{id}`; the terminal says `pushed hubspot`; erasing the
lead deletes it in both local CRMs."""

from __future__ import annotations

import json
import time
import urllib.request
from datetime import UTC, datetime, timedelta

import pytest

from tests.support.local_stack import running_stack
from tests.support.signing import dev_secret, standard_webhook_headers

pytestmark = pytest.mark.slow


@pytest.fixture
def stack():
    yield from running_stack()


def _json(method: str, url: str, body: bytes | None = None, headers: dict | None = None) -> tuple[int, dict]:
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    with urllib.request.urlopen(request, timeout=30) as answer:  # noqa: S310 - loopback test URL
        return answer.status, json.loads(answer.read())


def test_a_qualified_lead_reaches_both_local_crms_and_its_ids_show_on_the_lead(stack):
    # Given a lead captured from a signed webhook over HTTP
    body = json.dumps(
        {"type": "lead.submitted", "data": {"email": "cto@initech.example.org", "first_name": "Ada",
                                             "last_name": "Lovelace", "company": "Initech"}}
    ).encode()  # fmt: skip
    status, answer = _json("POST", stack.url + "/v1/webhooks/generic", body,
                           standard_webhook_headers(body, dev_secret("webhooks/generic"), "msg_push_e2e"))  # fmt: skip
    assert status == 200
    lead_id = answer["leads"][0]["lead_id"]
    # When the lead qualifies (stage mql) and is routed to an owner
    from leadflow.store.models import LEAD_SK, LeadItem, lead_pk

    item = LeadItem.get(lead_pk(lead_id), LEAD_SK, consistent_read=True)
    item.lifecycle_stage = "mql"
    item.owner = {"id": "4711", "name": "Sam"}
    item.save()
    # Then within seconds the contact is in the local HubSpot CRM and the lead is in the local Salesforce
    deadline = time.monotonic() + 20
    lead: dict = {}
    while time.monotonic() < deadline:
        lead = _json("GET", f"{stack.url}/v1/leads/{lead_id}")[1]
        if {"hubspot", "salesforce"} <= set(lead.get("crm") or {}):
            break
        time.sleep(0.2)
    contact = stack.crm.contact("cto@initech.example.org")
    assert contact is not None and contact["properties"]["hubspot_owner_id"] == "4711"
    assert lead["crm"]["hubspot"]["id"] == contact["id"]
    assert lead["crm"]["salesforce"]["id"] == stack.salesforce.record(lead_id)["Id"]
    # And the terminal said so, with ids only
    time.sleep(0.8)
    pushed = [line for line in stack.lines if line.startswith("pushed hubspot")]
    assert pushed and lead_id in pushed[0] and "@" not in " ".join(stack.lines)

    # When the operator erases the lead over HTTP
    request = urllib.request.Request(f"{stack.url}/v1/leads/{lead_id}", method="DELETE")
    with urllib.request.urlopen(request, timeout=30) as answer:  # noqa: S310 - loopback test URL
        assert answer.status == 204
    # Then within seconds the person is gone from the local HubSpot CRM and the local Salesforce as well
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and (
        stack.crm.contact("cto@initech.example.org") is not None or stack.salesforce.record(lead_id) is not None
    ):
        time.sleep(0.2)
    assert stack.crm.contact("cto@initech.example.org") is None
    assert stack.salesforce.record(lead_id) is None


def _signed(stack, path: str, document: dict, secret: str, msg_id: str) -> tuple[int, dict]:
    body = json.dumps(document).encode()
    return _json("POST", stack.url + path, body, standard_webhook_headers(body, dev_secret(secret), msg_id))


def test_engagement_events_qualify_a_lead_and_it_reaches_the_crm(stack):
    # Given a senior person at an ICP-sized software company, captured from a signed webhook over HTTP
    hot = {"email": "vp@globex.example.org", "first_name": "Grace", "last_name": "Hopper", "company": "Globex",
           "job_title": "VP Engineering", "company_size": "1000", "industry": "software", "country": "US"}  # fmt: skip
    status, answer = _signed(
        stack, "/v1/webhooks/generic", {"type": "lead.submitted", "data": hot}, "webhooks/generic", "msg_hot_e2e"
    )
    assert status == 200
    lead_id = answer["leads"][0]["lead_id"]
    assert _json("GET", f"{stack.url}/v1/leads/{lead_id}")[1]["lifecycle_stage"] == "lead"

    # When their engagement arrives as signed events over HTTP: pricing, an email click, a webinar, a meeting
    now = datetime.now(UTC)
    at = [(now - timedelta(minutes=m)).isoformat() for m in (30, 20, 10, 0)]
    events = [
        {"type": "page_view", "email": hot["email"], "occurred_at": at[0], "properties": {"url": "/pricing"}},
        {"type": "email_click", "email": hot["email"], "occurred_at": at[1]},
        {"type": "webinar_attended", "lead_id": lead_id, "occurred_at": at[2]},
        {"type": "meeting_booked", "lead_id": lead_id, "occurred_at": at[3]},
    ]
    status, answer = _signed(stack, "/v1/events", {"events": events}, "events", "msg_hot_events_e2e")
    assert status == 202
    assert [r["status"] for r in answer["results"]] == ["accepted"] * 4

    # Then the lead is an MQL, and within seconds it is in the local HubSpot CRM and the local Salesforce,
    # with both CRM ids on the lead
    deadline = time.monotonic() + 20
    lead: dict = {}
    while time.monotonic() < deadline:
        lead = _json("GET", f"{stack.url}/v1/leads/{lead_id}")[1]
        if {"hubspot", "salesforce"} <= set(lead.get("crm") or {}):
            break
        time.sleep(0.2)
    assert lead["lifecycle_stage"] == "mql"
    contact = stack.crm.contact(hot["email"])
    assert contact is not None
    assert lead["crm"]["hubspot"]["id"] == contact["id"]
    assert lead["crm"]["salesforce"]["id"] == stack.salesforce.record(lead_id)["Id"]
