"""`generic`: a Standard Webhooks signed `lead.submitted` event whose `data` is the canonical lead.

Secret: `webhooks/generic` (`whsec_...`, or a list of them while rotating). Event id: `webhook-id`.
"""

from __future__ import annotations

import time

from leadflow.config import settings
from leadflow.domain.model import LeadInput
from leadflow.secrets import secret_list
from leadflow.sources.base import event_key, lead_input_from_flat, verify_standard_webhook
from leadflow.web import Request, json_object

NAME = "generic"
SCHEMA = "generic_webhook.v1.json"
SECRET = "webhooks/generic"


def verify(request: Request, now: float | None = None) -> str:
    now = time.time() if now is None else now
    return verify_standard_webhook(
        request.headers, request.body, secret_list(SECRET), now, settings().signature_tolerance
    )


def parse(request: Request, webhook_id: str) -> list[LeadInput]:
    document = json_object(request, SCHEMA)
    return [
        lead_input_from_flat(
            document["data"],
            source=NAME,
            event_key=event_key(NAME, webhook_id),
            external_provider=NAME,
        )
    ]
