"""Header and query values parsed as numbers or times follow ASCII-only rules, and never crash a route.

`str.isdigit()` and `int()` accept far more than ASCII digits (superscripts, other scripts' digits, `_`,
`+`, surrounding Unicode spaces) and do not even agree with each other: `"²".isdigit()` is True and
`int("²")` raises. A signed time must be written as the scheme says (ASCII digits), or it is refused.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time

import pytest

from leadflow.sources import WEBHOOK_PROVIDERS
from tests.support.callbacks import TENCENT_CLICK, tencent_path
from tests.support.providers import tiktok_headers, webflow_headers
from tests.support.signing import dev_secret, standard_webhook_headers

ARABIC_INDIC = str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")
FULLWIDTH = str.maketrans("0123456789", "０１２３４５６７８９")
WEBFLOW = {"triggerType": "form_submission", "payload": {"id": "hdr-1", "data": {"Email": "hdr@orbit.dev"}}}
GENERIC = {"type": "lead.submitted", "data": {"email": "hdr@orbit.dev"}}
TIKTOK = {"event": "lead.create", "content": json.dumps({"lead_id": "7301234567890000009"})}

# Values a client may put in a header: HTTP allows any Latin-1 octet but controls (plus some beyond).
TRICKY = [
    "²",
    "¹²³",
    "1²",
    "¼",
    "½1700000000",
    "\xa01700000000",
    "1700000000\xa0",
    "\x85",
    "ÿ" * 40,
    "1_700_000_000",
    "+1700000000",
    "-1",
    "0x10",
    "1e9",
    "9" * 400,
    "١٧٠٠٠٠٠٠٠٠",
    "",
    " ",
]
# header → the providers that parse it
PARSED_HEADERS = {
    "x-webflow-timestamp": ["webflow"],
    "x-webflow-signature": ["webflow"],
    "webhook-timestamp": ["generic"],
    "webhook-id": ["generic"],
    "webhook-signature": ["generic"],
    "tiktok-signature": ["tiktok"],
    "x-li-signature": ["linkedin"],
    "x-hub-signature-256": ["meta"],
    "typeform-signature": ["typeform"],
    "tally-signature": ["tally"],
    "origin": ["hubspot-forms"],
    "content-type": sorted(WEBHOOK_PROVIDERS),
}


def _ms() -> str:
    return str(int(time.time() * 1000))


@pytest.mark.parametrize("timestamp", ["²", "¹²³", "1²", "³" * 13])
def test_webflow_timestamp_that_isdigit_but_is_no_number_is_401_not_500(api, aws, timestamp):
    # Given a Webflow delivery whose timestamp header passes str.isdigit() but not int()
    body = json.dumps(WEBFLOW).encode()
    headers = {**webflow_headers(body), "x-webflow-timestamp": timestamp}
    # When it is delivered
    reply = api.request("POST", "/v1/webhooks/webflow", body, headers)
    # Then it is refused as a bad signature, not a server error
    assert reply.status == 401, reply.body


@pytest.mark.parametrize("digits", [ARABIC_INDIC, FULLWIDTH], ids=["arabic-indic", "fullwidth"])
def test_signed_times_in_other_digits_are_refused(api, aws, digits):
    # Given deliveries correctly signed over a current time written in non-ASCII digits (int() reads them)
    now = str(int(time.time())).translate(digits)
    generic = json.dumps(GENERIC).encode()
    tiktok = json.dumps(TIKTOK).encode()
    webflow = json.dumps(WEBFLOW).encode()
    webflow_ts = _ms().translate(digits)
    secret = dev_secret("webhooks/webflow").encode()
    webflow_sig = hmac.new(secret, webflow_ts.encode() + b":" + webflow, hashlib.sha256).hexdigest()
    cases = {
        "generic": (generic, standard_webhook_headers(generic, dev_secret("webhooks/generic"), "msg_digits", now)),
        "tiktok": (tiktok, tiktok_headers(tiktok, timestamp=now)),
        "webflow": (
            webflow,
            {"content-type": "application/json", "x-webflow-timestamp": webflow_ts, "x-webflow-signature": webflow_sig},
        ),
    }
    # When they are delivered
    answers = {name: api.request("POST", f"/v1/webhooks/{name}", b, h).status for name, (b, h) in cases.items()}
    # Then each is refused: the scheme's time is ASCII digits
    assert answers == {"generic": 401, "tiktok": 401, "webflow": 401}


def test_signed_time_with_digit_separators_is_refused(api, aws):
    # Given a Standard Webhooks delivery signed over "1_795_000_000"-style time (int() accepts underscores)
    now = int(time.time())
    stamp = f"{now // 1000000}_{now % 1000000:06d}"
    body = json.dumps(GENERIC).encode()
    headers = standard_webhook_headers(body, dev_secret("webhooks/generic"), "msg_underscore", stamp)
    # Then it is refused
    assert api.request("POST", "/v1/webhooks/generic", body, headers).status == 401


def test_click_time_in_other_digits_is_not_a_time(api, aws):
    # Given a Tencent click callback whose click_time is a current time in Arabic-Indic digits
    click_time = str(int(time.time())).translate(ARABIC_INDIC)
    reply = api.request("GET", tencent_path(click_time=click_time))
    # Then the click is acknowledged, but stored without a click time
    assert reply.status == 200
    from leadflow.config import settings

    (item,) = [i for i in aws.scan(TableName=settings().table_name)["Items"] if i["pk"]["S"].startswith("CLICK#")]
    assert TENCENT_CLICK in item["pk"]["S"]
    assert "click_time" not in json.dumps(item)


def test_every_parsed_header_with_any_latin1_value_is_answered_below_500(api):
    # Given every header some provider parses (the rest of the request validly signed for every scheme), and
    # values from the Latin-1 range HTTP allows, plus look-alike digits
    body = json.dumps(GENERIC).encode()
    signed = {
        **tiktok_headers(body),
        **webflow_headers(body),
        **standard_webhook_headers(body, dev_secret("webhooks/generic"), "msg_latin1"),
    }
    failures = []
    for name, providers in PARSED_HEADERS.items():
        for provider in providers:
            for value in TRICKY:
                headers = {**signed, name: f"t={value},s=00" if name == "tiktok-signature" else value}
                # When the request is sent
                reply = api.request("POST", f"/v1/webhooks/{provider}", body, headers)
                # Then it is never a server error
                if reply.status >= 500:
                    failures.append((provider, name, value, reply.status))
    # And the click callbacks' URL headers likewise
    for name in ("host", "x-forwarded-proto"):
        for value in TRICKY:
            reply = api.request("GET", "/v1/callbacks/baidu?click_id=x&sign=" + "0" * 32, headers={name: value})
            if reply.status >= 500:
                failures.append(("baidu", name, value, reply.status))
    assert failures == []


@pytest.mark.parametrize(
    "origin", ["http://localhost:8080\n", " http://localhost:8080", "http://localhost:٨٠٨٠", "http://localhost:８０"]
)
def test_an_origin_that_is_not_ascii_scheme_host_port_is_403_and_never_echoed(api, origin):
    # Given a browser form post whose Origin only looks like an allowed one (whitespace, non-ASCII digits)
    reply = api.post_form("website", {"email": "origin@orbit.dev"}, headers={"origin": origin})
    # Then it is refused and the value is not echoed into a response header
    assert reply.status == 403, reply.headers
    assert "access-control-allow-origin" not in reply.headers
