"""`tally`: Tally's `FORM_RESPONSE` webhook.

Signature: `Tally-Signature: base64(HMAC-SHA256(secret, body))`, secret `webhooks/tally` (tally.so/help/webhooks).
There is no timestamp in the scheme, so staleness cannot be checked; a replay carries the same
`data.responseId` and changes nothing. The HMAC is checked over the raw bytes; Tally's own example signs
`JSON.stringify(payload)`, so when the raw bytes do not match (a proxy re-indented the body) the compact
serialisation of the parsed body is tried as well: it is the same signed content, never a weaker check.

Fields are mapped by type (INPUT_EMAIL → email, INPUT_PHONE_NUMBER → phone), then by normalised label
("First name", "Work email", "Company" ...); choice values (option ids) become option texts; HIDDEN_FIELDS
carry utm_* and click ids. Anything else is kept as `attributes.<label>`. Delivery key: `data.responseId`.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from leadflow.domain.model import LeadInput
from leadflow.errors import SignatureInvalid
from leadflow.secrets import secret_list
from leadflow.sources.base import constant_time_equal, event_key, hmac_sha256
from leadflow.sources.mapping import LeadDocument, target_for_label
from leadflow.web import Request, json_object

NAME = "tally"
SCHEMA = "tally.v1.json"
SECRET = "webhooks/tally"
SIGNATURE_HEADER = "tally-signature"

_TYPED = {"INPUT_EMAIL": "email", "INPUT_PHONE_NUMBER": "phone"}
_CHOICES = ("MULTIPLE_CHOICE", "CHECKBOXES", "DROPDOWN", "MULTI_SELECT", "RANKING")


def _matches(secrets: list[str], message: bytes, offered: str) -> bool:
    found = False
    for secret in secrets:
        expected = base64.b64encode(hmac_sha256(secret.encode(), message)).decode()
        found |= constant_time_equal(expected, offered)
    return found


def verify(request: Request, now: float | None = None) -> None:
    offered = (request.header(SIGNATURE_HEADER) or "").strip()
    if not offered:
        raise SignatureInvalid("The Tally-Signature header is missing.")
    secrets = secret_list(SECRET)
    if _matches(secrets, request.body, offered):
        return
    try:  # the same content as Tally serialised it (JSON.stringify: compact, non-ASCII kept)
        compact = json.dumps(json.loads(request.body), separators=(",", ":"), ensure_ascii=False).encode()
    except (ValueError, RecursionError):
        compact = None
    if compact is not None and compact != request.body and _matches(secrets, compact, offered):
        return
    raise SignatureInvalid("The Tally signature does not match.")


def _option_texts(field: dict[str, Any], value: Any) -> Any:
    """Choice values are option ids: the lead holds the options' texts."""
    options = {str(o.get("id")): o.get("text") for o in field.get("options") or [] if isinstance(o, dict)}
    if isinstance(value, list):
        return [str(options.get(str(v), v)) for v in value if v not in (None, "")]
    if isinstance(value, str) and value in options:
        return options[value]
    return value


def parse(request: Request, verified: None) -> list[LeadInput]:
    document = json_object(request, SCHEMA)
    data = document["data"]
    lead = LeadDocument()
    for index, field in enumerate(data["fields"]):
        origin = f"data.fields.{index}"
        kind, label, value = field.get("type"), field.get("label") or field.get("key"), field.get("value")
        name = str(label or f"field_{index}")
        if kind == "HIDDEN_FIELDS":
            # either one object of hidden fields, or one hidden field per entry (label = its name)
            lead.put_tracking(value if isinstance(value, dict) else {name: value}, origin)
            continue
        if kind in _TYPED:
            lead.put_field(_TYPED[kind], value, origin, name)
            continue
        target = target_for_label(name)
        if target in ("consent_email", "consent_sms") and isinstance(value, list | bool):
            lead.put(target, bool(value), origin)  # a ticked consent checkbox (group of one, or single)
            continue
        if kind in _CHOICES:
            value = _option_texts(field, value)
            if isinstance(value, list) and len(value) == 1 and target:
                value = value[0]  # one choice for a lead field (e.g. "Country")
        if isinstance(value, dict):
            continue  # file uploads, payments, signatures: nothing a lead profile holds
        else:
            lead.put_field(None if isinstance(value, list) else target, value, origin, name)
    lead.put("attributes.tally_form_id", data.get("formId"), "data.formId")
    return [
        lead.lead_input(
            source=NAME,
            event_key=event_key(NAME, str(data["responseId"])),
            submitted_at=data.get("createdAt") or document.get("createdAt"),
        )
    ]
