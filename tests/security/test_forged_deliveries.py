"""Forged deliveries for every webhook provider and click-callback platform are refused with nothing kept.

A forger may tamper with a signed body, sign with a guessed secret, leave the signature out, replay a
stale signed delivery (where the scheme signs a time), or send a signature valid under another provider's
scheme. Each is answered 401 (403 for the unsigned hubspot-forms from a foreign origin) and nothing is
stored in the table or put on the fetch queue. A control test shows the same delivery, correctly signed,
is accepted, so each refusal is down to the forgery and nothing else.

Every provider of the registry must appear here (a new one fails `test_every_route_is_covered`).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import quote

import pytest

from leadflow.sources import CALLBACK_PLATFORMS, WEBHOOK_PROVIDERS
from tests.support.api import Api
from tests.support.aws import local_aws
from tests.support.callbacks import GATEWAY, baidu_query, baidu_signed, tencent_path
from tests.support.fetch import fetch_queues
from tests.support.providers import (
    linkedin_headers,
    meta_headers,
    tally_headers,
    tiktok_headers,
    typeform_headers,
    webflow_headers,
)
from tests.support.signing import dev_secret, standard_webhook_headers

EMAIL = "forged.person@victim-corp.example"
FORGED_EMAIL = "attacker@evil.example"
WRONG = "not-the-secret"
WRONG_WHSEC = "whsec_bm90LXRoZS1zZWNyZXQtYXQtYWxs"
STALE = 3600  # seconds: far outside the 5-minute signature tolerance


def _now() -> int:
    return int(time.time())


# ------------------------------------------------------------------------------------------ deliveries
def _typeform() -> dict:
    return {
        "event_id": "01SEC",
        "event_type": "form_response",
        "form_response": {
            "form_id": "lT4Z3j",
            "token": "sec-typeform-token",
            "answers": [{"type": "email", "email": EMAIL, "field": {"id": "e1", "type": "email", "ref": "email"}}],
        },
    }


def _tally() -> dict:
    return {
        "eventId": "sec-evt",
        "eventType": "FORM_RESPONSE",
        "data": {
            "responseId": "secResp1",
            "formId": "mBXx9Q",
            "fields": [{"key": "question_e", "label": "Email", "type": "INPUT_EMAIL", "value": EMAIL}],
        },
    }


def _webflow() -> dict:
    return {
        "triggerType": "form_submission",
        "payload": {"id": "sec-webflow-1", "name": "Contact", "data": {"Email": EMAIL}},
    }


def _meta() -> dict:
    change = {"field": "leadgen", "value": {"leadgen_id": "900000000000009", "page_id": "100000000000001"}}
    return {"object": "page", "entry": [{"id": "100000000000001", "time": 1795300001, "changes": [change]}]}


def _linkedin() -> dict:
    return {
        "type": "LEAD_ACTION",
        "leadGenFormResponse": "urn:li:leadGenFormResponse:sec-0001",
        "leadGenForm": "urn:li:versionedLeadGenForm:(urn:li:leadGenForm:4466221,1)",
        "leadAction": "CREATED",
    }


def _tiktok() -> dict:
    content = {"lead_id": "7301234567890000001", "page_id": "7299000011112222333", "advertiser_id": "70123"}
    return {"event": "lead.create", "create_time": 1763805600, "content": json.dumps(content)}


def _google_ads(key: str | None = "dev") -> dict:
    document = {"lead_id": "sec-google-1", "user_column_data": [{"column_id": "EMAIL", "string_value": EMAIL}]}
    if key is not None:
        document["google_key"] = dev_secret("webhooks/google-ads")["google_key"] if key == "dev" else key
    return document


def _generic() -> dict:
    return {"type": "lead.submitted", "timestamp": "2026-11-22T10:00:00Z", "data": {"email": EMAIL}}


def _generic_headers(body: bytes, secret: str | None = None, timestamp: int | None = None) -> dict[str, str]:
    return standard_webhook_headers(body, secret or dev_secret("webhooks/generic"), "msg_sec_1", timestamp)


@dataclass(frozen=True)
class Provider:
    document: Callable[[], dict]
    sign: Callable[..., dict[str, str]]  # (body, secret=None) → headers
    wrong_secret: str
    stale: Callable[[bytes], dict[str, str]] | None = None  # a correct signature over a stale time
    pointer: bool = False  # pointer-style: an accepted delivery is queued, not stored
    tamper: tuple[bytes, bytes] = (EMAIL.encode(), FORGED_EMAIL.encode())  # what a forger changes


PROVIDERS: dict[str, Provider] = {
    "typeform": Provider(_typeform, typeform_headers, WRONG),
    "tally": Provider(_tally, tally_headers, WRONG),
    "webflow": Provider(
        _webflow,
        webflow_headers,
        WRONG,
        stale=lambda body: webflow_headers(body, timestamp_ms=(_now() - STALE) * 1000),
    ),
    "meta": Provider(_meta, meta_headers, WRONG, pointer=True, tamper=(b"900000000000009", b"900000000000008")),
    "linkedin": Provider(_linkedin, linkedin_headers, WRONG, pointer=True, tamper=(b"sec-0001", b"sec-0002")),
    "tiktok": Provider(
        _tiktok,
        tiktok_headers,
        WRONG,
        stale=lambda body: tiktok_headers(body, timestamp=_now() - STALE),
        pointer=True,
        tamper=(b"7301234567890000001", b"7301234567890000002"),
    ),
    "generic": Provider(
        _generic, _generic_headers, WRONG_WHSEC, stale=lambda body: _generic_headers(body, timestamp=_now() - STALE)
    ),
}
SIGNED = sorted(PROVIDERS)
# Not signed by anyone: hubspot-forms is judged like a website form (origin, honeypot), tested below.
UNSIGNED = {"hubspot-forms"}
# The key is in the body (Google's scheme): a tampered body with the right key is, by design, authentic.
BODY_KEY = {"google-ads"}


def every_other_signature(provider: str, body: bytes) -> dict[str, str]:
    """The body validly signed under every other provider's scheme and secret (never its own)."""
    headers: dict[str, str] = {}
    for other in SIGNED:
        if other != provider:
            headers.update(PROVIDERS[other].sign(body))
    headers["content-type"] = "application/json"
    return headers


