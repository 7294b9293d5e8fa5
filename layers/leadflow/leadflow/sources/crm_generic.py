"""`POST /v1/crm/generic/events`: any CRM (a Salesforce Flow HTTP callout, Zapier, a script) reports an
outcome as a Standard Webhooks event. Secret `crm/generic` (`whsec_...`, a list while rotating).

Body: `{"type": "crm.outcome", "timestamp": ..., "data": {"crm": "salesforce", "record_id": "00Q...",
"lead_id"?, "email"?, "outcome": "sql" | "opportunity" | "won" | "lost" | "disqualified" (or "reason" /
"value" alone), "reason"?, "value"?, "currency"?, "deal_id"?, "occurred_at"}}`. The lead is the one named by
`lead_id`, else the one whose `crm.<crm>.id` is `record_id` (written back by the push), else the one holding
`email`. `webhook-id` is the event id.
"""

from __future__ import annotations

import time
from typing import Any

from leadflow.config import settings
from leadflow.domain.attribution import iso
from leadflow.domain.crm_feedback import CrmEvent
from leadflow.domain.normalise import normalise_email
from leadflow.errors import FieldError, ValidationFailed
from leadflow.secrets import secret_list
from leadflow.sources.base import parse_time, verify_standard_webhook
from leadflow.web import Request, json_object

NAME = "generic"
SCHEMA = "crm_generic_event.v1.json"
SECRET = "crm/generic"


def verify(request: Request, now: float | None = None) -> str:
    now = time.time() if now is None else now
    return verify_standard_webhook(
        request.headers, request.body, secret_list(SECRET), now, settings().signature_tolerance
    )


def parse(request: Request, webhook_id: str) -> CrmEvent:
    data: dict[str, Any] = json_object(request, SCHEMA)["data"]
    when = parse_time(data.get("occurred_at"))
    if when is None:
        raise ValidationFailed([FieldError("data.occurred_at", "must be ISO 8601 or Unix time")])
    email = None
    if data.get("email"):
        email, error = normalise_email(data["email"])
        if error is not None:
            raise ValidationFailed([FieldError("data.email", "is not a valid email address")])
    outcome = data.get("outcome")
    kind = outcome if outcome in ("reason", "value") else "outcome"
    deal = data.get("deal_id")
    return CrmEvent(
        crm=data["crm"],
        event_id=webhook_id,
        occurred_at=iso(when),
        kind=kind,
        object_type="deal" if deal else "record",
        object_id=str(deal or data.get("record_id") or "") or None,
        outcome=outcome if kind == "outcome" else None,
        reason=data.get("reason"),
        value=data.get("value"),
        currency=data.get("currency"),
        contact_id=data.get("record_id"),
        lead_id=data.get("lead_id"),
        email=email,
        detail=f"outcome={outcome}",
    )
