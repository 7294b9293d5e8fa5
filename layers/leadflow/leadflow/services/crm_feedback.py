"""CRM feedback in: CRM events (HubSpot webhooks, generic Standard Webhooks) move their leads and trigger the
next action their reason calls for (`domain.crm_feedback`, configuration `infra/crm_feedback/default.yaml`).

Per event: 1 BatchGetItem (its delivery item and the keys that can name its lead: the CRM record's link, a
deal's contact link, the email's identity item; a deal adds one more for its contact's link) + 1 GetItem of
the lead + 1 TransactWriteItems (the lead at the version read, the delivery, the timeline entries). Never a
Scan. Idempotent by event id (the delivery item); a lost race re-reads and decides again.

An event for a CRM record no lead is linked to yet is kept (`CRMPENDING#…`, TTL
LEADFLOW_CRM_PENDING_DAYS) and flagged on the record's link item; when the push writes the record's id back
(`link_record`, from `services.push`) or a deal's contact becomes known, the waiting events are queued to the
retry queue (LEADFLOW_CRM_FEEDBACK_QUEUE_URL) and applied in order by `retry_pending`, each exactly once.

A reason's delayed journey is written on the lead (`journey.status: scheduled`, `next_step_at`) in the same
transaction as the stage move; the journey router (the stream) starts that execution with its initial Wait.
"""

from __future__ import annotations

import json
import os
import random
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from leadflow.config import settings
from leadflow.domain.attribution import iso
from leadflow.domain.crm_feedback import CrmEvent, Decision, FeedbackConfig, decide
from leadflow.errors import StoreUnavailable
from leadflow.observability import logger, metrics
from leadflow.sources.base import event_key
from leadflow.store import crm_feedback as store
from leadflow.store import leads as lead_store
from leadflow.store.leads import WriteConflict

MAX_ATTEMPTS = 8
QUEUE_ENV = "LEADFLOW_CRM_FEEDBACK_QUEUE_URL"


def utcnow() -> datetime:
    return datetime.now(UTC)


def feedback_config() -> FeedbackConfig:
    """The configuration in force; one that does not load is logged (file, line, field), counted for its alarm
    and answered 503, so the CRM retries after the fix instead of its events being lost."""
    from leadflow.crm_feedback_config import configured_feedback
    from leadflow.errors import CrmFeedbackConfigInvalid, UpstreamUnavailable

    try:
        return configured_feedback()
    except CrmFeedbackConfigInvalid as invalid:
        logger.error(
            "CRM feedback configuration refused", extra={"source": invalid.source, "problems": invalid.problems[:20]}
        )
        metrics.add_metric(name="CrmFeedbackConfigInvalid", unit=MetricUnit.Count, value=1)
        raise UpstreamUnavailable("The CRM feedback configuration is not valid; retry after it is fixed.") from None


def _journeys() -> tuple[datetime, frozenset[str]]:
    """Journey time (the local runtime scales it) and the configured journeys' names."""
    from leadflow.services import journeys

    return journeys.now(), frozenset(journeys.config().journeys)


def delivery_key(event: CrmEvent) -> str:
    return event_key(f"crm-{event.crm}", event.event_id)


def receive(crm: str, request: Any, now: datetime | None = None) -> dict:
    """A CRM's delivery: verified on its raw bytes first (401 otherwise), then its events applied in order."""
    from leadflow.errors import NotFound, UnsupportedMediaType
    from leadflow.web import json_body

    if crm not in ("hubspot", "generic"):
        raise NotFound("No such CRM feedback route.")
    if request.media_type not in ("application/json", ""):
        raise UnsupportedMediaType("Send application/json.")
    if crm == "hubspot":
        from leadflow.sources import crm_hubspot

        crm_hubspot.verify(request)
        document = json_body(request)
        if isinstance(document, list) and len(document) > crm_hubspot.MAX_EVENTS:
            from leadflow.errors import FieldError, ValidationFailed

            raise ValidationFailed([FieldError("events", f"at most {crm_hubspot.MAX_EVENTS} events per delivery")])
        return record_events(list(crm_hubspot.parse(document, feedback_config())), now)
    from leadflow.sources import crm_generic

    webhook_id = crm_generic.verify(request)
    return record_events([crm_generic.parse(request, webhook_id)], now)


def record_events(events: list[CrmEvent | str], now: datetime | None = None) -> dict:
    """Apply a delivery's events in order; `{"received", "results": [{"index", "status", ...}]}`."""
    now = now or utcnow()
    config = feedback_config()
    results = []
    for index, event in enumerate(events):
        if isinstance(event, str):
            status = "ignored" if event == "ignored" else "rejected"
            results.append({"index": index, "status": status, **({"reason": event} if status == "rejected" else {})})
            continue
        results.append({"index": index, **apply_event(event, config, now)})
    for status in {r["status"] for r in results}:
        count = sum(1 for r in results if r["status"] == status)
        metrics.add_metric(name=f"CrmFeedback{status.capitalize()}", unit=MetricUnit.Count, value=count)
    return {"received": len(events), "results": results}


