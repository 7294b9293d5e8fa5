"""HubSpot: `POST /crm/v3/objects/contacts/batch/upsert` by email, ≤100 inputs a call, answers per record.

Each input carries `objectWriteTraceId` = the push key (`lead_id#version`), so results and per-record
errors of a 207 are matched back to their lead whatever their order. 429s say which policy refused:
`TEN_SECONDLY_ROLLING` is retried after the window (Retry-After, else `X-HubSpot-RateLimit-Interval-
Milliseconds`); `DAILY` after the daily reset (an hour at least: HubSpot resets at midnight in the account's
time zone, which LeadFlow does not know). 5xx, timeouts and 401/403 (a token an operator must fix) are
retried; a per-record VALIDATION_ERROR, a lead without email and a 400 for the whole call fail for good.

Erasure: `POST /crm/v3/objects/contacts/gdpr-delete` `{"objectId": <contact id>}` permanently deletes the
contact (HubSpot answers 204). Only by id: with `idProperty: email` HubSpot would block-list an email it does
not find, and the queue would have to carry the email. 404 (already gone) is done too.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from leadflow.crm import Call, Erasure, Outcome, every
from leadflow.crm.config import TargetConfig, map_lead
from leadflow.http import Response, base_url, retry_after_seconds
from leadflow.secrets import secret_field

NAME = "hubspot"
SECRET = "crm/hubspot"
UPSERT_PATH = "/crm/v3/objects/contacts/batch/upsert"
GDPR_DELETE_PATH = "/crm/v3/objects/contacts/gdpr-delete"
MAX_INPUTS = 100
DAILY_RETRY_SECONDS = 3600.0
# A ten-secondly 429 without Retry-After: the rolling window frees a slot within seconds, and the sender's
# token bucket is paused as well, so a short wait (then backoff with jitter) is enough.
# LEADFLOW_HUBSPOT_RATE_LIMIT_WAIT overrides it (tests ride out 429 storms without waiting).
TEN_SECONDLY_RETRY_SECONDS = 1.0


def build_calls(leads: list[tuple[str, dict, bool]], target: TargetConfig) -> tuple[list[Call], dict[str, Outcome]]:
    """Batch calls for (push key, lead, first push) triples; leads that cannot be sent are failed at once.

    Two leads with one email (a merge in flight) never share a call: HubSpot refuses the whole batch for a
    duplicate id, so the second waits for the next call.
    """
    size = max(1, min(target.batch_size, MAX_INPUTS))
    refused: dict[str, Outcome] = {}
    batches: list[list[tuple[str, dict]]] = []
    for key, lead, first_push in leads:
        properties = map_lead(lead, target, first_push=first_push)
        email = properties.get("email")
        if not email:
            refused[key] = Outcome("failed", reason="no email: HubSpot upserts contacts by email")
            continue
        item = {"idProperty": "email", "id": email, "properties": properties, "objectWriteTraceId": key}
        for batch in batches:
            if len(batch) < size and all(other["id"] != email for _, other in batch):
                batch.append((key, item))
                break
        else:
            batches.append([(key, item)])
    headers = {"Authorization": f"Bearer {secret_field(SECRET, 'access_token')}"}
    url = base_url(NAME) + UPSERT_PATH
    calls = [Call("POST", url, tuple(k for k, _ in b), headers, {"inputs": [i for _, i in b]}) for b in batches]
    return calls, refused


def classify(call: Call, answer: Response) -> dict[str, Outcome]:
    """Done / retry / failed for every push key of the call."""
    status, body = answer.status, answer.body if isinstance(answer.body, dict) else {}
    if status == 429:
        policy = str(body.get("policyName") or "")
        wait = retry_after_seconds(answer.headers.get("retry-after"))
        if wait is None and policy == "DAILY":
            wait = DAILY_RETRY_SECONDS
        if wait is None:
            wait = float(os.environ.get("LEADFLOW_HUBSPOT_RATE_LIMIT_WAIT", TEN_SECONDLY_RETRY_SECONDS))
        return every(call.keys, Outcome("retry", reason=f"HTTP 429 {policy or 'rate limit'}", retry_after=wait))
    if status >= 500 or status in (401, 403, 408):
        wait = retry_after_seconds(answer.headers.get("retry-after"))
        return every(
            call.keys, Outcome("retry", reason=f"HTTP {status} {body.get('category', '')}".strip(), retry_after=wait)
        )
    if status not in (200, 201, 207):
        return every(call.keys, Outcome("failed", reason=f"HTTP {status} {body.get('category', '')}".strip()))
    outcomes: dict[str, Outcome] = {}
    for result in body.get("results") or []:
        trace = result.get("objectWriteTraceId")
        if trace in call.keys:
            outcomes[trace] = Outcome("done", crm_id=str(result.get("id")))
    for error in body.get("errors") or []:
        traces = (error.get("context") or {}).get("objectWriteTraceId") or []
        codes = ",".join(sorted({str(e.get("code")) for e in error.get("errors") or [] if e.get("code")}))
        category = str(error.get("category") or "ERROR")
        retryable = category in ("RATE_LIMITS", "RATE_LIMIT") or category.startswith("INTERNAL")
        for trace in traces if isinstance(traces, list) else [traces]:
            if trace in call.keys:
                reason = f"{category} {codes}".strip()
                outcomes[trace] = Outcome("retry" if retryable else "failed", reason=reason)
    for key in call.keys:  # neither a result nor an error: HubSpot did not say, so try again
        outcomes.setdefault(key, Outcome("retry", reason="no result for the record"))
    return outcomes


def build_erase_calls(erasures: list[Erasure], target: TargetConfig) -> tuple[list[Call], dict[str, Outcome]]:
    """One GDPR delete per contact; a lead whose contact id is unknown has nothing LeadFlow can delete."""
    headers = {"Authorization": f"Bearer {secret_field(SECRET, 'access_token')}"}
    url = base_url(NAME) + GDPR_DELETE_PATH
    calls, outcomes = [], {}
    for erasure in erasures:
        if erasure.crm_id:
            calls.append(Call("POST", url, (erasure.key,), headers, {"objectId": erasure.crm_id}))
        else:
            outcomes[erasure.key] = Outcome("failed", reason="no HubSpot contact id known for the lead")
    return calls, outcomes


def classify_erase(call: Call, answer: Response) -> dict[str, Outcome]:
    if 200 <= answer.status < 300 or answer.status == 404:
        return every(call.keys, Outcome("done"))
    return classify(call, answer)  # 429, 5xx, 401/403: retry; other 4xx: failed


def send_call(
    call: Call, target: TargetConfig, send: Callable, request: Callable[..., Response], classify: Callable = classify
) -> dict[str, Outcome]:
    return send(call, target, classify)
