"""`leadflow up` end to end: real HTTP to the template's routes on free ports, embedded AWS, demo traffic."""

from __future__ import annotations

import io
import json
import logging
import time
import urllib.error
import urllib.request

import pytest

from leadflow_local.demo import POINTER_PLATFORMS, build_traffic, run_demo
from tests.support.local_stack import running_stack
from tests.support.signing import dev_secret, standard_webhook_headers


@pytest.fixture
def stack():
    yield from running_stack(quiet=True)


def _call(method: str, url: str, body: bytes | None = None, headers: dict | None = None) -> tuple[int, dict, bytes]:
    request = urllib.request.Request(url, data=body, headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


@pytest.mark.slow
def test_signed_webhook_over_http_becomes_a_lead_readable_by_email(stack):
    # Given a running local stack
    status, _, raw = _call("GET", stack.url + "/health")
    assert (status, json.loads(raw)) == (200, {"status": "ok"})
    # When a signed generic webhook is posted over real HTTP
    body = json.dumps({"type": "lead.submitted", "data": {"email": "e2e@orbit.dev", "utm_source": "e2e"}}).encode()
    headers = standard_webhook_headers(body, dev_secret("webhooks/generic"), "msg_e2e")
    status, _, raw = _call("POST", stack.url + "/v1/webhooks/generic", body, headers)
    assert status == 200
    lead_id = json.loads(raw)["leads"][0]["lead_id"]
    # Then the operator route finds it by email
    status, _, raw = _call("GET", stack.url + "/v1/leads?email=e2e%40orbit.dev")
    assert status == 200
    lead = json.loads(raw)
    assert lead["lead_id"] == lead_id
    assert lead["attribution"]["first_touch"]["utm_source"] == "e2e"
    # And the API answers like API Gateway for what no route serves, and problems keep their type
    assert _call("GET", stack.url + "/nope")[0] == 404
    status, headers, _ = _call("POST", stack.url + "/v1/webhooks/generic", body, {"content-type": "application/json"})
    assert status == 401 and headers["content-type"] == "application/problem+json"


@pytest.mark.slow
def test_plain_html_form_gets_a_303_over_http(stack):
    body = b"email=html%40orbit.dev&_redirect=https%3A%2F%2Fwww.example.com%2Fthanks"

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    request = urllib.request.Request(
        stack.url + "/v1/forms/website",
        data=body,
        method="POST",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    with pytest.raises(urllib.error.HTTPError) as raised:
        urllib.request.build_opener(NoRedirect).open(request, timeout=30)
    assert raised.value.code == 303
    assert raised.value.headers["location"] == "https://www.example.com/thanks"


@pytest.mark.slow
def test_demo_traffic_ends_with_a_summary_per_source(stack):
    # Given a running stack with its local platform API
    # When the demo sends its traffic
    out = io.StringIO()
    tallies = run_demo(stack.url, out=out, platforms_url=stack.platforms.url, crm_url=stack.crm.url)
    text = out.getvalue()
    # Then every source is in the summary, with a line of its own, and nothing was answered 5xx
    sources = {
        "form:website (fetch)",
        "form:website (html)",
        "generic",
        *("typeform", "tally", "webflow", "hubspot-forms", "google-ads"),
        *POINTER_PLATFORMS,
        "callback:baidu",
        "callback:tencent",
        "events",
        "crm feedback",
    }
    assert set(tallies) == sources
    summary = text[text.index("demo summary") : text.index("resulting funnel")]
    for source in sources:
        assert f"  {source} " in summary
    assert [r for t in tallies.values() for r in t.rejected if r.startswith("5")] == []
    # And each source's deliveries are counted as their kind expects
    generic = tallies["generic"]
    assert (generic.new, generic.merged, generic.repeated) == (4, 6, 3)
    assert sum(generic.rejected.values()) == 3
    fetch = tallies["form:website (fetch)"]
    assert fetch.blocked == 1
    assert sorted(fetch.rejected) == ["403 Forbidden", "422 Validation failed"]
    for tool in ("typeform", "tally", "webflow", "hubspot-forms", "google-ads"):
        assert (tallies[tool].new + tallies[tool].merged, tallies[tool].repeated) == (1, 1), tool
        assert sum(tallies[tool].rejected.values()) == 1, tool
    assert tallies["linkedin"].notes == {"handshake": 1, "DELETED acknowledged": 1}
    assert tallies["callback:baidu"].notes == {"click recorded": 1}
    assert tallies["callback:tencent"].notes == {"click recorded": 1}
    # And the engagement events were scored (one bad event rejected alone, one kept anonymous) and one lead is MQL
    assert tallies["events"].notes == {"event accepted": 8, "event rejected": 1, "event anonymous": 1}
    assert tallies["events"].repeated == 1
    header = next(line for line in text[text.index("resulting funnel") :].splitlines() if "first touch" in line)
    # the demo's MQL was pushed, HubSpot made it an SQL then won its deal: a customer; another CRM lost Emmy
    assert tallies["crm feedback"].notes == {"hubspot sql 200": 1, "hubspot won 200": 1, "generic lost 200": 1}
    assert " customer " in header + " " and " recycled " in header + " "
    # And the pointer providers' leads were fetched by the runtime's fetch-queue poller and became leads
    fetched = {(s.source, e) for s in build_traffic(stack.url) for e in s.fetched_emails}
    assert {source for source, _ in fetched} == set(POINTER_PLATFORMS)
    deadline = time.monotonic() + 30
    for source, email in sorted(fetched):
        while True:
            status, _, raw = _call("GET", stack.url + "/v1/leads?email=" + email.replace("@", "%40"))
            lead = json.loads(raw) if status == 200 else {}
            if any(name.startswith(f"{source}_") for name in lead.get("attributes") or {}):
                break
            assert time.monotonic() < deadline, f"the {source} lead was not fetched"
            time.sleep(0.2)
    assert [(s, t.new, t.merged) for s, t in sorted(tallies.items()) if s in POINTER_PLATFORMS] == [
        ("linkedin", 0, 1),
        ("meta", 1, 1),
        ("tiktok", 1, 0),
    ]
    # And the lead that came with the Baidu click carries the ad click
    (callback_lead,) = [
        json.loads(s.body)["email"]
        for s in build_traffic(stack.url)
        if s.source == "form:website (fetch)" and json.loads(s.body).get("email", "").startswith("lin.")
    ]
    status, _, raw = _call("GET", stack.url + "/v1/leads?email=" + callback_lead.replace("@", "%40"))
    assert status == 200
    assert json.loads(raw)["attribution"]["first_touch"]["ad_click"]["platform"] == "baidu"
    # And the funnel of the demo's own leads is printed, with no email in the whole output
    assert "resulting funnel: " in text and "first touch" in text
    assert "@" not in text


def test_handler_info_logs_stay_off_the_terminal_whatever_was_imported_first(stack):
    # Given a stack started in a process that had already created the handlers' logger (at INFO, as the CLI does)
    # When a lead is captured over HTTP
    from leadflow.observability import logger

    body = json.dumps({"email": "quiet.terminal@acme-example.com"}).encode()
    status, _, _ = _call(
        "POST", stack.url + "/v1/forms/website", body, {"content-type": "application/json", "origin": stack.url}
    )
    # Then it is captured, and the handlers log at WARNING: the terminal shows the stream's lines, not JSON logs
    assert status == 202
    assert logging.getLevelName(logger.log_level) == "WARNING"
