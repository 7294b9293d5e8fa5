"""A scripted stand-in for a platform API (Graph, LinkedIn, TikTok ...) on 127.0.0.1, for fetch tests.

Routes map a path (no query string) to a list of (status, JSON body) answers played in order, the last one
repeating; every request is recorded (method, path, query, headers) so a test can check what was asked.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit


@dataclass
class Call:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]


@dataclass
class FakeApi:
    routes: dict[str, list[tuple[int, Any]]] = field(default_factory=dict)
    calls: list[Call] = field(default_factory=list)
    url: str = ""

    def answer(self, path: str, *answers: tuple[int, Any]) -> None:
        self.routes[path] = list(answers)

    def calls_to(self, path: str) -> list[Call]:
        return [c for c in self.calls if c.path == path]


def start_fake_api() -> tuple[FakeApi, ThreadingHTTPServer]:
    api = FakeApi()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            parts = urlsplit(self.path)
            api.calls.append(
                Call("GET", parts.path, dict(parse_qsl(parts.query)), {k.lower(): v for k, v in self.headers.items()})
            )
            answers = api.routes.get(parts.path) or [(404, {"message": "not found"})]
            status, body = answers.pop(0) if len(answers) > 1 else answers[0]
            payload = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: Any) -> None:  # keep test output quiet
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    api.url = f"http://127.0.0.1:{server.server_address[1]}"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return api, server
