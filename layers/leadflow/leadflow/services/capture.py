"""Capture use case: one submission becomes one deduplicated, attributed lead (created or merged)."""

from __future__ import annotations

import dataclasses
import random
import time
import uuid
from datetime import UTC, datetime, timedelta

from aws_lambda_powertools.metrics import MetricUnit

from leadflow.config import settings
from leadflow.domain.attribution import ad_click_keys, apply_utm_rules, attach_ad_click, needs_utm_rules
from leadflow.domain.capture import prepare
from leadflow.domain.engagement import rescore
from leadflow.domain.identity import Resolution, email_key, key_kind, phone_key, resolve
from leadflow.domain.lead import Submission, merge_submission, new_lead
from leadflow.domain.model import LeadInput
from leadflow.domain.scoring_model import ScoringModel
from leadflow.errors import StoreUnavailable, UpstreamUnavailable
from leadflow.funnel_config import utm_rules
from leadflow.observability import logger, metrics
from leadflow.store import leads as store

MAX_ATTEMPTS = 10  # races are resolved by re-reading; each lost round backs off (full jitter, capped)


def utcnow() -> datetime:
    return datetime.now(UTC)


def capture_lead(inp: LeadInput, now: datetime | None = None) -> dict:
    """Store one submission; returns the answer `{"lead_id", "status"}` (the same on every redelivery).

    A delivery of an erased lead (a tombstone) is answered `{"lead_id": None, "status": "erased"}` and
    stores nothing. An identity item that still names an erased (or erasing) lead is dangling: the
    submission takes the key over, in its own transaction, while the item still names that lead.
    """
    now = now or utcnow()
    sub = prepare(inp, settings().default_phone_region, now)
    if needs_utm_rules(sub.touch):  # Zhihu, Baijiahao, …: read the rules (funnel configuration) only then
        sub = dataclasses.replace(sub, touch=apply_utm_rules(sub.touch, utm_rules()))
    suspects: set[str] = set()  # conflicting owners a lost transaction found erasing or gone
    model = _scoring_model()
    for attempt in range(MAX_ATTEMPTS):
        found = store.lookup_keys(sub.keys, sub.event_key, ad_click_keys(sub.touch), email=sub.email)
        if found.answer:
            erased = found.answer.get("status") == "erased"
            metrics.add_metric(name="DeliveryErased" if erased else "DeliveryRepeated", unit=MetricUnit.Count, value=1)
            logger.info("capture repeated delivery", extra={"source": sub.source, "lead_id": found.answer["lead_id"]})
            return found.answer
        # An ad click announced by Baidu/Tencent click monitoring ties the touch to its ad (same read).
        sub = dataclasses.replace(sub, touch=attach_ad_click(sub.touch, found.clicks))
        resolution, existing, dangling = _resolve_live(sub.keys, found.owners, suspects)
        if existing is None:
            lead = new_lead(str(uuid.uuid4()), sub, now)
            status = "created"
        else:
            lead = merge_submission(existing, sub, resolution.claim, now)
            status = "merged"
        answer = {"lead_id": lead["lead_id"], "status": status}
        history: list[tuple[str, dict]] = []
        if model is not None:  # the profile may change the fit (and so the grade and the stage)
            scored = rescore(lead, model, now, f"capture: {sub.source}", sub.source)
            lead, history = scored.lead, scored.history
        # A new lead's email: no anonymous event may slip in unseen between the lookup and the write.
        no_marker = sub.email if status == "created" and sub.email and not found.waiting else None
        try:
            _save(lead, sub, status == "created", resolution, dangling, answer, now, history, no_marker)
        except store.WriteConflict as lost:
            if lost.reason == "delivery_exists":
                continue  # a concurrent redelivery won: the next lookup returns its answer
            if lost.reason == "owner_gone":
                suspects |= lost.lead_ids  # read them next round: their keys are dangling
                continue
            time.sleep(random.uniform(0, min(0.2, 0.005 * 2**attempt)))  # noqa: S311 - jitter, not crypto
            continue
        metrics.add_metric(name="LeadCreated" if status == "created" else "LeadMerged", unit=MetricUnit.Count, value=1)
        if resolution.conflicts:
            metrics.add_metric(name="IdentityConflict", unit=MetricUnit.Count, value=len(resolution.conflicts))
        if dangling:
            metrics.add_metric(name="IdentityRepaired", unit=MetricUnit.Count, value=len(dangling))
        if found.waiting and sub.email and model is not None and sub.email == lead.get("email"):
            from leadflow.services.events import adopt_anonymous

            adopt_anonymous(lead["lead_id"], sub.email, model, now, source="anonymous")
        logger.info(
            "lead captured",
            extra={
                "source": sub.source,
                "lead_id": lead["lead_id"],
                "status": status,
                "disqualified": bool(sub.junk),
                "conflicts": [key_kind(key) for key, _ in resolution.conflicts],
                "repaired": [key_kind(key) for key in dangling],
            },
        )
        return answer
    raise StoreUnavailable("The lead could not be stored under contention; retry shortly.")


def _scoring_model() -> ScoringModel | None:
    """The scoring model, or None when it cannot be read or is invalid: the lead is still captured (unscored;
    its next event scores it), never refused for a configuration problem (logged and alarmed)."""
    from leadflow.services.events import scoring_model

    try:
        return scoring_model()
    except UpstreamUnavailable:
        metrics.add_metric(name="ScoringSkipped", unit=MetricUnit.Count, value=1)
        return None


def _resolve_live(
    keys: list[str], found_owners: dict[str, str], suspects: set[str]
) -> tuple[Resolution, dict | None, dict[str, str]]:
    """Resolve against live leads only: a key whose owner is erasing or gone is dangling (key → that owner).

    Only the primary owner is read (the merge's one GetItem); conflicting owners are read only when a lost
    transaction named them (`suspects`), since the transaction itself checks they are live.
    """
    owners = dict(found_owners)
    dangling: dict[str, str] = {}
    read: dict[str, dict | None] = {}

    def live(lead_id: str) -> dict | None:
        if lead_id not in read:
            read[lead_id] = store.get_lead(lead_id)
        lead = read[lead_id]
        return None if lead is None or lead.get("erasing") else lead

    while True:
        resolution = resolve(keys, owners)
        gone = {other for _, other in resolution.conflicts if other in suspects and live(other) is None}
        if resolution.lead_id is not None and live(resolution.lead_id) is None:
            gone.add(resolution.lead_id)
        if not gone:
            existing = live(resolution.lead_id) if resolution.lead_id is not None else None
            return resolution, existing, {key: lead for key, lead in dangling.items() if key in resolution.claim}
        for key, owner in list(owners.items()):
            if owner in gone:
                dangling[key] = owners.pop(key)


def _save(
    lead: dict,
    sub: Submission,
    is_new: bool,
    resolution: Resolution,
    dangling: dict[str, str],
    answer: dict,
    now: datetime,
    history: list[tuple[str, dict]],
    no_marker: str | None,
) -> None:
    conflicts = resolution.conflicts
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
        claim=resolution.claim,
        conflicts=conflicts,
        replace=dangling,
        delivery_key=sub.event_key,
        answer=answer,
        now=lead["updated_at"],
        delivery_expires_at=int((now + timedelta(days=settings().delivery_ttl_days)).timestamp()),
        history=history,
        no_marker=no_marker,
    )
