"""Contract: "Errors never leak internals and never answer 5xx for bad input."

Property, for every HTTP route of template.yaml (new routes are picked up automatically): whatever
body, headers, path parameters and query string a caller sends, the answer is below 500, and every
4xx is `application/problem+json` with `type`, `title`, `status` (equal to the HTTP status) and `detail`.

The requests go through the real handlers with API Gateway payload-2.0 events against moto in-process.
Webhook requests are often signed with the development secret, so random bodies get past the
signature check and reach parsing, schema validation and the store.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import string
import time
import uuid
from functools import cache
from urllib.parse import quote, urlencode

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from leadflow.services.quarantine import list_quarantine
from leadflow.sources import CALLBACK_PLATFORMS, WEBHOOK_PROVIDERS
from leadflow_local.apigw import LambdaContext, build_event, load_function
from leadflow_local.template import http_routes, load_template
from tests.support.api import Reply
from tests.support.providers import tally_headers, typeform_headers, webflow_headers
from tests.support.signing import dev_secret, standard_webhook_headers

BODY_LIMIT = 256 * 1024
PROBLEM_FIELDS = {"type", "title", "status", "detail"}

ROUTES = sorted({(method, path) for method, path, *_ in http_routes(load_template())})

# Real values for path parameters (the rest is junk), so the examples reach past the 404 of routing.
REAL_PATH_VALUES = {
    "form_id": ["website", "hubspot-forms"],
    "provider": sorted(WEBHOOK_PROVIDERS),
    "platform": sorted(CALLBACK_PLATFORMS),
    "lead_id": [],  # filled with the id of a lead created before the examples run
}
# Hypothesis examples per route: the capture routes carry the deep code paths.
EXAMPLES = {
    ("POST", "/v1/webhooks/{provider}"): 300,
    ("POST", "/v1/forms/{form_id}"): 150,
    ("POST", "/v1/events"): 150,
}
# Routes signed (Standard Webhooks) with a secret other than webhooks/generic
ROUTE_SECRETS = {"/v1/events": "events"}
DEFAULT_EXAMPLES = 60


def provider_signatures(body: bytes, now: int) -> dict[str, str]:
    def mac(key: str, message: bytes) -> bytes:
        return hmac.new(key.encode(), message, hashlib.sha256).digest()

    meta, linkedin, tiktok = dev_secret("webhooks/meta"), dev_secret("webhooks/linkedin"), dev_secret("webhooks/tiktok")
    tiktok_secret = tiktok["client_secret"] if isinstance(tiktok, dict) else tiktok
    signed = {
        **typeform_headers(body),
        **tally_headers(body),
        **webflow_headers(body),
        "x-hub-signature-256": "sha256=" + mac(meta["app_secret"], body).hex(),
        "x-li-signature": mac(linkedin["client_secret"], b"hmacsha256=" + body).hex(),
        "tiktok-signature": f"t={now},s=" + mac(tiktok_secret, f"{now}.".encode() + body).hex(),
    }
    return {name: value for name, value in signed.items() if name != "content-type"}


# ------------------------------------------------------------------------------------------ checking
def assert_no_5xx_and_problem_json(reply: Reply, what: str) -> None:
    assert reply.status < 500, f"{what} answered {reply.status}: {reply.body[:500]}"
    if reply.status >= 400:
        assert reply.headers.get("content-type") == "application/problem+json", (what, reply.headers)
        problem = json.loads(reply.body)
        assert isinstance(problem, dict), reply.body
        assert problem.keys() >= PROBLEM_FIELDS, reply.body
        assert problem["status"] == reply.status, reply.body
        assert isinstance(problem["title"], str) and problem["title"], reply.body
        assert isinstance(problem["detail"], str) and problem["detail"], reply.body
        assert "Traceback" not in reply.body


@cache
def _handler_for(method: str, path: str):
    for route_method, route_path, _logical_id, code_uri, _auth in http_routes(load_template()):
        if (route_method, route_path) == (method, path):
            module, attribute = load_function(code_uri)
            return getattr(module, attribute), code_uri.strip("/").split("/")[-1]
    raise LookupError(f"{method} {path} is not a route of template.yaml")


def invoke(method: str, route: str, event: dict) -> Reply:
    """Run the route's handler on a raw event. An exception escaping the handler is what API Gateway
    turns into a 500 (Lambda invocation error), so it is reported as one."""
    handler, name = _handler_for(method, route)
    try:
        result = handler(event, LambdaContext(name))
    except Exception as exc:  # noqa: BLE001 - that is the property under test
        return Reply(500, {}, f"unhandled {type(exc).__name__}: {exc}"[:500])
    headers = {k.lower(): v for k, v in (result.get("headers") or {}).items()}
    return Reply(result["statusCode"], headers, result.get("body") or "")


def send(method: str, route: str, params: dict[str, str], query: str, headers: dict, body: bytes) -> Reply:
    """The request as API Gateway would deliver it to the route's function."""
    path = route
    for name, value in params.items():
        path = path.replace("{" + name + "}", value)
    url = path + ("?" + query if query else "")
    event = build_event(method, url, route_key=f"{method} {route}", path_parameters=params, headers=headers, body=body)
    return invoke(method, route, event)