def forgeries(provider: str) -> dict[str, tuple[bytes, dict[str, str]]]:
    spec = PROVIDERS[provider]
    body = json.dumps(spec.document()).encode()
    good = spec.sign(body)
    assert spec.tamper[0] in body
    cases = {
        "tampered body": (body.replace(*spec.tamper), good),
        "wrong secret": (body, spec.sign(body, spec.wrong_secret)),
        "missing signature": (body, {"content-type": "application/json"}),
        "another provider's signature": (body, every_other_signature(provider, body)),
    }
    if spec.stale is not None:
        cases["stale timestamp"] = (body, spec.stale(body))
    return cases


CASES = [(provider, case) for provider in SIGNED for case in forgeries(provider)]


# ------------------------------------------------------------------------------------------ fixtures
@pytest.fixture(scope="module")
def stack():
    """One offline AWS (table and fetch queue) for the module: each test compares what is kept before and after."""
    with pytest.MonkeyPatch.context() as patch, local_aws(patch) as client:
        yield Api(), client, fetch_queues(patch)


@pytest.fixture
def api(stack):
    return stack[0]


@pytest.fixture
def aws(stack):
    return stack[1]


@pytest.fixture
def queues(stack):
    return stack[2]


def table_items(aws) -> int:
    from leadflow.config import settings

    return aws.scan(TableName=settings().table_name, Select="COUNT", ConsistentRead=True)["Count"]


def kept(aws, queues) -> tuple[int, int]:
    """(items in the table, messages on the fetch queue)."""
    return table_items(aws), queues.count(queues.queue_url)


def assert_nothing_kept(aws, queues, before: tuple[int, int]) -> None:
    items, queued = kept(aws, queues)
    assert items == before[0], "a forged request left items in the table"
    assert queued == before[1], "a forged request was queued for fetching"


# ------------------------------------------------------------------------------------------ tests
def test_every_route_is_covered():
    # Given the providers and platforms the routes serve
    # Then each one has forgeries here (or is the one unsigned provider, tested by origin)
    assert set(WEBHOOK_PROVIDERS) == set(SIGNED) | UNSIGNED | BODY_KEY
    assert set(CALLBACK_PLATFORMS) == {"baidu", "tencent"}


@pytest.mark.parametrize("provider", SIGNED)
def test_control_the_correctly_signed_delivery_is_accepted(api, aws, queues, provider):
    # Given the delivery every forgery below starts from, correctly signed
    spec = PROVIDERS[provider]
    body = json.dumps(spec.document()).encode()
    # When it is delivered
    queued = queues.count(queues.queue_url)
    reply = api.request("POST", f"/v1/webhooks/{provider}", body, spec.sign(body))
    # Then it is accepted (stored, or queued for fetching)
    assert reply.status == 200, reply.body
    if spec.pointer:
        assert queues.count(queues.queue_url) == queued + 1
    else:
        assert api.get_lead_by_email(EMAIL).status == 200


