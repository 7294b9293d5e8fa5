"""Serves every HttpApi route of template.yaml on a local port, the way API Gateway HTTP APIs do.

Requests become payload-2.0 events (apigw.build_event); handlers are the real ones, loaded from each
function's CodeUri, called with a Lambda context. Like a Lambda execution environment, a function runs one
invocation at a time (Powertools keeps per-invocation state in module globals); different functions run
concurrently. Responses follow the 2.0 rules: a dict with statusCode is used as is (isBase64Encoded,
cookies → Set-Cookie); anything else is a 200 JSON body.
"""

from __future__ import annotations

import base64
import json
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from leadflow_local.apigw import LambdaContext, build_event, load_function
from leadflow_local.template import http_routes, load_template

MAX_PAYLOAD = 10 * 1024 * 1024  # API Gateway HTTP API's payload limit


@dataclass
class Route:
    method: str
    path: str
    pattern: re.Pattern[str]
    names: list[str]
    function: str
    code_uri: str


class Functions:
    """Loads each function once and runs one invocation at a time per function."""

    def __init__(self) -> None:
        self._handlers: dict[str, Callable[[dict, Any], Any]] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def invoke(self, function: str, code_uri: str, event: dict) -> Any:
        with self._guard:
            if function not in self._handlers:
                module, attribute = load_function(code_uri)
                self._handlers[function] = getattr(module, attribute)
                self._locks[function] = threading.Lock()
        with self._locks[function]:
            return self._handlers[function](event, LambdaContext(function))


def routes_from_template(template: dict | None = None) -> list[Route]:
    table = []
    for method, path, logical_id, code_uri, _auth in http_routes(template or load_template()):
        names = re.findall(r"{(\w+)\+?}", path)
        regex = "^" + re.sub(r"{\w+\+}", "(.+)", re.sub(r"{\w+}", "([^/]+)", path)) + "$"
        table.append(Route(method.upper(), path, re.compile(regex), names, logical_id, code_uri))
    return table


def to_http(result: Any) -> tuple[int, list[tuple[str, str]], bytes]:
    """API Gateway payload-2.0 response rules."""
    if isinstance(result, dict) and "statusCode" in result:
        status = int(result["statusCode"])
        headers = [(k, str(v)) for k, v in (result.get("headers") or {}).items()]
        headers += [("set-cookie", c) for c in result.get("cookies") or []]
        body = result.get("body") or ""
        raw = base64.b64decode(body) if result.get("isBase64Encoded") else str(body).encode()
        return status, headers, raw
    raw = json.dumps(result).encode() if not isinstance(result, str) else result.encode()
    return 200, [("content-type", "application/json")], raw


class LocalApi:
    """The HTTP API on host:port; `on_request(method, path, status, ms)` sees every request."""

    def __init__(self, host: str = "127.0.0.1", port: int = 3000, on_request: Callable[..., None] | None = None):
        self.routes = routes_from_template()
        self.functions = Functions()
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # the runtime prints its own, PII-free, lines
                pass

            def _serve(self) -> None:
                started = time.perf_counter()
                length = int(self.headers.get("content-length") or 0)
                if length > MAX_PAYLOAD:
                    self._reply(413, [("content-type", "application/json")], b'{"message":"Request Entity Too Large"}')
                    return
                body = self.rfile.read(length) if length else b""
                status, headers, raw = api.dispatch(
                    self.command, self.path, list(self.headers.items()), body, self.client_address[0]
                )
                self._reply(status, headers, raw)
                if on_request:
                    on_request(self.command, self.path.split("?", 1)[0], status, (time.perf_counter() - started) * 1000)

            def _reply(self, status: int, headers: list[tuple[str, str]], raw: bytes) -> None:
                self.send_response(status)
                for name, value in headers:
                    self.send_header(name, value)
                self.send_header("content-length", str(len(raw)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(raw)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_HEAD = _serve  # noqa: N815

        self.server = ThreadingHTTPServer((host, port), Handler)
        self.server.daemon_threads = True
        self._thread = threading.Thread(target=self.server.serve_forever, name="local-api", daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def dispatch(
        self, method: str, target: str, headers: list[tuple[str, str]], body: bytes, source_ip: str
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        path = target.split("?", 1)[0]
        for route in self.routes:
            match = route.pattern.match(path)
            if match and route.method in (method.upper(), "ANY"):
                event = build_event(
                    method,
                    target,
                    route_key=f"{route.method} {route.path}",
                    path_parameters=dict(zip(route.names, match.groups(), strict=True)),
                    headers=headers,
                    body=body,
                    source_ip=source_ip,
                )
                try:
                    return to_http(self.functions.invoke(route.function, route.code_uri, event))
                except Exception:  # what API Gateway answers when the integration fails
                    return 500, [("content-type", "application/json")], b'{"message":"Internal Server Error"}'
        return 404, [("content-type", "application/json")], b'{"message":"Not Found"}'

    def start(self) -> LocalApi:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