# ---------------------------------------------------------------------------------------- strategies
def _sign(body: bytes, msg_id: str, timestamp: int, secret: str) -> str:
    key = base64.b64decode(secret.removeprefix("whsec_"))
    return base64.b64encode(hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()).decode()


percent = st.integers(0, 99)
printable_text = st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=60)
junk_text = st.text(max_size=200)  # any code point but surrogates, controls included
# Any float, NaN and infinities included: DynamoDB holds only 38 digits within 1e-130..1e126, and what it
# cannot hold must be refused as bad input (see test_unrepresentable_numbers_in_attributes_are_refused_not_503).
dynamo_floats = st.floats()
json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**63), 2**63),
    dynamo_floats,
    junk_text,
    st.sampled_from(["", " ", "0", "true", "on", "null", "NaN", "1e999", "<script>", "'; DROP TABLE x;--"]),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=12), inner, max_size=4)),
    max_leaves=12,
)

LEAD_KEYS = [
    "email",
    "phone",
    "first_name",
    "last_name",
    "full_name",
    "company",
    "job_title",
    "company_size",
    "industry",
    "country",
    "message",
    "consent_email",
    "consent_sms",
    "page_url",
    "landing_url",
    "referrer",
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "gclid",
    "fbclid",
    "fbc",
    "_fbc",
    "_fbp",
    "_gcl_aw",
    "hubspotutk",
    "submission_id",
    "external_id",
    "submitted_at",
    "attributes",
    "consent",
    "_hp",
    "_redirect",
    "unknown_field",
]
plausible_values = st.sampled_from(
    [
        "ada@example.io",
        " Ada.Lovelace+news@Gmail.com ",
        "mailto:kim@orbit.dev",
        "not-an-email",
        "a@b",
        "@",
        "+44 20 7946 0958",
        "(415) 555-2671",
        "12",
        "+",
        "++1",
        "0000000000000000000000",
        "٣٣٣٣٣٣٣٣",
        "United States",
        "Deutschland",
        "中国",
        "UK",
        "zz",
        "11-50",
        "1,000+",
        "10000+",
        "5000",
        "-5",
        "https://www.example.com/p?utm_source=google&gclid=CjAbC&fbclid=IwAR",
        "http://[::1",
        "javascript:alert(1)",
        "GCL.1700000000.CjAbC",
        "GCL..",
        "fb.1.1700000000000.IwAR",
        "2026-11-22T10:00:00Z",
        "2026-11-22T10:00:00+05:00",
        "9999-12-31T23:59:59Z",
        "0001-01-01T00:00:00-23:59",
        "1700000000",
        "99999999999999999999",
        "https://www.example.com/thanks",
        "https://evil.example.net/",
        "on",
        "off",
        "yes",
    ]
)
lead_values = st.one_of(plausible_values, json_values, st.integers(0, 10**6))


