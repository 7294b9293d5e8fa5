"""Local lead-retrieval APIs of the pointer-style ad platforms (Meta Graph, LinkedIn, TikTok) on 127.0.0.1.

Meta, LinkedIn and TikTok webhooks only name a lead; the fetch function then reads it from the platform's
API (leadflow/sources/{meta,linkedin,tiktok}.py). `leadflow up` points LEADFLOW_META_GRAPH_URL,
LEADFLOW_LINKEDIN_API_URL and LEADFLOW_TIKTOK_API_URL here (unless the environment already names a real
platform), so demo leads from those platforms become leads instead of dead letters and no development
token is ever sent to a real platform. The tests use the same server as their fake platform API.

Served exactly as the provider modules call them:
- Meta Graph API: batch `POST /` (form fields `batch` = JSON operations `{"method":"GET",
  "relative_url":"v21.0/<leadgen_id>?fields=..."}` and `access_token`), answering one `{code, body}` per
  operation; and the single read `GET /v21.0/<leadgen_id>?access_token=...` (or `Authorization: Bearer`).
  A wrong token: HTTP 400 OAuthException 190. An unknown id: Graph's 400 GraphMethodException 100/33.
- LinkedIn: `GET /rest/leadFormResponses/<id>` and `GET /rest/leadForms/<id>` with
  `Authorization: Bearer <token>`: wrong token 401 INVALID_ACCESS_TOKEN (65600), unknown id 404.
- TikTok API for Business: `GET /open_api/v1.3/page/lead/get/?lead_id=...` with `Access-Token`; TikTok
  answers HTTP 200 and a non-zero `code` for errors: 40105 for a wrong token, 40002 for an unknown lead.

Control endpoints (not part of any platform; the demo and tests call them):
- `POST /__leads/<meta|linkedin|tiktok>` with a JSON object `{<platform id>: <document>}` registers leads:
  Meta: a Graph Lead object (`field_data`, ad ids); LinkedIn: a leadFormResponses document; TikTok: the
  `data` object of the lead answer (`lead_data`, `meta_data`). Answer 200 `{"registered": N}`.
- `POST /__forms/linkedin` with `{<form id>: <leadForms document>}` registers LinkedIn form questions.

Tests can also script any path with `answer(path, (status, body), ...)` (played in order, the last one
repeating; a scripted path is answered as scripted, with no token check) and read `calls`; for Meta,
`add_lead(leadgen_id, lead, script=[statuses])` scripts the per-operation status of one lead in turn.
The conversion APIs LeadFlow reports to (Google Ads, Meta Conversions API, Baidu OCPC, Tencent Ads) are
served here too, by `local_ads.LocalAds` (`platforms.ads`: what each received, fault injection).
Nothing is logged: the registered documents hold the people's answers.
"""

from __future__ import annotations

import json
import os
import re
import threading
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, parse_qsl, unquote, urlsplit

DEFAULT_SECRETS = Path(__file__).resolve().parents[1] / "secrets.json"
PLATFORMS = ("meta", "linkedin", "tiktok")
TIKTOK_LEAD_PATH = "/open_api/v1.3/page/lead/get/"  # the path leadflow/sources/tiktok.py calls (LEAD_PATH)
MAX_BODY = 8 * 1024 * 1024
_GRAPH_READ = re.compile(r"^/?v\d+\.\d+/(\d+)(?:\?.*)?$")


def dev_tokens(secrets_file: str | os.PathLike | None = None) -> dict[str, str]:
    """The access tokens the stack sends to each platform, from the dev secrets file the stack reads."""
    path = Path(secrets_file or os.environ.get("LEADFLOW_SECRETS_FILE") or DEFAULT_SECRETS)
    secrets = json.loads(path.read_text())
    tokens = {}
    for platform in PLATFORMS:
        value = secrets.get(f"webhooks/{platform}")
        if isinstance(value, dict) and value.get("access_token"):
            tokens[platform] = str(value["access_token"])
    return tokens


@dataclass
class Call:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]


def _graph_error(message: str, kind: str, code: int, subcode: int | None = None) -> dict:
    error: dict[str, Any] = {"message": message, "type": kind, "code": code, "fbtrace_id": uuid.uuid4().hex[:11]}
    if subcode is not None:
        error["error_subcode"] = subcode
    return {"error": error}


