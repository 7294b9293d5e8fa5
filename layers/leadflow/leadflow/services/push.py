"""CRM push: route lead changes to one queue per target, then deliver each target's queue in batches.

1. `route_stream_records` (CrmPushRouterFunction, on the leads table's stream): a lead needs a push to a
   target when it is in a push stage (configuration, default mql and later) and it just reached one, or a
   field the target maps, its owner or its stage changed, and that version was not pushed yet. It sends
   `{"target", "leads": [{"lead_id", "version"}], "attempt": 0}` messages (refs only, never personal data)
   to the target's queue: one CRM down or throttling only fills its own queue.
2. `push_records` (one function per target, on its queue): reads the leads' current versions, skips what is
   already pushed (`crm.<target>.version` is the idempotency key `lead_id#version`: a redelivered message
   never writes the same version twice), builds batch calls (`leadflow.crm.<target>`), sends them through
   `leadflow.http` (HubSpot through a token bucket sized to the account's limit), and classifies every
   record: done → `crm.<target>` written back and a `push` timeline entry; retry → re-queued with
   exponential backoff and full jitter, never sooner than the CRM's Retry-After; failed for good, or out of
   attempts → the target's DLQ, one message per lead with the reason (`leadflow dlq list --target`).
3. `queue_erasures` (erasure, `leadflow.services.leads.erase_lead`): every target a lead was pushed to gets
   `{"target", "erase": [{"lead_id", "crm_id"}], "attempt": 0}` on the same queue (ids only), and the push
   function deletes the person there (`leadflow.crm.<target>.build_erase_calls`) with the same retries, backoff
   and DLQ. A push that lands while its lead is being erased (its write-back refused) queues one too.

Metrics are one name per measure with a `target` dimension (`CrmPushed`, `CrmPushRetried`,
`CrmPushDeadLettered`, `CrmBatchSize`, `CrmLatency`, `CrmRateLimited`, `CrmTargetDisabled`, `CrmErased`, ...).
"""

from __future__ import annotations

import json
import math
import os
import random
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit, single_metric
from aws_lambda_powertools.metrics.functions import is_metrics_disabled

from leadflow import http, queues
from leadflow.crm import TARGETS, Call, Erasure, Outcome, push_key
from leadflow.crm.config import CrmConfig, TargetConfig, crm_config
from leadflow.crm.ratelimit import TokenBucket
from leadflow.errors import ConfigurationError, LeadFlowError
from leadflow.observability import logger, metrics
from leadflow.store import push as store

QUEUE_ENV = {t: f"LEADFLOW_{t.upper()}_QUEUE_URL" for t in TARGETS}
DLQ_ENV = {t: f"LEADFLOW_{t.upper()}_DLQ_URL" for t in TARGETS}
MAX_DELAY_SECONDS = 900  # SQS DelaySeconds maximum
MESSAGE_LEADS = 100  # lead refs per queue message


def target_metric(name: str, target: str, value: float, unit: MetricUnit = MetricUnit.Count) -> None:
    """One datapoint of a per-target measure: one metric name, the target as its `target` dimension."""
    if is_metrics_disabled():
        return  # single_metric prints even when metrics are disabled (`leadflow up`)
    with single_metric(name=name, unit=unit, value=value, namespace=metrics.namespace) as metric:
        metric.add_dimension(name="service", value="leadflow")
        metric.add_dimension(name="target", value=target)


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | set | tuple):
        return [_plain(v) for v in value]
    return value


def queue_url(target: str) -> str | None:
    return os.environ.get(QUEUE_ENV[target]) or None


def dlq_url(target: str) -> str:
    url = os.environ.get(DLQ_ENV[target])
    if not url:
        raise ConfigurationError(f"{DLQ_ENV[target]} is not set.")
    return url


# ------------------------------------------------------------------------------------------------ routing
def needs_push(old: dict | None, new: dict | None, target: TargetConfig, stages: frozenset[str]) -> bool:
    """Whether this change of a lead calls for a push of its new version to `target`."""
    if not new or new.get("entity", "lead") != "lead" or new.get("erasing"):
        return False
    if new.get("lifecycle_stage") not in stages:
        return False
    pushed = ((new.get("crm") or {}).get(target.name) or {}).get("version")
    if pushed is not None and int(pushed) >= int(new.get("version") or 0):
        return False  # this version (or a newer one) is in the CRM already: e.g. the write-back's own record
    if not old or old.get("lifecycle_stage") not in stages:
        return True  # it just reached a push stage
    return any(old.get(name) != new.get(name) for name in target.watched())


