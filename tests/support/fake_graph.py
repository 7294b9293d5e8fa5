"""A fake Meta Graph API on 127.0.0.1: batch lead reads (`POST /` with `batch` and `access_token`).

Behaviour per leadgen id is scripted: a list of answers used in turn (the last one repeats), each an HTTP
status for that batch operation (200 returns the scripted lead). Unknown ids answer Graph's 400 (100).
"""

from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs


class FakeGraph:
    def __init__(self, access_token: str) -> None:
        self.access_token = access_token
        self.leads: dict[str, dict] = {}
        self.script: dict[str, list[int]] = {}
        self.requests: list[dict] = []  # every batch call: {"access_token", "operations"}
        self._lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # quiet
                pass

            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("content-length") or 0)
                form = parse_qs(self.rfile.read(length).decode())
                status, answer = fake._answer(form)
                payload = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def add_lead(self, leadgen_id: str, lead: dict, script: list[int] | None = None) -> None:
        self.leads[leadgen_id] = {"id": leadgen_id, **lead}
        self.script[leadgen_id] = list(script or [200])

    def fetches_of(self, leadgen_id: str) -> int:
        return sum(
            1 for call in self.requests for op in call["operations"] if f"/{leadgen_id}?" in op.get("relative_url", "")
        )

    def _answer(self, form: dict) -> tuple[int, object]:
        token = (form.get("access_token") or [""])[0]
        operations = json.loads((form.get("batch") or ["[]"])[0])
        with self._lock:
            self.requests.append({"access_token": token, "operations": operations})
            if token != self.access_token:
                return 400, {"error": {"message": "Invalid OAuth access token.", "type": "OAuthException", "code": 190}}
            return 200, [self._operation(op) for op in operations]

    def _operation(self, op: dict) -> dict:
        match = re.match(r"^v\d+\.\d+/(\d+)\?fields=", op.get("relative_url", ""))
        if op.get("method") != "GET" or not match or match.group(1) not in self.leads:
            error = {"error": {"message": "Unsupported get request.", "type": "GraphMethodException", "code": 100}}
            return {"code": 400, "body": json.dumps(error)}
        leadgen_id = match.group(1)
        script = self.script[leadgen_id]
        status = script.pop(0) if len(script) > 1 else script[0]
        if status != 200:
            error = {"error": {"message": "An unexpected error has occurred.", "type": "OAuthException", "code": 2}}
            return {"code": status, "body": json.dumps(error)}
        return {"code": 200, "body": json.dumps(self.leads[leadgen_id])}

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
