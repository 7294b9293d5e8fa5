"""What conversion reporting keeps in the leads table: one record per (lead, platform, stage), and timeline
entries (`kind: conversion`).

The record `pk=LEAD#<id>`, `sk=CONV#<platform>#<stage>` is the idempotency key `<lead_id>#<stage>` of one
platform. A drain function claims it with a conditional PutItem before it sends; the claim names the
queue message's `claim` id and holds a lease:
- a record not there yet, or one left by the same message (an SQS redelivery, our own backed-off retry), or
  a lease that ran out (a function that died mid-send) can be claimed;
- a `sent` record never again: a redelivered stage change (another message, another claim id) sends nothing;
- a `dead` record only by the message that was dead-lettered, when the operator replays it; a `skipped` one
  (outside the platform's window when it was due) likewise never by another message.
It lives in the lead's partition, so erasure removes it with the lead.
"""

from __future__ import annotations

import uuid
from typing import Any

from pynamodb.exceptions import PutError, PynamoDBException, UpdateError

from leadflow.errors import StoreUnavailable
from leadflow.store.models import ConversionItem, HistoryItem, history_sk, lead_pk

NEVER = 2**40  # a dead record's lease: only its own message (a replay) may claim it again


def conversion_sk(platform: str, stage: str) -> str:
    return f"CONV#{platform}#{stage}"


def claim(lead_id: str, platform: str, stage: str, *, claim_id: str, at: str, now: int, lease: int, stamp: str) -> bool:
    """Take the record for sending; False when it is sent, dead, or leased by another message."""
    item = ConversionItem(
        lead_pk(lead_id), conversion_sk(platform, stage), entity="conversion", lead_id=lead_id, platform=platform,
        stage=stage, status="sending", claim=claim_id, lease_until=now + lease, at=at, created_at=stamp,
    )  # fmt: skip
    condition = ConversionItem.pk.does_not_exist() | (
        (ConversionItem.status != "sent") & ((ConversionItem.claim == claim_id) | (ConversionItem.lease_until < now))
    )
    try:
        item.save(condition=condition)
    except PutError as exc:
        if getattr(exc, "cause_response_code", None) == "ConditionalCheckFailedException":
            return False
        raise StoreUnavailable("The lead store did not take the write; retry shortly.") from exc
    return True


def _settle(lead_id: str, platform: str, stage: str, claim_id: str, actions: list) -> None:
    item = ConversionItem(lead_pk(lead_id), conversion_sk(platform, stage))
    try:
        item.update(actions=actions, condition=ConversionItem.claim == claim_id)
    except UpdateError as exc:
        if getattr(exc, "cause_response_code", None) == "ConditionalCheckFailedException":
            return  # another message took it over after our lease ran out: its outcome stands
        raise StoreUnavailable("The lead store did not take the write; retry shortly.") from exc


def mark_sent(lead_id: str, platform: str, stage: str, claim_id: str, sent_at: str) -> None:
    _settle(
        lead_id, platform, stage, claim_id, [ConversionItem.status.set("sent"), ConversionItem.sent_at.set(sent_at)]
    )


def extend_lease(lead_id: str, platform: str, stage: str, claim_id: str, until: int) -> None:
    """A retry is queued: keep the record ours until it comes back (no other message sends meanwhile)."""
    _settle(lead_id, platform, stage, claim_id, [ConversionItem.lease_until.set(until)])


def mark_dead(lead_id: str, platform: str, stage: str, claim_id: str, status: str = "dead") -> None:
    """Dead-lettered (`dead`: a replay of its message may claim it again) or `skipped` (outside the window)."""
    _settle(
        lead_id, platform, stage, claim_id, [ConversionItem.status.set(status), ConversionItem.lease_until.set(NEVER)]
    )


def add_history(lead_id: str, at: str, detail: dict[str, Any]) -> None:
    """A `conversion` timeline entry (platform, stage, outcome, click id name, reason: never personal data)."""
    entry = HistoryItem(
        lead_pk(lead_id),
        history_sk(at, "conversion", uuid.uuid4().hex[:12]),
        entity="history",
        lead_id=lead_id,
        kind="conversion",
        at=at,
        detail={k: v for k, v in detail.items() if v is not None},
        source=str(detail.get("platform") or ""),
        created_at=at,
    )
    try:
        entry.save()
    except PynamoDBException as exc:
        raise StoreUnavailable("The lead store did not take the write; retry shortly.") from exc