def _answered(stored: dict) -> dict:
    if stored.get("status") == "erased":
        return {"status": "rejected", "reason": "belongs to an erased lead"}
    out = {"status": "duplicate", "lead_id": stored.get("lead_id")}
    if stored.get("status") == "pending":
        out["status"] = "pending"
    return out


def _keys(event: CrmEvent) -> list[str]:
    keys = []
    if event.object_id and event.object_type == "deal":
        keys.append(store.deal_key(event.crm, event.object_id))
    record = event.object_id if event.object_type in ("contact", "record") else event.contact_id
    if record:
        keys.append(store.record_key(event.crm, record))
    if event.email:
        keys.append(f"EMAIL#{event.email}")
    return keys


def _resolve(event: CrmEvent, found: store.FeedbackRead) -> tuple[str | None, str | None]:
    """(the lead's id, the record key it was found by or that must be linked first)."""
    if event.lead_id:
        return (event.lead_id if found.lead else None), None
    record: str | None = None
    if event.object_type == "deal" and event.object_id:
        contact = event.contact_id or found.contacts.get(store.deal_key(event.crm, event.object_id))
        if contact is None:
            return _by_email(event, found), store.deal_key(event.crm, event.object_id)
        record = store.record_key(event.crm, contact)
        if record not in found.owners and record not in _keys(event):
            found.owners.update(store.owners([record]))  # the deal's contact: one more read
    elif event.object_id or event.contact_id:
        record = store.record_key(event.crm, event.object_id or event.contact_id or "")
    if record and record in found.owners:
        return found.owners[record], record
    return _by_email(event, found), record


def _by_email(event: CrmEvent, found: store.FeedbackRead) -> str | None:
    return found.owners.get(f"EMAIL#{event.email}") if event.email else None


def apply_event(event: CrmEvent, config: FeedbackConfig, now: datetime, pending: tuple[str, str] | None = None) -> dict:
    """Apply one event (or, with `pending`, the kept event at that key); its result for the answer."""
    key = delivery_key(event)
    cfg = settings()
    stamp = iso(now)
    delivery_expires = int((now + timedelta(days=cfg.delivery_ttl_days)).timestamp())
    for attempt in range(MAX_ATTEMPTS):
        found = store.lookup(key, _keys(event) if event.kind != "association" else [], event.lead_id)
        if found.answer and not (pending and found.answer.get("status") == "pending"):
            if pending:
                store.drop_pending(*pending)  # applied by another path already
            return _answered(found.answer)
        try:
            if event.kind == "association":
                return _associate(event, key, stamp, delivery_expires)
            lead_id, record = _resolve(event, found)
            if lead_id is None:
                if pending is not None and (record is None or _pending_key(event, record) == pending[0]):
                    return {"status": "pending"}  # still unknown: stays kept until its link or TTL
                kept = _keep(event, record, key, stamp, now, delivery_expires)
                if pending is not None:  # it now waits for another record (a deal's contact): moved there
                    store.drop_pending(*pending)
                return kept
            lead = found.lead if found.lead and found.lead["lead_id"] == lead_id else lead_store.get_lead(lead_id)
            if lead is None or lead.get("erasing"):
                store.save_answer(key, None, {"status": "rejected"}, now=stamp, expires_at=delivery_expires)
                if pending:
                    store.drop_pending(*pending)
                return {"status": "rejected", "reason": "the lead is erased or gone"}
            # only a lost / disqualified outcome or a reason can schedule a journey: others skip its import
            may_act = event.kind == "reason" or event.outcome in ("lost", "disqualified")
            journey_now, journeys = _journeys() if may_act else (now, frozenset())
            decision = decide(lead, event, config, now, journey_now, journeys)
            if decision.schedule:
                _schedule(decision, journey_now)
            answer = {"status": decision.status, "lead_id": lead_id}
            written = dict(decision.lead, updated_at=stamp) if decision.status == "applied" else None
            store.save_applied(
                written,
                lead_id,
                decision.history,
                delivery_key=key,
                answer=answer,
                now=stamp,
                at=event.occurred_at,
                delivery_expires_at=delivery_expires,
                pending=pending,
            )
        except WriteConflict as lost:
            if lost.reason != "delivery_exists":
                time.sleep(random.uniform(0, min(0.5, 0.02 * 2**attempt)))  # noqa: S311 - jitter
            continue
        _log(event, decision, lead_id)
        return {"status": decision.status, "lead_id": lead_id}
    raise StoreUnavailable("The CRM event could not be stored under contention; retry shortly.")


