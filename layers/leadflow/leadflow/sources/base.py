"""What every source shares: the flat lead document → LeadInput, and signature helpers on raw bytes."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
from datetime import UTC, datetime
from typing import Any

from leadflow.domain.attribution import iso
from leadflow.domain.model import CLICK_IDS, TRACKING_FIELDS, LeadInput
from leadflow.errors import SignatureInvalid

FIELD_NAMES = (
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
)
CONSENT_FIELDS = {"consent_email": "email", "consent_sms": "sms"}


# Numbers in headers, query strings and ids are ASCII digits only: str.isdigit() and int() also accept
# superscripts, other scripts' digits, "_" and "+", and some of those pass one check and crash the other.
_UNSIGNED = re.compile(r"[0-9]{1,16}", re.ASCII)


def ascii_unsigned(text: str | None, max_digits: int = 16) -> int | None:
    """`text` (surrounding spaces and tabs ignored) as a non-negative integer of ASCII digits, else None."""
    if not isinstance(text, str):
        return None
    stripped = text.strip(" \t")
    if len(stripped) > max_digits or not _UNSIGNED.fullmatch(stripped):
        return None
    return int(stripped)


def parse_time(value: Any) -> datetime | None:
    """Unix seconds or milliseconds (number or ASCII digits) or ISO 8601 text; None when it is neither."""
    if value in (None, "") or isinstance(value, bool):
        return None
    try:
        number = value if isinstance(value, int | float) else ascii_unsigned(str(value))
        if number is not None:
            seconds = float(number)
            return datetime.fromtimestamp(seconds / 1000 if seconds > 1e11 else seconds, UTC)
        text = str(value)
        if not text.isascii():
            return None
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
        # in UTC here, so a time at the edge of the calendar (9999-12-31T23:59-23:59) is refused, not a crash later
        return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    except (ValueError, OverflowError, OSError):
        return None


def lead_input_from_flat(
    doc: dict[str, Any],
    *,
    source: str,
    event_key: str | None,
    external_provider: str | None = None,
    cookies: dict[str, str] | None = None,
) -> LeadInput:
    """The canonical flat lead document (lead_input.v1.json) as a LeadInput."""
    attributes = dict(doc.get("attributes") or {})
    if doc.get("message"):
        attributes["message"] = doc["message"]
    consent: dict[str, Any] = dict(doc.get("consent") or {})
    for name, channel in CONSENT_FIELDS.items():
        if name in doc:
            consent[channel] = doc[name]
    external_ids = []
    if doc.get("external_id") and external_provider:
        external_ids.append((external_provider, str(doc["external_id"])))
    return LeadInput(
        source=source,
        fields={name: doc[name] for name in FIELD_NAMES if doc.get(name) not in (None, "")},
        attributes=attributes,
        consent=consent,
        tracking={name: str(doc[name]) for name in TRACKING_FIELDS if doc.get(name) not in (None, "")},
        cookies=cookies or {},
        occurred_at=parse_time(doc.get("submitted_at")),
        event_key=event_key,
        external_ids=external_ids,
    )


CLAIMED_TIME_ATTRIBUTE = "claimed_submitted_at"


def unauthenticated(inp: LeadInput, claimed_time: Any = None) -> LeadInput:
    """Mark a submission nobody signed for: receipt time orders it (capture ignores its occurred_at), and the
    time the sender claims, when it parses, is kept only as the attribute `claimed_submitted_at`."""
    claimed = parse_time(claimed_time) if claimed_time is not None else inp.occurred_at
    inp.authenticated = False
    inp.occurred_at = None
    if claimed is not None:
        inp.attributes[CLAIMED_TIME_ATTRIBUTE] = iso(claimed)
    return inp


MAX_EVENT_ID = 200  # DynamoDB keys stop at 2048 bytes; provider ids are far shorter than this in practice


def event_key(source: str, event_id: str) -> str:
    """The delivery key of a provider event; an overlong id is hashed so it still identifies the event."""
    if len(event_id.encode("utf-8")) > MAX_EVENT_ID:
        event_id = "sha256:" + hashlib.sha256(event_id.encode("utf-8", "surrogatepass")).hexdigest()
    return f"EVENT#{source}#{event_id}"


def fingerprint_key(source: str, document: dict[str, Any], now: float) -> str:
    """The delivery key of a submission that carries no id: an identical document from the same source
    within the same clock hour is one submission (double clicks, browser or sender retries)."""
    digest = hashlib.sha256(json.dumps(document, sort_keys=True, default=str).encode()).hexdigest()[:32]
    return event_key(source, f"fp:{digest}:{int(now) // 3600}")


def hmac_sha256(key: bytes, message: bytes) -> bytes:
    return hmac.new(key, message, hashlib.sha256).digest()


def constant_time_equal(a: str | bytes, b: str | bytes) -> bool:
    a_bytes = a.encode() if isinstance(a, str) else a
    b_bytes = b.encode() if isinstance(b, str) else b
    return hmac.compare_digest(a_bytes, b_bytes)


def check_timestamp(timestamp: str | None, now: float, tolerance: int) -> int:
    """A unix-seconds timestamp header within ±tolerance of now, else SignatureInvalid."""
    if not timestamp:
        raise SignatureInvalid("The signature timestamp header is missing.")
    value = ascii_unsigned(timestamp, 12)
    if value is None:
        raise SignatureInvalid("The signature timestamp is not a number.")
    if abs(now - value) > tolerance:
        raise SignatureInvalid("The signature timestamp is outside the allowed window.")
    return value


def verify_standard_webhook(
    headers: dict[str, str], body: bytes, secrets: list[str], now: float, tolerance: int
) -> str:
    """Standard Webhooks 1.0: HMAC-SHA256 over `{id}.{timestamp}.{body}`; returns the webhook id.

    Several `v1,<sig>` entries may be sent (and several secrets configured) so keys rotate without loss.
    """
    webhook_id = headers.get("webhook-id")
    signature_header = headers.get("webhook-signature")
    if not webhook_id or not signature_header:
        raise SignatureInvalid("Missing webhook-id, webhook-timestamp or webhook-signature header.")
    timestamp = headers.get("webhook-timestamp")
    check_timestamp(timestamp, now, tolerance)
    signed = f"{webhook_id}.{timestamp}.".encode() + body
    offered = [part.split(",", 1)[1] for part in signature_header.split() if part.startswith("v1,")]
    for secret in secrets:
        key_text = secret[len("whsec_") :] if secret.startswith("whsec_") else secret
        try:
            key = base64.b64decode(key_text, validate=True)
        except (binascii.Error, ValueError):
            key = key_text.encode()
        expected = base64.b64encode(hmac_sha256(key, signed)).decode()
        # compare against every offered signature without short-circuiting on the first mismatch
        if any([constant_time_equal(expected, sig) for sig in offered]):
            return webhook_id
    raise SignatureInvalid("The webhook signature does not match.")


__all__ = ["CLICK_IDS", "event_key", "lead_input_from_flat", "verify_standard_webhook"]
