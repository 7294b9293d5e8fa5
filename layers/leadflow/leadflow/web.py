"""HTTP edge of the Lambda functions: API Gateway HTTP API (payload 2.0) events in, responses out.

Failures are mapped to `application/problem+json` here and only here. Capture functions parse the event
with this thin adapter rather than a router because signatures must be checked on the raw bytes before
anything else touches the body, and because it keeps their cold start small (see bench/capture.py).
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from leadflow.config import settings
from leadflow.errors import LeadFlowError, MalformedBody, PayloadTooLarge, UnsupportedMediaType
from leadflow.observability import end_request, logger, record_refusal

PROBLEM_TYPE = "https://leadflow.dev/problems/"


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    headers: dict[str, str]
    query: dict[str, str]
    raw_query: str
    path_params: dict[str, str]
    cookies: dict[str, str]
    body: bytes
    source_ip: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    @property
    def media_type(self) -> str:
        return (self.header("content-type") or "").split(";", 1)[0].strip().lower()


def request_from_event(event: dict) -> Request:
    """Build a Request from a payload-2.0 event, enforcing the body size cap before decoding."""
    limit = settings().max_body_bytes
    raw = event.get("body") or ""
    encoded = bool(event.get("isBase64Encoded"))
    if len(raw) > (limit * 4 // 3 + 4 if encoded else limit * 4):
        raise PayloadTooLarge(f"The body is larger than {limit} bytes.")
    if encoded:
        try:
            body = base64.b64decode(raw, validate=False)
        except (binascii.Error, ValueError) as exc:
            raise MalformedBody("The body is not valid base64.") from exc
    else:
        body = raw.encode("utf-8", errors="surrogateescape")
    if len(body) > limit:
        raise PayloadTooLarge(f"The body is larger than {limit} bytes.")
    http = (event.get("requestContext") or {}).get("http") or {}
    headers = {str(k).lower(): str(v) for k, v in (event.get("headers") or {}).items()}
    cookies: dict[str, str] = {}
    for cookie in event.get("cookies") or []:
        name, _, value = str(cookie).partition("=")
        if name.strip():
            cookies.setdefault(name.strip(), value.strip())
    query = {str(k): str(v) for k, v in (event.get("queryStringParameters") or {}).items()}
    return Request(
        method=str(http.get("method") or "GET").upper(),
        path=str(event.get("rawPath") or http.get("path") or "/"),
        headers=headers,
        query=query,
        raw_query=str(event.get("rawQueryString") or ""),
        path_params={str(k): str(v) for k, v in (event.get("pathParameters") or {}).items()},
        cookies=cookies,
        body=body,
        source_ip=http.get("sourceIp"),
    )


def json_body(request: Request) -> Any:
    if request.media_type not in ("application/json", "") and not request.media_type.endswith("+json"):
        raise UnsupportedMediaType(f"Send application/json, not {request.media_type}.")
    try:
        return json.loads(request.body.decode("utf-8"), parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise MalformedBody("The body is not valid JSON.") from exc


def json_object(request: Request, schema: str | None = None) -> dict[str, Any]:
    """The body as a JSON object (400 otherwise), checked against `schema` when given (422 with paths)."""
    document = json_body(request)
    if not isinstance(document, dict):
        raise MalformedBody("The body must be a JSON object.")
    if schema:
        from leadflow import schemas

        schemas.check(schema, document)
    return document


def _reject_constant(name: str) -> Any:
    """NaN and Infinity are not JSON (RFC 8259), though Python's parser accepts them."""
    raise ValueError(f"{name} is not valid JSON")


def form_body(request: Request) -> dict[str, Any]:
    """application/x-www-form-urlencoded → field → value (a list when a field repeats, e.g. checkboxes)."""
    try:
        pairs = parse_qsl(request.body.decode("utf-8"), keep_blank_values=True, max_num_fields=1000)
    except (UnicodeDecodeError, ValueError) as exc:
        raise MalformedBody("The body is not valid application/x-www-form-urlencoded.") from exc
    values: dict[str, Any] = {}
    for name, value in pairs:
        if name in values:
            current = values[name]
            values[name] = [*current, value] if isinstance(current, list) else [current, value]
        else:
            values[name] = value
    return values


def response(status: int, body: Any = None, headers: dict[str, str] | None = None) -> dict:
    out: dict[str, Any] = {"statusCode": status, "headers": dict(headers or {})}
    if body is not None:
        if isinstance(body, str | bytes):
            out["body"] = body.decode() if isinstance(body, bytes) else body
            out["headers"].setdefault("content-type", "text/plain; charset=utf-8")
        else:
            out["body"] = json.dumps(body, separators=(",", ":"), ensure_ascii=False)
            out["headers"].setdefault("content-type", "application/json")
    return out


CORS_PREFLIGHT = {
    "access-control-allow-methods": "POST, OPTIONS",
    "access-control-allow-headers": "content-type",
    "access-control-max-age": "600",
}


def cors_headers(origin: str | None) -> dict[str, str]:
    """CORS for an Origin already judged allowed (None: not a browser, no CORS headers)."""
    return {"access-control-allow-origin": origin, "vary": "Origin"} if origin else {}


def preflight(origin: str | None) -> dict:
    """The 204 answer to a browser's CORS preflight for an allowed Origin."""
    return response(204, headers={**cors_headers(origin), **CORS_PREFLIGHT})


def problem(error: LeadFlowError, headers: dict[str, str] | None = None) -> dict:
    body: dict[str, Any] = {
        "type": PROBLEM_TYPE + error.kind,
        "title": error.title,
        "status": error.status,
        "detail": error.detail,
    }
    errors = getattr(error, "errors", None)
    if errors:
        body["errors"] = [e.as_dict() for e in errors]
    out = response(error.status, body, headers)
    out["headers"]["content-type"] = "application/problem+json"
    if error.status == 503:
        out["headers"]["retry-after"] = "5"
    return out


def endpoint(handler: Callable[[dict, Any], dict]) -> Callable[[dict, Any], dict]:
    """Map LeadFlowError to its problem response, and anything unexpected to an opaque 500."""

    @functools.wraps(handler)
    def wrapper(event: dict, context: Any) -> dict:
        try:
            return handler(event, context)
        except LeadFlowError as error:
            if error.status >= 500:
                logger.error("request failed", extra={"kind": error.kind})
            else:
                logger.info("request refused", extra={"kind": error.kind, "status": error.status})
                record_refusal(error.status)  # 401/403/422 of a known provider: the `Refused` metric
            return problem(error, getattr(error, "headers", None))
        except Exception:
            logger.exception("unexpected failure")
            return problem(LeadFlowError("The request could not be processed."))
        finally:
            end_request()

    return wrapper
