"""Conversions out: lead stage changes → one queue per ad platform → the platform's conversion API.

1. `route_stream_records` runs inside CrmPushRouterFunction (the leads table's stream already has its two
   readers; this is no third). For every lead change it finds the configured stages the lead just reached
   (`leadflow.domain.conversions.stages_reached`), and per enabled platform queues
   `{"platform", "conversions": [{"lead_id", "stage", "at", "claim"}], "attempt": 0}` (ids and times only,
   never personal data) when the lead's attribution carries the platform's click id inside its window.
2. `send_conversions` (one function per platform, on its queue) reads the current leads, checks the click and
   window again (Meta: the event not older than 7 days now), claims each conversion's record
   (`leadflow.store.conversions`: a redelivered stage change, another message, sends nothing; an SQS
   redelivery or our own retry of the same message may), builds the platform's batch calls
   (`leadflow.ads.<platform>`) and sends them through `leadflow.http`. Each conversion is then done (record
   `sent`, a `conversion` timeline entry), retried (re-queued with exponential backoff and full jitter, never
   sooner than the platform's Retry-After) or, failed for good or out of attempts, dead-lettered with its
   reason (`leadflow dlq list|replay --target <platform>`). A conversion outside the window is skipped (a
   timeline entry with the reason; a replay could not help).
"""

from __future__ import annotations

import importlib
import json
import os
import time
import uuid
from datetime import UTC, datetime

from aws_lambda_powertools.metrics import MetricUnit

from leadflow import http, queues
from leadflow.ads import PLATFORMS, Call, Conversion, Outcome, conversion_key
from leadflow.ads.config import ConversionConfig, PlatformConfig, conversion_config
from leadflow.domain.conversions import conversion_time, find_click, parse_time, stages_reached, still_sendable
from leadflow.errors import ConfigurationError, LeadFlowError
from leadflow.observability import logger, metrics
from leadflow.services.push import _image, backoff_seconds
from leadflow.store import conversions as store
from leadflow.store import push as leads_store

QUEUE_ENV = {p: f"LEADFLOW_{p.upper().replace('-', '_')}_CONVERSION_QUEUE_URL" for p in PLATFORMS}
DLQ_ENV = {p: f"LEADFLOW_{p.upper().replace('-', '_')}_CONVERSION_DLQ_URL" for p in PLATFORMS}
MESSAGE_CONVERSIONS = 100
LEASE_SECONDS = 180  # longer than a drain function's run (Timeout 60 s)


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def queue_url(platform: str) -> str | None:
    return os.environ.get(QUEUE_ENV[platform]) or None


def dlq_url(platform: str) -> str:
    url = os.environ.get(DLQ_ENV[platform])
    if not url:
        raise ConfigurationError(f"{DLQ_ENV[platform]} is not set.")
    return url


# ------------------------------------------------------------------------------------------------ routing
def conversions_due(old: dict | None, new: dict | None, platform: PlatformConfig) -> list[dict]:
    """The conversion refs a lead change calls for on one platform (may be empty)."""
    if not new or new.get("entity", "lead") != "lead" or new.get("erasing") or new.get("is_test"):
        return []
    stages = [s for s in stages_reached((old or {}).get("lifecycle_stage"), new.get("lifecycle_stage"))
              if s in platform.stages]  # fmt: skip
    if not stages:
        return []
    at = conversion_time(old, new)
    click, _why = find_click(platform.name, new, parse_time(at), platform.window_days)
    if click is None:
        return []
    return [{"lead_id": str(new["lead_id"]), "stage": stage, "at": at, "claim": uuid.uuid4().hex} for stage in stages]


