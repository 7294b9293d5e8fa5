"""Google Ads offline click conversions: `POST /{version}/customers/{id}:uploadClickConversions`.

One `ClickConversion` per conversion with its click id (`gclid`, else `gbraid`, else `wbraid`), the stage's
conversion action `customers/{id}/conversionActions/{action id}`, `conversionDateTime`
("yyyy-mm-dd hh:mm:ss+hh:mm", the configured `utc_offset`), `orderId` = `<lead_id>#<stage>` (Google keeps one
conversion per order id and action: a resend is refused as a duplicate, which counts as done here) and, when
the stage has one, `conversionValue` + `currencyCode`. `partialFailure` is always true, so one bad row never
sinks the others. Field names are the REST (JSON) spelling of the proto fields `conversion_date_time`,
`order_id`, `partial_failure`, as Google's REST reference writes them.

Headers: `Authorization: Bearer <access token>` (exchanged from the `ads/google` refresh token at Google's
OAuth endpoint, cached until it expires, refreshed once on a 401), `developer-token`, `login-customer-id`
(`login_customer_id` of the secret, else `customer_id`: the manager account that authenticates).

Answers: 429 (RESOURCE_EXHAUSTED) and 5xx are retried (Retry-After honoured); any other non-2xx fails the
whole call. A 200's `partialFailureError.details[].errors[]` name their row by
`location.fieldPathElements[{fieldName: "conversions", index}]`: a click Google cannot see yet
(CLICK_NOT_FOUND, it may take hours to arrive) and a too new conversion action are retried, an existing
conversion is done, every other row error fails that row for good; rows with a result are done.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import timedelta

from leadflow.ads import Call, Conversion, Outcome, every
from leadflow.ads.config import PlatformConfig, stage_value
from leadflow.domain.conversions import parse_time
from leadflow.http import ApiError, Response, base_url, retry_after_seconds
from leadflow.secrets import get_secret, secret_field

NAME = "google-ads"
SECRET = "ads/google"
TOKEN_PATH = "/token"
MAX_ROWS = 2000
# a click Google cannot see yet (clicks take hours to arrive), a brand-new action, a concurrent write: later
RETRY_CODES = frozenset(
    {"CLICK_NOT_FOUND", "TOO_RECENT_EVENT", "TOO_RECENT_CONVERSION_ACTION", "CONCURRENT_MODIFICATION"}
)
DONE_CODES = frozenset({"CLICK_CONVERSION_ALREADY_EXISTS", "ORDER_ID_ALREADY_IN_USE"})
_tokens: dict[str, tuple[str, float]] = {}  # OAuth URL → (access token, monotonic expiry)
_lock = threading.Lock()


def forget_tokens() -> None:
    with _lock:
        _tokens.clear()


def _digits(value: object) -> str:
    return "".join(ch for ch in str(value or "") if ch.isdigit())


def date_time(at: str, utc_offset: str = "+00:00") -> str:
    """`yyyy-mm-dd hh:mm:ss+hh:mm` of an ISO instant, written in the account's offset."""
    sign = -1 if utc_offset.startswith("-") else 1
    hours, minutes = utc_offset[1:].split(":")
    shift = sign * timedelta(hours=int(hours), minutes=int(minutes))
    return (parse_time(at) + shift).strftime("%Y-%m-%d %H:%M:%S") + utc_offset


def row(conversion: Conversion, customer_id: str, utc_offset: str) -> dict:
    spec = conversion.stage_config
    item = {
        conversion.click["name"]: conversion.click["value"],
        "conversionAction": f"customers/{customer_id}/conversionActions/{spec['conversion_action_id']}",
        "conversionDateTime": date_time(conversion.at, utc_offset),
        "orderId": conversion.key,
    }
    value = stage_value(conversion.lead, spec)
    if value is not None:
        item["conversionValue"] = value
        item["currencyCode"] = spec.get("currency", "USD")
    return item


def build_calls(conversions: list[Conversion], platform: PlatformConfig) -> tuple[list[Call], dict[str, Outcome]]:
    secret = get_secret(SECRET)
    customer_id = _digits(secret_field(SECRET, "customer_id"))
    login = _digits(secret.get("login_customer_id") if isinstance(secret, dict) else None) or customer_id
    headers = {"developer-token": secret_field(SECRET, "developer_token"), "login-customer-id": login}
    version = platform.options.get("api_version", "v22")
    url = f"{base_url(NAME)}/{version}/customers/{customer_id}:uploadClickConversions"
    offset = platform.options.get("utc_offset", "+00:00")
    size = max(1, min(platform.batch_size, MAX_ROWS))
    calls = []
    for start in range(0, len(conversions), size):
        chunk = conversions[start : start + size]
        body = {"conversions": [row(c, customer_id, offset) for c in chunk], "partialFailure": True}
        calls.append(Call("POST", url, tuple(c.key for c in chunk), dict(headers), body))
    return calls, {}


