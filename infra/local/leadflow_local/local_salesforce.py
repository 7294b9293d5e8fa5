"""A local Salesforce-compatible endpoint: OAuth 2.0 client credentials and sObject Collections upsert.

Follows ../shared/reference/wire-formats.md (Salesforce REST API docs): enough for LeadFlow's push to be
tested over real HTTP. `leadflow up` serves it on 127.0.0.1:3003 (`--salesforce-port`) and points
LEADFLOW_SALESFORCE_LOGIN_URL at it; tests start their own with `LocalSalesforce(port=0).start()`.

- `POST /services/oauth2/token` (form `grant_type=client_credentials`, `client_id`, `client_secret` equal to
  the dev secret `crm/salesforce`) → `{access_token, instance_url, id, token_type: "Bearer", issued_at,
  signature}`; wrong credentials → 400 `{"error": "invalid_client", ...}`.
- `PATCH /services/data/vXX.X/composite/sobjects/{SObject}/{ExternalIdField}` with `{"allOrNone": false,
  "records": [{"attributes": {"type": SObject}, ExternalIdField: value, ...}]}` (≤200, else 400
  `EXCEEDED_ID_LIMIT`; a record of another type or without its external id → 400 `INVALID_FIELD`) → 200
  with one UpsertResult per record, in order: `{id, success, created, errors: [{statusCode, message,
  fields}]}`. Per record: `Lead` needs `LastName` and `Company` (`REQUIRED_FIELD_MISSING`), an `Email` must
  look like one (`INVALID_EMAIL_ADDRESS`), and a duplicate rule refuses a second record with an Email that
  another external id holds (`DUPLICATES_DETECTED`). Upserts by external id: created once, updated after.
- `DELETE /services/data/vXX.X/sobjects/{SObject}/{Id}` and `…/sobjects/{SObject}/{ExternalIdField}/{value}`:
  the record is deleted, 204 with no body; no such record → 404 `NOT_FOUND`.
- A token that was never issued, or expired (`expire_tokens()`), → 401 `[{"message": "Session expired or
  invalid", "errorCode": "INVALID_SESSION_ID"}]`.

Fault injection (`set_faults()` or `POST /__faults`): `latency_ms`, `fail_next` (503 `SERVER_UNAVAILABLE`),
`limit_next` (403 `REQUEST_LIMIT_EXCEEDED`), `lock_next` (that many records answered `UNABLE_TO_LOCK_ROW`).
`GET /__requests` lists what was received (no Authorization header) and the UpsertResults answered.
Not emulated: other objects' rules, allOrNone true rollbacks, field-level security, `Sforce-Limit-Info`,
JWT/refresh-token flows.
"""

from __future__ import annotations

import hmac
import json
import os
import re
import threading
import time
import uuid
from dataclasses import asdict, dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

REPO = Path(__file__).resolve().parents[3]
MAX_RECORDS = 200
UPSERT = re.compile(r"^/services/data/v\d+\.\d/composite/sobjects/(?P<sobject>\w+)/(?P<field>\w+)$")
DELETE = re.compile(r"^/services/data/v\d+\.\d/sobjects/(?P<sobject>\w+)/(?:(?P<field>\w+)/)?(?P<value>[^/]+)$")
EMAIL = re.compile(r"^[^@\s]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}$")


def dev_credentials(secrets_file: str | os.PathLike[str] | None = None) -> tuple[str, str]:
    path = secrets_file or os.environ.get("LEADFLOW_SECRETS_FILE") or REPO / "infra" / "local" / "secrets.json"
    secret = json.loads(Path(path).read_text())["crm/salesforce"]
    return secret["client_id"], secret["client_secret"]


@dataclass
class SalesforceFaults:
    latency_ms: float = 0.0
    fail_next: int = 0
    limit_next: int = 0
    lock_next: int = 0