@dataclass
class LocalPlatforms:
    host: str = "127.0.0.1"
    port: int = 0
    tokens: dict[str, str] | None = None  # platform → expected token; None: the dev secrets
    leads: dict[str, dict[str, dict]] = field(default_factory=lambda: {p: {} for p in PLATFORMS})
    linkedin_forms: dict[str, dict] = field(default_factory=dict)
    script: dict[str, list[int]] = field(default_factory=dict)  # Meta leadgen id → statuses, in turn
    routes: dict[str, list[tuple[int, Any]]] = field(default_factory=dict)  # scripted answers per path
    calls: list[Call] = field(default_factory=list)  # every platform API call (control calls excluded)
    requests: list[dict] = field(default_factory=list)  # every Graph batch: {"access_token", "operations"}
    ads: Any = None  # local_ads.LocalAds: the conversion APIs (made from the dev secrets at start)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self.server: ThreadingHTTPServer | None = None

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> LocalPlatforms:
        if self.tokens is None:
            self.tokens = dev_tokens()
        if self.ads is None:
            from leadflow_local.local_ads import LocalAds

            path = Path(os.environ.get("LEADFLOW_SECRETS_FILE") or DEFAULT_SECRETS)
            self.ads = LocalAds(json.loads(path.read_text()))
        platforms = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # bodies and URLs may name people: say nothing
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if 0 < length <= MAX_BODY else b""
                headers = {k.lower(): v for k, v in self.headers.items()}
                try:
                    status, answer = platforms.handle(self.command, self.path, headers, body)
                except Exception:  # a local stand-in must answer, never hang the fetch function
                    status, answer = 500, {"message": "local platform API error"}
                payload = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = _handle  # noqa: N815 - http.server's naming

        self.server = ThreadingHTTPServer((self.host, self.port), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, name="local-platforms", daemon=True).start()
        return self

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def stop(self) -> None:
        if self.server:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    # ------------------------------------------------------------------ registering and scripting
    def register(self, platform: str, documents: dict[str, dict]) -> int:
        if platform not in PLATFORMS:
            raise KeyError(platform)
        with self._lock:
            for platform_id, document in documents.items():
                self.leads[platform][str(platform_id)] = document
        return len(documents)

    def add_lead(self, leadgen_id: str, lead: dict, script: list[int] | None = None) -> None:
        """A Meta lead, answered with the statuses of `script` in turn (the last one repeating)."""
        self.register("meta", {leadgen_id: {"id": leadgen_id, **lead}})
        self.script[leadgen_id] = list(script or [200])

    def answer(self, path: str, *answers: tuple[int, Any]) -> None:
        self.routes[path] = list(answers)

    def calls_to(self, path: str) -> list[Call]:
        return [c for c in self.calls if c.path == path]

    def fetches_of(self, leadgen_id: str) -> int:
        return sum(
            1 for call in self.requests for op in call["operations"] if f"/{leadgen_id}?" in op.get("relative_url", "")
        )

    # ------------------------------------------------------------------ dispatch
    def handle(self, method: str, target: str, headers: dict[str, str], body: bytes) -> tuple[int, Any]:
        parts = urlsplit(target)
        path = parts.path
        if path.startswith("/__"):
            return self._control(method, path, body)
        query = dict(parse_qsl(parts.query))
        with self._lock:
            self.calls.append(Call(method, path, query, headers))
            if path in self.routes:
                answers = self.routes[path]
                return answers.pop(0) if len(answers) > 1 else answers[0]
        if method == "POST" and path == "/":
            return self._graph_batch(body)
        if method == "GET" and _GRAPH_READ.match(path):
            token = query.get("access_token") or _bearer(headers)
            return self._graph_read(token, path.strip("/"))
        if method == "GET" and path.startswith("/rest/leadFormResponses/"):
            return self._linkedin(headers, self.leads["linkedin"], path.removeprefix("/rest/leadFormResponses/"))
        if method == "GET" and path.startswith("/rest/leadForms/"):
            return self._linkedin(headers, self.linkedin_forms, path.removeprefix("/rest/leadForms/"))
        if method == "GET" and path.rstrip("/") == TIKTOK_LEAD_PATH.rstrip("/"):
            return self._tiktok(headers, query)
        if self.ads is not None:
            answered = self.ads.handle(method, path, query, headers, body)
            if answered is not None:
                return answered
        return 404, {"message": "No local platform API serves this path."}

    def _control(self, method: str, path: str, body: bytes) -> tuple[int, Any]:
        match = re.fullmatch(r"/__(leads|forms)/([a-z]+)", path)
        if method != "POST" or not match:
            return 404, {"message": "POST /__leads/<meta|linkedin|tiktok> or /__forms/linkedin"}
        kind, platform = match.groups()
        try:
            documents = json.loads(body or b"null")
        except ValueError:
            return 400, {"message": "The body must be JSON."}
        if not isinstance(documents, dict) or not all(isinstance(d, dict) for d in documents.values()):
            return 400, {"message": "The body must be an object of platform id → document."}
        if kind == "forms":
            if platform != "linkedin":
                return 404, {"message": "Only LinkedIn lead forms are registered separately."}
            with self._lock:
                self.linkedin_forms.update({str(k): v for k, v in documents.items()})
            return 200, {"registered": len(documents)}
        if platform not in PLATFORMS:
            return 404, {"message": f"Unknown platform; one of {', '.join(PLATFORMS)}."}
        return 200, {"registered": self.register(platform, documents)}

    # ------------------------------------------------------------------ Meta Graph API
    def _graph_batch(self, body: bytes) -> tuple[int, Any]:
        form = parse_qs(body.decode("utf-8", "replace"))
        token = (form.get("access_token") or [""])[0]
        try:
            operations = json.loads((form.get("batch") or ["[]"])[0])
        except ValueError:
            operations = None
        with self._lock:
            self.requests.append({"access_token": token, "operations": operations})
        if token != (self.tokens or {}).get("meta"):
            return 400, _graph_error("Invalid OAuth access token - Cannot parse access token", "OAuthException", 190)
        if not isinstance(operations, list) or not operations or len(operations) > 50:
            return 400, _graph_error(
                "The batch parameter must be a JSON array of 1 to 50 requests.", "OAuthException", 100
            )
        answers = []
        for op in operations:
            if not isinstance(op, dict) or op.get("method", "GET") != "GET":
                status, doc = 400, _graph_error("Unsupported request method.", "GraphMethodException", 100)
            else:
                status, doc = self._graph_lead(str(op.get("relative_url", "")))
            answers.append({"code": status, "body": json.dumps(doc)})
        return 200, answers

    def _graph_read(self, token: str, relative_url: str) -> tuple[int, Any]:
        if token != (self.tokens or {}).get("meta"):
            return 400, _graph_error("Invalid OAuth access token - Cannot parse access token", "OAuthException", 190)
        return self._graph_lead(relative_url)

    def _graph_lead(self, relative_url: str) -> tuple[int, Any]:
        match = _GRAPH_READ.match(relative_url)
        leadgen_id = match.group(1) if match else ""
        with self._lock:
            lead = self.leads["meta"].get(leadgen_id)
            script = self.script.get(leadgen_id) or [200]
            status = script.pop(0) if len(script) > 1 else script[0]
        if lead is None:
            message = (
                f"Unsupported get request. Object with ID '{leadgen_id}' does not exist, cannot be loaded due to "
                "missing permissions, or does not support this operation."
            )
            return 400, _graph_error(message, "GraphMethodException", 100, 33)
        if status != 200:
            return status, _graph_error(
                "An unexpected error has occurred. Please retry your request later.", "OAuthException", 2
            )
        return 200, {"id": leadgen_id, **lead}

    # ------------------------------------------------------------------ LinkedIn
    def _linkedin(self, headers: dict[str, str], documents: dict[str, dict], key: str) -> tuple[int, Any]:
        if _bearer(headers) != (self.tokens or {}).get("linkedin"):
            return 401, {
                "serviceErrorCode": 65600,
                "code": "INVALID_ACCESS_TOKEN",
                "message": "Invalid access token",
                "status": 401,
            }
        with self._lock:
            document = documents.get(unquote(key))
        if document is None:
            return 404, {"serviceErrorCode": 0, "code": "NOT_FOUND", "message": "Not Found", "status": 404}
        return 200, document

    # ------------------------------------------------------------------ TikTok
    def _tiktok(self, headers: dict[str, str], query: dict[str, str]) -> tuple[int, Any]:
        request_id = uuid.uuid4().hex
        if headers.get("access-token") != (self.tokens or {}).get("tiktok"):
            message = "Access token is incorrect or has been revoked."
            return 200, {"code": 40105, "message": message, "request_id": request_id, "data": {}}
        with self._lock:
            data = self.leads["tiktok"].get(query.get("lead_id", ""))
        if data is None:
            return 200, {"code": 40002, "message": "lead_id: lead not found", "request_id": request_id, "data": {}}
        return 200, {"code": 0, "message": "OK", "request_id": request_id, "data": data}


def _bearer(headers: dict[str, str]) -> str:
    value = headers.get("authorization", "")
    return value[7:].strip() if value[:7].lower() == "bearer " else ""
