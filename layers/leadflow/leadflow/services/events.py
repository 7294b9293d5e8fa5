"""Engagement events (`POST /v1/events`): each event scores its lead exactly once, whatever the concurrency.

Per event, by `lead_id`: 1 BatchGetItem (its delivery item + the lead) + 1 TransactWriteItems (the lead at the
version read with its new score, stage and engagement summary; the EventItem; the delivery; HistoryItems).
By email: the BatchGetItem reads the email's identity item instead, then 1 GetItem of the lead. A lost race
(another event or capture changed the lead) cancels the transaction; the event is read and applied again.
A redelivery (same `webhook-id`, same index; or the same event `id` from any delivery) is answered from its
delivery item and changes nothing.

The events of one delivery for the same lead (same `lead_id`, or same email) are applied together, up to
GROUP_CHUNK at a time: one BatchGetItem of all their delivery items and the lead, one rescore, one
TransactWriteItems with all of them (2 actions an event, within DynamoDB's 100): so a delivery of 100 events
for one lead costs 3 reads and 3 transactions, not 200 calls. A lost race retries the chunk as a whole.

Events of an email no lead holds are kept under `ANON#<email>` for LEADFLOW_ANONYMOUS_EVENT_DAYS and applied
when the email becomes a lead (capture sees the marker in the BatchGetItem it already makes).

After an event is stored, a journey waiting for its type (the lead's `journey.waiting_for`, as the transaction
wrote it) is resumed (`journeys.resume_on_event`: 1 GetItem, 1 UpdateItem, 1 PutItem, SendTaskSuccess); only
then, so a resume never runs for an event that was not stored, and a failed resume (logged, counted as
`JourneyResumeFailed`) never un-accepts it: the journey goes on at its timeout. Other events make no extra call.
"""

from __future__ import annotations

import random
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from leadflow.config import settings
from leadflow.domain.attribution import iso
from leadflow.domain.engagement import MAX_EVENTS, Event, apply_events, event_list, parse_events
from leadflow.domain.scoring_model import ScoringModel
from leadflow.errors import FieldError, ScoringModelInvalid, StoreUnavailable, UpstreamUnavailable, ValidationFailed
from leadflow.observability import logger, metrics
from leadflow.sources.base import event_key
from leadflow.store import events as store
from leadflow.store import leads as lead_store
from leadflow.store.leads import WriteConflict

SOURCE = "events"
MAX_ATTEMPTS = 12
GROUP_CHUNK = 40  # events of one lead per transaction: 2 actions each + the lead + its history items ≤ 100
ADOPT_CHUNK = 30  # anonymous events applied per transaction (each is an EventItem put and an item delete)


def utcnow() -> datetime:
    return datetime.now(UTC)


def scoring_model() -> ScoringModel:
    """The model in force; a bad one is logged (file, line, field), counted for the alarm, and answered 503 so
    senders retry after the fix instead of losing events."""
    from leadflow.scoring_model import current_model

    try:
        return current_model()
    except ScoringModelInvalid as invalid:
        logger.error("scoring model refused", extra={"source": invalid.source, "problems": invalid.problems[:20]})
        metrics.add_metric(name="ScoringModelInvalid", unit=MetricUnit.Count, value=1)
        raise UpstreamUnavailable("The scoring model is not valid; retry after it is fixed.") from None


def record_delivery(webhook_id: str, document: Any, now: datetime | None = None) -> dict:
    """Record one delivery's events; `{"received", "results": [{"index", "status", ...}]}` in event order."""
    now = now or utcnow()
    events = event_list(document)
    if events and all(isinstance(e, FieldError) for e in events):
        raise ValidationFailed(list(events))
    if not events:
        raise ValidationFailed([FieldError("events", "send at least one event")])
    if len(events) > MAX_EVENTS:
        raise ValidationFailed([FieldError("events", f"at most {MAX_EVENTS} events per delivery, got {len(events)}")])
    model = scoring_model()
    max_age = timedelta(days=settings().event_max_age_days)
    results: list[dict] = []
    groups: dict[tuple[str, str], list[Event]] = {}  # the events of each lead (by lead id or by email), in order
    for parsed in parse_events(events, now, max_age):
        if parsed.event is None:
            results.append(
                {"index": parsed.index, "status": "rejected", "errors": [e.as_dict() for e in parsed.errors]}
            )
        else:
            event = parsed.event
            lead_ref = ("lead_id", event.lead_id) if event.lead_id is not None else ("email", event.email or "")
            groups.setdefault(lead_ref, []).append(event)
    for group in groups.values():
        for start in range(0, len(group), GROUP_CHUNK):
            results.extend(record_events(webhook_id, group[start : start + GROUP_CHUNK], model, now))
    results.sort(key=lambda result: result["index"])
    for status in {r["status"] for r in results}:
        count = sum(1 for r in results if r["status"] == status)
        metrics.add_metric(name=f"Events{status.capitalize()}", unit=MetricUnit.Count, value=count)
    return {"received": len(events), "results": results}


