"""`webflow`: Webflow's `form_submission` webhook.

Signature (developers.webflow.com, "verifying webhook signatures"): `x-webflow-timestamp` (milliseconds) and
`x-webflow-signature = hex(HMAC-SHA256(secret, timestamp + ":" + raw body))`, secret `webhooks/webflow`
(the OAuth app's client secret, or the webhook's own secret for API-created webhooks). Deliveries older
(or newer) than the signature tolerance (5 minutes) are refused. Webhooks created in the Webflow dashboard
are not signed and cannot be accepted here.

`payload.data` is keyed by the form's field labels. Which lead field a label fills is configuration
(`webflow.fields` of the provider configuration, see sources/provider_config.py); labels not configured
fall back to label heuristics (Email/E-mail address → email, Phone → phone, Name → full_name ...), and the
rest are kept as `attributes.<label>`. Delivery key: `payload.id`.
"""

from __future__ import annotations

import time

from leadflow.config import settings
from leadflow.domain.model import LeadInput
from leadflow.errors import SignatureInvalid
from leadflow.secrets import secret_list
from leadflow.sources import provider_config
from leadflow.sources.base import ascii_unsigned, constant_time_equal, event_key, hmac_sha256
from leadflow.sources.mapping import LeadDocument, target_for_label
from leadflow.web import Request, json_object

NAME = "webflow"
SCHEMA = "webflow.v1.json"
SECRET = "webhooks/webflow"


def verify(request: Request, now: float | None = None) -> None:
    now = time.time() if now is None else now
    timestamp = (request.header("x-webflow-timestamp") or "").strip()
    offered = (request.header("x-webflow-signature") or "").strip().lower()
    if not timestamp or not offered:
        raise SignatureInvalid("Missing x-webflow-timestamp or x-webflow-signature header.")
    millis = ascii_unsigned(timestamp, 16)  # ASCII digits only: "²".isdigit() is True, int("²") fails
    if millis is None:
        raise SignatureInvalid("The x-webflow-timestamp header is not a millisecond timestamp.")
    if abs(now * 1000 - millis) > settings().signature_tolerance * 1000:
        raise SignatureInvalid("The signature timestamp is outside the allowed window.")
    message = timestamp.encode() + b":" + request.body
    matched = False
    for secret in secret_list(SECRET):
        matched |= constant_time_equal(hmac_sha256(secret.encode(), message).hex(), offered)
    if not matched:
        raise SignatureInvalid("The Webflow signature does not match.")


def parse(request: Request, verified: None) -> list[LeadInput]:
    document = json_object(request, SCHEMA)
    payload = document["payload"]
    configured: dict[str, str] = provider_config.provider(NAME).get("fields") or {}
    lead = LeadDocument()
    for label, value in payload["data"].items():
        origin = f"payload.data.{label}"
        target = configured.get(label) or target_for_label(label)
        if target in ("consent_email", "consent_sms"):
            lead.put(target, value if isinstance(value, bool) else _str(value), origin)
        elif target and target.startswith("attributes."):
            lead.put(target, value, origin)
        elif target and not isinstance(value, list):
            lead.put_field(target, _str(value), origin, label)
        else:
            lead.put_field(None, value, origin, label)
    lead.put("attributes.webflow_form_name", payload.get("name"), "payload.name")
    lead.put("attributes.webflow_form_id", payload.get("formId"), "payload.formId")
    return [
        lead.lead_input(
            source=NAME,
            event_key=event_key(NAME, str(payload["id"])),
            submitted_at=payload.get("submittedAt"),
        )
    ]


def _str(value: object) -> object:
    return None if value is None else str(value)
