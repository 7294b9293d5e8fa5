"""A local CRM that speaks enough of HubSpot's CRM v3 contacts API to be a fair test partner.

`leadflow up` serves it on 127.0.0.1:3001 (`--crm-port`) and points LEADFLOW_HUBSPOT_API_URL at it; tests start
their own with `LocalCrm(port=0).start()`. Stdlib only (ThreadingHTTPServer), state in memory.

What it emulates (checked against developers.hubspot.com: batch upsert reference, error handling, usage
guidelines and changelog; see infra/local/README.md for what was confirmed and what is inferred):
- `POST /crm/v3/objects/contacts/batch/upsert` with `{"inputs": [{"idProperty": "email", "id", "properties",
  "objectWriteTraceId"}]}`: at most 100 inputs (more, malformed JSON or duplicate ids in one batch → 400 with
  HubSpot's error body `{status, message, correlationId, category}`), upsert by email compared case-insensitively
  (stored lower-cased, as HubSpot does), `idProperty` other than `email` → 400 like HubSpot's "non-unique
  property" refusal. Answer `{status: "COMPLETE", results[], startedAt, completedAt}`; each result has `id`,
  `properties` (the written ones plus `email`, `createdate`, `lastmodifieddate`, `hs_object_id`), `createdAt`,
  `updatedAt`, `archived`, `new` and `objectWriteTraceId`. An invalid email fails only its own record: it is
  listed in `errors[]` (`category: VALIDATION_ERROR`, `errors[0].code: INVALID_EMAIL`,
  `context.objectWriteTraceId: [<trace id>]`; HubSpot's context values are lists of strings) with `numErrors`,
  the others are written, and the HTTP status is 207 Multi-Status (200 when every record succeeded).
- `GET /crm/v3/objects/contacts?limit=&after=&properties=` (limit default 10, at most 100, else 400; `paging.next.after`
  while more remain), `GET /crm/v3/objects/contacts/{id}` and `GET /crm/v3/objects/contacts/{email}?idProperty=email`
  (404 `category: OBJECT_NOT_FOUND` when absent). Values come back as strings; requested unknown properties as null.
- `POST /crm/v3/objects/contacts/gdpr-delete` `{"objectId": <id>}` (or with `"idProperty": "email"`): the contact
  is deleted for good, 204 with no body; an unknown id → 404 `OBJECT_NOT_FOUND` (HubSpot would block-list an
  unknown email; the local CRM only records it in `blocklisted()`).
- Auth: `Authorization: Bearer <token>` must equal the dev secret `crm/hubspot.access_token` (from
  LEADFLOW_SECRETS_FILE, default infra/local/secrets.json), else 401 `category: INVALID_AUTHENTICATION`.
- Rate limit: a rolling window of `rate_limit` requests per `rate_window_s` seconds (default 100 / 10 s, the
  Free/Starter per-app burst limit) and a daily budget (default 250,000). Beyond the window: 429
  `{"status":"error","message":"You have reached your ten_secondly_rolling limit.","errorType":"RATE_LIMIT",
  "correlationId","policyName":"TEN_SECONDLY_ROLLING","requestId"}` (the daily one says `daily` / `DAILY`).
  Every authenticated API answer carries `X-HubSpot-RateLimit-Interval-Milliseconds`, `-Max`, `-Remaining` and,
  as for a private app's static token, `X-HubSpot-RateLimit-Daily` and `-Daily-Remaining`. Requests refused by
  the limiter do not use up the window.

Fault injection (constructor arguments, `set_faults()`, or `POST /__faults` with a JSON object; `DELETE /__faults`
clears them): `latency_ms` before every API answer, `status_429_every` (every Nth API request answered with the
ten-secondly 429), `status_5xx_rate` (probability 0..1, seeded by `seed`), `fail_next` (the next N API requests) and
`down_for_s` (every API request for that many seconds from when it is set, with `Retry-After: retry_after_s` when
set), all answered with `fail_status` (default 503) and HubSpot's error body; an injected failure writes nothing.
`GET /__requests` lists what was received (method, path, query, JSON body, status; the Authorization header is
never recorded), `DELETE /__requests` forgets it. The control routes need no token and are not rate limited.

Webhooks out (CRM feedback): `POST /__webhooks/contact` `{"email", "property", "value"}` sets the property on the
contact and `POST /__webhooks/deal` `{"email", "deal_id", "stage", "amount"?, "lost_reason"?}` creates/moves a deal
of the contact; either sends what a HubSpot app subscribed to `contact.propertyChange` / `deal.propertyChange` /
`deal.associationChange` would, one batch (a JSON array of events) signed with signature v3
(`X-HubSpot-Signature-v3` = base64 HMAC-SHA256 of method + URL + body + `X-HubSpot-Request-Timestamp` in ms, key
`crm/hubspot.client_secret`) to `webhook_url` (`leadflow up` points it at its own
`/v1/crm/hubspot/events`), and answers `{"status", "body"}` of that call. `send_contact_change()` and
`send_deal_change()` do the same from Python.

What it does not emulate: other objects, associations, search, single create/update/(non-GDPR) delete, archiving,
`propertiesWithHistory`, property definitions and their validation (any property name is accepted), other
unique id properties, OAuth and scopes, the daily reset at midnight in the account's time zone (the daily count
lasts until `reset()`), and HubSpot's exact wording of messages it does not document.
"""