def route_stream_records(records: list[dict], config: ConversionConfig | None = None) -> dict[str, int]:
    """Queue the conversions a batch of lead stream records calls for; returns how many per platform."""
    config = config or conversion_config()
    platforms = [p for p in config.active() if queue_url(p.name)]
    if not platforms:
        return {}
    wanted: dict[str, dict[str, dict]] = {}
    for record in records:
        if record.get("eventName") not in ("INSERT", "MODIFY"):
            continue
        old, new = _image(record, "OldImage"), _image(record, "NewImage")
        for platform in platforms:
            for ref in conversions_due(old, new, platform):
                wanted.setdefault(platform.name, {}).setdefault(conversion_key(ref["lead_id"], ref["stage"]), ref)
    for name, refs in wanted.items():
        items = list(refs.values())
        messages = [
            ({"platform": name, "conversions": items[i : i + MESSAGE_CONVERSIONS], "attempt": 0}, {"platform": name})
            for i in range(0, len(items), MESSAGE_CONVERSIONS)
        ]
        queues.send_batch(queue_url(name) or "", messages)
        metrics.add_metric(name=f"ConversionQueued_{name}", unit=MetricUnit.Count, value=len(items))
    return {name: len(refs) for name, refs in wanted.items()}


# ------------------------------------------------------------------------------------------------ sending
def _module(platform: str):
    return importlib.import_module(f"leadflow.ads.{PLATFORMS[platform]}")


def reset() -> None:
    """Forget cached platform sessions (tests, a rotated secret)."""
    from leadflow.ads import google_ads

    google_ads.forget_tokens()


def send(call: Call, platform: PlatformConfig, classify) -> dict[str, Outcome]:
    """One call; every conversion key of it classified (no answer at all → retry)."""
    started = time.monotonic()
    try:
        answer = http.request(
            platform.name, call.method, call.url, json_body=call.json_body, data=call.data, headers=call.headers
        )
    except http.ApiError:
        return {key: Outcome("retry", reason="no answer (timeout or connection error)") for key in call.keys}
    metrics.add_metric(
        name=f"ConversionLatency_{platform.name}", unit=MetricUnit.Milliseconds,
        value=(time.monotonic() - started) * 1000,
    )  # fmt: skip
    if answer.status == 429:
        metrics.add_metric(name=f"ConversionRateLimited_{platform.name}", unit=MetricUnit.Count, value=1)
    return classify(call, answer)


def deliver(platform: PlatformConfig, conversions: list[Conversion]) -> dict[str, Outcome]:
    module = _module(platform.name)
    try:
        calls, outcomes = module.build_calls(conversions, platform)
    except LeadFlowError as error:  # a secret missing or unreadable: retried until an operator fixes it
        return {c.key: Outcome("retry", reason=f"{error.kind}: {error.detail}"[:200]) for c in conversions}
    for call in calls:
        outcomes.update(module.send_call(call, platform, send, http.request))
    return outcomes


def _refs(records: list[dict], platform: str) -> tuple[list[tuple[dict, int]], bool]:
    refs: list[tuple[dict, int]] = []
    replay = False
    for record in records:
        try:
            body = json.loads(record["body"])
            attempt = int(body.get("attempt", 0))
            replay = replay or bool(body.get("replay"))
            items = body["conversions"] if "conversions" in body else [body["conversion"]]
        except (ValueError, KeyError, TypeError):
            logger.error("unreadable conversion message", extra={"platform": platform})
            continue
        refs.extend(
            (ref, attempt) for ref in items if isinstance(ref, dict) and ref.get("lead_id") and ref.get("stage")
        )
    return refs, replay


