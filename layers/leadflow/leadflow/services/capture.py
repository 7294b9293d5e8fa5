"""Capture use case: one submission becomes one deduplicated, attributed lead (created or merged)."""

from __future__ import annotations

import dataclasses
import random
import time
import uuid
from datetime import UTC, datetime, timedelta

from aws_lambda_powertools.metrics import MetricUnit

from leadflow.config import settings
from leadflow.domain.attribution import ad_click_keys, attach_ad_click
from leadflow.domain.capture import prepare
from leadflow.domain.identity import email_key, key_kind, phone_key, resolve
from leadflow.domain.lead import Submission, merge_submission, new_lead
from leadflow.domain.model import LeadInput
from leadflow.errors import StoreUnavailable
from leadflow.observability import logger, metrics
from leadflow.store import leads as store

MAX_ATTEMPTS = 10  # races are resolved by re-reading; each lost round backs off (full jitter, capped)


def utcnow() -> datetime:
    return datetime.now(UTC)


def capture_lead(inp: LeadInput, now: datetime | None = None) -> dict:
    """Store one submission; returns the answer `{"lead_id", "status"}` (the same on every redelivery)."""
    now = now or utcnow()
    sub = prepare(inp, settings().default_phone_region, now)
    for attempt in range(MAX_ATTEMPTS):
        found = store.lookup_keys(sub.keys, sub.event_key, ad_click_keys(sub.touch))
        if found.answer:
            metrics.add_metric(name="DeliveryRepeated", unit=MetricUnit.Count, value=1)
            logger.info("capture repeated delivery", extra={"source": sub.source, "lead_id": found.answer["lead_id"]})
            return found.answer
        # An ad click announced by Baidu/Tencent click monitoring ties the touch to its ad (same read).
        sub = dataclasses.replace(sub, touch=attach_ad_click(sub.touch, found.clicks))
        resolution = resolve(sub.keys, found.owners)
        if resolution.lead_id is None:
            lead = new_lead(str(uuid.uuid4()), sub, now)
            status = "created"
        else:
            existing = store.get_lead(resolution.lead_id)
            if existing is None:  # the owner was erased between the two reads: look again
                continue
            lead = merge_submission(existing, sub, resolution.claim, now)
            status = "merged"
        answer = {"lead_id": lead["lead_id"], "status": status}
        try:
            _save(lead, sub, status == "created", resolution.claim, resolution.conflicts, answer, now)
        except store.WriteConflict as lost:
            if lost.reason == "delivery_exists":
                continue  # a concurrent redelivery won: the next lookup returns its answer
            time.sleep(random.uniform(0, min(0.2, 0.005 * 2**attempt)))  # noqa: S311 - jitter, not crypto
            continue
        metrics.add_metric(name="LeadCreated" if status == "created" else "LeadMerged", unit=MetricUnit.Count, value=1)
        if resolution.conflicts:
            metrics.add_metric(name="IdentityConflict", unit=MetricUnit.Count, value=len(resolution.conflicts))
        logger.info(
            "lead captured",
            extra={
                "source": sub.source,
                "lead_id": lead["lead_id"],
                "status": status,
                "disqualified": bool(sub.junk),
                "conflicts": [key_kind(key) for key, _ in resolution.conflicts],
            },
        )
        return answer
    raise StoreUnavailable("The lead could not be stored under contention; retry shortly.")


def _save(lead: dict, sub: Submission, is_new: bool, claim: list[str], conflicts, answer: dict, now: datetime) -> None:
    stamp = sub.touch["captured_at"]
    # A value that is another lead's identity lives only in the conflict records (erased with that lead).
    contested = {key for key, _ in conflicts}
    submitted = {
        "email": None if sub.email and email_key(sub.email) in contested else sub.email,
        "phone": None if sub.phone and phone_key(sub.phone) in contested else sub.phone,
        **sub.profile,
        "attributes": sub.attributes,
        "consent": sub.consent,
    }
    store.save_capture(
        lead,
        is_new=is_new,
        touch_sk=f"TOUCH#{stamp}#{uuid.uuid4().hex[:12]}",
        touch=sub.touch,
        submitted=submitted,
        claim=claim,
        conflicts=conflicts,
        delivery_key=sub.event_key,
        answer=answer,
        now=lead["updated_at"],
        delivery_expires_at=int((now + timedelta(days=settings().delivery_ttl_days)).timestamp()),
    )
