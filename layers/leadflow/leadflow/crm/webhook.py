"""Generic webhook: a Standard Webhooks signed POST of the lead JSON, one lead per call.

Headers `webhook-id` (the push key `lead_id#version`: the same on every retry, so the receiver can drop a
duplicate), `webhook-timestamp` (unix seconds) and `webhook-signature` (`v1,<base64 HMAC-SHA256>` of
`{id}.{timestamp}.{body}` with the key of the `whsec_…` secret; during a rotation the secret may be a list
and every value signs). Body `{"type": "lead.qualified", "timestamp", "data": <the lead JSON>}`.
2xx is delivered; 410 means the endpoint is gone: the record fails and the target is disabled (an alarm
fires; `leadflow dlq replay --target webhook` re-enables it after the operator fixed the URL); 408, 429 and
5xx are retried (Retry-After honoured); any other answer, redirects included (never followed), fails.

Erasure: a signed `{"type": "lead.erased", "timestamp", "data": {"lead_id"}}` (`webhook-id` `<lead_id>#erase`),
answered like a push: the receiver deletes what it keeps of the lead.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable
from datetime import UTC, datetime

from leadflow.crm import Call, Erasure, Outcome
from leadflow.crm.config import TargetConfig, map_lead
from leadflow.domain.lead import lead_view
from leadflow.http import Response, retry_after_seconds
from leadflow.secrets import get_secret

NAME = "webhook"
SECRET = "crm/webhook"


def _secrets() -> tuple[str, list[bytes]]:
    value = get_secret(SECRET)
    url = str(value.get("url") or "") if isinstance(value, dict) else ""
    raw = value.get("secret") if isinstance(value, dict) else None
    keys = [base64.b64decode(s.removeprefix("whsec_")) for s in (raw if isinstance(raw, list) else [raw]) if s]
    if not url or not keys:
        from leadflow.errors import ConfigurationError

        raise ConfigurationError(f"Secret {SECRET} needs url and secret.")
    return url, keys


def sign(keys: list[bytes], message_id: str, timestamp: int, body: bytes) -> str:
    content = f"{message_id}.{timestamp}.".encode() + body
    return " ".join("v1," + base64.b64encode(hmac.new(k, content, hashlib.sha256).digest()).decode() for k in keys)


def payload(lead: dict, target: TargetConfig, first_push: bool, now: datetime | None = None) -> dict:
    data = lead_view(lead) if not target.fields else map_lead(lead, target, first_push=first_push)
    stamp = (now or datetime.now(UTC)).isoformat(timespec="seconds").replace("+00:00", "Z")
    return {"type": target.options.get("event_type", "lead.qualified"), "timestamp": stamp, "data": data}


def _signed_post(url: str, keys: list[bytes], key: str, document: dict) -> Call:
    body = json.dumps(document, separators=(",", ":"), default=str).encode()
    timestamp = int(time.time())
    headers = {
        "Content-Type": "application/json",
        "webhook-id": key,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(keys, key, timestamp, body),
    }
    return Call("POST", url, (key,), headers, None, body)


def build_calls(leads: list[tuple[str, dict, bool]], target: TargetConfig) -> tuple[list[Call], dict[str, Outcome]]:
    url, keys = _secrets()
    return [_signed_post(url, keys, key, payload(lead, target, first)) for key, lead, first in leads], {}


def build_erase_calls(erasures: list[Erasure], target: TargetConfig) -> tuple[list[Call], dict[str, Outcome]]:
    url, keys = _secrets()
    stamp = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    calls = [
        _signed_post(url, keys, e.key, {"type": "lead.erased", "timestamp": stamp, "data": {"lead_id": e.lead_id}})
        for e in erasures
    ]
    return calls, {}


def classify(call: Call, answer: Response) -> dict[str, Outcome]:
    status = answer.status
    wait = retry_after_seconds(answer.headers.get("retry-after"))
    if 200 <= status < 300:
        outcome = Outcome("done")
    elif status == 410:
        outcome = Outcome("failed", reason="HTTP 410 Gone: target disabled", disable=True)
    elif status in (408, 429) or status >= 500:
        outcome = Outcome("retry", reason=f"HTTP {status}", retry_after=wait)
    else:
        outcome = Outcome("failed", reason=f"HTTP {status}")
    return dict.fromkeys(call.keys, outcome)


classify_erase = classify  # a lead.erased event is answered like a push


def send_call(
    call: Call, target: TargetConfig, send: Callable, request: Callable[..., Response], classify: Callable = classify
) -> dict[str, Outcome]:
    return send(call, target, classify)