def _error_code(error: dict) -> str:
    code = error.get("errorCode") or {}
    return str(next(iter(code.values()), "UNKNOWN")) if isinstance(code, dict) and code else "UNKNOWN"


def _row_index(error: dict) -> int | None:
    for element in ((error.get("location") or {}).get("fieldPathElements")) or []:
        if element.get("fieldName") == "conversions" and isinstance(element.get("index"), int):
            return int(element["index"])
    return None


def _call_errors(body: dict) -> list[dict]:
    status = body.get("error") if isinstance(body.get("error"), dict) else body.get("partialFailureError") or {}
    return [e for detail in status.get("details") or [] for e in detail.get("errors") or []]


def classify(call: Call, answer: Response) -> dict[str, Outcome]:
    body = answer.body if isinstance(answer.body, dict) else {}
    if answer.status == 429 or answer.status >= 500:
        wait = retry_after_seconds(answer.headers.get("retry-after"))
        return every(call.keys, Outcome("retry", reason=f"HTTP {answer.status}", retry_after=wait))
    if answer.status == 401:
        return every(call.keys, Outcome("retry", reason="HTTP 401 (credentials)"))
    if not answer.ok:
        codes = ",".join(sorted({_error_code(e) for e in _call_errors(body)})) or "no error code"
        return every(call.keys, Outcome("failed", reason=f"HTTP {answer.status} {codes}"))
    outcomes: dict[str, Outcome] = {}
    for error in _call_errors(body):
        index = _row_index(error)
        if index is None or index >= len(call.keys):
            continue
        code = _error_code(error)
        if code in DONE_CODES:
            outcomes[call.keys[index]] = Outcome("done", reason=code)
        else:
            outcomes[call.keys[index]] = Outcome("retry" if code in RETRY_CODES else "failed", reason=code)
    results = body.get("results") or []
    for index, key in enumerate(call.keys):
        if key in outcomes:
            continue
        result = results[index] if index < len(results) else None
        outcomes[key] = Outcome("done") if result else Outcome("retry", reason="no result for the row")
    return outcomes


def _access_token(request: Callable[..., Response], refresh: bool) -> str:
    url = base_url("google-oauth") + TOKEN_PATH
    with _lock:
        cached = _tokens.get(url)
        if cached and not refresh and cached[1] > time.monotonic():
            return cached[0]
    form = {
        "grant_type": "refresh_token",
        "client_id": secret_field(SECRET, "client_id"),
        "client_secret": secret_field(SECRET, "client_secret"),
        "refresh_token": secret_field(SECRET, "refresh_token"),
    }
    answer = request("google-oauth", "POST", url, form=form)
    body = answer.body if isinstance(answer.body, dict) else {}
    if not answer.ok or not body.get("access_token"):
        raise ApiError("google-oauth", answer.status, str(body.get("error") or "") or None)
    lifetime = max(60.0, float(body.get("expires_in") or 3600) - 60.0)  # renewed a minute early
    with _lock:
        _tokens[url] = (str(body["access_token"]), time.monotonic() + lifetime)
    return str(body["access_token"])


def send_call(call: Call, platform: PlatformConfig, send: Callable, request: Callable[..., Response]) -> dict:
    """Send with a cached access token; on 401 exchange the refresh token again and send once more."""
    outcomes: dict[str, Outcome] = {}
    for refresh in (False, True):
        try:
            token = _access_token(request, refresh)
        except ApiError as error:
            retry = error.status is None or error.status >= 500 or error.status == 429
            # an invalid_grant (revoked refresh token) is retried too: an operator rotates ads/google
            return every(call.keys, Outcome("retry" if retry or error.status in (400, 401) else "failed",
                                            reason=f"OAuth token: {error}"))  # fmt: skip
        signed = Call(call.method, call.url, call.keys, {**call.headers, "Authorization": f"Bearer {token}"},
                      call.json_body, call.data)  # fmt: skip
        outcomes = send(signed, platform, classify)
        if not any(o.reason == "HTTP 401 (credentials)" for o in outcomes.values()):
            return outcomes
    return outcomes
