"""`leadflow up` closes the loop: the local CRM sends HubSpot's signed webhook for a stage change and the lead
shows it; a lost lead's reason schedules its win-back journey, which the local runtime runs at the time scale."""

from __future__ import annotations

import json
import time
import urllib.request
from datetime import UTC, datetime

import pytest

from tests.support.local_stack import running_stack
from tests.support.signing import dev_secret, standard_webhook_headers

pytestmark = pytest.mark.slow


@pytest.fixture
def stack():
    # Real time: the routing SLA (two working days) of the MQL cannot lapse during the test. (At the win-back
    # test's scale it lapses within a tenth of a second, before the push function's next poll, and the
    # recycled lead, rightly, is not pushed.)
    yield from running_stack(1.0)


@pytest.fixture
def fast_stack():
    # 30 journey days per real second: a 30-day delayed enrolment starts within about a second
    yield from running_stack(30 * 86400.0)


def _json(method: str, url: str, body: bytes | None = None, headers: dict | None = None) -> tuple[int, dict]:
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    with urllib.request.urlopen(request, timeout=30) as answer:  # noqa: S310 - loopback test URL
        return answer.status, json.loads(answer.read())


def _capture(stack, email: str, msg_id: str) -> str:
    body = json.dumps({"type": "lead.submitted", "data": {"email": email, "consent_email": True}}).encode()
    headers = standard_webhook_headers(body, dev_secret("webhooks/generic"), msg_id)
    return _json("POST", stack.url + "/v1/webhooks/generic", body, headers)[1]["leads"][0]["lead_id"]


def _until(check, seconds: float = 20.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.2)
    return check()


def test_a_signed_hubspot_stage_change_from_the_local_crm_makes_the_lead_sql(stack):
    # Given a qualified lead that the push put in the local HubSpot CRM
    lead_id = _capture(stack, "vp@globex.example.org", "msg_crm_in_e2e")
    from leadflow.store.models import LEAD_SK, LeadItem, lead_pk

    item = LeadItem.get(lead_pk(lead_id), LEAD_SK, consistent_read=True)
    item.lifecycle_stage = "mql"
    item.save()
    assert _until(lambda: (_json("GET", f"{stack.url}/v1/leads/{lead_id}")[1].get("crm") or {}).get("hubspot"))
    # When HubSpot (the local CRM) marks the contact a sales-qualified lead: a signed v3 webhook to the stack
    answer = stack.crm.send_contact_change("vp@globex.example.org", "lifecyclestage", "salesqualifiedlead")
    # Then it is accepted and the lead shows `sql`, and the terminal says `crm sql`
    assert answer["status"] == 200 and answer["body"]["results"][0]["status"] == "applied"
    assert _json("GET", f"{stack.url}/v1/leads/{lead_id}")[1]["lifecycle_stage"] == "sql"
    assert _until(lambda: any(line.startswith("crm sql") and lead_id in line for line in stack.lines), 5)
    # And a deal won with its amount makes a customer: `won`
    stack.crm.send_deal_change("vp@globex.example.org", "7001", "closedwon", amount=24000)
    assert _json("GET", f"{stack.url}/v1/leads/{lead_id}")[1]["lifecycle_stage"] == "customer"
    assert _until(lambda: any(line.startswith("won") and lead_id in line for line in stack.lines), 5)


def test_a_lost_reason_schedules_the_winback_journey_which_runs_at_the_time_scale(fast_stack):
    stack = fast_stack
    # Given a nurtured lead
    lead_id = _capture(stack, "ops@hooli.example.org", "msg_crm_lost_e2e")
    # When another CRM reports it lost for "No need now" (generic route, Standard Webhooks)
    data = {"crm": "pipedrive", "lead_id": lead_id, "outcome": "lost", "reason": "No need now",
            "occurred_at": datetime.now(UTC).isoformat()}  # fmt: skip
    body = json.dumps({"type": "crm.outcome", "data": data}).encode()
    status, answer = _json(
        "POST",
        stack.url + "/v1/crm/generic/events",
        body,
        standard_webhook_headers(body, dev_secret("crm/generic"), "m_lost"),
    )
    assert status == 200 and answer["results"][0]["status"] == "applied"
    # Then the lead is recycled, the terminal says `recycled → journey winback`
    assert _json("GET", f"{stack.url}/v1/leads/{lead_id}")[1]["lifecycle_stage"] == "recycled"
    assert _until(lambda: any("→ journey winback" in line and lead_id in line for line in stack.lines), 5)
    # And 30 journey days later (about a second here) the win-back journey sends its first touch
    sent = _until(lambda: any("sent winback/winback-check-in" in line and lead_id in line for line in stack.lines), 30)
    assert sent, [line for line in stack.lines if lead_id in line]
