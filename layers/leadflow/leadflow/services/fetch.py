"""Lead fetches for pointer-style providers (meta, linkedin, tiktok): queue the pointers, fetch, capture.

The webhook handler calls `enqueue_pointers` (the pointers are durable in SQS before the 200); the fetch
function calls `fetch_and_capture` for each SQS record. Provider modules (see `leadflow.sources`) give:

- `parse_pointers(request, verified) -> list[dict]`: JSON objects, each with `"id"` (the provider's lead
  id: shown by `leadflow dlq list`, so never PII);
- `fetch(pointer) -> LeadInput`, raising `leadflow.sources.http.ApiError` (or any LeadFlowError);
- optionally `POINTERS_PER_MESSAGE = n` and `fetch_many(pointers) -> list[LeadInput | Exception]` (same
  order) when the platform can fetch several leads in one call: a delivery's pointers then travel in one
  message (`{"provider", "pointers": [...], "received_at"}`) instead of one each
  (`{"provider", "pointer", "received_at"}`).

Retries: a retryable failure (timeout, 5xx, 429, throttled store) reports the record as failed, after
pushing its next delivery back exponentially (ChangeMessageVisibility). A message is finished when every
pointer is captured, quarantined (the fetched lead fails validation: `leadflow.services.quarantine`) or
failed for good (4xx other than 408/425/429), or when its receive
count reaches LEADFLOW_FETCH_MAX_ATTEMPTS: then each pointer still failing goes to the dead-letter queue as
a message of its own with `failure_reason`, `failed_at` and `provider` attributes, and the record is
reported as processed, so the DLQ always says why. Capture is idempotent on the provider's lead id, so the
pointers of a retried message that were already captured are acknowledged again and change nothing.
A pointer whose delivery belonged to an erased lead (a tombstone under its delivery key) is not fetched
at all: a redelivered notification or a `leadflow dlq replay` never brings an erased person back.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from leadflow import queues
from leadflow.config import settings
from leadflow.domain.model import LeadInput
from leadflow.errors import ConfigurationError, LeadFlowError, StoreUnavailable, ValidationFailed
from leadflow.observability import logger, metrics
from leadflow.services.capture import capture_lead
from leadflow.sources import webhook_source
from leadflow.sources.base import event_key
from leadflow.sources.http import ApiError
from leadflow.store import leads as store

MAX_BACKOFF_SECONDS = 900


class FetchRetry(Exception):
    """The record is reported as a batch item failure: SQS delivers it again after the backoff."""


def _now_iso(now: datetime | None = None) -> str:
    return (now or datetime.now(UTC)).isoformat(timespec="seconds").replace("+00:00", "Z")


def enqueue_pointers(provider: str, pointers: Sequence[dict], now: datetime | None = None) -> int:
    """Queue a delivery's pointers for fetching; returns how many leads were queued."""
    if not pointers:
        return 0
    per_message = max(1, int(getattr(webhook_source(provider), "POINTERS_PER_MESSAGE", 1)))
    received_at = _now_iso(now)
    attributes = {"provider": provider}
    if per_message == 1:
        bodies = [{"provider": provider, "pointer": pointer, "received_at": received_at} for pointer in pointers]
    else:
        bodies = [
            {"provider": provider, "pointers": list(pointers[i : i + per_message]), "received_at": received_at}
            for i in range(0, len(pointers), per_message)
        ]
    queues.send_batch(queues.fetch_queue_url(), [(body, attributes) for body in bodies])
    metrics.add_metric(name="LeadFetchQueued", unit=MetricUnit.Count, value=len(pointers))
    return len(pointers)


def message_pointers(body: dict) -> list[dict]:
    """The pointers one fetch message names (one, or a delivery's group)."""
    if isinstance(body.get("pointers"), list):
        return [p for p in body["pointers"] if isinstance(p, dict)]
    return [body["pointer"]] if isinstance(body.get("pointer"), dict) else []


def pointer_id(pointer: Any) -> str:
    return str(pointer.get("id", "?")) if isinstance(pointer, dict) else "?"


def delivery_key(provider: str, pointer: dict) -> str:
    """The delivery key the fetched lead is captured under (sources put it on the pointer or use the id)."""
    return str(pointer.get("event_key") or event_key(provider, pointer_id(pointer)))


def _not_erased(provider: str, pointers: list[dict]) -> list[dict]:
    """The pointers whose delivery was not erased: one BatchGetItem, before any platform API call."""
    try:
        erased = store.erased_deliveries([delivery_key(provider, p) for p in pointers])
    except StoreUnavailable as exc:
        raise FetchRetry("the lead store did not answer; the message will be retried") from exc
    if erased:
        metrics.add_metric(name="LeadFetchErasedSkipped", unit=MetricUnit.Count, value=len(erased))
        logger.info("erased deliveries not fetched", extra={"provider": provider, "count": len(erased)})
    return [p for p in pointers if delivery_key(provider, p) not in erased]


