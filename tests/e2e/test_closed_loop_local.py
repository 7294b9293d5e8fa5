"""The whole loop in `leadflow up`, as issue 13 asks: a lead from a Google ad click qualifies through its
engagement, is routed and pushed to the local HubSpot, HubSpot marks the contact a sales-qualified lead (its
signed v3 webhook), the lead shows `sql`, and the local Google Ads stand-in has received exactly one
conversion, carrying the lead's gclid."""

from __future__ import annotations

import json
import time
import urllib.request
from datetime import UTC, datetime, timedelta

import pytest

from tests.support.local_stack import running_stack
from tests.support.signing import dev_secret, standard_webhook_headers

pytestmark = pytest.mark.slow

GCLID = "Cj0KCQiA-closed-loop"
HOT = {
    "email": "vp@closed-loop.example.org",
    "first_name": "Grace",
    "last_name": "Hopper",
    "company": "Globex",
    "job_title": "VP Engineering",
    "company_size": "1000",
    "industry": "software",
    "country": "US",
    "page_url": f"https://www.example.com/demo?utm_source=google&utm_medium=cpc&gclid={GCLID}",
}


@pytest.fixture
def stack():
    yield from running_stack()


def _json(method: str, url: str, body: bytes | None = None, headers: dict | None = None) -> tuple[int, dict]:
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    with urllib.request.urlopen(request, timeout=30) as answer:  # noqa: S310 - loopback test URL
        return answer.status, json.loads(answer.read())


def _until(check, seconds: float = 30.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.2)
    return check()


def test_a_google_click_lead_qualifies_is_pushed_marked_sql_by_hubspot_and_converts_once(stack):
    # Given a senior person at an ICP-sized software company who came from a Google ad click (gclid)
    body = json.dumps(HOT).encode()
    status, answer = _json("POST", stack.url + "/v1/forms/website", body, {"content-type": "application/json"})
    assert status == 202
    lead_id = answer["lead_id"]

    # When their engagement arrives as signed events: pricing page, an email click, a webinar, a meeting
    now = datetime.now(UTC)
    at = [(now - timedelta(minutes=m)).isoformat() for m in (30, 20, 10, 0)]
    events = [
        {"type": "page_view", "lead_id": lead_id, "occurred_at": at[0], "properties": {"url": "/pricing"}},
        {"type": "email_click", "lead_id": lead_id, "occurred_at": at[1]},
        {"type": "webinar_attended", "lead_id": lead_id, "occurred_at": at[2]},
        {"type": "meeting_booked", "lead_id": lead_id, "occurred_at": at[3]},
    ]
    body = json.dumps({"events": events}).encode()
    headers = standard_webhook_headers(body, dev_secret("events"), "msg_closed_loop_events")
    status, _ = _json("POST", stack.url + "/v1/events", body, headers)
    assert status == 202

    # Then it qualifies, gets an owner and is pushed: the local HubSpot holds the contact, its id on the lead
    def pushed() -> dict | None:
        lead = _json("GET", f"{stack.url}/v1/leads/{lead_id}")[1]
        return lead if (lead.get("crm") or {}).get("hubspot") else None

    lead = _until(pushed)
    assert lead, "the qualified lead never reached the local HubSpot"
    assert lead["lifecycle_stage"] == "mql"
    assert stack.crm.contact(HOT["email"])["id"] == lead["crm"]["hubspot"]["id"]
    assert stack.platforms.ads.received["google-ads"] == []  # Google's configured stages start at sql

    # When sales in HubSpot marks the contact a sales-qualified lead (HubSpot's signed webhook to the stack)
    reply = stack.crm.send_contact_change(HOT["email"], "lifecyclestage", "salesqualifiedlead")
    assert reply["status"] == 200

    # Then the lead shows sql, with the CRM as the source of the move on its timeline
    assert _until(lambda: _json("GET", f"{stack.url}/v1/leads/{lead_id}")[1]["lifecycle_stage"] == "sql")
    # And the local Google Ads has received exactly one conversion, with the lead's gclid and sql's order id
    assert _until(lambda: stack.platforms.ads.received["google-ads"])
    time.sleep(1.5)  # a second conversion, if one were coming, would arrive within the drain's next poll
    rows = stack.platforms.ads.received["google-ads"]
    assert [(r["gclid"], r["orderId"]) for r in rows] == [(GCLID, f"{lead_id}#sql")]
    timeline = _json("GET", f"{stack.url}/v1/leads/{lead_id}/timeline")[1]["items"]
    kinds = {item["kind"] for item in timeline}
    assert {"crm", "conversion", "owner", "push"} <= kinds
    # And the terminal told the story without personal data
    assert _until(lambda: any(line.startswith("conversion google-ads") for line in stack.lines), 5)
    assert "@" not in " ".join(stack.lines)
