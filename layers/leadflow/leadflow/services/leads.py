"""Operator use cases on leads: read by id or email, and erasure on request."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from aws_lambda_powertools.metrics import MetricUnit

from leadflow.config import settings
from leadflow.domain.lead import lead_view
from leadflow.domain.normalise import normalise_email
from leadflow.errors import FieldError, NotFound, StoreUnavailable, ValidationFailed
from leadflow.observability import logger, metrics
from leadflow.store import leads as store

_LEAD_ID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def _check_id(lead_id: str) -> None:
    if not _LEAD_ID.match(lead_id or ""):
        raise NotFound(f"No lead with id {lead_id[:64]!r}.")


def get_lead(lead_id: str) -> dict:
    _check_id(lead_id)
    lead = store.get_lead(lead_id)
    if lead is None or lead.get("erasing"):  # an erasure that started is final, even before it completes
        raise NotFound(f"No lead with id {lead_id}.")
    return lead_view(lead, store.conflicts_of(lead_id))


def find_lead_by_email(raw_email: str | None) -> dict:
    email, error = normalise_email(raw_email)
    if error or not email:
        raise ValidationFailed([error or FieldError("email", "is required")])
    lead_id = store.lead_id_for_email(email)
    if lead_id is None:
        raise NotFound("No lead holds that email.")
    return get_lead(lead_id)


def _queue_crm_erasures(lead_id: str):
    def queue(records: dict[str, str | None]) -> None:
        if records:  # bound late: the push service (CRM clients) only when the lead was pushed somewhere
            from leadflow.services.push import queue_erasures

            queue_erasures(lead_id, records)

    return queue


def erase_lead(lead_id: str, now: datetime | None = None) -> None:
    """Erase a lead; retried after a failure (503) it finishes the job. 404 only when nothing is left.

    Before anything is deleted, the deletion of the person in every CRM the lead was pushed to is queued
    (ids only; the push functions delete it there, with retries and a DLQ)."""
    _check_id(lead_id)
    ttl = timedelta(days=settings().delivery_ttl_days)
    erased = store.erase_lead(
        lead_id, now=now or datetime.now(UTC), delivery_ttl=ttl, before_delete=_queue_crm_erasures(lead_id)
    )
    if not erased:
        raise NotFound(f"No lead with id {lead_id}.")
    metrics.add_metric(name="LeadErased", unit=MetricUnit.Count, value=1)
    logger.info("lead erased", extra={"lead_id": lead_id})


def set_stage(lead_id: str, stage: str, reason: str, source: str = "operator", now: datetime | None = None) -> dict:
    """Move a lead to `stage` (the funnel's rules: 409 for a forbidden move), recorded as a stage HistoryItem.

    Written at the version read (a concurrent event or capture makes it read and decide again)."""
    from leadflow.domain import lifecycle
    from leadflow.domain.attribution import iso
    from leadflow.store import events as event_store

    _check_id(lead_id)
    for _ in range(5):
        now_at = now or datetime.now(UTC)
        lead = store.get_lead(lead_id)
        if lead is None or lead.get("erasing"):
            raise NotFound(f"No lead with id {lead_id}.")
        move = lifecycle.transition(lead.get("lifecycle_stage") or "lead", stage, reason, source, now_at)
        updated = lifecycle.apply_transition(lead, move)
        updated["updated_at"] = iso(now_at)
        try:
            event_store.save_event(
                updated, [], [("stage", move.as_dict())], answer=None, now=iso(now_at), delivery_expires_at=0
            )
        except store.WriteConflict:
            continue
        metrics.add_metric(name="StageSet", unit=MetricUnit.Count, value=1)
        logger.info("stage set", extra={"lead_id": lead_id, "from": move.from_stage, "to": move.to_stage})
        return get_lead(lead_id)
    raise StoreUnavailable("The lead kept changing; retry shortly.")
