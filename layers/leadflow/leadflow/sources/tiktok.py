"""`tiktok`: TikTok lead webhooks (pointer-style: the lead is fetched from the API for Business).

Verified (developers.tiktok.com/doc/webhooks-verification): `TikTok-Signature: t=<unix seconds>,s=<hex>`
where `s = hex(HMAC-SHA256(key=client_secret, msg=t + "." + raw body))`; a `t` outside
settings().signature_tolerance is refused (replay protection, as TikTok advises). Envelope
(developers.tiktok.com/doc/webhooks-overview): `{client_key, event, create_time, user_openid,
content: "<JSON string>"}`; `content` is parsed a second time (not valid JSON / not an object → 400).
TikTok delivers at least once and retries for up to 72 h: the lead id is the delivery key and the
external id, so a repeat captures nothing new.

ASSUMPTION (the lead event's `content` is not publicly specified; see wire-formats.md §H): `content`
names the lead — `lead_id` (required), with `page_id` (the instant form), `advertiser_id`, and optionally
`ad_id`, `adgroup_id`, `campaign_id`, `create_time`. It is treated as a pointer and the lead is always
re-fetched from the API (field values are never taken from the notification, nor put on the queue):
  GET {LEADFLOW_TIKTOK_API_URL}/open_api/v1.3/page/lead/get/?advertiser_id=&page_id=&lead_id=
  header `Access-Token: <webhooks/tiktok access_token>`
answering TikTok's usual envelope `{code: 0, message, request_id, data: {lead_data: {<field>: value},
meta_data: {lead_id, page_id, campaign_id, adgroup_id, ad_id, create_time, ...}}}` — the shape TikTok
documents for the lead objects of its instant-form lead APIs (`pages/leads/mock/create/`: `lead_data` +
`meta_data`). The path is our assumption: check it against the Marketing API reference of the account
before going live, it is one constant (LEAD_PATH).
`code != 0` in a 200 answer is TikTok's way of failing: mapped to an ApiError (40100/40105 token → 401,
rate limit 40016/51021 → 429, anything else → 400) so the fetch service retries or dead-letters it.

Secret `webhooks/tiktok`: the client secret as a string, or `{"client_secret", "access_token"}`.
"""

from __future__ import annotations

import json
import re
import time
from typing import Any

from leadflow import schemas
from leadflow.config import settings
from leadflow.domain.model import CLICK_IDS, UTM_PARAMS, LeadInput
from leadflow.errors import ConfigurationError, FieldError, MalformedBody, SignatureInvalid, ValidationFailed
from leadflow.secrets import get_secret, secret_list
from leadflow.sources import http
from leadflow.sources.base import (
    check_timestamp,
    constant_time_equal,
    event_key,
    hmac_sha256,
    lead_input_from_flat,
    parse_time,
)
from leadflow.web import Request, json_body

NAME = "tiktok"
SCHEMA = "tiktok.v1.json"
CONTENT_SCHEMA = "tiktok_lead_content.v1.json"
LEAD_SCHEMA = "lead_input.v1.json"
SECRET = "webhooks/tiktok"
LEAD_PATH = "/open_api/v1.3/page/lead/get/"  # ASSUMPTION, see the module docstring
MAX_HEADER = 512

# Instant-form field keys (TikTok's predefined questions) → lead fields.
FIELD_ALIASES = {
    "email": "email",
    "email_address": "email",
    "work_email": "email",
    "phone_number": "phone",
    "phone": "phone",
    "mobile_phone": "phone",
    "name": "full_name",
    "full_name": "full_name",
    "first_name": "first_name",
    "last_name": "last_name",
    "company_name": "company",
    "company": "company",
    "job_title": "job_title",
    "country": "country",
    "country_region": "country",
}
META_ATTRIBUTES = (
    "page_id",
    "advertiser_id",
    "campaign_id",
    "campaign_name",
    "adgroup_id",
    "adgroup_name",
    "ad_id",
    "ad_name",
)
# TikTok API error codes (answered with HTTP 200): rate limited, and access token missing/invalid/expired.
RATE_LIMIT_CODES = {"40100"}
AUTH_CODES = {"40104", "40105"}


def _secret_value(key: str) -> str:
    value = get_secret(SECRET)
    if isinstance(value, str):
        if key == "client_secret":
            return value
        raise ConfigurationError(f"Secret {SECRET} has no {key}.")
    if isinstance(value, dict) and value.get(key):
        return str(value[key])
    raise ConfigurationError(f"Secret {SECRET} has no {key}.")


# -------------------------------------------------------------------------------------- verification
def _signature_parts(header: str) -> tuple[str | None, list[str]]:
    timestamp, signatures = None, []
    for element in header.split(","):
        prefix, _, value = element.strip().partition("=")
        if prefix == "t":
            timestamp = value.strip()
        elif prefix == "s":
            signatures.append(value.strip().lower())
    return timestamp, signatures