@st.composite
def lead_shaped(draw) -> dict:
    """A flat lead object with random types and values at a random mix of known and unknown keys
    (or, a third of the time, a valid lead with random text in its free-text fields, to reach the store)."""
    if draw(percent) < 33:
        return {
            "email": draw(
                st.sampled_from(["ada@example.io", "grace@navy-labs.io", "Lin@Tidal.dev", "x@mailinator.com"])
            ),
            "phone": draw(st.sampled_from(["+44 20 7946 0958", "(415) 555-2671", "12", "+1 202-555-0143"])),
            "first_name": draw(st.text(max_size=50)),
            "company": draw(st.text(max_size=50)),
            "country": draw(st.sampled_from(["UK", "Deutschland", "中国", "zz", ""]) | st.text(max_size=20)),
            "page_url": "https://www.example.com/?" + draw(st.text(max_size=80)),
            "utm_source": draw(st.text(max_size=30)),
            "attributes": draw(
                st.dictionaries(
                    st.from_regex(r"[A-Za-z0-9_]{1,10}", fullmatch=True),
                    st.text(max_size=40) | st.integers(-1000, 1000) | st.booleans(),
                    max_size=3,
                )
            ),
        }
    keys = draw(st.lists(st.sampled_from(LEAD_KEYS), min_size=0, max_size=8, unique=True))
    if draw(percent) < 20:
        keys.append(draw(st.text(max_size=10)))
    # mostly plausible strings, so a fair share of examples pass the schema and reach the store
    doc = {key: draw(plausible_values if draw(percent) < 85 else lead_values) for key in keys}
    if draw(st.booleans()):
        doc["email"] = draw(st.sampled_from(["ada@example.io", "grace@navy-labs.io", "lin@tidal.dev"]))
    if "attributes" in doc and draw(st.booleans()):
        doc["attributes"] = draw(
            st.dictionaries(st.from_regex(r"[A-Za-z0-9_.:-]{1,10}", fullmatch=True), lead_values, max_size=5)
        )
    if "consent" in doc and draw(st.booleans()):
        doc["consent"] = draw(
            st.dictionaries(
                st.from_regex(r"[a-z0-9_]{1,8}", fullmatch=True), st.booleans() | plausible_values, max_size=3
            )
        )
    return doc


EVENT_TYPES = ["email_open", "email_click", "page_view", "webinar_attended", "meeting_booked", "unsubscribe", "bounce"]


