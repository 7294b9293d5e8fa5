"""Signing form-tool deliveries the way each platform documents it (independent of the code under test)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

from leadflow.config import settings
from tests.support.signing import dev_secret


def _hmac(secret: str, message: bytes) -> bytes:
    return hmac.new(secret.encode(), message, hashlib.sha256).digest()


def typeform_headers(body: bytes, secret: str | None = None) -> dict[str, str]:
    """Typeform-Signature: sha256=<base64(HMAC-SHA256(secret, body))>."""
    sig = base64.b64encode(_hmac(secret or dev_secret("webhooks/typeform"), body)).decode()
    return {"content-type": "application/json", "typeform-signature": f"sha256={sig}"}


def tally_headers(body: bytes, secret: str | None = None) -> dict[str, str]:
    """Tally-Signature: base64(HMAC-SHA256(secret, body))."""
    sig = base64.b64encode(_hmac(secret or dev_secret("webhooks/tally"), body)).decode()
    return {"content-type": "application/json", "tally-signature": sig}


def webflow_headers(body: bytes, secret: str | None = None, timestamp_ms: int | None = None) -> dict[str, str]:
    """x-webflow-timestamp (ms) and x-webflow-signature = hex(HMAC-SHA256(secret, f"{ts}:{body}"))."""
    ts = str(int(time.time() * 1000) if timestamp_ms is None else timestamp_ms)
    sig = _hmac(secret or dev_secret("webhooks/webflow"), ts.encode() + b":" + body).hex()
    return {"content-type": "application/json", "x-webflow-timestamp": ts, "x-webflow-signature": sig}


def encode(document: dict) -> bytes:
    return json.dumps(document).encode()


def assert_nothing_stored(api, aws, email: str) -> None:
    """No lead, and not even a delivery or identity record."""
    assert api.get_lead_by_email(email).status == 404
    assert aws.scan(TableName=settings().table_name, Select="COUNT")["Count"] == 0


def meta_headers(body: bytes, secret: str | None = None) -> dict[str, str]:
    """X-Hub-Signature-256: sha256=<hex(HMAC-SHA256(app_secret, body))>."""
    sig = _hmac(secret or dev_secret("webhooks/meta")["app_secret"], body).hex()
    return {"content-type": "application/json", "x-hub-signature-256": f"sha256={sig}"}


def linkedin_headers(body: bytes, secret: str | None = None) -> dict[str, str]:
    """X-LI-Signature: hex(HMAC-SHA256(client_secret, "hmacsha256=" + body))."""
    sig = _hmac(secret or dev_secret("webhooks/linkedin")["client_secret"], b"hmacsha256=" + body).hex()
    return {"content-type": "application/json", "x-li-signature": sig}


def tiktok_headers(body: bytes, secret: str | None = None, timestamp: int | str | None = None) -> dict[str, str]:
    """TikTok-Signature: t=<unix seconds>,s=<hex(HMAC-SHA256(client_secret, f"{t}.{body}"))>."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    sig = _hmac(secret or dev_secret("webhooks/tiktok")["client_secret"], f"{ts}.".encode() + body).hex()
    return {"content-type": "application/json", "tiktok-signature": f"t={ts},s={sig}"}
