"""`POST /v1/crm/hubspot/events`: HubSpot webhook notifications (CRM stage changes) → CrmEvents.

Signature v3 (developers.hubspot.com/docs/apps/legacy-apps/authentication/validating-requests):
`X-HubSpot-Signature-v3 = base64(HMAC-SHA256(client_secret, method + uri + body + timestamp))`, where
`timestamp` is `X-HubSpot-Request-Timestamp` (Unix milliseconds; refused when more than 5 minutes away from
now) and `uri` is the full URL HubSpot called, with HubSpot's listed percent-escapes (`%3A`, `%2F`, ...)
decoded. Secret: `crm/hubspot` field `client_secret` (a list while rotating).

Which URI is signed is never the caller's choice: it is `LEADFLOW_HUBSPOT_WEBHOOK_URL` (the target URL
configured in the HubSpot app, required behind CloudFront or any proxy that rewrites the path), or else
`https://` + the domain API Gateway served the request on (`requestContext.domainName`, a custom domain
included, never the `Host` header) + the raw path (API mapping prefix included) + the raw query string.
The body is verified as received, in constant time, before it is parsed.

A notification body is a JSON array of events (HubSpot sends up to 100 per request). Read here:
- `contact.propertyChange` on the configured contact properties (default `lifecyclestage`, `hs_lead_status`)
  → an outcome; on a reason property → a reason;
- `deal.propertyChange` on `dealstage` → an outcome for the deal's contact; `amount` → the deal's value;
  `closed_lost_reason` → a reason;
- `deal.associationChange` / `contact.associationChange` (`DEAL_TO_CONTACT` / `CONTACT_TO_DEAL`) → which
  contact a deal belongs to;
- the same on `object.propertyChange` / `object.associationChange` with `objectTypeId` 0-1 (contact), 0-3 (deal).
Anything else is acknowledged and ignored. The event key is portal, event id, object and time (HubSpot does
not promise `eventId` alone is unique); a redelivery (another `attemptNumber`) has the same key.
"""

from __future__ import annotations

import base64
import os
import time
from typing import Any

from leadflow.domain.attribution import iso
from leadflow.domain.crm_feedback import CrmEvent, FeedbackConfig
from leadflow.errors import SignatureInvalid
from leadflow.secrets import secret_list
from leadflow.sources.base import ascii_unsigned, constant_time_equal, hmac_sha256, parse_time
from leadflow.web import Request

NAME = "hubspot"
SECRET = "crm/hubspot"
URL_ENV = "LEADFLOW_HUBSPOT_WEBHOOK_URL"
TOLERANCE_MS = 5 * 60 * 1000
MAX_EVENTS = 100
# HubSpot decodes exactly these escapes in the URI before signing it
_DECODED = {
    "%3A": ":",
    "%2F": "/",
    "%3F": "?",
    "%40": "@",
    "%21": "!",
    "%24": "$",
    "%27": "'",
    "%28": "(",
    "%29": ")",
    "%2A": "*",
    "%2C": ",",
    "%3B": ";",
}
OBJECT_TYPES = {"0-1": "contact", "0-3": "deal"}


def _decode(uri: str) -> str:
    for escaped, char in _DECODED.items():
        uri = uri.replace(escaped, char).replace(escaped.lower(), char)
    return uri


def called_uri(request: Request) -> str:
    """The URI HubSpot signed: the configured target URL, else what API Gateway says it served."""
    configured = os.environ.get(URL_ENV, "").strip()
    if configured:
        return _decode(configured)
    domain = str(request.extra.get("domain_name") or "")
    if not domain:
        raise SignatureInvalid("The called URL cannot be reconstructed.")
    query = f"?{request.raw_query}" if request.raw_query else ""
    return _decode(f"https://{domain}{request.path}{query}")