from __future__ import annotations

import hmac
import json
import os
import random
import re
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

REPO = Path(__file__).resolve().parents[3]
CONTACTS = "/crm/v3/objects/contacts"
MAX_BATCH_INPUTS = 100
MAX_PAGE_LIMIT = 100
DEFAULT_PROPERTIES = ("createdate", "email", "firstname", "hs_object_id", "lastmodifieddate", "lastname")
ALWAYS_RETURNED = ("createdate", "hs_object_id", "lastmodifieddate")
EMAIL = re.compile(
    r"^[^@\s\"(),:;<>\[\]\\]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}$"
)


def dev_token(secrets_file: str | os.PathLike[str] | None = None) -> str:
    """The dev HubSpot token: `crm/hubspot.access_token` of the local secrets file."""
    path = secrets_file or os.environ.get("LEADFLOW_SECRETS_FILE") or REPO / "infra" / "local" / "secrets.json"
    return json.loads(Path(path).read_text())["crm/hubspot"]["access_token"]


def _client_secret(secrets_file: str | os.PathLike[str] | None = None) -> str:
    path = secrets_file or os.environ.get("LEADFLOW_SECRETS_FILE") or REPO / "infra" / "local" / "secrets.json"
    return json.loads(Path(path).read_text())["crm/hubspot"]["client_secret"]


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def _error(message: str, category: str, **extra: Any) -> dict[str, Any]:
    return {"status": "error", "message": message, "correlationId": str(uuid.uuid4()), "category": category, **extra}


@dataclass
class Faults:
    latency_ms: float = 0.0
    status_429_every: int = 0
    status_5xx_rate: float = 0.0
    fail_next: int = 0
    fail_status: int = 503
    down_for_s: float = 0.0  # an outage: every API request fails for this long from when it is set
    retry_after_s: float = 0.0  # a Retry-After header on the outage's answers


class _Reply(Exception):
    def __init__(self, status: int, body: dict[str, Any]):
        super().__init__(status)
        self.status, self.body = status, body