def verify(request: Request, now: float | None = None) -> int:
    now = time.time() if now is None else now
    header = request.header("tiktok-signature") or ""
    if not header or len(header) > MAX_HEADER:
        raise SignatureInvalid("The TikTok-Signature header is missing.")
    timestamp, signatures = _signature_parts(header)
    if not signatures:
        raise SignatureInvalid("The TikTok-Signature header has no signature.")
    stamp = check_timestamp(timestamp, now, settings().signature_tolerance)
    # The secret is the client secret itself (a string, or a rotation list) or an object's client_secret.
    plain = isinstance(get_secret(SECRET), str | list)
    matched = False
    for secret in secret_list(SECRET, None if plain else "client_secret"):  # current first, then previous
        expected = hmac_sha256(secret.encode(), f"{timestamp}.".encode() + request.body).hex()
        matched |= any([constant_time_equal(expected, s) for s in signatures])
    if not matched:
        raise SignatureInvalid("The TikTok-Signature does not match.")
    return stamp


# -------------------------------------------------------------------------------------- notification
def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def parse_content(envelope: dict) -> dict:
    """`content` is a JSON document serialised into a string: parse it a second time."""
    try:
        content = json.loads(envelope["content"], parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:
        raise MalformedBody("content is not a valid JSON string.") from exc
    if not isinstance(content, dict):
        raise MalformedBody("content must hold a JSON object.")
    schemas.check(CONTENT_SCHEMA, content, prefix="content.")
    return content


def parse_pointers(request: Request, verified: int) -> list[dict]:
    envelope = json_body(request)
    if not isinstance(envelope, dict):
        raise MalformedBody("The body must be a JSON object.")
    schemas.check(SCHEMA, envelope)
    content = parse_content(envelope)
    lead_id = str(content["lead_id"])
    pointer = {"id": lead_id, "event_key": event_key(NAME, lead_id), "event": envelope.get("event")}
    for name in ("page_id", "advertiser_id", "ad_id", "adgroup_id", "campaign_id", "create_time"):
        if content.get(name) not in (None, ""):
            pointer[name] = str(content[name])
    if envelope.get("create_time") is not None and "create_time" not in pointer:
        pointer["create_time"] = str(envelope["create_time"])
    return [pointer]


# -------------------------------------------------------------------------------------- fetch
def fetch(pointer: dict) -> LeadInput:
    query = {"lead_id": str(pointer["id"])}
    for name in ("advertiser_id", "page_id"):
        if pointer.get(name):
            query[name] = str(pointer[name])
    headers = {"Access-Token": _secret_value("access_token")}
    answer = http.request_json(NAME, "GET", http.base_url(NAME) + LEAD_PATH, query=query, headers=headers)
    if not isinstance(answer, dict):
        raise http.ApiError(NAME, 502, "invalid-answer")
    code = str(answer.get("code", "0"))
    if code != "0":  # TikTok answers errors with HTTP 200 and a non-zero code
        status = 429 if code in RATE_LIMIT_CODES else 401 if code in AUTH_CODES else 400
        if code.startswith("5"):
            status = 503
        raise http.ApiError(NAME, status, code)
    data = answer.get("data")
    if not isinstance(data, dict):
        raise ValidationFailed([FieldError("data", "the lead answer has no data object")])
    return lead_from_api(data, pointer)


# -------------------------------------------------------------------------------------- mapping (pure)
def _attribute_name(name: str) -> str:
    return (re.sub(r"[^A-Za-z0-9_.:-]+", "_", name.strip().lower()).strip("_") or "field")[:64]


def lead_from_api(data: dict, pointer: dict) -> LeadInput:
    """`{lead_data: {field: value}, meta_data: {...}}` as a LeadInput (validated like any lead)."""
    lead_data = data.get("lead_data")
    meta = data.get("meta_data") if isinstance(data.get("meta_data"), dict) else {}
    flat: dict[str, Any] = {}
    attributes: dict[str, Any] = {}
    origins: dict[str, str] = {}
    items = lead_data.items() if isinstance(lead_data, dict) else []
    for key, value in items:
        if isinstance(value, list) and len(value) == 1:
            value = value[0]
        if value in (None, "", []) or isinstance(value, dict):
            continue
        name = _attribute_name(str(key))
        target = FIELD_ALIASES.get(name)
        if name in UTM_PARAMS or name in CLICK_IDS:
            target = name
        if target and target not in flat and isinstance(value, str | int | float):
            flat[target] = str(value)
            origins[target] = f"lead_data.{key}"
        else:
            attributes[name] = value
            origins[f"attributes.{name}"] = f"lead_data.{key}"

    def scalar(value: Any) -> str | None:
        ok = isinstance(value, str | int) and not isinstance(value, bool) and value != ""
        return str(value) if ok else None

    for name in META_ATTRIBUTES:
        value = scalar(meta.get(name)) or scalar(pointer.get(name))
        if value:
            attributes[f"tiktok_{name}"] = value
    for name in ("ttclid", *UTM_PARAMS):  # TikTok's click id and any campaign parameters, kept as sent
        if scalar(meta.get(name)) and name not in flat:
            flat[name] = scalar(meta[name])
    if attributes:
        flat["attributes"] = attributes
    schemas.check(LEAD_SCHEMA, flat, rename=origins)
    lead_id = str(pointer["id"])
    inp = lead_input_from_flat(flat, source=NAME, event_key=pointer.get("event_key") or event_key(NAME, lead_id))
    inp.external_ids = [(NAME, lead_id)]
    inp.occurred_at = parse_time(meta.get("create_time")) or parse_time(pointer.get("create_time"))
    return inp