@st.composite
def event_shaped(draw) -> dict:
    """An engagement event: mostly plausible (so it reaches the store), with random values and keys mixed in."""
    event = {
        "type": draw(st.sampled_from([*EVENT_TYPES, "teleport", ""]) | json_scalars),
        "occurred_at": draw(
            st.sampled_from(["2026-11-22T10:00:00Z", "9999-12-31T23:59:59Z", "2019-01-01T00:00:00+05:00", "now"])
            | st.just(time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
            | json_scalars
        ),
        "properties": draw(
            st.dictionaries(st.sampled_from(["url", "product", "campaign", ""]) | st.text(max_size=70), lead_values)
            | json_values
        ),
    }
    who = draw(st.sampled_from(["email", "lead_id", "both", "none"]))
    if who in ("email", "both"):
        event["email"] = draw(st.sampled_from(["ada@example.io", "nobody@example.io", "bad@"]) | json_scalars)
    if who in ("lead_id", "both"):
        event["lead_id"] = draw(st.sampled_from(["00000000-0000-0000-0000-000000000000", "zz"]) | json_scalars)
    if draw(percent) < 20:
        event["id"] = draw(st.text(max_size=300) | json_scalars)
    for key in draw(st.lists(st.sampled_from(list(event)), max_size=1)):
        event.pop(key)
    return event


@st.composite
def events_body(draw) -> bytes:
    shape = draw(st.sampled_from(["one", "array", "object"]))
    if shape == "one":
        return json.dumps(draw(event_shaped())).encode()
    events = draw(st.lists(event_shaped() | json_values, max_size=4) | st.just([{"type": "email_open"}] * 101))
    return json.dumps(events if shape == "array" else {"events": events}).encode()


@st.composite
def big_body(draw) -> bytes:
    """Bodies at and beyond the 256 KiB cap, plain or as JSON padding around a lead."""
    size = draw(
        st.sampled_from([BODY_LIMIT - 300, BODY_LIMIT - 1, BODY_LIMIT, BODY_LIMIT + 1, 300 * 1024, 4 * BODY_LIMIT + 8])
    )
    filler = draw(st.sampled_from(["x", "é", "\u2603"]))
    if draw(st.booleans()):
        return (filler * size).encode()[:size]
    lead = {"type": "lead.submitted", "data": {"email": "big@example.io", "message": "m" * 100}}
    skeleton = json.dumps({**lead, "pad": ""}).encode()
    padding = "y" * max(0, size - len(skeleton))
    return json.dumps({**lead, "pad": padding}).encode()


@st.composite
def bodies(draw, usual: list[str]) -> bytes:
    """Any kind of body; half the time one of the kinds the route `usual`ly reads."""
    kinds = ["empty", "binary", "text", "json", "lead", "envelope", "urlencoded", "big", "events"]
    kind = draw(st.sampled_from(usual if draw(percent) < 50 else kinds))
    if kind == "empty":
        return b""
    if kind == "binary":
        return draw(st.binary(max_size=2000))
    if kind == "text":
        return draw(st.text(max_size=2000)).encode("utf-8")
    if kind == "json":
        return json.dumps(draw(json_values)).encode()
    if kind == "lead":
        return json.dumps(draw(lead_shaped())).encode()
    if kind == "events":
        return draw(events_body())
    if kind == "envelope":
        envelope = {
            "type": draw(st.sampled_from(["lead.submitted", "lead.submitted", "lead.deleted", ""]) | json_scalars),
            "timestamp": draw(st.sampled_from(["2026-11-22T10:00:00Z", 1700000000]) | json_scalars),
            "data": draw(lead_shaped() | json_values),
        }
        for key in draw(st.lists(st.sampled_from(["type", "timestamp", "data"]), max_size=1)):
            envelope.pop(key)
        return json.dumps(envelope).encode()
    if kind == "urlencoded":
        doc = draw(lead_shaped())
        pairs = [(str(k), v if isinstance(v, str) else json.dumps(v)) for k, v in doc.items()]
        if draw(st.booleans()):
            return urlencode(pairs).encode()
        return draw(
            st.sampled_from(["a=%ZZ&b", "=&=&", "%" * 10, "email=%FF%FE", "a=1;b=2", "&" * 1200]) | junk_text
        ).encode("utf-8")
    return draw(big_body())


CONTENT_TYPES = [
    "application/json",
    "application/json; charset=utf-8",
    "application/x-www-form-urlencoded",
    "application/x-www-form-urlencoded; charset=UTF-8",
    "APPLICATION/JSON",
    "application/vnd.api+json",
    "text/plain",
    "application/xml",
    "multipart/form-data; boundary=----x",
    "",
    ";",
    "application/json;;;",
]
# Header values as HTTP allows them (RFC 9110 field-value: VCHAR, SP, HTAB and obs-text 0x80-0xFF, i.e. the
# whole Latin-1 range but controls), and numbers that only look like numbers (str.isdigit() accepts "²").
latin1_chars = st.one_of(
    st.just("\t"),
    st.characters(min_codepoint=0x20, max_codepoint=0x7E),
    st.characters(min_codepoint=0x80, max_codepoint=0xFF),
)
latin1_text = st.text(latin1_chars, max_size=60)
latin1_values = st.one_of(
    latin1_text,
    st.text(st.sampled_from("0123456789²³¹¼½¾ \xa0"), min_size=1, max_size=16),  # digits and look-alikes
    st.sampled_from(["²", "¹²³", "1²", "¼", "\xa01700000000", "1_700_000_000", "+1700000000", "-0", "0x10", "1e9"]),
    st.tuples(st.integers(0, 2**45), latin1_text).map(lambda pair: f"{pair[0]}{pair[1]}"),
    st.tuples(latin1_text, st.integers(0, 2**45)).map(lambda pair: f"{pair[0]}{pair[1]}"),
)
# Every header some route parses (beyond content-type, origin and cookie, drawn separately).
PARSED_HEADERS = [
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
    "x-webflow-timestamp",
    "x-webflow-signature",
    "tiktok-signature",
    "x-li-signature",
    "x-hub-signature-256",
    "typeform-signature",
    "tally-signature",
    "host",
    "x-forwarded-proto",
]
ORIGINS = [
    "http://localhost:8080",
    "http://127.0.0.1",
    "http://[::1]:3000",
    "https://attacker.example",
    "null",
    "",
]


@st.composite
def header_sets(draw, body: bytes, usual_types: list[str], secret_name: str = "webhooks/generic") -> dict[str, str]:
    headers: dict[str, str] = {}
    # mostly a content type the route reads, so the examples get past the 415
    content_type = draw(
        st.sampled_from(usual_types)
        if draw(percent) < 60
        else st.none() | st.sampled_from(CONTENT_TYPES) | printable_text | latin1_text
    )
    if content_type is not None:
        headers["content-type"] = content_type
    origin = draw(st.none() if draw(percent) < 50 else st.sampled_from(ORIGINS) | printable_text | latin1_text)
    if origin is not None:
        headers["origin"] = origin
    if draw(st.booleans()):
        headers["cookie"] = draw(
            st.sampled_from(["_fbc=fb.1.1.AbC; _fbp=fb.1.2.3", "_gcl_aw=GCL.1.CjAbC", "=; ;="]) | printable_text
        )
    signing = (
        "valid" if draw(percent) < 50 else draw(st.sampled_from(["none", "junk", "stale", "wrong-secret", "latin1"]))
    )
    if signing != "none":
        msg_id = draw(
            st.sampled_from(["msg_1", "msg_1", "msg_2"]) | st.text(string.printable.strip(), min_size=1, max_size=40)
        )
        now = int(time.time())
        timestamp = now - 3600 if signing == "stale" else now
        secret = dev_secret(secret_name)
        if signing == "wrong-secret":
            secret = "whsec_" + base64.b64encode(b"not the dev secret").decode()
        headers.update(
            {
                "webhook-id": msg_id,
                "webhook-timestamp": str(timestamp),
                "webhook-signature": f"v1,{_sign(body, msg_id, timestamp, secret)}",
            }
        )
        if signing in ("valid", "latin1"):
            # the same body validly signed for every provider's own scheme, so each reaches its parser
            headers.update(provider_signatures(body, now))
        if signing == "latin1":
            # then one to three parsed headers replaced by any value HTTP allows
            for name in draw(st.lists(st.sampled_from(PARSED_HEADERS), min_size=1, max_size=3, unique=True)):
                value = draw(latin1_values)
                headers[name] = f"t={value},s=00" if name == "tiktok-signature" and draw(st.booleans()) else value
        if signing == "junk":
            for name in draw(
                st.lists(
                    st.sampled_from(["webhook-id", "webhook-timestamp", "webhook-signature"]),
                    min_size=1,
                    max_size=3,
                    unique=True,
                )
            ):
                headers[name] = draw(
                    st.sampled_from(["", "v1,", "v1,!!!", "v2,abc", "-1", "1e10", "nan"]) | printable_text
                )
    return headers


@st.composite
def path_values(draw, name: str, real: dict[str, list[str]]) -> str:
    """Mostly a real value (to reach past routing), else unicode junk, raw or percent-encoded."""
    choices = real.get(name) or []
    if choices and draw(percent) < 70:
        return draw(st.sampled_from(choices))
    junk = st.text(
        st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="/?#%"), min_size=1, max_size=40
    )
    encoded = st.text(min_size=1, max_size=40).map(lambda s: quote(s, safe=""))  # anything, percent-encoded
    return draw(
        junk
        | encoded
        | st.sampled_from(
            [
                "..",
                ".",
                "%",
                "%2F",
                "website%00",
                "WEBSITE",
                " website",
                "typeform",
                "meta",
                "hubspot-forms",
                "Generic",
            ]
        )
    )


