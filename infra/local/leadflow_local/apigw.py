"""API Gateway HTTP API (payload format 2.0) events and Lambda contexts, as AWS builds them.

Used by the local runtime's HTTP adapter and by the tests, so handlers always see real-shaped events:
raw body (base64 for binary), lower-cased headers (repeated headers joined by commas), cookies split out
of the Cookie header, query string parameters, path parameters and the request context.
"""

from __future__ import annotations

import base64
import importlib.util
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from urllib.parse import parse_qsl, urlsplit

REPO_ROOT = Path(__file__).resolve().parents[3]
_TEXT_TYPES = ("text/", "application/json", "application/x-www-form-urlencoded", "application/xml", "+json", "+xml")


def _is_text(content_type: str | None, body: bytes) -> bool:
    if not body:
        return True
    media = (content_type or "").lower()
    if any(marker in media for marker in _TEXT_TYPES):
        try:
            body.decode("utf-8")
        except UnicodeDecodeError:
            return False
        return True
    return False


def build_event(
    method: str,
    url: str,
    *,
    route_key: str,
    path_parameters: dict[str, str] | None = None,
    headers: Iterable[tuple[str, str]] | dict[str, str] | None = None,
    body: bytes | str | None = None,
    source_ip: str = "127.0.0.1",
    stage: str = "$default",
) -> dict:
    """The payload-2.0 event API Gateway would send for this request."""
    parts = urlsplit(url)
    pairs = list(headers.items()) if isinstance(headers, dict) else list(headers or [])
    merged: dict[str, str] = {}
    cookies: list[str] = []
    for name, value in pairs:
        key = name.lower()
        if key == "cookie":
            cookies.extend(c.strip() for c in value.split(";") if c.strip())
            continue
        merged[key] = f"{merged[key]},{value}" if key in merged else value
    raw_body = body.encode() if isinstance(body, str) else (body or b"")
    text = _is_text(merged.get("content-type"), raw_body)
    query: dict[str, str] = {}
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        query[key] = f"{query[key]},{value}" if key in query else value
    now = datetime.now(UTC)
    event: dict = {
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": parts.path or "/",
        "rawQueryString": parts.query,
        "headers": merged,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "local",
            "domainName": merged.get("host", "localhost"),
            "domainPrefix": "local",
            "http": {
                "method": method.upper(),
                "path": parts.path or "/",
                "protocol": "HTTP/1.1",
                "sourceIp": source_ip,
                "userAgent": merged.get("user-agent", ""),
            },
            "requestId": uuid.uuid4().hex,
            "routeKey": route_key,
            "stage": stage,
            "time": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "timeEpoch": int(now.timestamp() * 1000),
        },
        "isBase64Encoded": not text,
    }
    if cookies:
        event["cookies"] = cookies
    if query:
        event["queryStringParameters"] = query
    if path_parameters:
        event["pathParameters"] = dict(path_parameters)
    if raw_body:
        event["body"] = raw_body.decode("utf-8") if text else base64.b64encode(raw_body).decode()
    return event


@dataclass
class LambdaContext:
    """The attributes of the Lambda context object that handlers and Powertools read."""

    function_name: str
    memory_limit_in_mb: int = 512
    timeout_seconds: float = 10.0
    function_version: str = "$LATEST"

    def __post_init__(self) -> None:
        self.aws_request_id = str(uuid.uuid4())
        self.invoked_function_arn = f"arn:aws:lambda:us-east-1:123456789012:function:{self.function_name}"
        self.log_group_name = f"/aws/lambda/{self.function_name}"
        self.log_stream_name = f"local/{self.aws_request_id}"
        self._deadline = time.monotonic() + self.timeout_seconds

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def load_function(code_uri: str, handler: str = "app.handler") -> tuple[ModuleType, str]:
    """Import a function's module from its CodeUri folder under a unique name; returns (module, attr)."""
    module_name, attribute = handler.rsplit(".", 1)
    path = (REPO_ROOT / code_uri / f"{module_name.replace('.', '/')}.py").resolve()
    unique = "lambda_" + code_uri.strip("/").replace("/", "_") + "_" + module_name.replace(".", "_")
    spec = importlib.util.spec_from_file_location(unique, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"No handler module at {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module, attribute
