"""Tencent Ads (腾讯广告) web conversions: `POST /{version}/user_actions/add?access_token=&timestamp=&nonce=`.

Body `{"account_id", "user_action_set_id", "actions": [...]}` with 1–50 actions (Tencent's limit), each
`{"outer_action_id": "<lead_id>#<stage>" (Tencent's dedupe key), "action_time" (unix seconds), "action_type"
(the stage's configured type, e.g. RESERVATION for a form lead), "trace": {"click_id": <qz_gdt or gdt_vid>},
"url"?: the landing page, "action_param"?: {"value": fen}}`. The Marketing API authenticates every call with
`access_token`, a `timestamp` (seconds) and a unique `nonce`, over HTTPS only since 2025-03-31.

Answers: HTTP 429/5xx and no answer are retried; HTTP 200 with `code` 0 is done; another `code` fails the
call's actions (the reason keeps the code, never the message).
"""

from __future__ import annotations

import time
import urllib.parse
import uuid
from collections.abc import Callable

from leadflow.ads import Call, Conversion, Outcome, every
from leadflow.ads.config import PlatformConfig, stage_value
from leadflow.domain.conversions import parse_time
from leadflow.http import Response, base_url, retry_after_seconds
from leadflow.secrets import secret_field

NAME = "tencent"
SECRET = "ads/tencent"
MAX_ACTIONS = 50


def action(conversion: Conversion) -> dict:
    entry: dict = {
        "outer_action_id": conversion.key,
        "action_time": int(parse_time(conversion.at).timestamp()),
        "action_type": conversion.stage_config["action_type"],
        "trace": {"click_id": conversion.click["value"]},
    }
    if conversion.click.get("landing_url"):
        entry["url"] = conversion.click["landing_url"][:2048]
    value = stage_value(conversion.lead, conversion.stage_config)
    if value is not None:
        entry["action_param"] = {"value": round(value * 100)}  # fen
    return entry


def build_calls(conversions: list[Conversion], platform: PlatformConfig) -> tuple[list[Call], dict[str, Outcome]]:
    account = int(secret_field(SECRET, "account_id"))
    action_set = int(secret_field(SECRET, "user_action_set_id"))
    token = secret_field(SECRET, "access_token")
    size = max(1, min(platform.batch_size, MAX_ACTIONS))
    calls = []
    for start in range(0, len(conversions), size):
        chunk = conversions[start : start + size]
        query = urllib.parse.urlencode(
            {"access_token": token, "timestamp": str(int(time.time())), "nonce": uuid.uuid4().hex}
        )
        url = f"{base_url(NAME)}/{platform.options.get('api_version', 'v1.1')}/user_actions/add?{query}"
        body = {"account_id": account, "user_action_set_id": action_set, "actions": [action(c) for c in chunk]}
        calls.append(Call("POST", url, tuple(c.key for c in chunk), {}, body))
    return calls, {}


def classify(call: Call, answer: Response) -> dict[str, Outcome]:
    if answer.status == 429 or answer.status >= 500:
        wait = retry_after_seconds(answer.headers.get("retry-after"))
        return every(call.keys, Outcome("retry", reason=f"HTTP {answer.status}", retry_after=wait))
    body = answer.body if isinstance(answer.body, dict) else {}
    if answer.ok and body.get("code") == 0:
        return every(call.keys, Outcome("done"))
    code = body.get("code")
    return every(call.keys, Outcome("failed", reason=f"HTTP {answer.status}" + (f" code {code}" if code else "")))


def send_call(call: Call, platform: PlatformConfig, send: Callable, request: Callable[..., Response]) -> dict:
    return send(call, platform, classify)
