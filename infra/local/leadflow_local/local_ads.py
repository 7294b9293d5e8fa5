"""Local stand-ins of the four conversion APIs LeadFlow reports to, recording what they receive.

Served by the local platform server (`local_platforms.py`, `leadflow up --platforms-port`, default 3002),
which `leadflow up` names in LEADFLOW_GOOGLE_ADS_API_URL, LEADFLOW_GOOGLE_OAUTH_URL, LEADFLOW_META_GRAPH_URL,
LEADFLOW_BAIDU_OCPC_URL and LEADFLOW_TENCENT_ADS_URL (unless the environment names real ones), so no dev
credential ever reaches a real platform. Each checks the `ads/*` dev credentials and the request's shape as
the platform documents it, and answers like the platform:

- Google: `POST /token` (OAuth refresh-token grant → `access_token`, `expires_in`) and
  `POST /v{NN}/customers/{id}:uploadClickConversions` (`developer-token`, `login-customer-id`, Bearer from
  /token; `partialFailure` must be true; per row exactly one of gclid/gbraid/wbraid, `conversionAction`,
  `conversionDateTime` "yyyy-mm-dd hh:mm:ss+hh:mm", `orderId`). Row errors come back in
  `partialFailureError` with `location.fieldPathElements` and an empty result: an `orderId` already uploaded
  for that action is ORDER_ID_ALREADY_IN_USE, a click id starting `EXPIRED` is EXPIRED_EVENT.
- Meta: `POST /v{N}.{M}/{dataset id}/events` with `access_token` and `data` (1–1000 events, each with
  event_name, event_time not older than 7 days, action_source, user_data): `{"events_received": n}`.
- Baidu: `POST /ocpcapi/api/uploadConvertData` (`token`, 1–99 `conversionTypes` with `logidUrl` carrying
  bd_vid and an integer `newType`): `{"header": {"status": 0, "desc": "success"}}`.
- Tencent: `POST /v{N}.{M}/user_actions/add?access_token=&timestamp=&nonce=` (`account_id`,
  `user_action_set_id`, 1–50 actions with action_time, action_type, trace.click_id): `{"code": 0}`.

`received[platform]` keeps the accepted items (Google rows, Meta events, Baidu items, Tencent actions);
`requests[platform]` every request body. Tests inject failures with `fail(platform, status, times)`.
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from typing import Any
from urllib.parse import parse_qs

GOOGLE_UPLOAD = re.compile(r"^/v\d+/customers/(\d+):uploadClickConversions$")
META_EVENTS = re.compile(r"^/v\d+\.\d+/(\d+)/events$")
TENCENT_ACTIONS = re.compile(r"^/v\d+\.\d+/user_actions/add$")
BAIDU_UPLOAD = "/ocpcapi/api/uploadConvertData"
DATE_TIME = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}[+-]\d{2}:\d{2}$")
PLATFORMS = ("google-ads", "meta", "baidu", "tencent")


class LocalAds:
    def __init__(self, secrets: dict) -> None:
        self.secrets = secrets
        self._lock = threading.Lock()
        self.received: dict[str, list[dict]] = {p: [] for p in PLATFORMS}
        self.requests: dict[str, list[Any]] = {p: [] for p in PLATFORMS}
        self.faults: dict[str, list[int]] = {p: [] for p in PLATFORMS}
        self._tokens: set[str] = set()
        self._orders: set[tuple[str, str]] = set()

    def fail(self, platform: str, status: int, times: int = 1) -> None:
        with self._lock:
            self.faults[platform].extend([status] * times)

    def reset(self) -> None:
        with self._lock:
            for platform in PLATFORMS:
                self.received[platform].clear()
                self.requests[platform].clear()
                self.faults[platform].clear()
            self._orders.clear()

    def _secret(self, name: str) -> dict:
        value = self.secrets.get(name)
        return value if isinstance(value, dict) else {}

    def _fault(self, platform: str, body: Any) -> tuple[int, Any] | None:
        with self._lock:
            self.requests[platform].append(body)
            status = self.faults[platform].pop(0) if self.faults[platform] else None
        if status is None:
            return None
        if platform == "meta":
            return status, {
                "error": {"message": "injected", "type": "OAuthException", "code": 2 if status >= 500 else 100}
            }
        return status, {"error": {"code": status, "message": "injected failure", "status": "UNAVAILABLE"}}

    # ------------------------------------------------------------------ dispatch
    def handle(self, method: str, path: str, query: dict[str, str], headers: dict[str, str], body: bytes):
        """(status, answer) for a conversion API path, or None when the path is not one of them."""
        if method != "POST":
            return None
        if path == "/token":
            return self._google_token(body)
        if GOOGLE_UPLOAD.match(path):
            return self._google(GOOGLE_UPLOAD.match(path).group(1), headers, body)
        if META_EVENTS.match(path):
            return self._meta(META_EVENTS.match(path).group(1), body)
        if path == BAIDU_UPLOAD:
            return self._baidu(body)
        if TENCENT_ACTIONS.match(path):
            return self._tencent(query, body)
        return None

    @staticmethod
    def _json(body: bytes) -> Any:
        try:
            return json.loads(body or b"null")
        except ValueError:
            return None

    # ------------------------------------------------------------------ Google Ads
    def _google_token(self, body: bytes) -> tuple[int, Any]:
        form = {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace")).items()}
        secret = self._secret("ads/google")
        expected = {
            "grant_type": "refresh_token",
            **{k: secret.get(k) for k in ("client_id", "client_secret", "refresh_token")},
        }
        if any(form.get(k) != v for k, v in expected.items()):
            return 400, {"error": "invalid_grant", "error_description": "Bad Request"}
        token = "ya29.local-" + uuid.uuid4().hex
        with self._lock:
            self._tokens.add(token)
        return 200, {"access_token": token, "expires_in": 3599, "scope": "https://www.googleapis.com/auth/adwords",
                     "token_type": "Bearer"}  # fmt: skip

    def _google(self, customer: str, headers: dict[str, str], raw: bytes) -> tuple[int, Any]:
        body = self._json(raw)
        fault = self._fault("google-ads", body)
        if fault:
            return fault
        secret = self._secret("ads/google")
        bearer = headers.get("authorization", "")[7:]
        if bearer not in self._tokens:
            return 401, _google_status(401, "UNAUTHENTICATED", "authenticationError", "OAUTH_TOKEN_INVALID", None)
        if headers.get("developer-token") != secret.get("developer_token"):
            return 401, _google_status(401, "UNAUTHENTICATED", "authenticationError", "DEVELOPER_TOKEN_INVALID", None)
        digits = "".join(ch for ch in str(secret.get("customer_id")) if ch.isdigit())
        if customer != digits or headers.get("login-customer-id") != digits:
            return 403, _google_status(403, "PERMISSION_DENIED", "authorizationError", "USER_PERMISSION_DENIED", None)
        rows = body.get("conversions") if isinstance(body, dict) else None
        if not isinstance(rows, list) or not 1 <= len(rows) <= 2000 or body.get("partialFailure") is not True:
            return 400, _google_status(400, "INVALID_ARGUMENT", "requestError", "INVALID_INPUT", None)
        results: list[dict] = []
        errors: list[dict] = []
        for index, row in enumerate(rows):
            code = _google_row_problem(row, customer)
            key = (str(row.get("conversionAction")), str(row.get("orderId")))
            with self._lock:
                if not code and key in self._orders:
                    code = "ORDER_ID_ALREADY_IN_USE"
                if not code:
                    self._orders.add(key)
                    self.received["google-ads"].append(row)
            if code:
                results.append({})
                errors.append({
                    "errorCode": {"conversionUploadError": code},
                    "message": f"The conversion could not be uploaded ({code}).",
                    "location": {"fieldPathElements": [{"fieldName": "conversions", "index": index}]},
                })  # fmt: skip
            else:
                click = next(k for k in ("gclid", "gbraid", "wbraid") if row.get(k))
                results.append({click: row[click], "conversionAction": row["conversionAction"],
                                "conversionDateTime": row["conversionDateTime"]})  # fmt: skip
        answer: dict[str, Any] = {"results": results, "jobId": str(int(time.time()))}
        if errors:
            answer["partialFailureError"] = {
                "code": 3,
                "message": "Partial failure.",
                "details": [{"@type": "type.googleapis.com/google.ads.googleads.v22.errors.GoogleAdsFailure",
                             "errors": errors}],
            }  # fmt: skip
        return 200, answer

    # ------------------------------------------------------------------ Meta
    def _meta(self, dataset: str, raw: bytes) -> tuple[int, Any]:
        body = self._json(raw)
        fault = self._fault("meta", body)
        if fault:
            return fault
        secret = self._secret("ads/meta")
        if not isinstance(body, dict) or body.get("access_token") != secret.get("access_token"):
            return 400, {"error": {"message": "Invalid OAuth access token.", "type": "OAuthException", "code": 190}}
        if dataset != str(secret.get("dataset_id")):
            return 400, {"error": {"message": "Unsupported post request.", "type": "GraphMethodException", "code": 100,
                                   "error_subcode": 33}}  # fmt: skip
        events = body.get("data")
        if not isinstance(events, list) or not 1 <= len(events) <= 1000:
            return 400, {"error": {"message": "Invalid parameter", "type": "OAuthException", "code": 100}}
        for event in events:
            missing = [f for f in ("event_name", "event_time", "action_source", "user_data") if not event.get(f)]
            if missing or time.time() - int(event["event_time"]) > 7 * 86400:
                return 400, {"error": {"message": "Invalid parameter", "type": "OAuthException", "code": 100,
                                       "error_subcode": 2804003}}  # fmt: skip
        with self._lock:
            self.received["meta"].extend(events)
        return 200, {"events_received": len(events), "messages": [], "fbtrace_id": uuid.uuid4().hex[:11]}

    # ------------------------------------------------------------------ Baidu
    def _baidu(self, raw: bytes) -> tuple[int, Any]:
        body = self._json(raw)
        fault = self._fault("baidu", body)
        if fault:
            return fault
        if not isinstance(body, dict) or body.get("token") != self._secret("ads/baidu").get("token"):
            return 200, {
                "header": {"status": 4, "desc": "failure", "errors": [{"code": 4, "message": "token invalid"}]}
            }
        items = body.get("conversionTypes")
        if not isinstance(items, list) or not 1 <= len(items) < 100:
            return 200, {"header": {"status": 4, "desc": "failure", "errors": [{"code": 7, "message": "too many"}]}}
        for item in items:
            url = str(item.get("logidUrl") or "")
            if "bd_vid=" not in url or len(url) > 1024 or not isinstance(item.get("newType"), int):
                return 200, {"header": {"status": 4, "desc": "failure", "errors": [{"code": 8, "message": "data"}]}}
        with self._lock:
            self.received["baidu"].extend(items)
        return 200, {"header": {"status": 0, "desc": "success"}}

    # ------------------------------------------------------------------ Tencent
    def _tencent(self, query: dict[str, str], raw: bytes) -> tuple[int, Any]:
        body = self._json(raw)
        fault = self._fault("tencent", body)
        if fault:
            return fault
        secret = self._secret("ads/tencent")
        request_id = uuid.uuid4().hex
        if (
            query.get("access_token") != secret.get("access_token")
            or not query.get("nonce")
            or not query.get("timestamp")
        ):
            return 200, {"code": 11002, "message": "access token invalid", "request_id": request_id}
        if not isinstance(body, dict) or str(body.get("account_id")) != str(secret.get("account_id")) or str(
            body.get("user_action_set_id")) != str(secret.get("user_action_set_id")):  # fmt: skip
            return 200, {"code": 11017, "message": "account or action set invalid", "request_id": request_id}
        actions = body.get("actions")
        if not isinstance(actions, list) or not 1 <= len(actions) <= 50:
            return 200, {"code": 11001, "message": "actions: 1 to 50", "request_id": request_id}
        for action in actions:
            if not action.get("action_type") or not (action.get("trace") or {}).get("click_id"):
                return 200, {"code": 11001, "message": "action invalid", "request_id": request_id}
        with self._lock:
            self.received["tencent"].extend(actions)
        return 200, {"code": 0, "message": "", "request_id": request_id, "data": {}}


def _google_row_problem(row: dict, customer: str) -> str | None:
    clicks = [k for k in ("gclid", "gbraid", "wbraid") if row.get(k)]
    if len(clicks) != 1:
        return "GBRAID_WBRAID_BOTH_SET" if len(clicks) > 1 else "UNPARSEABLE_GCLID"
    if str(row[clicks[0]]).startswith("EXPIRED"):
        return "EXPIRED_EVENT"
    if not re.fullmatch(rf"customers/{customer}/conversionActions/\d+", str(row.get("conversionAction") or "")):
        return "NO_CONVERSION_ACTION_FOUND"
    if not DATE_TIME.match(str(row.get("conversionDateTime") or "")) or not row.get("orderId"):
        return "INVALID_INPUT"
    return None


def _google_status(http: int, status: str, kind: str, code: str, index: int | None) -> dict:
    return {"error": {"code": http, "message": "Request had invalid authentication credentials.", "status": status,
                      "details": [{"@type": "type.googleapis.com/google.ads.googleads.v22.errors.GoogleAdsFailure",
                                   "errors": [{"errorCode": {kind: code}, "message": code}]}]}}  # fmt: skip
