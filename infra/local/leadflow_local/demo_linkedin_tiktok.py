"""Demo traffic for the pointer-style ad platforms LinkedIn Lead Sync and TikTok lead webhooks.

`shots(url, rng)` gives the requests `leadflow demo` can send, signed exactly as the platforms sign them
with the development secrets of infra/local/secrets.json:
- LinkedIn: the validation GET (`challengeCode`), a LEAD_ACTION CREATED notification
  (`X-LI-Signature = hex(HMAC-SHA256(clientSecret, "hmacsha256=" + body))`), LinkedIn's duplicate
  delivery of it, a DELETED action (acknowledged, nothing created) and a tampered body (401);
- TikTok: a lead notification (`TikTok-Signature: t=<unix>,s=hex(HMAC-SHA256(secret, t + "." + body))`,
  `content` a JSON string naming the lead), its retry, and a replay with a stale timestamp (401).
Both are acknowledged at once; the leads themselves are fetched from the platform API named by
LEADFLOW_LINKEDIN_API_URL / LEADFLOW_TIKTOK_API_URL, so they only become leads where that API answers.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import random
import time
import uuid
from typing import Any

from leadflow_local.demo import SECRETS, Shot

JSON = {"content-type": "application/json"}


def _secret(name: str) -> Any:
    return json.loads(SECRETS.read_text())[name]


def _digits(rng: random.Random, n: int) -> str:
    return str(rng.randrange(10 ** (n - 1), 10**n))


def linkedin_signature(body: bytes) -> str:
    key = _secret("webhooks/linkedin")["client_secret"].encode()
    return hmac.new(key, b"hmacsha256=" + body, hashlib.sha256).hexdigest()


def tiktok_signature(body: bytes, timestamp: int) -> str:
    value = _secret("webhooks/tiktok")
    key = (value["client_secret"] if isinstance(value, dict) else value).encode()
    return f"t={timestamp},s=" + hmac.new(key, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def _linkedin(rng: random.Random) -> list[Shot]:
    path = "/v1/webhooks/linkedin"
    challenge = str(uuid.UUID(int=rng.getrandbits(128), version=4))
    response_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
    account = _digits(rng, 9)
    notification = {
        "type": "LEAD_ACTION",
        "leadGenFormResponse": f"urn:li:leadGenFormResponse:{response_id}",
        "owner": {"sponsoredAccount": f"urn:li:sponsoredAccount:{account}"},
        "associatedEntity": {"sponsoredCreative": f"urn:li:sponsoredCreative:{_digits(rng, 7)}"},
        "leadGenForm": f"urn:li:versionedLeadGenForm:(urn:li:leadGenForm:{_digits(rng, 7)},1)",
        "leadType": "SPONSORED",
        "leadAction": "CREATED",
        "occurredAt": int(time.time() * 1000),
    }
    body = json.dumps(notification).encode()
    deleted = json.dumps({**notification, "leadAction": "DELETED"}).encode()
    tampered = body.replace(b"SPONSORED", b"EVENT", 1)
    return [
        Shot("linkedin", "GET", f"{path}?challengeCode={challenge}", b"", {}, kind="handshake"),
        Shot("linkedin", "POST", path, body, {**JSON, "x-li-signature": linkedin_signature(body)}),
        Shot("linkedin", "POST", path, body, {**JSON, "x-li-signature": linkedin_signature(body)}, kind="redelivery"),
        Shot("linkedin", "POST", path, deleted, {**JSON, "x-li-signature": linkedin_signature(deleted)}),
        Shot("linkedin", "POST", path, tampered, {**JSON, "x-li-signature": linkedin_signature(body)}, kind="bad"),
    ]


def _tiktok(rng: random.Random) -> list[Shot]:
    path = "/v1/webhooks/tiktok"
    now = int(time.time())
    # ASSUMED content shape (TikTok does not publish it): see leadflow/sources/tiktok.py.
    content = {
        "lead_id": _digits(rng, 19),
        "page_id": _digits(rng, 19),
        "advertiser_id": _digits(rng, 19),
        "create_time": str(now),
    }
    envelope = {
        "client_key": "awdemo" + _digits(rng, 10),
        "event": "lead.create",
        "create_time": now,
        "user_openid": "act.demo" + _digits(rng, 12),
        "content": json.dumps(content),
    }
    body = json.dumps(envelope).encode()
    return [
        Shot("tiktok", "POST", path, body, {**JSON, "tiktok-signature": tiktok_signature(body, now)}),
        Shot("tiktok", "POST", path, body, {**JSON, "tiktok-signature": tiktok_signature(body, now + 5)}, "redelivery"),
        Shot("tiktok", "POST", path, body, {**JSON, "tiktok-signature": tiktok_signature(body, now - 3600)}, "bad"),
    ]


def shots(url: str, rng: random.Random) -> list[Shot]:
    """Signed LinkedIn and TikTok deliveries (the URL is not part of either platform's signature)."""
    return _linkedin(rng) + _tiktok(rng)
