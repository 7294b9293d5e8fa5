"""`leadflow up` closes the loop to the ad platforms: a lead from a Google click is moved to sql by the
operator (`POST /v1/leads/{id}/stage`), and the local Google Ads stand-in has received exactly one
conversion with its gclid; the terminal says `conversion google-ads`."""

from __future__ import annotations

import json
import time
import urllib.request

import pytest

from tests.support.local_stack import running_stack

pytestmark = pytest.mark.slow


@pytest.fixture
def stack():
    yield from running_stack()


def _json(method: str, url: str, body: dict | None = None) -> tuple[int, dict]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers={"content-type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as answer:  # noqa: S310 - loopback test URL
        return answer.status, json.loads(answer.read())


def test_a_google_lead_moved_to_sql_reaches_the_local_google_ads_once(stack):
    # Given a lead captured from a Google ad click (gclid on the landing page)
    status, answer = _json("POST", stack.url + "/v1/forms/website", {
        "email": "buyer@initech.example.org", "company": "Initech",
        "page_url": "https://www.example.com/?utm_source=google&utm_medium=cpc&gclid=Cj0KE2E-gclid"})  # fmt: skip
    assert status == 202
    lead_id = answer["lead_id"]
    # When the operator moves it to sql
    status, lead = _json("POST", f"{stack.url}/v1/leads/{lead_id}/stage", {"stage": "sql", "reason": "sales call"})
    assert status == 200 and lead["lifecycle_stage"] == "sql"
    # Then within seconds the local Google Ads stand-in holds one conversion with the gclid and the lead's order id
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not stack.platforms.ads.received["google-ads"]:
        time.sleep(0.2)
    time.sleep(1.5)  # a second conversion, if one were coming, would arrive within the drain's next poll
    rows = stack.platforms.ads.received["google-ads"]
    assert [(r["gclid"], r["orderId"]) for r in rows] == [("Cj0KE2E-gclid", f"{lead_id}#sql")]
    # And the lead is sql, its timeline shows the conversion, and the terminal said so without personal data
    assert _json("GET", f"{stack.url}/v1/leads/{lead_id}")[1]["lifecycle_stage"] == "sql"
    timeline = _json("GET", f"{stack.url}/v1/leads/{lead_id}/timeline")[1]["items"]
    conversions = [i["detail"] for i in timeline if i["kind"] == "conversion"]
    assert [(c["platform"], c["stage"], c["outcome"]) for c in conversions] == [("google-ads", "sql", "sent")]
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and not any(line.startswith("conversion google-ads") for line in stack.lines):
        time.sleep(0.2)
    [line] = [line for line in stack.lines if line.startswith("conversion google-ads")]
    assert lead_id in line and "sql" in line and "@" not in " ".join(stack.lines)
