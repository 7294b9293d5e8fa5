"""The one outbound HTTP client of LeadFlow (urllib): platform lead APIs, CAPTCHA checks, CRMs, webhooks.

Every call has a timeout and a response size cap; redirects are never followed (a CRM or webhook that
answers 3xx has failed: following it could carry credentials to another host or down to http).
`request_json` raises an `ApiError` carrying the HTTP status (None for timeouts and connection errors) on
anything but 2xx, so the fetch service can tell retryable failures (timeouts, 5xx, 429) from permanent
ones (other 4xx); `request` returns every HTTP answer as a `Response` for callers that classify statuses
themselves (`leadflow.crm`: 207 per-record errors, 429 policies, 401 session expiry). `Retry-After` is
parsed once, here. Bodies are never logged: they hold the person's answers.
"""

from __future__ import annotations

import email.utils
import json
import os
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from functools import cache
from typing import Any

DEFAULT_TIMEOUT = 10.0  # seconds; FetchLeadsFunction's Timeout (30 s) leaves room for a couple of calls
MAX_RESPONSE_BYTES = 8 * 1024 * 1024
RETRYABLE_STATUSES = frozenset({408, 425, 429})

# Contract: every outbound base URL is configuration with an environment override.
BASE_URLS = {
    "meta": ("LEADFLOW_META_GRAPH_URL", "https://graph.facebook.com"),
    "linkedin": ("LEADFLOW_LINKEDIN_API_URL", "https://api.linkedin.com"),
    "tiktok": ("LEADFLOW_TIKTOK_API_URL", "https://business-api.tiktok.com"),
    # Website form CAPTCHA siteverify APIs (leadflow.sources.captcha); one override for all three.
    "turnstile": ("LEADFLOW_CAPTCHA_VERIFY_URL", "https://challenges.cloudflare.com"),
    "recaptcha": ("LEADFLOW_CAPTCHA_VERIFY_URL", "https://www.google.com"),
    "hcaptcha": ("LEADFLOW_CAPTCHA_VERIFY_URL", "https://api.hcaptcha.com"),
    # CRM push targets (leadflow.crm): HubSpot's API and Salesforce's OAuth login host.
    "hubspot": ("LEADFLOW_HUBSPOT_API_URL", "https://api.hubapi.com"),
    "salesforce": ("LEADFLOW_SALESFORCE_LOGIN_URL", "https://login.salesforce.com"),
    # Conversions out (leadflow.ads); Meta's Conversions API is on the Graph API host above.
    "google-ads": ("LEADFLOW_GOOGLE_ADS_API_URL", "https://googleads.googleapis.com"),
    "google-oauth": ("LEADFLOW_GOOGLE_OAUTH_URL", "https://oauth2.googleapis.com"),
    "baidu": ("LEADFLOW_BAIDU_OCPC_URL", "https://ocpc.baidu.com"),
    "tencent": ("LEADFLOW_TENCENT_ADS_URL", "https://api.e.qq.com"),
}


class ApiError(Exception):
    """A platform API call failed. `status` is None when no HTTP answer arrived (timeout, refused)."""

    def __init__(self, service: str, status: int | None, code: str | None = None) -> None:
        self.service = service
        self.status = status
        self.code = code  # the platform's own error code, never a message that could echo input
        what = f"HTTP {status}" if status is not None else "no answer (timeout or connection error)"
        super().__init__(f"{service} API: {what}" + (f" (error code {code})" if code else ""))

    @property
    def retryable(self) -> bool:
        return self.status is None or self.status >= 500 or self.status in RETRYABLE_STATUSES


def base_url(service: str) -> str:
    variable, default = BASE_URLS[service]
    return (os.environ.get(variable) or default).rstrip("/")