def send_conversions(platform_name: str, records: list[dict], config: ConversionConfig | None = None) -> None:
    """Deliver one batch of a platform's queue messages (the SQS event's records)."""
    config = config or conversion_config()
    platform = config.platforms[platform_name]
    refs, _replay = _refs(records, platform_name)
    if not refs:
        return
    now_iso, now = _now_iso(), datetime.now(UTC)
    leads = leads_store.get_leads([ref["lead_id"] for ref, _ in refs])
    todo: list[tuple[Conversion, dict, int]] = []
    seen: set[str] = set()
    for ref, attempt in refs:
        key = conversion_key(ref["lead_id"], ref["stage"])
        lead = leads.get(ref["lead_id"])
        spec = platform.stages.get(ref["stage"])
        if key in seen or not lead or lead.get("erasing") or spec is None or not platform.enabled:
            continue  # a duplicate in this batch, an erased lead, or a stage/platform switched off since
        seen.add(key)
        at = parse_time(ref["at"])
        click, why = find_click(platform_name, lead, at, platform.window_days)
        why = why or still_sendable(platform_name, click or {}, at, now, platform.window_days)
        if not store.claim(ref["lead_id"], platform_name, ref["stage"], claim_id=str(ref.get("claim") or key),
                           at=ref["at"], now=int(time.time()), lease=LEASE_SECONDS, stamp=now_iso):  # fmt: skip
            metrics.add_metric(name=f"ConversionAlreadyDone_{platform_name}", unit=MetricUnit.Count, value=1)
            continue  # sent already, dead-lettered, or another message is sending it right now
        if why or click is None:
            store.mark_dead(ref["lead_id"], platform_name, ref["stage"], str(ref.get("claim") or key), "skipped")
            store.add_history(ref["lead_id"], now_iso, {"platform": platform_name, "stage": ref["stage"],
                                                        "outcome": "skipped", "reason": why})  # fmt: skip
            metrics.add_metric(name=f"ConversionSkipped_{platform_name}", unit=MetricUnit.Count, value=1)
            continue
        todo.append((Conversion(ref["lead_id"], ref["stage"], ref["at"], click, lead, spec), ref, attempt))
    if todo:
        outcomes = deliver(platform, [c for c, _, _ in todo])
        _settle(platform, todo, outcomes, now_iso)


def _settle(platform: PlatformConfig, todo: list[tuple[Conversion, dict, int]], outcomes: dict[str, Outcome],
            now: str) -> None:  # fmt: skip
    name = platform.name
    retry_groups: dict[tuple[int, int], list[dict]] = {}
    dead: list[tuple[dict, str]] = []
    counts = {"sent": 0, "retried": 0}
    for conversion, ref, attempt in todo:
        outcome = outcomes.get(conversion.key) or Outcome("retry", reason="no outcome")
        claim_id = str(ref.get("claim") or conversion.key)
        entry = {"platform": name, "stage": conversion.stage, "click_id": conversion.click["name"],
                 "attempt": attempt + 1}  # fmt: skip
        if outcome.status == "done":
            store.mark_sent(conversion.lead_id, name, conversion.stage, claim_id, now)
            store.add_history(conversion.lead_id, now, {**entry, "outcome": "sent", "note": outcome.reason or None})
            counts["sent"] += 1
        elif outcome.status == "retry" and attempt + 1 < platform.max_attempts:
            delay = backoff_seconds(attempt, outcome.retry_after)
            store.extend_lease(
                conversion.lead_id, name, conversion.stage, claim_id, int(time.time()) + delay + LEASE_SECONDS
            )
            retry_groups.setdefault((attempt + 1, delay), []).append(ref)
            store.add_history(conversion.lead_id, now, {**entry, "outcome": "retry", "reason": outcome.reason,
                                                        "delay_s": delay})  # fmt: skip
            counts["retried"] += 1
        else:
            reason = (
                outcome.reason if outcome.status == "failed" else f"{outcome.reason} (after {attempt + 1} attempts)"
            )
            store.mark_dead(conversion.lead_id, name, conversion.stage, claim_id)
            dead.append((ref, reason))
            store.add_history(conversion.lead_id, now, {**entry, "outcome": "dead_letter", "reason": reason})
    for kind, metric in (("sent", "ConversionSent"), ("retried", "ConversionRetried")):
        if counts[kind]:
            metrics.add_metric(name=f"{metric}_{name}", unit=MetricUnit.Count, value=counts[kind])
    for (attempt, delay), refs in retry_groups.items():
        for i in range(0, len(refs), MESSAGE_CONVERSIONS):
            queues.send_delayed(
                queue_url(name) or "",
                {"platform": name, "conversions": refs[i : i + MESSAGE_CONVERSIONS], "attempt": attempt},
                {"platform": name},
                delay,
            )
    if dead:
        messages = [
            ({"platform": name, "conversion": ref},
             {"platform": name, "lead_id": ref["lead_id"], "stage": ref["stage"], "failure_reason": reason[:500],
              "failed_at": now})
            for ref, reason in dead
        ]  # fmt: skip
        queues.send_batch(dlq_url(name), messages)
        metrics.add_metric(name=f"ConversionDeadLettered_{name}", unit=MetricUnit.Count, value=len(dead))
        logger.error("conversions dead-lettered", extra={"platform": name, "count": len(dead)})