real_queries = st.sampled_from(["ada@example.io", " ADA@Example.IO ", "grace@navy-labs.io", "nobody@example.io"]).map(
    lambda e: urlencode({"email": e})
)
queries = st.one_of(
    st.just(""),
    st.dictionaries(
        st.sampled_from(["email", "email", "x", ""]),
        st.sampled_from(["ada@example.io", " ADA@Example.IO ", "", "a@b", "%00"]) | junk_text,
        max_size=2,
    ).map(urlencode),
    st.lists(st.sampled_from(["email=a@b.io", "email=", "email", "email=%ZZ", "=", "&"]), max_size=3).map("&".join),
    st.text(st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="#"), max_size=60),
)


# route prefix → (body kinds, content types) it reads, drawn half the time so examples go deep
USUAL = {
    "/v1/webhooks/": (["envelope"], CONTENT_TYPES[:2]),
    "/v1/forms/": (["lead", "urlencoded"], CONTENT_TYPES[:4]),
    "/v1/events": (["events"], CONTENT_TYPES[:2]),
}


@st.composite
def requests_for(draw, route: str, real: dict[str, list[str]]):
    params = {name: draw(path_values(name, real)) for name in re.findall(r"{(\w+)\+?}", route)}
    usual_bodies, usual_types = next(
        ((b, t) for prefix, (b, t) in USUAL.items() if route.startswith(prefix)),
        (["json"], CONTENT_TYPES[:2]),
    )
    body = draw(bodies(usual_bodies))
    query = draw(real_queries if draw(percent) < 40 else queries)
    secret = ROUTE_SECRETS.get(route, "webhooks/generic")
    return params, query, draw(header_sets(body, usual_types, secret)), body