@pytest.mark.parametrize(("provider", "case"), CASES, ids=[f"{p}: {c}" for p, c in CASES])
def test_forged_delivery_is_401_and_nothing_is_stored_or_queued(api, aws, queues, provider, case):
    before = kept(aws, queues)
    # Given a delivery forged in one of the ways a forger would
    body, headers = forgeries(provider)[case]
    # When it is delivered
    reply = api.request("POST", f"/v1/webhooks/{provider}", body, headers)
    # Then it is refused as unauthenticated, with no secret or expected signature in the answer
    assert reply.status == 401, reply.body
    assert reply.headers["content-type"] == "application/problem+json"
    assert_no_secret_in(reply.body)
    # And nothing is stored or queued
    assert_nothing_kept(aws, queues, before)


GOOGLE_FORGERIES = {
    "wrong key": _google_ads(WRONG),
    "missing key": _google_ads(None),
    "empty key": _google_ads(""),
    "key of another provider": _google_ads(dev_secret("webhooks/linkedin")["client_secret"]),
}


@pytest.mark.parametrize("case", sorted(GOOGLE_FORGERIES))
def test_google_ads_lead_without_the_form_key_is_401_and_nothing_is_stored(api, aws, queues, case):
    before = kept(aws, queues)
    # Given a Google Ads lead whose google_key is not the configured one, carrying every other provider's
    # valid signature for good measure
    body = json.dumps(GOOGLE_FORGERIES[case]).encode()
    # When it is delivered
    reply = api.request("POST", "/v1/webhooks/google-ads", body, every_other_signature("google-ads", body))
    # Then it is 401 and nothing is stored
    assert reply.status == 401, reply.body
    assert_no_secret_in(reply.body)
    assert_nothing_kept(aws, queues, before)


def test_google_ads_control_with_the_key_is_accepted(api, aws):
    body = json.dumps(_google_ads()).encode()
    assert api.request("POST", "/v1/webhooks/google-ads", body, {"content-type": "application/json"}).status == 200


@pytest.mark.parametrize("origin", ["https://attacker.example", "null", "http://localhost.evil.example"])
def test_hubspot_forms_from_a_foreign_origin_is_403_and_nothing_is_stored(api, aws, queues, origin):
    before = kept(aws, queues)
    # Given a HubSpot Forms submission posted by a browser on a page the registry does not allow
    body = json.dumps({"fields": [{"objectTypeId": "0-1", "name": "email", "value": EMAIL}]}).encode()
    # When it arrives
    reply = api.request(
        "POST", "/v1/webhooks/hubspot-forms", body, {"content-type": "application/json", "origin": origin}
    )
    # Then it is refused and nothing is stored
    assert reply.status == 403, reply.body
    assert_nothing_kept(aws, queues, before)


# ------------------------------------------------------------------------------------------ handshakes
def test_linkedin_challenge_cannot_be_used_to_sign_a_forged_notification(api, aws, queues):
    before = kept(aws, queues)
    # Given a forged LEAD_ACTION notification, compact so it fits in a challenge code
    forged = json.dumps(_linkedin(), separators=(",", ":")).encode()
    # When the attacker asks the validation endpoint to "answer" the challenge "hmacsha256=" + body (exactly
    # the message a notification's X-LI-Signature signs) and posts the forged body with what it got
    oracle = api.request("GET", "/v1/webhooks/linkedin?challengeCode=" + quote("hmacsha256=" + forged.decode()))
    stolen = (oracle.json or {}).get("challengeResponse") if oracle.status == 200 else None
    reply = api.request(
        "POST", "/v1/webhooks/linkedin", forged, {"content-type": "application/json", "x-li-signature": stolen or ""}
    )
    # Then the forged notification is refused and nothing is queued (today: 200, and the pointer is queued)
    assert reply.status == 401, reply.body
    assert_nothing_kept(aws, queues, before)
    # And no MAC was handed out: the code is not a UUID
    assert oracle.status == 400, oracle.body
    assert "challengeResponse" not in oracle.body


@pytest.mark.parametrize(
    "code",
    [
        "hmacsha256=",
        "hello",
        "890e4665-4dfe-4ab1-b689-d6a1b1bba8e4x",
        "{890e4665-4dfe-4ab1-b689-d6a1b1bba8e4}",
        "890e46654dfe4ab1b689d6a1b1bba8e4",
        "890e4665-4dfe-4ab1-b689-d6a1b1bba8e4\n",
        "890e4665-4dfe-4ab1-b689-d6a1b1bba8e٤",
        "",
    ],
)
def test_linkedin_answers_only_a_uuid_challenge(api, code):
    # Given a validation request whose challenge code is not a canonical UUID
    reply = api.request("GET", "/v1/webhooks/linkedin?challengeCode=" + quote(code))
    # Then it is 400 and carries no MAC
    assert reply.status == 400, reply.body
    assert "challengeResponse" not in reply.body


def test_linkedin_uuid_challenge_is_still_answered(api):
    code = str(uuid.uuid4())
    reply = api.request("GET", f"/v1/webhooks/linkedin?challengeCode={code}")
    secret = dev_secret("webhooks/linkedin")["client_secret"].encode()
    assert reply.status == 200
    assert reply.json == {
        "challengeCode": code,
        "challengeResponse": hmac.new(secret, code.encode(), "sha256").hexdigest(),
    }