def verify(request: Request, now: float | None = None) -> None:
    now_ms = int((time.time() if now is None else now) * 1000)
    signature = request.header("x-hubspot-signature-v3")
    stamp = request.header("x-hubspot-request-timestamp")
    if not signature or not stamp:
        raise SignatureInvalid("Missing X-HubSpot-Signature-v3 or X-HubSpot-Request-Timestamp.")
    sent = ascii_unsigned(stamp, 15)
    if sent is None:
        raise SignatureInvalid("The signature timestamp is not a number.")
    if abs(now_ms - sent) > TOLERANCE_MS:
        raise SignatureInvalid("The signature timestamp is outside the allowed window.")
    signed = (request.method + called_uri(request)).encode("utf-8") + request.body + stamp.strip(" \t").encode()
    matched = False
    for secret in secret_list(SECRET, "client_secret"):
        expected = base64.b64encode(hmac_sha256(secret.encode("utf-8"), signed)).decode()
        matched |= constant_time_equal(expected, signature.strip())
    if not matched:
        raise SignatureInvalid("The signature does not match.")


def _text(value: Any, limit: int = 200) -> str | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float | str):
        text = str(value).strip()
        return text[:limit] if text else None
    return None


def _number(value: Any) -> float | None:
    try:
        number = float(str(value).replace(",", ""))
    except (TypeError, ValueError):
        return None
    return number if number == number and abs(number) < 1e15 else None  # not NaN, not absurd


def event_id(raw: dict) -> str | None:
    """The event's key: portal, event id, object and time (a redelivery has the same)."""
    parts = [_text(raw.get(k), 40) for k in ("portalId", "eventId", "objectId", "occurredAt")]
    if parts[1] is None or parts[3] is None:
        return None
    return ":".join(p or "-" for p in parts)


def parse_event(raw: Any, config: FeedbackConfig) -> CrmEvent | str:
    """One notification event as a CrmEvent, or why it is not one (a short, value-free message)."""
    if not isinstance(raw, dict):
        return "not an object"
    key = event_id(raw)
    when = parse_time(raw.get("occurredAt"))
    kind = _text(raw.get("subscriptionType"), 60) or ""
    if key is None or when is None or not kind:
        return "eventId, occurredAt and subscriptionType are required"
    family, _, change = kind.partition(".")
    if family == "object":
        family = OBJECT_TYPES.get(_text(raw.get("objectTypeId"), 10) or "", "other")
    base = {"crm": NAME, "event_id": key, "occurred_at": iso(when), "object_type": family}
    if change == "associationChange":
        return _association(raw, base)
    if change != "propertyChange" or family not in ("contact", "deal"):
        return "ignored"
    object_id = _text(raw.get("objectId"), 40)
    prop, value = _text(raw.get("propertyName"), 100) or "", _text(raw.get("propertyValue"))
    if object_id is None:
        return "objectId is required"
    base.update(object_id=object_id, detail=f"{prop}={value or ''}"[:200])
    mapping = (config.contact_properties if family == "contact" else config.deal_properties).get(prop)
    if mapping is not None and value in mapping:
        return CrmEvent(kind="outcome", outcome=mapping[value], **base)
    if prop in config.reason_properties and value:
        return CrmEvent(kind="reason", reason=value, **base)
    if family == "deal" and prop == config.value_property and _number(value) is not None:
        return CrmEvent(kind="value", value=_number(value), **base)
    return "ignored"


def _association(raw: dict, base: dict) -> CrmEvent | str:
    kind = (_text(raw.get("associationType"), 60) or "").upper()
    source, target = _text(raw.get("fromObjectId"), 40), _text(raw.get("toObjectId"), 40)
    if not source or not target:
        return "fromObjectId and toObjectId are required"
    if kind == "DEAL_TO_CONTACT":
        deal, contact = source, target
    elif kind == "CONTACT_TO_DEAL":
        deal, contact = target, source
    else:
        return "ignored"
    removed = raw.get("associationRemoved") is True
    return CrmEvent(
        kind="association",
        **{**base, "object_type": "deal"},
        object_id=deal,
        contact_id=contact,
        removed=removed,
        detail=kind.lower(),
    )


def parse(document: Any, config: FeedbackConfig) -> list[CrmEvent | str]:
    """The events of a notification body (a JSON array, or one event object)."""
    events = document if isinstance(document, list) else [document]
    return [parse_event(raw, config) for raw in events]