def _schedule(decision: Decision, journey_now: datetime) -> None:
    """The journey the reason's rule starts later, as the lead's next enrolment (started by the journey router)."""
    from leadflow.services import journeys

    assert decision.schedule is not None
    lead = decision.lead
    previous = lead.get("journey") or {}
    enrolment = int(previous.get("enrolment", 0)) + 1
    name = decision.schedule["journey"]
    start = max(decision.schedule["start_at"], journey_now)
    lead["journey"] = {
        "name": name,
        "enrolment": enrolment,
        "status": "scheduled",
        "execution": journeys.execution_name(lead["lead_id"], name, enrolment),
        "step": 0,
        "next_step_at": journeys.iso(start),
        **({"sends": previous["sends"]} if previous.get("sends") else {}),
    }
    if lead.get("lifecycle_stage") == "recycled" and lead.get("stage_changed_at"):
        lead["journey"]["recycled_at"] = lead["stage_changed_at"]  # this run is the recycling's: none after it


def _associate(event: CrmEvent, key: str, stamp: str, delivery_expires: int) -> dict:
    """A deal's contact: the deal link is written, and events that waited for the deal are queued."""
    assert event.object_id and event.contact_id
    waited = False
    if not event.removed:
        waited = store.link_deal(event.crm, event.object_id, event.contact_id, now=stamp)
    store.save_answer(key, None, {"status": "applied"}, now=stamp, expires_at=delivery_expires)
    if waited:
        queue_retry(store.pending_key(event.crm, "deal", event.object_id))
    return {"status": "applied"}


def _keep(event: CrmEvent, record: str | None, key: str, stamp: str, now: datetime, delivery_expires: int) -> dict:
    """An event whose record no lead is linked to yet: kept until the link comes (TTL), never dropped."""
    if record is None:
        store.save_answer(key, None, {"status": "rejected"}, now=stamp, expires_at=delivery_expires)
        return {"status": "rejected", "reason": "no lead holds that lead id or email"}
    days = int(os.environ.get("LEADFLOW_CRM_PENDING_DAYS", "30"))
    kept = {k: v for k, v in event.as_dict().items() if k != "email"}  # no personal data in the pending item
    object_type = "deal" if record.startswith("CRMDEAL#") else "record"
    store.save_pending(
        _pending_key(event, record),
        record,
        kept,
        delivery_key=key,
        answer={"status": "pending"},
        now=stamp,
        expires_at=int((now + timedelta(days=days)).timestamp()),
        delivery_expires_at=delivery_expires,
    )
    metrics.add_metric(name="CrmFeedbackKept", unit=MetricUnit.Count, value=1)
    logger.info("CRM event kept for its record", extra={"crm": event.crm, "object": object_type})
    return {"status": "pending"}


def _pending_key(event: CrmEvent, record: str) -> str:
    """Where an event waiting for `record` (a `CRMID#` or `CRMDEAL#` link key) is kept."""
    kind, _, object_id = record.split("#", 2)
    return store.pending_key(event.crm, "deal" if kind == "CRMDEAL" else "record", object_id)


def _log(event: CrmEvent, decision: Decision, lead_id: str) -> None:
    logger.info(
        "CRM event applied",
        extra={"lead_id": lead_id, "crm": event.crm, "kind": event.kind, "status": decision.status},
    )
    if decision.schedule:
        metrics.add_metric(name="CrmJourneyScheduled", unit=MetricUnit.Count, value=1)


# ------------------------------------------------------------------------------------------------ retries
def queue_retry(pending_pk: str) -> None:
    """Ask the retry function to apply the events kept under `pending_pk` (their link just arrived)."""
    url = os.environ.get(QUEUE_ENV)
    if not url:
        logger.warning("CRM feedback retry queue not configured", extra={"pending": pending_pk.split("#", 2)[1]})
        return
    from leadflow import queues

    queues.send_batch(url, [({"pending": pending_pk}, {"kind": "crm_feedback"})])


def on_record_linked(crm: str, record_id: str, lead_id: str, now: str) -> bool:
    """The push wrote `crm.<crm>.id` back: link the record to the lead; queue the events that waited for it."""
    if not store.link_record(crm, record_id, lead_id, now=now):
        return False
    queue_retry(store.pending_key(crm, "record", record_id))
    return True


def retry_pending(pending_pk: str, now: datetime | None = None) -> dict[str, int]:
    """Apply the events kept under `pending_pk`, oldest first; those still unlinked stay. Counts by status."""
    now = now or utcnow()
    config = feedback_config()
    counts: dict[str, int] = {}
    for sk, raw, _key in store.pending_events(pending_pk):
        try:
            event = CrmEvent.from_dict(raw)
        except (TypeError, ValueError):
            logger.error("unreadable kept CRM event", extra={"pending": sk})
            store.drop_pending(pending_pk, sk)
            continue
        status = apply_event(event, config, now, pending=(pending_pk, sk))["status"]
        counts[status] = counts.get(status, 0) + 1
    if counts:
        logger.info("kept CRM events retried", extra={"counts": counts})
    return counts


def retry_messages(records: list[dict[str, Any]]) -> None:
    """The retry queue's SQS records: each names a pending partition."""
    for record in records:
        try:
            pending_pk = str(json.loads(record["body"])["pending"])
        except (ValueError, KeyError, TypeError):
            logger.error("unreadable CRM feedback retry message")
            continue
        if pending_pk.startswith("CRMPENDING#"):
            retry_pending(pending_pk)