@pytest.mark.parametrize("token", ["wrong", "", dev_secret("webhooks/meta")["app_secret"]])
def test_meta_subscription_check_with_a_wrong_token_echoes_nothing(api, token):
    # Given Meta's subscription check with a token that is not the verify token
    challenge = "1158201444"
    reply = api.request(
        "GET", f"/v1/webhooks/meta?hub.mode=subscribe&hub.verify_token={quote(token)}&hub.challenge={challenge}"
    )
    # Then it is 403 and the challenge is not echoed
    assert reply.status == 403
    assert challenge not in reply.body


# ------------------------------------------------------------------------------------------ callbacks
def _baidu_tampered() -> str:
    signed = baidu_signed(baidu_query())
    return signed.replace("BdClk_7fA9xQ-MixedCase", "BdClk_forged", 1)


def _baidu_moved_sign() -> str:
    # the sign of one click, put on another click's URL
    sign = baidu_signed(baidu_query()).rsplit("&sign=", 1)[1]
    return f"/v1/callbacks/baidu?{baidu_query(click_id='BdClk_other')}&sign={sign}"


BAIDU_FORGERIES = {
    "tampered query": (_baidu_tampered(), GATEWAY),
    "wrong akey": (baidu_signed(baidu_query(), akey=WRONG), GATEWAY),
    "missing sign": ("/v1/callbacks/baidu?" + baidu_query(), GATEWAY),
    "sign of another URL": (_baidu_moved_sign(), GATEWAY),
    "signed for another host": (baidu_signed(baidu_query(), host="evil.example"), GATEWAY),
    "tencent token instead of a sign": (
        "/v1/callbacks/baidu?" + baidu_query(token=dev_secret("callbacks/tencent")["token"]),
        GATEWAY,
    ),
    "two signs": (baidu_signed(baidu_query()) + "&sign=" + "0" * 32, GATEWAY),
}
TENCENT_FORGERIES = {
    "wrong token": tencent_path(token=WRONG),
    "missing token": tencent_path(token=None),
    "empty token": tencent_path(token=""),
    "baidu akey as token": tencent_path(token=dev_secret("callbacks/baidu")["akey"]),
    "baidu sign instead of a token": tencent_path(token=None) + "&sign=" + hashlib.md5(b"x").hexdigest(),  # noqa: S324 - Baidu's scheme
}


@pytest.mark.parametrize("case", sorted(BAIDU_FORGERIES))
def test_forged_baidu_callback_is_401_and_nothing_is_stored(api, aws, queues, case):
    before = kept(aws, queues)
    # Given a Baidu click callback forged in one of the ways a forger would (the scheme signs no time:
    # a replay only repeats an already stored click)
    path, headers = BAIDU_FORGERIES[case]
    # When it arrives
    reply = api.request("GET", path, headers=headers)
    # Then it is refused and no click is stored
    assert reply.status == 401, reply.body
    assert_no_secret_in(reply.body)
    assert_nothing_kept(aws, queues, before)


@pytest.mark.parametrize("case", sorted(TENCENT_FORGERIES))
def test_forged_tencent_callback_is_401_and_nothing_is_stored(api, aws, queues, case):
    before = kept(aws, queues)
    # Given a Tencent click callback without the URL's token (the scheme has no signature nor time)
    reply = api.request("GET", TENCENT_FORGERIES[case])
    # Then it is refused and no click is stored
    assert reply.status == 401, reply.body
    assert_no_secret_in(reply.body)
    assert_nothing_kept(aws, queues, before)


@pytest.mark.parametrize("platform", ["baidu", "tencent"])
def test_control_the_genuine_callback_is_accepted(api, aws, platform):
    path, headers = (baidu_signed(baidu_query()), GATEWAY) if platform == "baidu" else (tencent_path(), {})
    items = table_items(aws)
    assert api.request("GET", path, headers=headers).status == 200
    assert table_items(aws) == items + 1


# ------------------------------------------------------------------------------------------ helpers
def _secret_values(value) -> list[str]:
    if isinstance(value, dict):
        return [v for item in value.values() for v in _secret_values(item)]
    if isinstance(value, list):
        return [v for item in value for v in _secret_values(item)]
    return [str(value)] if value else []


def assert_no_secret_in(text: str) -> None:
    """No development secret (nor its whsec_ key part) appears in an answer."""
    from tests.support.aws import SECRETS_FILE

    for name, value in json.loads(SECRETS_FILE.read_text()).items():
        if name.startswith("_"):
            continue
        for secret in _secret_values(value):
            assert secret.removeprefix("whsec_") not in text, f"the answer carries secret {name}"
