"""Baidu OCPC (search/web leads): `POST /ocpcapi/api/uploadConvertData` with `{"token", "conversionTypes"}`.

One item per conversion: `logidUrl` = the landing URL that carried `bd_vid` (≤ 1024 characters; bd_vid is
appended when it came as a field), `newType` = the stage's conversion type code from the configuration (the
codes of your 转化追踪 console), `convertTime` (unix seconds) and, when configured, `convertValue` in fen.
Fewer than 100 items a call (Baidu's limit). Baidu has no dedupe key: LeadFlow's own record of
`<lead_id>#<stage>` keeps a redelivery from counting twice.

Answers: HTTP 429/5xx and no answer are retried; `header.status` 0 is done; any other status fails the call's
items (the reason keeps Baidu's status and error codes, never its messages).
"""

from __future__ import annotations

from collections.abc import Callable

from leadflow.ads import Call, Conversion, Outcome, every
from leadflow.ads.config import PlatformConfig, stage_value
from leadflow.domain.conversions import logid_url, parse_time
from leadflow.http import Response, base_url, retry_after_seconds
from leadflow.secrets import secret_field

NAME = "baidu"
SECRET = "ads/baidu"
UPLOAD_PATH = "/ocpcapi/api/uploadConvertData"
MAX_ITEMS = 99  # "每次回传转化数据数组长度需小于100"


def item(conversion: Conversion) -> dict | None:
    url = logid_url(conversion.click)
    if not url:
        return None
    entry: dict = {
        "logidUrl": url,
        "newType": int(conversion.stage_config["new_type"]),
        "convertTime": int(parse_time(conversion.at).timestamp()),
    }
    value = stage_value(conversion.lead, conversion.stage_config)
    if value is not None:
        entry["convertValue"] = round(value * 100)  # fen
    return entry


def build_calls(conversions: list[Conversion], platform: PlatformConfig) -> tuple[list[Call], dict[str, Outcome]]:
    token = secret_field(SECRET, "token")
    refused: dict[str, Outcome] = {}
    ready: list[tuple[str, dict]] = []
    for conversion in conversions:
        entry = item(conversion)
        if entry is None:
            refused[conversion.key] = Outcome("failed", reason="no landing URL carrying bd_vid")
        else:
            ready.append((conversion.key, entry))
    size = max(1, min(platform.batch_size, MAX_ITEMS))
    url = base_url(NAME) + UPLOAD_PATH
    calls = [
        Call(
            "POST",
            url,
            tuple(k for k, _ in ready[i : i + size]),
            {},
            {"token": token, "conversionTypes": [e for _, e in ready[i : i + size]]},
        )  # fmt: skip
        for i in range(0, len(ready), size)
    ]
    return calls, refused


def classify(call: Call, answer: Response) -> dict[str, Outcome]:
    if answer.status == 429 or answer.status >= 500:
        wait = retry_after_seconds(answer.headers.get("retry-after"))
        return every(call.keys, Outcome("retry", reason=f"HTTP {answer.status}", retry_after=wait))
    header = (answer.body or {}).get("header") if isinstance(answer.body, dict) else None
    if not answer.ok or not isinstance(header, dict):
        return every(call.keys, Outcome("failed", reason=f"HTTP {answer.status}"))
    if header.get("status") == 0:
        return every(call.keys, Outcome("done"))
    codes = ",".join(str(e.get("code")) for e in header.get("errors") or [] if isinstance(e, dict))
    return every(call.keys, Outcome("failed", reason=f"status {header.get('status')} {codes}".strip()))


def send_call(call: Call, platform: PlatformConfig, send: Callable, request: Callable[..., Response]) -> dict:
    return send(call, platform, classify)
