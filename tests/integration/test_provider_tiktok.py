"""POST /v1/webhooks/tiktok: TikTok-Signature checked, lead named by the notification fetched from the API.

The envelope and signature follow developers.tiktok.com/doc/webhooks-overview and
developers.tiktok.com/doc/webhooks-verification. TikTok does not publish the lead event's `content`:
the shape used here is the one leadflow/sources/tiktok.py assumes (documented there). Ids are fake.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.fake_api import start_fake_api
from tests.support.fetch import fetch_queues
from tests.support.quarantine import assert_quarantined, reasons
from tests.support.signing import dev_secret

CLIENT_SECRET = dev_secret("webhooks/tiktok")["client_secret"]
ACCESS_TOKEN = dev_secret("webhooks/tiktok")["access_token"]
LEAD_ID = "7301234567890123456"
CONTENT = {
    "lead_id": LEAD_ID,
    "page_id": "7299000011112222333",
    "advertiser_id": "7012345678901234567",
    "create_time": "1763805590",
}
LEAD_PATH = "/open_api/v1.3/page/lead/get/"
LEAD_ANSWER = {
    "code": 0,
    "message": "OK",
    "request_id": "202611221000000102030405",
    "data": {
        "lead_data": {
            "name": "Grace Hopper",
            "email": "Grace@COBOL-Systems.com",
            "phone_number": "(415) 555-2671",
            "company_name": "COBOL Systems",
            "job_title": "VP Engineering",
            "What is your team size?": "51-200",
        },
        "meta_data": {
            "lead_id": LEAD_ID,
            "page_id": "7299000011112222333",
            "advertiser_id": "7012345678901234567",
            "campaign_id": "1780000000000001",
            "campaign_name": "Q4 lead gen",
            "adgroup_id": "1780000000000002",
            "ad_id": "1780000000000003",
            "ttclid": "E.C.P.Cv8Bxyz-MixedCase",
            "create_time": "2026-11-22 09:59:50",
        },
    },
}


def envelope(content: dict | str = CONTENT) -> dict:
    return {
        "client_key": "awdev0123456789",
        "event": "lead.create",
        "create_time": 1763805600,
        "user_openid": "act.example0123456789",
        "content": content if isinstance(content, str) else json.dumps(content),
    }


def tiktok_signature(body: bytes, timestamp: int | None = None, secret: str = CLIENT_SECRET) -> str:
    """TikTok: t=<unix>,s=hex(HMAC-SHA256(key=client_secret, msg=f"{t}." + raw body))."""
    ts = int(time.time()) if timestamp is None else timestamp
    signature = hmac.new(secret.encode(), f"{ts}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={ts},s={signature}"


def _post(api, document: dict | None = None, *, body: bytes | None = None, headers: dict | None = None):
    raw = body if body is not None else json.dumps(document or envelope()).encode()
    sent = (
        {"content-type": "application/json", "tiktok-signature": tiktok_signature(raw)} if headers is None else headers
    )
    return api.request("POST", "/v1/webhooks/tiktok", raw, sent)


@pytest.fixture
def tiktok(aws, monkeypatch):
    """The fetch queue from the template, and a scripted TikTok API for Business on 127.0.0.1."""
    platform, server = start_fake_api()
    monkeypatch.setenv("LEADFLOW_TIKTOK_API_URL", platform.url)
    platform.answer(LEAD_PATH, (200, LEAD_ANSWER))
    yield platform, fetch_queues(monkeypatch)
    server.shutdown()


def test_lead_notification_is_acknowledged_then_fetched_with_fields_and_attribution(api, tiktok):
    platform, queues = tiktok
    # Given a correctly signed lead notification naming a lead
    # When it is delivered
    reply = _post(api)
    # Then it is acknowledged at once, before anything is fetched
    assert reply.status == 200
    assert reply.json == {"received": 1}
    assert platform.calls == []
    # When the fetch queue is drained against the TikTok API
    queues.drain()
    # Then the lead was fetched by its id with the access token
    (call,) = platform.calls_to(LEAD_PATH)
    assert call.headers["access-token"] == ACCESS_TOKEN
    assert call.query == {"lead_id": LEAD_ID, "advertiser_id": CONTENT["advertiser_id"], "page_id": CONTENT["page_id"]}
    # And the lead exists with its fields, ad ids and the ttclid as attribution
    lead = api.get_lead_by_email("grace@cobol-systems.com").json
    assert (lead["first_name"], lead["last_name"]) == ("Grace", "Hopper")
    assert lead["phone"] == "+14155552671"
    assert (lead["company"], lead["job_title"]) == ("COBOL Systems", "VP Engineering")
    assert lead["attributes"]["what_is_your_team_size"] == "51-200"
    assert lead["attributes"]["tiktok_campaign_id"] == "1780000000000001"
    assert lead["attributes"]["tiktok_ad_id"] == "1780000000000003"
    assert lead["attributes"]["tiktok_page_id"] == CONTENT["page_id"]
    first = lead["attribution"]["first_touch"]
    assert first["source"] == "tiktok"
    assert first["ttclid"] == "E.C.P.Cv8Bxyz-MixedCase"  # never re-cased
    assert queues.count(queues.dlq_url) == 0


def test_redelivered_lead_creates_nothing_new(api, tiktok):
    platform, queues = tiktok
    # Given a lead notification already delivered and fetched
    assert _post(api).status == 200
    queues.drain()
    lead = api.get_lead_by_email("grace@cobol-systems.com").json
    # When TikTok retries it (at-least-once, with a fresh signature timestamp)
    assert _post(api).json == {"received": 1}
    queues.drain()
    # Then nothing changed
    again = api.get_lead_by_email("grace@cobol-systems.com").json
    assert again["lead_id"] == lead["lead_id"]
    assert (again["touches"]["count"], again["version"]) == (1, lead["version"])


def test_api_error_code_in_a_200_answer_ends_in_the_dead_letter_queue(api, tiktok):
    platform, queues = tiktok
    # Given the API answers with TikTok's error envelope (HTTP 200, non-zero code) for a bad request
    platform.answer(LEAD_PATH, (200, {"code": 40002, "message": "param error", "request_id": "x"}))
    assert _post(api).status == 200
    # When the fetch runs
    queues.drain()
    # Then no lead exists and the notification waits in the DLQ with the reason
    assert api.get_lead_by_email("grace@cobol-systems.com").status == 404
    (message,) = queues.messages(queues.dlq_url)
    assert "40002" in message["MessageAttributes"]["failure_reason"]["StringValue"]


def _assert_nothing_stored_or_queued(aws, queues):
    from leadflow.config import settings

    assert aws.scan(TableName=settings().table_name, Select="COUNT")["Count"] == 0
    assert queues.count(queues.queue_url) == 0


def _bad_signatures(body: bytes) -> dict[str, tuple[bytes, dict]]:
    good = {"content-type": "application/json", "tiktok-signature": tiktok_signature(body)}
    now = int(time.time())
    return {
        "tampered body": (body.replace(LEAD_ID.encode(), b"7301234567890123457"), good),
        "wrong secret": (body, {**good, "tiktok-signature": tiktok_signature(body, secret="not-the-secret")}),
        "missing header": (body, {"content-type": "application/json"}),
        "stale timestamp": (body, {**good, "tiktok-signature": tiktok_signature(body, now - 600)}),
        "future timestamp": (body, {**good, "tiktok-signature": tiktok_signature(body, now + 600)}),
        "no signature part": (body, {**good, "tiktok-signature": f"t={now}"}),
    }


def test_bad_signature_is_401_and_nothing_is_stored_or_queued(api, aws, tiktok):
    platform, queues = tiktok
    # Given signed deliveries spoiled in each way a forger or a replay would
    for case, (body, headers) in _bad_signatures(json.dumps(envelope()).encode()).items():
        # When they are delivered
        reply = _post(api, body=body, headers=headers)
        # Then each is refused with a problem document
        assert reply.status == 401, case
        assert reply.headers["content-type"] == "application/problem+json", case
    # And nothing was stored or queued
    _assert_nothing_stored_or_queued(aws, queues)


def test_malformed_content_string_is_400_and_nothing_queued(api, aws, tiktok):
    platform, queues = tiktok
    # Given signed envelopes whose content string is not a JSON object
    for content in ("{not json", "[1, 2]", '"just a string"', "NaN"):
        # Then each is refused as malformed
        assert _post(api, envelope(content)).status == 400, content
    _assert_nothing_stored_or_queued(aws, queues)


def test_content_without_a_lead_id_is_quarantined_with_the_field_path(api, tiktok):
    reply = _post(api, envelope({"page_id": "1"}))
    assert list(reasons(assert_quarantined(reply, "tiktok"))) == ["content.lead_id"]


# ------------------------------------------------------------------------------------------ properties
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    outer=st.dictionaries(st.sampled_from(["client_key", "event", "create_time", "user_openid"]), JSON_VALUES),
    inner=st.dictionaries(st.sampled_from(sorted(CONTENT)), JSON_VALUES, max_size=3),
    as_text=st.none() | st.text(max_size=40),
)
def test_any_signed_envelope_gets_an_answer_below_500(api, tiktok, outer, inner, as_text):
    # Given a correctly signed envelope with any fields, and any content (JSON or not)
    document = {**envelope(), **outer, "content": as_text if as_text is not None else json.dumps({**CONTENT, **inner})}
    reply = _post(api, document)
    # Then the answer is a 2xx or a 4xx problem, never a 5xx
    assert reply.status < 500, reply.body
    assert reply.status == 200 or reply.headers["content-type"] == "application/problem+json"


@settings(max_examples=150, deadline=None)
@given(
    lead_data=st.dictionaries(
        st.sampled_from(["email", "name", "phone_number", "country", "ttclid"]) | st.text(max_size=70), JSON_VALUES
    ),
    meta=st.dictionaries(st.sampled_from(["campaign_id", "ad_id", "ttclid", "create_time", "utm_source"]), JSON_VALUES),
)
def test_any_api_lead_maps_to_a_lead_or_a_validation_error(lead_data, meta):
    from leadflow.errors import ValidationFailed
    from leadflow.sources.tiktok import lead_from_api

    # Given any lead object the API could answer
    pointer = {"id": LEAD_ID}
    # Then mapping gives a lead input keyed by the lead id, or a validation error (dead-lettered)
    try:
        inp = lead_from_api({"lead_data": lead_data, "meta_data": meta}, pointer)
    except ValidationFailed:
        return
    assert inp.external_ids == [("tiktok", LEAD_ID)]