def _reference(webhook_id: str, event: Event) -> tuple[str, str]:
    """The event's delivery key and what identifies this occurrence of it (to tell a duplicate apart)."""
    occurrence = f"{webhook_id}#{event.index}"
    return event_key(SOURCE, f"id:{event.event_id}" if event.event_id else occurrence), occurrence


def _answered(stored: dict, index: int, occurrence: str) -> dict:
    if stored.get("status") == "erased":
        return _rejected(index, "lead_id", "belongs to an erased lead; nothing was stored")
    status = stored.get("status")
    if stored.get("occurrence") not in (None, occurrence):
        status = "duplicate"  # the same event id came in another delivery (or twice in this one)
    return {"index": index, "status": status, "lead_id": stored.get("lead_id")}


def _rejected(index: int, field: str, message: str) -> dict:
    return {"index": index, "status": "rejected", "errors": [{"field": field, "message": message}]}


def record_events(webhook_id: str, events: list[Event], model: ScoringModel, now: datetime) -> list[dict]:
    """Record events of one lead (same lead id, or same email) of one delivery together: one read, one rescore,
    one transaction; their results (one per event). An email no lead holds takes the one-by-one path."""
    if len(events) == 1:
        return [record_event(webhook_id, events[0], model, now)]
    references = [_reference(webhook_id, event) for event in events]
    lead_id, email = events[0].lead_id, events[0].email
    config = settings()
    stamp = iso(now)
    delivery_expires = int((now + timedelta(days=config.delivery_ttl_days)).timestamp())
    for attempt in range(MAX_ATTEMPTS):
        found = store.read_for_events([key for key, _ in references], lead_id=lead_id, email=email)
        results: dict[int, dict] = {}
        pending: list[tuple[Event, str, str]] = []  # (event, delivery key, occurrence) not answered yet
        again: list[int] = []  # a second event of this delivery with the same event id: a duplicate
        taken: set[str] = set()
        for event, (key, occurrence) in zip(events, references, strict=True):
            if key in found.answers:
                results[event.index] = _answered(found.answers[key], event.index, occurrence)
            elif key in taken:
                again.append(event.index)
            else:
                taken.add(key)
                pending.append((event, key, occurrence))
        if not pending:
            return [results[event.index] for event in events]
        lead = found.lead
        if email is not None:
            if found.owner is None:  # anonymous: each is kept under the email on its own
                return [results.get(e.index) or record_event(webhook_id, e, model, now) for e in events]
            lead = lead_store.get_lead(found.owner)
        if lead is None or lead.get("erasing"):
            field = "lead_id" if lead_id is not None else "email"
            for event, _, _ in pending:
                results[event.index] = _rejected(
                    event.index, field, "no lead has it (unknown or erased); nothing was stored"
                )
            for index in again:
                results[index] = _rejected(index, field, "no lead has it (unknown or erased); nothing was stored")
            return [results[event.index] for event in events]
        outcome = apply_events(lead, [event for event, _, _ in pending], model, now, SOURCE)
        new = [
            store.NewEvent(
                event.type,
                event.occurred_at,
                event.properties,
                SOURCE,
                key,
                answer={"status": "accepted", "lead_id": lead["lead_id"], "occurrence": occurrence},
            )
            for event, key, occurrence in pending
        ]
        try:
            store.save_event(
                outcome.lead, new, outcome.history, answer=None, now=stamp, delivery_expires_at=delivery_expires
            )
        except WriteConflict as lost:
            if lost.reason != "delivery_exists":
                time.sleep(random.uniform(0, min(0.5, 0.02 * 2**attempt)))  # noqa: S311 - jitter, not crypto
            continue
        types = sorted({event.type for event, _, _ in pending})
        _log_outcome(lead["lead_id"], ", ".join(types), outcome.history)
        for event_type in types:
            _resume_journey(outcome.lead, event_type)
        if found.waiting and email:
            adopt_anonymous(lead["lead_id"], email, model, now)
        for event, _, _ in pending:
            results[event.index] = {"index": event.index, "status": "accepted", "lead_id": lead["lead_id"]}
        for index in again:
            results[index] = {"index": index, "status": "duplicate", "lead_id": lead["lead_id"]}
        return [results[event.index] for event in events]
    raise StoreUnavailable("The events could not be stored under contention; retry shortly.")