def _image(record: dict, name: str) -> dict | None:
    raw = (record.get("dynamodb") or {}).get(name)
    if not raw:
        return None
    from boto3.dynamodb.types import TypeDeserializer

    deserializer = TypeDeserializer()
    return _plain({k: deserializer.deserialize(v) for k, v in raw.items()})


def route_stream_records(records: list[dict], config: CrmConfig | None = None) -> dict[str, int]:
    """Queue the pushes a batch of stream records calls for; returns how many leads per target."""
    config = config or crm_config()
    wanted: dict[str, dict[str, int]] = {}
    unrouted: dict[str, None] = {}
    routing_queue = os.environ.get("LEADFLOW_ROUTING_QUEUE_URL")
    for record in records:
        if record.get("eventName") not in ("INSERT", "MODIFY"):
            continue
        old, new = _image(record, "OldImage"), _image(record, "NewImage")
        if routing_queue and _needs_owner(new):
            unrouted[str(new["lead_id"])] = None  # pushed once routed: the owner goes with the lead
            continue
        for name, target in config.targets.items():
            if target.enabled and queue_url(name) and needs_push(old, new, target, config.push_stages):
                lead_id, version = str(new["lead_id"]), int(new.get("version") or 0)
                refs = wanted.setdefault(name, {})
                refs[lead_id] = max(version, refs.get(lead_id, 0))
    for name, refs in wanted.items():
        items = [{"lead_id": lead_id, "version": version} for lead_id, version in refs.items()]
        messages = [
            ({"target": name, "leads": items[i : i + MESSAGE_LEADS], "attempt": 0}, {"target": name})
            for i in range(0, len(items), MESSAGE_LEADS)
        ]
        queues.send_batch(queue_url(name) or "", messages)
        target_metric("CrmPushQueued", name, len(items))
    if unrouted:
        ids = list(unrouted)
        messages = [
            ({"leads": [{"lead_id": i} for i in ids[n : n + MESSAGE_LEADS]]}, {"target": "routing"})
            for n in range(0, len(ids), MESSAGE_LEADS)
        ]
        queues.send_batch(routing_queue or "", messages)
        metrics.add_metric(name="RoutingQueued", unit=MetricUnit.Count, value=len(ids))
    return {name: len(refs) for name, refs in wanted.items()}


def _needs_owner(lead: dict | None) -> bool:
    from leadflow.domain.ownership import needs_owner

    return needs_owner(lead)


# ------------------------------------------------------------------------------------------------ sending
_buckets: dict[str, TokenBucket] = {}
_buckets_lock = threading.Lock()