# ------------------------------------------------------------------------------------------ property
@pytest.mark.parametrize(("method", "route"), ROUTES, ids=[f"{m} {p}" for m, p in ROUTES])
def test_no_input_makes_any_route_answer_5xx(api, method, route):
    # Given a stored lead (so GET/DELETE sometimes find a real one and webhooks sometimes merge into it)
    seeded = api.post_generic({"email": "ada@example.io", "phone": "+44 20 7946 0958"}, "msg_seed")
    assert seeded.status == 200
    real = {**REAL_PATH_VALUES, "lead_id": [seeded.json["leads"][0]["lead_id"], str(uuid.uuid4())]}

    @settings(
        max_examples=EXAMPLES.get((method, route), DEFAULT_EXAMPLES),
        deadline=None,
        suppress_health_check=[
            HealthCheck.function_scoped_fixture,
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.filter_too_much,
        ],
    )
    @given(request=requests_for(route, real))
    def any_request_is_answered_below_500(request):
        params, query, headers, body = request
        # When anything at all is sent to the route
        reply = send(method, route, params, query, headers, body)
        # Then the answer is not a server error, and refusals are problem documents
        assert_no_5xx_and_problem_json(reply, f"{method} {route} {params} ?{query[:80]}")

    any_request_is_answered_below_500()


def test_every_route_of_the_template_is_covered():
    # Given the routes of template.yaml, Then the property above runs for each (and the known capture routes)
    assert ("POST", "/v1/webhooks/{provider}") in ROUTES
    assert ("POST", "/v1/forms/{form_id}") in ROUTES
    assert ("OPTIONS", "/v1/forms/{form_id}") in ROUTES
    assert ("GET", "/health") in ROUTES
    assert ("POST", "/v1/events") in ROUTES
    assert {("GET", "/v1/leads/{lead_id}"), ("GET", "/v1/leads"), ("DELETE", "/v1/leads/{lead_id}")} <= set(ROUTES)


# ------------------------------------------------------------------------------- deterministic cases
def signed_webhook(body: bytes, msg_id: str = "msg_nasty", content_type: str = "application/json") -> dict:
    headers = standard_webhook_headers(body, dev_secret("webhooks/generic"), msg_id)
    headers["content-type"] = content_type
    return headers


def _nested(depth: int) -> bytes:
    return b'{"a":' * depth + b"1" + b"}" * depth


NASTY_BODIES = {
    "json null": b"null",
    "empty array": b"[]",
    "json string": b'"str"',
    "json number": b"42",
    "NaN at top level": b"NaN",
    "NaN in a field": b'{"type":"lead.submitted","data":{"email":"nan@example.io","first_name":NaN}}',
    "Infinity as size": b'{"type":"lead.submitted","data":{"email":"i@example.io","company_size":Infinity}}',
    "10000 levels of objects": _nested(10_000),
    "10000 levels of arrays": b"[" * 10_000 + b"]" * 10_000,
    "deep nesting under data": b'{"type":"lead.submitted","data":' + _nested(10_000) + b"}",
    "invalid UTF-8": b'{"email":"\xff\xfe@example.io"}',
    "lone surrogate escape": b'{"type":"lead.submitted","data":{"email":"\\ud800@example.io"}}',
    "NUL in a field": b'{"type":"lead.submitted","data":{"email":"nul@example.io","first_name":"a\\u0000b"}}',
    "empty body": b"",
    "data is a string": b'{"type":"lead.submitted","data":"ada@example.io"}',
    "data is a list": b'{"type":"lead.submitted","data":[{"email":"ada@example.io"}]}',
    "data is null": b'{"type":"lead.submitted","data":null}',
    "duplicate keys": b'{"type":"lead.submitted","data":{"email":"x@example.io","email":7}}',
    "int with 5000 digits": b'{"type":"lead.submitted","data":{"email":"n@example.io","company_size":'
    + b"9" * 5000
    + b"}",
    "truncated JSON": b'{"type":"lead.submitted","data":{',
    "BOM before JSON": b'\xef\xbb\xbf{"type":"lead.submitted","data":{"email":"bom@example.io"}}',
}


