"""Signing deliveries the way the providers do (independent of the code under test)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

from tests.support.aws import SECRETS_FILE


def dev_secret(name: str):
    return json.loads(SECRETS_FILE.read_text())[name]


def standard_webhook_headers(body: bytes, secret: str, msg_id: str, timestamp: int | None = None) -> dict[str, str]:
    """Standard Webhooks 1.0: v1,base64(HMAC-SHA256(base64decode(secret), f"{id}.{ts}.{body}"))."""
    ts = int(time.time()) if timestamp is None else timestamp
    key = base64.b64decode(secret.removeprefix("whsec_"))
    sig = base64.b64encode(hmac.new(key, f"{msg_id}.{ts}.".encode() + body, hashlib.sha256).digest()).decode()
    return {
        "content-type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": str(ts),
        "webhook-signature": f"v1,{sig}",
    }