def bucket(target: TargetConfig) -> TokenBucket | None:
    """HubSpot's rolling 10-second limit, shared by this process's calls (each of the function's concurrent
    instances takes its share: LEADFLOW_HUBSPOT_CONCURRENCY, the event source's MaximumConcurrency)."""
    if target.name != "hubspot":
        return None
    with _buckets_lock:
        if target.name not in _buckets:
            limit = int(target.options.get("rate_limit_per_10s", 100))
            share = max(1, int(os.environ.get("LEADFLOW_HUBSPOT_CONCURRENCY", "1")))
            _buckets[target.name] = TokenBucket(max(1, limit // share), 10.0)
        return _buckets[target.name]


def reset() -> None:
    """Forget token buckets and cached CRM sessions (tests, a changed configuration)."""
    with _buckets_lock:
        _buckets.clear()
    from leadflow.crm import salesforce

    salesforce.forget_sessions()


def _module(name: str):
    import importlib

    return importlib.import_module(f"leadflow.crm.{name}")


def send(call: Call, target: TargetConfig, classify: Callable[[Call, http.Response], dict[str, Outcome]]) -> dict:
    """One call through the token bucket; every push key of it classified (no answer at all → retry)."""
    limiter = bucket(target)
    if limiter is not None:
        limiter.take()
    started = time.monotonic()
    try:
        answer = http.request(
            target.name, call.method, call.url, json_body=call.json_body, data=call.data, headers=call.headers
        )
    except http.ApiError:
        return {key: Outcome("retry", reason="no answer (timeout or connection error)") for key in call.keys}
    target_metric("CrmLatency", target.name, (time.monotonic() - started) * 1000, MetricUnit.Milliseconds)
    target_metric("CrmBatchSize", target.name, len(call.keys))
    if answer.status == 429:
        target_metric("CrmRateLimited", target.name, 1)
        outcomes = classify(call, answer)
        wait = max((o.retry_after or 0) for o in outcomes.values()) if outcomes else 0
        if limiter is not None and wait:
            limiter.pause(min(wait, 10.0))
        return outcomes
    return classify(call, answer)


def deliver(target: TargetConfig, leads: list[tuple[str, dict, bool]]) -> dict[str, Outcome]:
    """Push (push key, lead, first push) triples to the target; every key gets an Outcome."""
    module = _module(target.name)
    try:
        calls, outcomes = module.build_calls(leads, target)
    except LeadFlowError as error:  # a secret missing or unreadable: retried until an operator fixes it
        return {key: Outcome("retry", reason=f"{error.kind}: {error.detail}"[:200]) for key, _, _ in leads}
    for call in calls:
        outcomes.update(module.send_call(call, target, send, http.request))
    return outcomes


def delete_in_crm(target: TargetConfig, erasures: list[Erasure]) -> dict[str, Outcome]:
    """Delete erased leads in the target; every erase key gets an Outcome."""
    module = _module(target.name)
    try:
        calls, outcomes = module.build_erase_calls(erasures, target)
    except LeadFlowError as error:
        return {e.key: Outcome("retry", reason=f"{error.kind}: {error.detail}"[:200]) for e in erasures}
    for call in calls:
        outcomes.update(module.send_call(call, target, send, http.request, module.classify_erase))
    return outcomes


# ------------------------------------------------------------------------------------------------ erasure
def erasure_targets(records: dict[str, str | None], config: CrmConfig | None = None) -> dict[str, str | None]:
    """The targets (→ CRM record id, if known) where an erased lead must be deleted too."""
    config = config or crm_config()
    return {
        name: crm_id
        for name, crm_id in records.items()
        if name in config.targets and config.targets[name].options.get("erase", True)
    }


def queue_erasures(lead_id: str, records: dict[str, str | None], config: CrmConfig | None = None) -> list[str]:
    """Queue the deletion of an erased lead in every target it was pushed to (`records`: target → CRM id).

    The message carries the lead id and the CRM's record id only. Raises (the erasure answers 503 and is
    retried) when a target's queue is not configured or does not take the message."""
    targets = erasure_targets(records, config)
    for name, crm_id in sorted(targets.items()):
        url = queue_url(name)
        if not url:
            raise ConfigurationError(f"{QUEUE_ENV[name]} is not set: the lead cannot be erased in {name}.")
        erase = [{"lead_id": lead_id, **({"crm_id": crm_id} if crm_id else {})}]
        queues.send_batch(url, [({"target": name, "erase": erase, "attempt": 0}, {"target": name})])
        target_metric("CrmErasureQueued", name, 1)
    return sorted(targets)


# ------------------------------------------------------------------------------------------------ the queue
def backoff_seconds(attempt: int, retry_after: float | None, base: float | None = None) -> int:
    """Full jitter (a random wait up to base·2^attempt, capped), never less than the CRM's Retry-After."""
    base = float(os.environ.get("LEADFLOW_PUSH_BACKOFF_SECONDS", "2")) if base is None else base
    delay = random.uniform(0, min(MAX_DELAY_SECONDS, base * 2**attempt))  # noqa: S311 - jitter, not security
    return min(MAX_DELAY_SECONDS, math.ceil(max(delay, retry_after or 0)))


def push_records(target_name: str, records: list[dict], config: CrmConfig | None = None) -> None:
    """Deliver one batch of a target's queue messages (the SQS event's records) to the CRM."""
    config = config or crm_config()
    target = config.targets[target_name]
    attempts: dict[str, int] = {}
    erasures: dict[str, tuple[Erasure, int]] = {}
    replay = False
    for record in records:
        try:
            body = json.loads(record["body"])
            refs = body["leads"] if "erase" not in body else []
            attempt = int(body.get("attempt", 0))
            replay = replay or bool(body.get("replay"))
            for ref in body.get("erase") or []:
                erasure = Erasure(str(ref["lead_id"]), str(ref["crm_id"]) if ref.get("crm_id") else None)
                erasures[erasure.lead_id] = (erasure, max(attempt, erasures.get(erasure.lead_id, (erasure, 0))[1]))
        except (ValueError, KeyError, TypeError, AttributeError):
            logger.error("unreadable push message", extra={"target": target_name})
            continue
        for ref in refs:
            lead_id = str(ref.get("lead_id", ""))
            if lead_id:
                attempts[lead_id] = max(attempt, attempts.get(lead_id, 0))
    if not attempts and not erasures:
        return
    now = _now_iso()
    disabled = store.target_disabled(target_name) if target_name == "webhook" else None
    if disabled is not None and replay:  # the operator fixed the endpoint and replays: enabled again
        store.enable_target(target_name, now)
        disabled = None
    if erasures:
        _erase(target, erasures, disabled, now)
    if not attempts:
        return
    leads = store.get_leads(list(attempts))
    todo: list[tuple[str, dict, bool]] = []
    for lead_id in attempts:
        lead = leads.get(lead_id)
        if not lead or lead.get("erasing") or lead.get("lifecycle_stage") not in config.push_stages:
            continue  # erased, or no longer qualified: nothing to push
        pushed = (lead.get("crm") or {}).get(target_name) or {}
        if pushed.get("version") is not None and int(pushed["version"]) >= int(lead["version"]):
            target_metric("CrmPushAlreadyDone", target_name, 1)
            continue  # a redelivery, or a message queued before the last push: this version is in the CRM
        todo.append((push_key(lead_id, int(lead["version"])), lead, not pushed))
    if not todo:
        return
    if disabled is not None:
        outcomes = {
            key: Outcome("failed", reason="target disabled: " + str(disabled.get("reason", ""))) for key, _, _ in todo
        }
    else:
        outcomes = deliver(target, todo)
    _settle(target, todo, outcomes, attempts, now)


def _settle(target: TargetConfig, todo: list, outcomes: dict[str, Outcome], attempts: dict[str, int], now: str) -> None:
    name = target.name
    retry_groups: dict[tuple[int, int], list[dict]] = {}
    dead: list[tuple[str, int, str]] = []
    counts = {"pushed": 0, "retried": 0}  # one datapoint per batch, not per lead
    for key, lead, _first in todo:
        lead_id, version = lead["lead_id"], int(lead["version"])
        outcome = outcomes.get(key) or Outcome("retry", reason="no outcome")
        attempt = attempts[lead_id]
        if outcome.disable:
            store.disable_target(name, now, outcome.reason)
            target_metric("CrmTargetDisabled", name, 1)
            logger.error("CRM target disabled", extra={"target": name, "reason": outcome.reason})
        if outcome.status == "done":
            if not store.record_push(lead_id, name, crm_id=outcome.crm_id, version=version, synced_at=now):
                # the lead was erased while this push was on its way: delete what the push just wrote
                if target.options.get("erase", True):
                    body = {"target": name, "erase": _erase_refs([Erasure(lead_id, outcome.crm_id)]), "attempt": 0}
                    queues.send_batch(queue_url(name) or "", [(body, {"target": name})])
            else:
                store.add_history(
                    lead_id,
                    now,
                    {
                        "target": name,
                        "outcome": "pushed",
                        "version": version,
                        "crm_id": outcome.crm_id,
                        "attempt": attempt + 1,
                    },
                )
                if outcome.crm_id:
                    _link_crm_record(name, outcome.crm_id, lead_id, now)
            counts["pushed"] += 1
        elif outcome.status == "retry" and attempt + 1 < target.max_attempts:
            delay = backoff_seconds(attempt, outcome.retry_after)
            retry_groups.setdefault((attempt + 1, delay), []).append({"lead_id": lead_id, "version": version})
            store.add_history(
                lead_id,
                now,
                {
                    "target": name,
                    "outcome": "retry",
                    "version": version,
                    "reason": outcome.reason,
                    "attempt": attempt + 1,
                    "delay_s": delay,
                },
            )
            counts["retried"] += 1
        else:
            reason = (
                outcome.reason if outcome.status == "failed" else f"{outcome.reason} (after {attempt + 1} attempts)"
            )
            dead.append((lead_id, version, reason))
            store.add_history(
                lead_id,
                now,
                {
                    "target": name,
                    "outcome": "dead_letter",
                    "version": version,
                    "reason": reason,
                    "attempt": attempt + 1,
                },
            )
    for kind, metric in (("pushed", "CrmPushed"), ("retried", "CrmPushRetried")):
        if counts[kind]:
            target_metric(metric, name, counts[kind])
    for (attempt, delay), refs in retry_groups.items():
        for i in range(0, len(refs), MESSAGE_LEADS):
            queues.send_delayed(
                queue_url(name) or "",
                {"target": name, "leads": refs[i : i + MESSAGE_LEADS], "attempt": attempt},
                {"target": name},
                delay,
            )
    if dead:
        messages = [
            (
                {"target": name, "lead_id": lead_id, "version": version},
                {
                    "target": name,
                    "lead_id": lead_id,
                    "version": str(version),
                    "failure_reason": reason[:500],
                    "failed_at": now,
                },
            )
            for lead_id, version, reason in dead
        ]
        queues.send_batch(dlq_url(name), messages)
        target_metric("CrmPushDeadLettered", name, len(dead))
        logger.error("CRM pushes dead-lettered", extra={"target": name, "count": len(dead)})


def _erase_refs(erasures: list[Erasure]) -> list[dict]:
    return [{"lead_id": e.lead_id, **({"crm_id": e.crm_id} if e.crm_id else {})} for e in erasures]


def _erase(target: TargetConfig, erasures: dict[str, tuple[Erasure, int]], disabled: dict | None, now: str) -> None:
    """Delete erased leads in the CRM: done → gone (no timeline: the lead is gone too); retry → re-queued with
    backoff; failed or out of attempts → the DLQ with the reason (ids only), replayable like a push."""
    name = target.name
    todo = [erasure for erasure, _ in erasures.values()]
    if disabled is not None:
        reason = "target disabled: " + str(disabled.get("reason", ""))
        outcomes = {e.key: Outcome("failed", reason=reason) for e in todo}
    else:
        outcomes = delete_in_crm(target, todo)
    done = 0
    retry_groups: dict[tuple[int, int], list[Erasure]] = {}
    dead: list[tuple[Erasure, str]] = []
    for erasure in todo:
        outcome = outcomes.get(erasure.key) or Outcome("retry", reason="no outcome")
        attempt = erasures[erasure.lead_id][1]
        if outcome.disable:
            store.disable_target(name, now, outcome.reason)
            target_metric("CrmTargetDisabled", name, 1)
        if outcome.status == "done":
            done += 1
        elif outcome.status == "retry" and attempt + 1 < target.max_attempts:
            delay = backoff_seconds(attempt, outcome.retry_after)
            retry_groups.setdefault((attempt + 1, delay), []).append(erasure)
        else:
            reason = (
                outcome.reason if outcome.status == "failed" else f"{outcome.reason} (after {attempt + 1} attempts)"
            )
            dead.append((erasure, reason))
    if done:
        target_metric("CrmErased", name, done)
    for (attempt, delay), group in retry_groups.items():
        queues.send_delayed(
            queue_url(name) or "",
            {"target": name, "erase": _erase_refs(group), "attempt": attempt},
            {"target": name},
            delay,
        )
        target_metric("CrmErasureRetried", name, len(group))
    if dead:
        messages = [
            (
                {"target": name, "erase": _erase_refs([erasure])},
                {
                    "target": name,
                    "lead_id": erasure.lead_id,
                    "version": "erase",
                    "failure_reason": reason[:500],
                    "failed_at": now,
                },
            )
            for erasure, reason in dead
        ]
        queues.send_batch(dlq_url(name), messages)
        target_metric("CrmPushDeadLettered", name, len(dead))
        logger.error("CRM erasures dead-lettered", extra={"target": name, "count": len(dead)})


def _link_crm_record(target: str, crm_id: str, lead_id: str, now: str) -> None:
    """CRM feedback finds the lead by this record id from now on; events that waited for it are queued.
    Best effort: the push is done whatever happens here (a kept event stays until its TTL)."""
    from leadflow.services import crm_feedback

    try:
        crm_feedback.on_record_linked(target, crm_id, lead_id, now)
    except Exception as exc:  # noqa: BLE001 - never fail a push that the CRM has taken
        logger.warning(
            "CRM record not linked", extra={"target": target, "lead_id": lead_id, "error": type(exc).__name__}
        )
        metrics.add_metric(name="CrmRecordLinkFailed", unit=MetricUnit.Count, value=1)