def test_nasty_bodies_are_refused_or_accepted_never_5xx(api):
    for case, body in NASTY_BODIES.items():
        # Given a nasty body, signed correctly so the webhook reads it, and sent as-is to the form
        for route, params, headers in (
            ("/v1/webhooks/{provider}", {"provider": "generic"}, signed_webhook(body, f"msg_{case}")),
            ("/v1/forms/{form_id}", {"form_id": "website"}, {"content-type": "application/json"}),
            (
                "/v1/forms/{form_id}",
                {"form_id": "website"},
                {"content-type": "application/x-www-form-urlencoded"},
            ),
        ):
            # When it is posted
            reply = send("POST", route, params, "", headers, body)
            # Then it is never a server error
            assert_no_5xx_and_problem_json(reply, f"{case}: {route} {headers['content-type']}")


def test_bodies_that_are_not_a_json_object_are_400_malformed(api):
    for body in (b"null", b"[]", b'"str"', b"", _nested(10_000), b"\xff\xfe"):
        # Given a correctly signed delivery whose body is not a JSON object
        reply = send("POST", "/v1/webhooks/{provider}", {"provider": "generic"}, "", signed_webhook(body), body)
        # Then the sender is told the body is malformed
        assert (reply.status, reply.json["title"]) == (400, "Malformed body"), body[:20]


def test_data_that_is_not_an_object_is_quarantined_naming_data(api):
    body = b'{"type":"lead.submitted","data":"ada@example.io"}'
    reply = send("POST", "/v1/webhooks/{provider}", {"provider": "generic"}, "", signed_webhook(body), body)
    (item,) = list_quarantine()
    assert (reply.status, reply.json["quarantined"]) == (200, 1)
    assert [r["field"] for r in item["reason"]] == ["data"]
    assert "ada@example.io" not in reply.body + json.dumps(item)  # the submitted value is not echoed back


def _raw_event(route: str, params: dict, body: str, *, base64_flag: bool, headers: dict) -> dict:
    path = route
    for name, value in params.items():
        path = path.replace("{" + name + "}", value)
    event = build_event("POST", path, route_key=f"POST {route}", path_parameters=params, headers=headers)
    event["body"] = body
    event["isBase64Encoded"] = base64_flag
    return event


def test_base64_flagged_body_that_is_not_base64_is_a_client_error(api):
    for raw in ("!!!not base64!!!", "abc", "a===", "\u2603", "=" * 10):
        for route, params in (
            ("/v1/webhooks/{provider}", {"provider": "generic"}),
            ("/v1/forms/{form_id}", {"form_id": "website"}),
        ):
            # Given API Gateway flags the body as base64 but it does not decode
            event = _raw_event(route, params, raw, base64_flag=True, headers={"content-type": "application/json"})
            # When it reaches the function
            reply = invoke("POST", route, event)
            # Then it is refused as a client error, never a crash
            assert_no_5xx_and_problem_json(reply, f"{route} {raw!r}")
            assert 400 <= reply.status < 500


def test_base64_body_decoding_to_invalid_utf8_json_is_400(api):
    body = base64.b64encode(b'{"email":"\xff@x.io"}').decode()
    event = _raw_event(
        "/v1/forms/{form_id}",
        {"form_id": "website"},
        body,
        base64_flag=True,
        headers={"content-type": "application/json"},
    )
    reply = invoke("POST", "/v1/forms/{form_id}", event)
    assert reply.status == 400
    assert reply.headers["content-type"] == "application/problem+json"


