"""`typeform`: Typeform's `form_response` webhook.

Signature: `Typeform-Signature: sha256=<base64(HMAC-SHA256(secret, raw body))>`, secret `webhooks/typeform`
(typeform.com/developers/webhooks/secure-your-webhooks). The scheme signs no timestamp, so staleness cannot
be checked: a captured delivery could be replayed, but a replay is the same `form_response.token` and is
acknowledged without changing anything (the delivery key below).

Answers are mapped by their field type (email, phone_number ...) and, for text and choice answers, by the
field's `ref` when it names a lead field (`first_name`, `company`, `job_title` ...); other answers are kept
as `attributes.<ref>`. A boolean/legal answer whose ref is `consent_email` or `consent_sms` is consent.
`hidden` fields carry utm_* and click ids. Delivery key: `form_response.token`.
"""

from __future__ import annotations

from typing import Any

from leadflow.domain.model import LeadInput
from leadflow.errors import SignatureInvalid
from leadflow.secrets import secret_list
from leadflow.sources.base import constant_time_equal, event_key, hmac_sha256
from leadflow.sources.mapping import LeadDocument, target_for_label
from leadflow.web import Request, json_object

NAME = "typeform"
SCHEMA = "typeform.v1.json"
SECRET = "webhooks/typeform"
SIGNATURE_HEADER = "typeform-signature"

# Answer types whose value says what it is, whatever the question's ref.
_TYPED = {"email": "email", "phone_number": "phone"}


def verify(request: Request, now: float | None = None) -> None:
    """Raise SignatureInvalid unless the raw body carries a valid signature (no timestamp to check)."""
    import base64

    header = request.header(SIGNATURE_HEADER) or ""
    scheme, _, offered = header.strip().partition("=")
    if scheme != "sha256" or not offered:
        raise SignatureInvalid("The Typeform-Signature header is missing or not sha256=<signature>.")
    for secret in secret_list(SECRET):
        expected = "sha256=" + base64.b64encode(hmac_sha256(secret.encode(), request.body)).decode()
        if constant_time_equal(expected, header.strip()):
            return
    raise SignatureInvalid("The Typeform signature does not match.")


def _answer_value(answer: dict[str, Any]) -> Any:
    kind = answer.get("type")
    value = answer.get(kind) if isinstance(kind, str) else None
    if kind == "choice" and isinstance(value, dict):
        return value.get("label") or value.get("other")
    if kind == "choices" and isinstance(value, dict):
        labels = [str(v) for v in value.get("labels") or [] if v not in (None, "")]
        if value.get("other"):
            labels.append(str(value["other"]))
        return labels
    if isinstance(value, dict | list):
        return None  # payment, multi-format, file objects: nothing a lead profile can hold
    return value


def parse(request: Request, verified: None) -> list[LeadInput]:
    document = json_object(request, SCHEMA)
    response = document["form_response"]
    lead = LeadDocument()
    for index, answer in enumerate(response.get("answers") or []):
        origin = f"form_response.answers.{index}"
        value = _answer_value(answer)
        question = answer.get("field") or {}
        ref = str(question.get("ref") or question.get("id") or f"answer_{index}")
        target = target_for_label(ref)
        kind = answer.get("type")
        if kind in _TYPED:
            lead.put_field(_TYPED[kind], value, origin, ref)
        elif kind == "boolean" and target in ("consent_email", "consent_sms"):
            lead.put(target, bool(value), origin)
        else:
            if isinstance(value, list):
                target = None  # several choices: never one lead field
            lead.put_field(target, value, origin, ref)
    lead.put_tracking(response.get("hidden") or {}, "form_response.hidden")
    lead.put("attributes.typeform_form_id", response.get("form_id"), "form_response.form_id")
    return [
        lead.lead_input(
            source=NAME,
            event_key=event_key(NAME, str(response["token"])),
            submitted_at=response.get("submitted_at"),
        )
    ]
