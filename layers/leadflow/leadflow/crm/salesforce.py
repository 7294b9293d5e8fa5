"""Salesforce: OAuth 2.0 client credentials, then sObject Collections upsert on an external id field.

`PATCH {instance}/services/data/{version}/composite/sobjects/{object}/{external id field}` with
`{"allOrNone": false, "records": [...≤200]}`; the external id is the lead id, so an upsert of the same
lead twice updates one record. The answer is one UpsertResult per record, in order. Retried:
`UNABLE_TO_LOCK_ROW` (per record), `REQUEST_LIMIT_EXCEEDED` (403, the org's rolling 24-hour allocation),
5xx and timeouts; failed for good: `DUPLICATES_DETECTED`, `REQUIRED_FIELD_MISSING`, `INVALID_EMAIL_ADDRESS`
and other validation errors of a record, or a 400 for the whole call. The access token is cached per process
and fetched again once when Salesforce answers 401 `INVALID_SESSION_ID` (expired or revoked).

Erasure: `DELETE {instance}/services/data/{version}/sobjects/{object}/{record id}` (204), or by the external id
(`…/sobjects/{object}/{external id field}/{lead id}`) when the record id was never written back; 404 (the
record is gone already) is done too.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import Any

from leadflow.crm import Call, Erasure, Outcome, every
from leadflow.crm.config import TargetConfig, map_lead
from leadflow.http import ApiError, Response, base_url, retry_after_seconds
from leadflow.secrets import secret_field

NAME = "salesforce"
SECRET = "crm/salesforce"
MAX_RECORDS = 200
TOKEN_PATH = "/services/oauth2/token"
RETRYABLE_CODES = frozenset({"UNABLE_TO_LOCK_ROW", "REQUEST_LIMIT_EXCEEDED", "SERVER_UNAVAILABLE"})
LIMIT_RETRY_SECONDS = 300.0  # the org's rolling 24-hour allocation: no point asking again at once

_sessions: dict[str, tuple[str, str]] = {}  # login URL → (access token, instance URL)
_lock = threading.Lock()


def forget_sessions() -> None:
    with _lock:
        _sessions.clear()


def build_calls(leads: list[tuple[str, dict, bool]], target: TargetConfig) -> tuple[list[Call], dict[str, Outcome]]:
    """Upsert calls (URL relative to the instance: `send_call` adds it with the session)."""
    options = target.options
    sobject = options.get("object", "Lead")
    external = options.get("external_id_field", "LeadFlow_Id__c")
    path = f"/services/data/{options.get('api_version', 'v60.0')}/composite/sobjects/{sobject}/{external}"
    size = max(1, min(target.batch_size, MAX_RECORDS))
    calls = []
    for start in range(0, len(leads), size):
        chunk = leads[start : start + size]
        records = [
            {"attributes": {"type": sobject}, **map_lead(lead, target, first_push=first), external: lead["lead_id"]}
            for _, lead, first in chunk
        ]
        body = {"allOrNone": False, "records": records}
        calls.append(Call("PATCH", path, tuple(key for key, _, _ in chunk), {}, body))
    return calls, {}


def build_erase_calls(erasures: list[Erasure], target: TargetConfig) -> tuple[list[Call], dict[str, Outcome]]:
    """One DELETE per record (URL relative to the instance, like the upserts)."""
    options = target.options
    base = f"/services/data/{options.get('api_version', 'v60.0')}/sobjects/{options.get('object', 'Lead')}"
    external = options.get("external_id_field", "LeadFlow_Id__c")
    calls = []
    for erasure in erasures:
        path = f"{base}/{erasure.crm_id}" if erasure.crm_id else f"{base}/{external}/{erasure.lead_id}"
        calls.append(Call("DELETE", path, (erasure.key,), {}))
    return calls, {}


def classify_erase(call: Call, answer: Response) -> dict[str, Outcome]:
    if answer.status in (200, 204, 404):
        return every(call.keys, Outcome("done"))
    if answer.status == 400:  # e.g. DELETE_FAILED, ENTITY_IS_LOCKED: an operator must look
        codes = sorted({str(e.get("errorCode")) for e in _errors(answer.body) if e.get("errorCode")})
        return every(call.keys, Outcome("failed", reason=f"HTTP 400 {','.join(codes)}".strip()))
    return classify(call, answer)  # 401 (session refreshed), 403 limit, 5xx: retry


def _errors(body: Any) -> list[dict]:
    return [e for e in body if isinstance(e, dict)] if isinstance(body, list) else []


def classify(call: Call, answer: Response) -> dict[str, Outcome]:
    status, body = answer.status, answer.body
    codes = sorted({str(e.get("errorCode")) for e in _errors(body) if e.get("errorCode")})
    reason = f"HTTP {status} {','.join(codes)}".strip()
    if status == 401:
        return every(call.keys, Outcome("retry", reason=reason))
    if status == 403 and "REQUEST_LIMIT_EXCEEDED" in codes:
        wait = retry_after_seconds(answer.headers.get("retry-after"))
        if wait is None:
            wait = float(os.environ.get("LEADFLOW_SALESFORCE_LIMIT_WAIT", LIMIT_RETRY_SECONDS))
        return every(call.keys, Outcome("retry", reason=reason, retry_after=wait))
    if status >= 500 or status in (408, 429) or (status == 403 and not codes):
        return every(
            call.keys,
            Outcome("retry", reason=reason, retry_after=retry_after_seconds(answer.headers.get("retry-after"))),
        )
    if status != 200 or not isinstance(body, list):
        return every(call.keys, Outcome("failed", reason=reason))
    outcomes: dict[str, Outcome] = {}
    for key, result in zip(call.keys, body, strict=False):
        if not isinstance(result, dict):
            continue
        if result.get("success"):
            outcomes[key] = Outcome("done", crm_id=str(result.get("id") or "") or None)
            continue
        errors = [e for e in result.get("errors") or [] if isinstance(e, dict)]
        record_codes = sorted({str(e.get("statusCode")) for e in errors if e.get("statusCode")})
        fields = sorted({str(f) for e in errors for f in e.get("fields") or []})
        why = ",".join(record_codes) + (f" ({','.join(fields)})" if fields else "")
        retryable = bool(record_codes) and set(record_codes) <= RETRYABLE_CODES
        outcomes[key] = Outcome("retry" if retryable else "failed", reason=why or "record refused")
    for key in call.keys:
        outcomes.setdefault(key, Outcome("retry", reason="no result for the record"))
    return outcomes


def _session(request: Callable[..., Response], refresh: bool) -> tuple[str, str]:
    login = base_url(NAME)
    with _lock:
        if not refresh and login in _sessions:
            return _sessions[login]
    form = {
        "grant_type": "client_credentials",
        "client_id": secret_field(SECRET, "client_id"),
        "client_secret": secret_field(SECRET, "client_secret"),
    }
    answer = request(NAME, "POST", login + TOKEN_PATH, form=form)
    body = answer.body if isinstance(answer.body, dict) else {}
    if not answer.ok or not body.get("access_token") or not body.get("instance_url"):
        raise ApiError(NAME, answer.status, str(body.get("error") or "") or None)
    session = (str(body["access_token"]), str(body["instance_url"]).rstrip("/"))
    with _lock:
        _sessions[login] = session
    return session


def send_call(
    call: Call, target: TargetConfig, send: Callable, request: Callable[..., Response], classify: Callable = classify
) -> dict[str, Outcome]:
    """Send with the cached session; on 401 INVALID_SESSION_ID fetch a new token and send once more."""
    outcomes: dict[str, Outcome] = {}
    for refresh in (False, True):
        try:
            token, instance = _session(request, refresh)
        except ApiError as error:
            retry = error.status is None or error.status >= 500 or error.status == 429
            return every(call.keys, Outcome("retry" if retry else "failed", reason=f"token: {error}"))
        headers = {**call.headers, "Authorization": f"Bearer {token}"}
        signed = Call(call.method, instance + call.url, call.keys, headers, call.json_body, call.data)
        outcomes = send(signed, target, classify)
        if not any("INVALID_SESSION_ID" in o.reason for o in outcomes.values()):
            break
    return outcomes