def record_event(webhook_id: str, event: Event, model: ScoringModel, now: datetime) -> dict:
    key, occurrence = _reference(webhook_id, event)
    config = settings()
    stamp = iso(now)
    delivery_expires = int((now + timedelta(days=config.delivery_ttl_days)).timestamp())
    for attempt in range(MAX_ATTEMPTS):
        found = store.read_for_event(key, lead_id=event.lead_id, email=event.email)
        if found.answer:
            return _answered(found.answer, event.index, occurrence)
        lead = found.lead
        new = store.NewEvent(event.type, event.occurred_at, event.properties, SOURCE, key)
        try:
            if event.email is not None:
                if found.owner is None:
                    answer = {"status": "anonymous", "lead_id": None, "occurrence": occurrence}
                    expires = int((now + timedelta(days=config.anonymous_event_days)).timestamp())
                    store.save_anonymous(
                        event.email,
                        new,
                        answer=answer,
                        now=stamp,
                        expires_at=expires,
                        delivery_expires_at=delivery_expires,
                    )
                    logger.info("event kept anonymous", extra={"type": event.type})
                    return {"index": event.index, "status": "anonymous", "lead_id": None}
                lead = lead_store.get_lead(found.owner)
            if lead is None or lead.get("erasing"):
                field = "lead_id" if event.lead_id is not None else "email"
                return _rejected(event.index, field, "no lead has it (unknown or erased); nothing was stored")
            outcome = apply_events(lead, [event], model, now, SOURCE)
            answer = {"status": "accepted", "lead_id": lead["lead_id"], "occurrence": occurrence}
            store.save_event(
                outcome.lead, [new], outcome.history, answer=answer, now=stamp, delivery_expires_at=delivery_expires
            )
        except WriteConflict as lost:
            if lost.reason != "delivery_exists":
                time.sleep(random.uniform(0, min(0.5, 0.02 * 2**attempt)))  # noqa: S311 - jitter, not crypto
            continue
        _log_outcome(lead["lead_id"], event.type, outcome.history)
        _resume_journey(outcome.lead, event.type)
        if found.waiting and event.email:
            adopt_anonymous(lead["lead_id"], event.email, model, now)
        return {"index": event.index, "status": "accepted", "lead_id": lead["lead_id"]}
    raise StoreUnavailable("The event could not be stored under contention; retry shortly.")


def _log_outcome(lead_id: str, event_type: str, history: list[tuple[str, dict]]) -> None:
    kinds = [kind for kind, _ in history]
    logger.info("event recorded", extra={"lead_id": lead_id, "type": event_type, "changes": kinds})
    if "stage" in kinds:
        metrics.add_metric(name="LeadQualified", unit=MetricUnit.Count, value=1)


def _resume_journey(lead: dict, event_type: str) -> None:
    """Resume the lead's journey if it waits for this event type; after the event's transaction committed."""
    if (lead.get("journey") or {}).get("waiting_for") != event_type:
        return
    from leadflow.services import journeys

    try:
        resumed = journeys.resume_on_event(lead["lead_id"], event_type)
    except Exception as exc:  # noqa: BLE001 - the event is stored and accepted whatever happens here
        logger.warning(
            "journey not resumed", extra={"lead_id": lead["lead_id"], "type": event_type, "error": type(exc).__name__}
        )
        metrics.add_metric(name="JourneyResumeFailed", unit=MetricUnit.Count, value=1)
        return
    if resumed:
        logger.info("journey resumed", extra={"lead_id": lead["lead_id"], "type": event_type})
        metrics.add_metric(name="JourneysResumed", unit=MetricUnit.Count, value=1)


def adopt_anonymous(lead_id: str, email: str, model: ScoringModel, now: datetime, source: str = SOURCE) -> int:
    """Apply the events that waited for this email to its lead (each exactly once); how many were applied.

    Best effort after the lead's own write succeeded: a failure leaves the events and their marker in place,
    so the next capture or event of the email applies them (until their TTL)."""
    applied = 0
    try:
        waiting, marker = store.anonymous_events(email)
        for attempt in range(MAX_ATTEMPTS):
            if not waiting:
                break
            lead = lead_store.get_lead(lead_id)
            if lead is None or lead.get("erasing"):
                return applied
            chunk = waiting[:ADOPT_CHUNK]
            events = [
                Event(i, e["type"], e["occurred_at"], dict(e["properties"] or {}), lead_id=lead_id)
                for i, e in enumerate(chunk)
            ]
            outcome = apply_events(lead, events, model, now, source)
            new = [
                store.NewEvent(
                    e["type"],
                    e["occurred_at"],
                    dict(e["properties"] or {}),
                    e["source"] or source,
                    e["delivery_key"],
                    adopted_sk=e["sk"],
                )
                for e in chunk
            ]
            try:
                store.save_event(
                    outcome.lead, new, outcome.history, answer=None, now=iso(now), delivery_expires_at=0, email=email
                )
            except WriteConflict:
                time.sleep(random.uniform(0, min(0.2, 0.005 * 2**attempt)))  # noqa: S311 - jitter, not crypto
                waiting, marker = store.anonymous_events(email)  # another adopter may have taken some
                continue
            applied += len(chunk)
            waiting = waiting[ADOPT_CHUNK:]
        if not waiting:
            store.drop_marker(email, marker)
    except StoreUnavailable:
        logger.warning("anonymous events not applied yet", extra={"lead_id": lead_id, "applied": applied})
        return applied
    if applied:
        metrics.add_metric(name="AnonymousEventsApplied", unit=MetricUnit.Count, value=applied)
        logger.info("anonymous events applied", extra={"lead_id": lead_id, "applied": applied})
    return applied