class LocalCrm:
    """HubSpot contacts API on host:port (0 = a free port). `start()` returns self; `stop()` shuts it down."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 3001,
        *,
        token: str | None = None,
        rate_limit: int = 100,
        rate_window_s: float = 10.0,
        daily_limit: int = 250_000,
        clock: Callable[[], float] = time.monotonic,
        seed: int | None = None,
        **faults: Any,
    ):
        self.token = token if token is not None else dev_token()
        self.client_secret = _client_secret()  # signs the webhooks it sends (crm/hubspot.client_secret)
        self._event_id = 0
        self.rate_limit, self.rate_window_s, self.daily_limit = rate_limit, rate_window_s, daily_limit
        self.clock = clock
        self._random = random.Random(seed)
        self._lock = threading.RLock()
        self._initial_faults = Faults(**faults)
        self.reset()
        crm = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # requests carry emails: print nothing
                pass

            def _serve(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                status, headers, raw = crm.dispatch(self.command, self.path, dict(self.headers.items()), body)
                self.send_response(status)
                for name, value in headers:
                    self.send_header(name, value)
                self.send_header("content-length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve  # noqa: N815

        self.server = ThreadingHTTPServer((host, port), Handler)
        self.server.daemon_threads = True
        self._thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), name="local-crm", daemon=True)

    # ---- Python API for tests -------------------------------------------------------------------------------
    @property
    def port(self) -> int:
        return self.server.server_address[1]

    @property
    def url(self) -> str:
        return f"http://{self.server.server_address[0]}:{self.port}"

    def start(self) -> LocalCrm:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def reset(self) -> None:
        """Forget contacts, received requests, rate-limit counts; faults back to the constructor's."""
        with self._lock:
            self._contacts: dict[str, dict[str, Any]] = {}
            self._by_email: dict[str, str] = {}
            self._blocklist: set[str] = set()
            self._next_id = 1001
            self._requests: list[dict[str, Any]] = []
            self._window: deque[float] = deque()
            self._daily = 0
            self._api_calls = 0
            self.faults = Faults(**asdict(self._initial_faults))
            self._down_until = self.clock() + self.faults.down_for_s

    def set_faults(self, **knobs: Any) -> Faults:
        names = {f.name for f in fields(Faults)}
        unknown = set(knobs) - names
        if unknown:
            raise ValueError(f"unknown fault knobs: {sorted(unknown)}")
        with self._lock:
            for name, value in knobs.items():
                setattr(self.faults, name, type(getattr(Faults(), name))(value))
            if "down_for_s" in knobs:
                self._down_until = self.clock() + self.faults.down_for_s
            return Faults(**asdict(self.faults))

    def clear_faults(self) -> None:
        with self._lock:
            self.faults = Faults()
            self._down_until = 0.0

    def contacts(self) -> list[dict[str, Any]]:
        """Every contact as HubSpot would return it with all its properties, oldest first."""
        with self._lock:
            return [self._public(c, None) for c in self._contacts.values()]

    def contact(self, email: str) -> dict[str, Any] | None:
        with self._lock:
            contact_id = self._by_email.get(email.strip().lower())
            return self._public(self._contacts[contact_id], None) if contact_id else None

    def requests(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(r) for r in self._requests]

    def blocklisted(self) -> set[str]:
        """Emails a GDPR delete by email named while no contact held them (HubSpot block-lists them)."""
        with self._lock:
            return set(self._blocklist)

    # ---- webhooks out (CRM feedback) ------------------------------------------------------------------------
    webhook_url: str | None = None  # where stage changes are sent (leadflow up: its /v1/crm/hubspot/events)
    signed_url: str | None = None  # the URL signed, when the receiver is reached under another (a tunnel's)
    portal_id = 62515
    app_id = 54321

    def _contact_id(self, email: str) -> str:
        with self._lock:
            contact_id = self._by_email.get(email.strip().lower())
        if contact_id is None:
            raise KeyError("no contact with that email")
        return contact_id

    def _change(self, kind: str, object_id: str, prop: str, value: Any, at: int) -> dict[str, Any]:
        with self._lock:
            self._event_id += 1
            event_id = self._event_id
        return {
            "eventId": event_id,
            "subscriptionId": 1,
            "portalId": self.portal_id,
            "appId": self.app_id,
            "occurredAt": at,
            "subscriptionType": f"{kind}.propertyChange",
            "attemptNumber": 0,
            "objectId": int(object_id),
            "propertyName": prop,
            "propertyValue": str(value),
            "changeSource": "CRM",
        }

    def send_contact_change(self, email: str, prop: str, value: str) -> dict[str, Any]:
        """Set a contact property and send HubSpot's `contact.propertyChange` webhook for it."""
        contact_id = self._contact_id(email)
        now = int(time.time() * 1000)
        with self._lock:
            self._contacts[contact_id]["properties"][prop] = str(value)
        return self.send_webhook([self._change("contact", contact_id, prop, value, now)])

    def send_deal_change(
        self, email: str, deal_id: str, stage: str, amount: float | None = None, lost_reason: str | None = None
    ) -> dict[str, Any]:
        """A deal of the contact moved to `stage`: association, reason, amount and stage events in one batch."""
        contact_id = self._contact_id(email)
        now = int(time.time() * 1000)
        with self._lock:
            self._event_id += 1
            association = {
                "eventId": self._event_id,
                "portalId": self.portal_id,
                "appId": self.app_id,
                "occurredAt": now - 3,
                "subscriptionType": "deal.associationChange",
                "associationType": "DEAL_TO_CONTACT",
                "fromObjectId": int(deal_id),
                "toObjectId": int(contact_id),
                "associationRemoved": False,
                "isPrimaryAssociation": True,
            }
        events = [association]
        if lost_reason:
            events.append(self._change("deal", deal_id, "closed_lost_reason", lost_reason, now - 2))
        if amount is not None:
            events.append(self._change("deal", deal_id, "amount", amount, now - 1))
        events.append(self._change("deal", deal_id, "dealstage", stage, now))
        return self.send_webhook(events)

    def send_webhook(self, events: list[dict[str, Any]]) -> dict[str, Any]:
        """POST `events` to `webhook_url`, signed like HubSpot (v3); the answer's status and body."""
        import base64
        import hashlib
        import urllib.error
        import urllib.request

        if not self.webhook_url:
            raise KeyError("no webhook_url")
        body = json.dumps(events).encode()
        stamp = str(int(time.time() * 1000))
        signed = ("POST" + (self.signed_url or self.webhook_url)).encode() + body + stamp.encode()
        signature = base64.b64encode(hmac.new(self.client_secret.encode(), signed, hashlib.sha256).digest()).decode()
        request = urllib.request.Request(  # noqa: S310 - our own configured local URL
            self.webhook_url,
            data=body,
            method="POST",
            headers={
                "content-type": "application/json",
                "x-hubspot-signature-v3": signature,
                "x-hubspot-request-timestamp": stamp,
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310
                return {"status": answer.status, "body": json.loads(answer.read() or b"null")}
        except urllib.error.HTTPError as error:
            return {"status": error.code, "body": json.loads(error.read() or b"null")}

    # ---- HTTP -----------------------------------------------------------------------------------------------
    def dispatch(self, method: str, target: str, headers: dict[str, str], body: bytes) -> tuple[int, list, bytes]:
        parts = urlsplit(target)
        path, query = unquote(parts.path), {k: v[-1] for k, v in parse_qs(parts.query).items()}
        if path.startswith("/__"):
            status, payload = self._control(method, path, body)
            return status, [("content-type", "application/json")], json.dumps(payload).encode()
        headers = {k.lower(): v for k, v in headers.items()}
        extra: list[tuple[str, str]] = []
        try:
            status, payload = self._api(method, path, query, headers, body, extra)
        except _Reply as reply:
            status, payload = reply.status, reply.body
        self._record(method, path, query, body, status)
        delay = self.faults.latency_ms
        if delay and path.startswith("/crm/"):
            time.sleep(delay / 1000)
        raw = b"" if status == 204 else json.dumps(payload).encode()
        return status, [("content-type", "application/json;charset=utf-8"), *extra], raw

    def _record(self, method: str, path: str, query: dict[str, str], body: bytes, status: int) -> None:
        try:
            parsed: Any = json.loads(body) if body else None
        except ValueError:
            parsed = body.decode("utf-8", "replace")
        with self._lock:
            self._requests.append({"method": method, "path": path, "query": query, "body": parsed, "status": status})

    def _control(self, method: str, path: str, body: bytes) -> tuple[int, Any]:
        if path == "/__faults" and method == "GET":
            return 200, asdict(self.faults)
        if path == "/__faults" and method == "POST":
            try:
                knobs = json.loads(body or b"{}")
                if not isinstance(knobs, dict):
                    raise ValueError("a JSON object of fault knobs")
                return 200, asdict(self.set_faults(**knobs))
            except (ValueError, TypeError) as error:
                return 400, _error(f"Invalid faults: {error}", "VALIDATION_ERROR")
        if path == "/__faults" and method == "DELETE":
            self.clear_faults()
            return 200, asdict(self.faults)
        if path == "/__requests" and method == "GET":
            return 200, {"requests": self.requests()}
        if path == "/__requests" and method == "DELETE":
            with self._lock:
                self._requests.clear()
            return 200, {"requests": []}
        if path in ("/__webhooks/contact", "/__webhooks/deal") and method == "POST":
            try:
                order = json.loads(body or b"{}")
                if path.endswith("contact"):
                    return 200, self.send_contact_change(order["email"], order["property"], order["value"])
                return 200, self.send_deal_change(
                    order["email"], str(order["deal_id"]), order["stage"], order.get("amount"), order.get("lost_reason")
                )
            except (ValueError, KeyError, TypeError) as error:
                return 400, _error(f"Invalid webhook order: {type(error).__name__}", "VALIDATION_ERROR")
        if path == "/__reset" and method == "POST":
            self.reset()
            return 200, {"status": "reset"}
        return 404, _error("resource not found", "OBJECT_NOT_FOUND")

    def _api(
        self, method: str, path: str, query: dict[str, str], headers: dict[str, str], body: bytes, extra: list
    ) -> tuple[int, Any]:
        scheme, _, presented = headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not presented or not _same(presented.strip(), self.token):
            raise _Reply(
                401,
                _error(
                    "Authentication credentials not found. This API supports OAuth 2.0 authentication and you can "
                    "find more details at https://developers.hubspot.com/docs/methods/auth/oauth-overview",
                    "INVALID_AUTHENTICATION",
                ),
            )
        self._throttle(extra)
        self._inject_faults(extra)
        if path == f"{CONTACTS}/batch/upsert" and method == "POST":
            return self._batch_upsert(body)
        if path == f"{CONTACTS}/gdpr-delete" and method == "POST":
            return self._gdpr_delete(body)
        if path == CONTACTS and method == "GET":
            return 200, self._list(query)
        if path.startswith(f"{CONTACTS}/") and "/" not in path[len(CONTACTS) + 1 :] and method == "GET":
            return 200, self._get(path[len(CONTACTS) + 1 :], query)
        raise _Reply(404, _error("resource not found", "OBJECT_NOT_FOUND"))

    def _throttle(self, extra: list[tuple[str, str]]) -> None:
        with self._lock:
            now = self.clock()
            while self._window and self._window[0] <= now - self.rate_window_s:
                self._window.popleft()
            refused: tuple[str, str] | None = None
            if self._daily >= self.daily_limit:
                refused = ("daily", "DAILY")
            elif len(self._window) >= self.rate_limit:
                refused = ("ten_secondly_rolling", "TEN_SECONDLY_ROLLING")
            else:
                self._window.append(now)
                self._daily += 1
            extra += [
                ("X-HubSpot-RateLimit-Daily", str(self.daily_limit)),
                ("X-HubSpot-RateLimit-Daily-Remaining", str(max(self.daily_limit - self._daily, 0))),
                ("X-HubSpot-RateLimit-Interval-Milliseconds", str(int(self.rate_window_s * 1000))),
                ("X-HubSpot-RateLimit-Max", str(self.rate_limit)),
                ("X-HubSpot-RateLimit-Remaining", str(max(self.rate_limit - len(self._window), 0))),
            ]
        if refused:
            raise _Reply(429, rate_limited(*refused))

    def _inject_faults(self, extra: list[tuple[str, str]]) -> None:
        with self._lock:
            self._api_calls += 1
            faults = self.faults
            if self.clock() < self._down_until:
                if faults.retry_after_s:
                    extra.append(("Retry-After", str(int(faults.retry_after_s))))
                raise _Reply(faults.fail_status, _error("service unavailable (local CRM outage)", "INTERNAL_ERROR"))
            if faults.status_429_every and self._api_calls % faults.status_429_every == 0:
                raise _Reply(429, rate_limited("ten_secondly_rolling", "TEN_SECONDLY_ROLLING"))
            failing = faults.fail_next > 0
            if failing:
                faults.fail_next -= 1
            elif faults.status_5xx_rate and self._random.random() < faults.status_5xx_rate:
                failing = True
            if failing:
                raise _Reply(faults.fail_status, _error("internal error (injected by the local CRM)", "INTERNAL_ERROR"))

    # ---- contacts -------------------------------------------------------------------------------------------
    def _batch_upsert(self, body: bytes) -> tuple[int, Any]:
        started = int(time.time() * 1000)
        try:
            document = json.loads(body)
        except ValueError as error:
            raise _Reply(400, _error(f"Invalid input JSON: {error}", "VALIDATION_ERROR")) from None
        inputs = document.get("inputs") if isinstance(document, dict) else None
        if not isinstance(inputs, list) or not all(isinstance(i, dict) for i in inputs):
            raise _Reply(400, _error("Invalid input JSON: inputs must be an array of objects", "VALIDATION_ERROR"))
        if len(inputs) > MAX_BATCH_INPUTS:
            raise _Reply(
                400,
                _error(
                    f"Batch input contains {len(inputs)} inputs; the limit is {MAX_BATCH_INPUTS}",
                    "VALIDATION_ERROR",
                    context={"inputs": [str(len(inputs))]},
                ),
            )
        for item in inputs:
            id_property = item.get("idProperty")
            if id_property != "email":
                raise _Reply(
                    400,
                    _error(
                        f"Unable to perform update/upsert by non-unique 0-1 property {id_property}",
                        "VALIDATION_ERROR",
                    ),
                )
            if not isinstance(item.get("properties", {}), dict):
                raise _Reply(400, _error("Invalid input JSON: properties must be an object", "VALIDATION_ERROR"))
        keys = [str(item.get("id", "")).strip().lower() for item in inputs]
        duplicates = sorted({k for k in keys if keys.count(k) > 1})
        if duplicates:
            raise _Reply(400, _error(f"Duplicate IDs found in batch input: {duplicates}", "VALIDATION_ERROR"))
        results, errors = [], []
        with self._lock:
            for item, email in zip(inputs, keys, strict=True):
                trace = item.get("objectWriteTraceId")
                if not EMAIL.match(email):
                    errors.append(_invalid_email(str(item.get("id", "")), trace))
                    continue
                results.append(self._upsert(email, item.get("properties") or {}, trace))
        answer: dict[str, Any] = {"status": "COMPLETE", "results": results}
        if errors:
            answer |= {"numErrors": len(errors), "errors": errors}
        answer |= {"startedAt": _iso(started), "completedAt": _iso(int(time.time() * 1000))}
        return (207 if errors else 200), answer

    def _upsert(self, email: str, properties: dict[str, Any], trace: str | None) -> dict[str, Any]:
        now = int(time.time() * 1000)
        written = {k: _text(v) for k, v in properties.items()}
        written["email"] = email
        contact_id = self._by_email.get(email)
        new = contact_id is None
        if new:
            contact_id = str(self._next_id)
            self._next_id += 1
            contact = {"id": contact_id, "created": now, "properties": {"hs_object_id": contact_id}}
            contact["properties"]["createdate"] = _iso(now)
            self._contacts[contact_id] = contact
            self._by_email[email] = contact_id
        contact = self._contacts[contact_id]
        contact["updated"] = now
        contact["properties"] |= written | {"lastmodifieddate": _iso(now)}
        result = self._public(contact, [*written, "email", *ALWAYS_RETURNED])
        result["new"] = new
        if trace is not None:
            result["objectWriteTraceId"] = trace
        return result

    def _public(self, contact: dict[str, Any], names: list[str] | tuple[str, ...] | None) -> dict[str, Any]:
        stored = contact["properties"]
        wanted = sorted(stored) if names is None else sorted(set(names))
        return {
            "id": contact["id"],
            "properties": {name: stored.get(name) for name in wanted},
            "createdAt": _iso(contact["created"]),
            "updatedAt": _iso(contact["updated"]),
            "archived": False,
        }

    def _requested(self, query: dict[str, str]) -> list[str]:
        asked = [p.strip() for p in query.get("properties", "").split(",") if p.strip()]
        return [*asked, *ALWAYS_RETURNED] if asked else list(DEFAULT_PROPERTIES)

    def _list(self, query: dict[str, str]) -> dict[str, Any]:
        try:
            limit = int(query.get("limit", "10"))
        except ValueError:
            raise _Reply(400, _error("limit must be an integer", "VALIDATION_ERROR")) from None
        if not 1 <= limit <= MAX_PAGE_LIMIT:
            raise _Reply(400, _error(f"limit must be between 1 and {MAX_PAGE_LIMIT}", "VALIDATION_ERROR"))
        after = query.get("after")
        names = self._requested(query)
        with self._lock:
            ordered = sorted(self._contacts.values(), key=lambda c: int(c["id"]))
            if after:
                if not after.isdigit():
                    raise _Reply(400, _error("after must be a cursor from paging.next.after", "VALIDATION_ERROR"))
                ordered = [c for c in ordered if int(c["id"]) > int(after)]
            page = [self._public(c, names) for c in ordered[:limit]]
        answer: dict[str, Any] = {"results": page}
        if len(ordered) > limit:
            cursor = page[-1]["id"]
            answer["paging"] = {"next": {"after": cursor, "link": f"{self.url}{CONTACTS}?after={cursor}&limit={limit}"}}
        return answer

    def _gdpr_delete(self, body: bytes) -> tuple[int, Any]:
        try:
            document = json.loads(body)
        except ValueError as error:
            raise _Reply(400, _error(f"Invalid input JSON: {error}", "VALIDATION_ERROR")) from None
        object_id = document.get("objectId") if isinstance(document, dict) else None
        if not isinstance(object_id, str) or not object_id:
            raise _Reply(400, _error("Invalid input JSON: objectId is required", "VALIDATION_ERROR"))
        id_property = document.get("idProperty") or "hs_object_id"
        with self._lock:
            if id_property == "email":
                contact_id = self._by_email.get(object_id.strip().lower())
                if contact_id is None:
                    self._blocklist.add(object_id.strip().lower())
            elif id_property == "hs_object_id":
                contact_id = object_id if object_id in self._contacts else None
            else:
                raise _Reply(400, _error(f"Property {id_property} is not a unique property", "VALIDATION_ERROR"))
            if contact_id is None:
                raise _Reply(404, _error("resource not found", "OBJECT_NOT_FOUND"))
            del self._contacts[contact_id]
            self._by_email = {k: v for k, v in self._by_email.items() if v != contact_id}
        return 204, None

    def _get(self, identifier: str, query: dict[str, str]) -> dict[str, Any]:
        id_property = query.get("idProperty") or "hs_object_id"
        with self._lock:
            if id_property == "email":
                contact_id = self._by_email.get(identifier.strip().lower())
            elif id_property == "hs_object_id":
                contact_id = identifier if identifier in self._contacts else None
            else:
                raise _Reply(400, _error(f"Property {id_property} is not a unique property", "VALIDATION_ERROR"))
            if contact_id is None:
                raise _Reply(404, _error("resource not found", "OBJECT_NOT_FOUND"))
            return self._public(self._contacts[contact_id], self._requested(query))


def rate_limited(window: str, policy: str) -> dict[str, Any]:
    """HubSpot's 429 body (usage guidelines): note errorType and policyName, not category."""
    return {
        "status": "error",
        "message": f"You have reached your {window} limit.",
        "errorType": "RATE_LIMIT",
        "correlationId": str(uuid.uuid4()),
        "policyName": policy,
        "requestId": str(uuid.uuid4()),
    }


def _invalid_email(value: str, trace: str | None) -> dict[str, Any]:
    detail = {
        "isValid": False,
        "message": f"Email address {value} is invalid",
        "error": "INVALID_EMAIL",
        "name": "email",
    }
    return {
        "status": "error",
        "category": "VALIDATION_ERROR",
        "message": f"Property values were not valid: {json.dumps([detail])}",
        "errors": [{"message": detail["message"], "code": "INVALID_EMAIL", "in": "email"}],
        "context": {"objectWriteTraceId": [trace]} if trace is not None else {},
        "links": {},
    }


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return value if isinstance(value, str) else json.dumps(value)


def _same(presented: str, expected: str) -> bool:
    return hmac.compare_digest(presented.encode(), expected.encode())