def is_retryable(error: BaseException) -> bool:
    if isinstance(error, ApiError):
        return error.retryable
    if isinstance(error, ConfigurationError):
        return True  # a missing/rotated secret is fixed by an operator, then the retry succeeds
    if isinstance(error, LeadFlowError):
        return error.status >= 500  # StoreUnavailable yes; validation/malformed data never gets better
    return True  # unknown: retry, and the DLQ keeps it if it never works


def failure_reason(error: BaseException) -> str:
    """Why a fetch failed, for operators: no bodies, no values, so no PII."""
    if isinstance(error, ApiError):
        return str(error)
    if isinstance(error, ValidationFailed):
        return "validation-failed: " + ", ".join(sorted({e.field for e in error.errors}))[:300]
    if isinstance(error, LeadFlowError):
        return f"{error.kind}: {error.detail}"[:300]
    return f"unexpected error: {type(error).__name__}"


def _fetch(source: Any, pointers: list[dict]) -> list[LeadInput | BaseException]:
    if hasattr(source, "fetch_many"):
        try:
            return list(source.fetch_many(pointers))
        except Exception as exc:  # the whole call failed: every pointer shares the reason
            return [exc] * len(pointers)
    outcomes: list[LeadInput | BaseException] = []
    for pointer in pointers:
        try:
            outcomes.append(source.fetch(pointer))
        except Exception as exc:
            outcomes.append(exc)
    return outcomes


def fetch_and_capture(record: dict, now: datetime | None = None) -> None:
    """Process one SQS record of the fetch queue (the event shape Lambda sends); raises FetchRetry to retry."""
    try:
        body = json.loads(record["body"])
        provider = str(body["provider"])
        source = webhook_source(provider)
        pointers = message_pointers(body)
    except Exception as exc:  # a message no code can ever process: keep it, with the reason
        _dead_letter(record, "?", [({"id": "?"}, f"unreadable message: {type(exc).__name__}")], now, raw=True)
        return
    if not hasattr(source, "fetch"):
        _dead_letter(record, provider, [(p, "provider has no fetch") for p in pointers], now)
        return

    pointers = _not_erased(provider, pointers)
    if not pointers:
        return
    attempt = int((record.get("attributes") or {}).get("ApproximateReceiveCount", "1") or 1)
    failures: list[tuple[dict, BaseException]] = []
    for pointer, outcome in zip(pointers, _fetch(source, pointers), strict=True):
        if not isinstance(outcome, BaseException):
            try:
                capture_lead(outcome)
                metrics.add_metric(name="LeadFetched", unit=MetricUnit.Count, value=1)
                continue
            except Exception as exc:
                outcome = exc
        if isinstance(outcome, ValidationFailed):
            # A genuine lead the mapping or schema refuses never passes on a retry: quarantine its pointer.
            try:
                from leadflow.services.quarantine import quarantine_pointer

                quarantine_pointer(provider, pointer, outcome, now)
                continue
            except Exception as exc:  # the quarantine write failed (StoreUnavailable): retried like any store error
                outcome = exc
        failures.append((pointer, outcome))
    if not failures:
        return
    retryable = [error for _, error in failures if is_retryable(error)]
    for pointer, error in failures:
        logger.warning(
            "lead fetch failed",
            extra={
                "provider": provider,
                "pointer_id": pointer_id(pointer),
                "attempt": attempt,
                "reason": failure_reason(error),
                "retryable": is_retryable(error),
            },
        )
    max_attempts = settings().fetch_max_attempts
    if retryable and attempt < max_attempts:
        backoff = min(settings().fetch_backoff_seconds * 2 ** (attempt - 1), MAX_BACKOFF_SECONDS)
        if record.get("receiptHandle") and settings().fetch_queue_url:
            queues.delay_redelivery(queues.fetch_queue_url(), record["receiptHandle"], backoff)
        raise FetchRetry(f"{len(retryable)} of {len(pointers)} lead fetches will be retried (attempt {attempt})")
    dead = [(pointer, failure_reason(error)) for pointer, error in failures]
    _dead_letter(record, provider, dead, now, received_at=body.get("received_at"))


def _dead_letter(
    record: dict,
    provider: str,
    failed: list[tuple[dict, str]],
    now: datetime | None,
    *,
    received_at: str | None = None,
    raw: bool = False,
) -> None:
    """Each failed pointer becomes its own DLQ message (replayable alone) carrying the reason."""
    failed_at = _now_iso(now)
    messages = []
    for pointer, reason in failed:
        body: dict[str, Any]
        if raw:
            body = {"provider": provider, "raw": record.get("body", "")[:200_000], "received_at": received_at}
        else:
            body = {"provider": provider, "pointer": pointer, "received_at": received_at}
        attributes = {
            "provider": provider,
            "failure_reason": reason,
            "failed_at": failed_at,
            "pointer_id": pointer_id(pointer),
            "source_message_id": str(record.get("messageId", "")),
        }
        messages.append((body, attributes))
    queues.send_batch(queues.dead_letter_queue_url(), messages)
    metrics.add_metric(name="LeadFetchDeadLettered", unit=MetricUnit.Count, value=len(messages))
    logger.error("lead fetch dead-lettered", extra={"provider": provider, "count": len(messages)})
