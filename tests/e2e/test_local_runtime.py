"""`leadflow up` end to end: real HTTP to the template's routes on free ports, embedded AWS, demo traffic."""

from __future__ import annotations

import io
import json
import os
import time
import urllib.error
import urllib.request

import pytest

from leadflow_local.demo import run_demo
from leadflow_local.runtime import LocalRuntime
from tests.support.signing import dev_secret, standard_webhook_headers


@pytest.fixture
def stack():
    saved = dict(os.environ)
    runtime = LocalRuntime(port=0, crm_port=0, quiet=True).start()
    try:
        yield runtime
    finally:
        runtime.stop()
        os.environ.clear()
        os.environ.update(saved)
        from leadflow.config import settings
        from leadflow.store import models

        settings.cache_clear()
        models.bind()


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
    out = io.StringIO()
    tallies = run_demo(stack.url, out=out)
    text = out.getvalue()
    assert "demo summary" in text
    generic = tallies["generic"]
    assert (generic.new, generic.merged, generic.repeated) == (4, 6, 3)
    assert sum(generic.rejected.values()) == 3
    fetch = tallies["form:website (fetch)"]
    assert fetch.blocked == 1
    assert sorted(fetch.rejected) == ["403 Forbidden", "422 Validation failed"]
    # every person of the demo is one lead: the merged ones answer with their original lead
    time.sleep(0.1)
    status, _, raw = _call("GET", stack.url + "/v1/leads?email=grace%40cobol-systems.com")
    assert status == 200 and json.loads(raw)["touches"]["count"] >= 1
