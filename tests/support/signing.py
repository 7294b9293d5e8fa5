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


def hubspot_v3_headers(method: str, uri: str, body: bytes, secret: str, timestamp_ms: int | None = None) -> dict:
    """HubSpot signature v3: base64(HMAC-SHA256(client_secret, method + uri + body + timestamp in ms))."""
    ts = str(int(time.time() * 1000) if timestamp_ms is None else timestamp_ms)
    signed = (method + uri).encode() + body + ts.encode()
    sig = base64.b64encode(hmac.new(secret.encode(), signed, hashlib.sha256).digest()).decode()
    return {"content-type": "application/json", "x-hubspot-signature-v3": sig, "x-hubspot-request-timestamp": ts}