def test_body_one_byte_over_256_kib_is_413_and_at_the_limit_is_read(api):
    # Given a signed delivery exactly at the cap and one a byte over it
    at_limit = big_body_of(BODY_LIMIT)
    over = big_body_of(BODY_LIMIT + 1)
    ok = send(
        "POST",
        "/v1/webhooks/{provider}",
        {"provider": "generic"},
        "",
        signed_webhook(at_limit, "m_at"),
        at_limit,
    )
    too_big = send("POST", "/v1/webhooks/{provider}", {"provider": "generic"}, "", signed_webhook(over, "m_over"), over)
    # Then the first is captured and the second is 413
    assert ok.status == 200, ok.body[:300]
    assert too_big.status == 413
    assert too_big.json["status"] == 413


def big_body_of(size: int) -> bytes:
    lead = {"type": "lead.submitted", "data": {"email": "cap@example.io"}}
    skeleton = len(json.dumps({**lead, "pad": ""}).encode())
    body = json.dumps({**lead, "pad": "y" * (size - skeleton)}).encode()
    assert len(body) == size
    return body


# ------------------------------------------------------------- regressions of bugs this property test found
def test_unrepresentable_numbers_in_attributes_are_refused_not_503(api):
    for number in (b"NaN", b"Infinity", b"-Infinity", b"1e300", b"1e-300"):
        # Given a signed delivery whose attribute is a number DynamoDB cannot store
        body = b'{"type":"lead.submitted","data":{"email":"num@example.io","attributes":{"score":' + number + b"}}}"
        # When it is delivered
        reply = send(
            "POST",
            "/v1/webhooks/{provider}",
            {"provider": "generic"},
            "",
            signed_webhook(body, f"msg_{number.decode()}"),
            body,
        )
        # Then the sender is not told to retry (it was 503 "retry shortly", so the provider retried forever):
        # 400 when it is not JSON, else acknowledged and quarantined (a signed delivery validation refuses)
        assert reply.status in (400, 200), (number, reply.body)
        if reply.status == 200:
            assert reply.json["quarantined"] == 1 and reply.json["leads"] == [], (number, reply.body)


def test_overlong_webhook_id_is_refused_not_503(api):
    # Given a correctly signed delivery whose webhook-id is 3000 characters long
    body = b'{"type":"lead.submitted","data":{"email":"longid@example.io"}}'
    reply = send("POST", "/v1/webhooks/{provider}", {"provider": "generic"}, "", signed_webhook(body, "m" * 3000), body)
    # Then it is a client error, not "temporarily unavailable"
    assert reply.status < 500, reply.body


def test_merging_two_large_submissions_is_never_503(api):
    # Given two valid deliveries for one person, each under the 256 KiB cap: 49 attributes of 4900 chars
    replies = []
    for n, letter in enumerate("ab"):
        data = {"email": "big@example.io", "attributes": {f"{letter}{i}": letter * 4900 for i in range(49)}}
        body = json.dumps({"type": "lead.submitted", "data": data}).encode()
        assert len(body) < BODY_LIMIT
        replies.append(
            send(
                "POST",
                "/v1/webhooks/{provider}",
                {"provider": "generic"},
                "",
                signed_webhook(body, f"msg_big_{n}"),
                body,
            )
        )
    # Then both are accepted (or the second refused as a client error), never a server error
    assert replies[0].status == 200
    assert replies[1].status < 500, replies[1].body


@pytest.mark.parametrize("case", ["redirect", "origin"])
def test_response_headers_never_carry_line_breaks_from_the_request(api, case):
    if case == "redirect":
        body = urlencode({"email": "crlf@example.io", "_redirect": "https://www.example.com/\r\nSet-Cookie: s=1"})
        headers = {"content-type": "application/x-www-form-urlencoded"}
    else:
        body = json.dumps({"email": "crlf@example.io"})
        headers = {"content-type": "application/json", "origin": "http://localhost:1\r\nSet-Cookie: s=1"}
    reply = send("POST", "/v1/forms/{form_id}", {"form_id": "website"}, "", headers, body.encode())
    assert not any("\r" in v or "\n" in v for v in reply.headers.values()), reply.headers