class LocalSalesforce:
    def __init__(self, host: str = "127.0.0.1", port: int = 3003, **faults: Any) -> None:
        self.client_id, self.client_secret = dev_credentials()
        self._lock = threading.RLock()
        self._initial = SalesforceFaults(**faults)
        self.reset()
        org = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # requests carry personal data: print nothing
                pass

            def _serve(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                status, payload = org.dispatch(self.command, self.path, dict(self.headers.items()), body)
                raw = b"" if status == 204 else json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json;charset=UTF-8")
                self.send_header("content-length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            do_GET = do_POST = do_PATCH = do_DELETE = _serve  # noqa: N815

        self.server = ThreadingHTTPServer((host, port), Handler)
        self.server.daemon_threads = True
        self._thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)

    @property
    def url(self) -> str:
        return f"http://{self.server.server_address[0]}:{self.server.server_address[1]}"

    def start(self) -> LocalSalesforce:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def reset(self) -> None:
        with self._lock:
            self._tokens: set[str] = set()
            self._records: dict[tuple[str, str], dict[str, Any]] = {}
            self._requests: list[dict[str, Any]] = []
            self._next = 1
            self.faults = SalesforceFaults(**asdict(self._initial))
            self.tokens_issued = 0

    def set_faults(self, **knobs: Any) -> None:
        with self._lock:
            for name, value in knobs.items():
                if not hasattr(self.faults, name):
                    raise ValueError(f"unknown fault knob {name}")
                setattr(self.faults, name, type(getattr(self.faults, name))(value))

    def expire_tokens(self) -> None:
        """Every issued access token stops working (a session timeout or a revocation)."""
        with self._lock:
            self._tokens.clear()

    def records(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(r) for r in self._records.values()]

    def record(self, external_id: str) -> dict[str, Any] | None:
        with self._lock:
            found = next((r for (_, ext), r in self._records.items() if ext == external_id), None)
            return dict(found) if found else None

    def requests(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(r) for r in self._requests]

    # ---- HTTP ------------------------------------------------------------------------------------------
    def dispatch(self, method: str, target: str, headers: dict[str, str], body: bytes) -> tuple[int, Any]:
        path = unquote(urlsplit(target).path)
        if path == "/__faults" and method == "POST":
            self.set_faults(**json.loads(body or b"{}"))
            return 200, asdict(self.faults)
        if path == "/__requests" and method == "GET":
            return 200, {"requests": self.requests()}
        if path == "/services/oauth2/token" and method == "POST":
            status, payload = self._token(body)
            self._record(method, path, None, status)
            return status, payload
        try:
            parsed = json.loads(body) if body else None
        except ValueError:
            parsed = None
        status, payload = self._api(method, path, {k.lower(): v for k, v in headers.items()}, parsed)
        self._record(method, path, parsed, status, payload if status == 200 else None)
        if self.faults.latency_ms:
            time.sleep(self.faults.latency_ms / 1000)
        return status, payload

    def _record(self, method: str, path: str, body: Any, status: int, results: Any = None) -> None:
        with self._lock:
            entry = {"method": method, "path": path, "body": body, "status": status}
            if results is not None:
                entry["results"] = results  # the UpsertResults answered (ids and codes only)
            self._requests.append(entry)

    def _token(self, body: bytes) -> tuple[int, Any]:
        form = {k: v[-1] for k, v in parse_qs(body.decode("utf-8", "replace")).items()}
        if form.get("grant_type") != "client_credentials":
            return 400, {"error": "unsupported_grant_type", "error_description": "grant type not supported"}
        if not (
            hmac.compare_digest(form.get("client_id", ""), self.client_id)
            and hmac.compare_digest(form.get("client_secret", ""), self.client_secret)
        ):
            return 400, {"error": "invalid_client", "error_description": "invalid client credentials"}
        token = "00Dlocal!" + uuid.uuid4().hex
        with self._lock:
            self._tokens.add(token)
            self.tokens_issued += 1
        return 200, {
            "access_token": token,
            "instance_url": self.url,
            "id": f"{self.url}/id/00Dlocal/005local",
            "token_type": "Bearer",
            "issued_at": str(int(time.time() * 1000)),
            "signature": uuid.uuid4().hex,
        }

    def _api(self, method: str, path: str, headers: dict[str, str], body: Any) -> tuple[int, Any]:
        scheme, _, token = headers.get("authorization", "").partition(" ")
        with self._lock:
            live = scheme.lower() == "bearer" and token in self._tokens
        if not live:
            return 401, [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]
        deleting = DELETE.match(path)
        if deleting and method == "DELETE":
            return self._delete(deleting["sobject"], deleting["field"], deleting["value"])
        match = UPSERT.match(path)
        if not match or method != "PATCH":
            return 404, [{"errorCode": "NOT_FOUND", "message": "The requested resource does not exist"}]
        with self._lock:
            if self.faults.fail_next > 0:
                self.faults.fail_next -= 1
                return 503, [{"errorCode": "SERVER_UNAVAILABLE", "message": "Server unavailable (injected)"}]
            if self.faults.limit_next > 0:
                self.faults.limit_next -= 1
                return 403, [{"errorCode": "REQUEST_LIMIT_EXCEEDED", "message": "TotalRequests Limit exceeded."}]
        records = body.get("records") if isinstance(body, dict) else None
        if not isinstance(records, list) or not isinstance(body.get("allOrNone", False), bool):
            return 400, [{"errorCode": "JSON_PARSER_ERROR", "message": "records must be an array"}]
        if len(records) > MAX_RECORDS:
            return 400, [{"errorCode": "EXCEEDED_ID_LIMIT", "message": f"at most {MAX_RECORDS} records"}]
        sobject, field = match["sobject"], match["field"]
        for record in records:
            kind = (record.get("attributes") or {}).get("type") if isinstance(record, dict) else None
            if kind != sobject or not record.get(field):
                return 400, [{"errorCode": "INVALID_FIELD", "message": f"each record needs type {sobject} and {field}"}]
        with self._lock:
            return 200, [self._upsert(sobject, field, record) for record in records]

    def _delete(self, sobject: str, field: str | None, value: str) -> tuple[int, Any]:
        with self._lock:
            if self.faults.fail_next > 0:
                self.faults.fail_next -= 1
                return 503, [{"errorCode": "SERVER_UNAVAILABLE", "message": "Server unavailable (injected)"}]
            for key, record in self._records.items():
                if key[0] == sobject and (record.get(field) == value if field else record.get("Id") == value):
                    del self._records[key]
                    return 204, None
        return 404, [{"errorCode": "NOT_FOUND", "message": "The requested resource does not exist"}]

    def _upsert(self, sobject: str, field: str, record: dict[str, Any]) -> dict[str, Any]:
        external = str(record[field])
        values = {k: v for k, v in record.items() if k != "attributes"}
        errors = []
        if self.faults.lock_next > 0:
            self.faults.lock_next -= 1
            errors.append(_error("UNABLE_TO_LOCK_ROW", "unable to obtain exclusive access to this record", []))
        existing = self._records.get((sobject, external))
        merged = {**(existing or {}), **values}
        if sobject == "Lead":
            missing = [name for name in ("LastName", "Company") if not merged.get(name)]
            if missing:
                errors.append(_error("REQUIRED_FIELD_MISSING", "Required fields are missing", missing))
        email = merged.get("Email")
        if email and not EMAIL.match(str(email)):
            errors.append(_error("INVALID_EMAIL_ADDRESS", "Email: invalid email address", ["Email"]))
        if email and any(
            (kind, ext) != (sobject, external)
            and kind == sobject
            and str(r.get("Email", "")).lower() == str(email).lower()
            for (kind, ext), r in self._records.items()
        ):
            errors.append(_error("DUPLICATES_DETECTED", "Use one of these records?", []))
        if errors:
            return {"success": False, "created": False, "errors": errors}
        created = existing is None
        if created:
            merged["Id"] = f"00Q{self._next:015d}"
            self._next += 1
        self._records[(sobject, external)] = merged
        return {"id": merged["Id"], "success": True, "created": created, "errors": []}


def _error(code: str, message: str, fields: list[str]) -> dict[str, Any]:
    return {"statusCode": code, "message": message, "fields": fields}