def _prepare(
    method: str,
    url: str,
    *,
    form: dict[str, str] | None,
    json_body: Any,
    data: bytes | None,
    headers: dict[str, str] | None,
) -> urllib.request.Request:
    """The request to send: http(s) only, the form or JSON body encoded (else `data` as given), JSON accepted."""
    if not url.startswith(("https://", "http://")):
        raise ValueError("Only http(s) URLs are allowed.")
    all_headers = {"Accept": "application/json", **(headers or {})}
    if form is not None:
        data = urllib.parse.urlencode(form).encode()
        all_headers["Content-Type"] = "application/x-www-form-urlencoded"
    elif json_body is not None:
        data = json.dumps(json_body, separators=(",", ":")).encode()
        all_headers["Content-Type"] = "application/json"
    return urllib.request.Request(url, data=data, method=method.upper(), headers=all_headers)  # noqa: S310


def request_json(
    service: str,
    method: str,
    url: str,
    *,
    query: dict[str, str] | None = None,
    form: dict[str, str] | None = None,
    json_body: Any = None,
    headers: dict[str, str] | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> Any:
    """Call a JSON API and return the decoded answer; raises ApiError on any non-2xx or transport failure."""
    if query:
        url += ("&" if "?" in url else "?") + urllib.parse.urlencode(query)
    request = _prepare(method, url, form=form, json_body=json_body, data=None, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:  # noqa: S310 - scheme checked above
            raw = answer.read(MAX_RESPONSE_BYTES)
    except urllib.error.HTTPError as exc:
        raise ApiError(service, exc.code, _error_code(exc)) from None
    except OSError as exc:  # URLError, TimeoutError, ConnectionError are all OSErrors
        raise ApiError(service, None) from exc
    try:
        return json.loads(raw) if raw else None
    except ValueError as exc:
        raise ApiError(service, 502, "invalid-json") from exc


def _error_code(error: urllib.error.HTTPError) -> str | None:
    """The platform's error code from an error body (Graph: error.code / error_subcode), if any."""
    try:
        document = json.loads(error.read(64 * 1024) or b"null")
    except (ValueError, OSError):
        return None
    if isinstance(document, dict):
        inner = document.get("error")
        if isinstance(inner, dict):
            code = inner.get("code")
            sub = inner.get("error_subcode")
            if code is not None:
                return f"{code}/{sub}" if sub is not None else str(code)
        for key in ("code", "serviceErrorCode"):
            if isinstance(document.get(key), int | str):
                return str(document[key])
    return None


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:  # a 3xx is returned as the answer
        return None


@cache
def _opener() -> urllib.request.OpenerDirector:
    """Built on first use: its HTTPS handler loads the CA bundle (~20 ms), which a function that never calls
    out (a form without CAPTCHA, a webhook) should not pay at import."""
    return urllib.request.build_opener(_NoRedirect)


@dataclass(frozen=True)
class Response:
    """One HTTP answer: status, headers (lower-case names), the decoded JSON body (None if not JSON)."""

    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: Any = None
    elapsed_ms: float = 0.0

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


def request(
    service: str,
    method: str,
    url: str,
    *,
    json_body: Any = None,
    form: dict[str, str] | None = None,
    data: bytes | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> Response:
    """Send one request and return whatever HTTP answer came (2xx, 3xx, 4xx, 5xx alike).

    Raises ApiError(service, None) only when no answer arrived (timeout, refused connection, reset).
    """
    prepared = _prepare(method, url, form=form, json_body=json_body, data=data, headers=headers)
    started = time.monotonic()
    try:
        with _opener().open(prepared, timeout=timeout) as answer:
            status, answer_headers, raw = answer.status, answer.headers, answer.read(MAX_RESPONSE_BYTES)
    except urllib.error.HTTPError as exc:
        status, answer_headers = exc.code, exc.headers
        try:
            raw = exc.read(MAX_RESPONSE_BYTES)
        except OSError:
            raw = b""
    except OSError as exc:  # URLError, TimeoutError, ConnectionError are all OSErrors
        raise ApiError(service, None) from exc
    try:
        body = json.loads(raw) if raw else None
    except ValueError:
        body = None
    names = {k.lower(): v for k, v in (answer_headers.items() if answer_headers else [])}
    return Response(status, names, body, (time.monotonic() - started) * 1000)


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """`Retry-After` as seconds from now: delta-seconds or an HTTP date (RFC 9110 §10.2.3); None if absent."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, moment.timestamp() - (time.time() if now is None else now))
