"""Cohorts of leads for operator commands (`leadflow score simulate|rescore`): page, read, write back scores.

Leads are listed through the sparse `LeadsByStage` index (lead items only; stage → created_at): one Query per
stage, from the cohort's first creation time, a page of keys at a time, never a Scan. Each page of keys is
read with one consistent BatchGetItem and each lead's events with one Query of its partition. A rescore is
written per lead in one transaction at the version read (optimistic): the lead's score, persona and, when the
model qualifies it, its move to `mql`, with a history entry per change for the timeline.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

from pynamodb.exceptions import PynamoDBException, TransactWriteError
from pynamodb.transactions import TransactWrite

from leadflow.domain.model import LIFECYCLE_STAGES
from leadflow.errors import StoreUnavailable
from leadflow.store.leads import WriteConflict, _connection, _lead_dict, _plain
from leadflow.store.models import LEAD_SK, EventItem, HistoryItem, LeadItem, LeadKeyItem, history_sk, lead_pk

PAGE = 100  # BatchGetItem takes at most 100 keys


def lead_id_pages(since: str | None = None, page_size: int = PAGE) -> Iterator[list[str]]:
    """Ids of the leads created at or after `since` (every lead when None), `page_size` at a time."""
    for stage in LIFECYCLE_STAGES:
        condition = LeadKeyItem.created_at >= since if since else None
        try:
            found = LeadKeyItem.by_stage.query(stage, condition, page_size=page_size)
            page: list[str] = []
            for item in found:
                if item.sk != LEAD_SK:
                    continue
                page.append(item.pk.removeprefix("LEAD#"))
                if len(page) == page_size:
                    yield page
                    page = []
            if page:
                yield page
        except PynamoDBException as error:
            raise StoreUnavailable("The lead store did not answer; retry shortly.") from error


def read_leads(lead_ids: list[str]) -> list[dict]:
    """The leads (consistent reads), without those being erased or gone since they were listed."""
    try:
        items = LeadItem.batch_get([(lead_pk(i), LEAD_SK) for i in lead_ids], consistent_read=True)
        leads = [_lead_dict(item) for item in items]
    except PynamoDBException as error:
        raise StoreUnavailable("The lead store did not answer; retry shortly.") from error
    return [lead for lead in leads if not lead.get("erasing")]


def read_lead(lead_id: str) -> dict | None:
    found = read_leads([lead_id])
    return found[0] if found else None


def events_of(lead_id: str) -> list[dict]:
    """Every engagement event of the lead as scoring reads them: `{type, occurred_at, properties}`."""
    try:
        return [
            {"type": e.type, "occurred_at": e.occurred_at, "properties": _plain(e.properties) or {}}
            for e in EventItem.query(lead_pk(lead_id), EventItem.sk.startswith("EVENT#"))
        ]
    except PynamoDBException as error:
        raise StoreUnavailable("The lead store did not answer; retry shortly.") from error


def save_rescore(lead: dict, changes: dict[str, Any], entries: list[tuple[str, dict]], now: str) -> None:
    """Write `changes` (lead fields) at the version read, and a history entry (kind, detail) for each change.

    WriteConflict("lead_changed") when the lead moved on since it was read (a capture or an event scored it,
    or an erasure started): the caller reads it again and decides again.
    """
    lead_id = lead["lead_id"]
    item = LeadItem(lead_pk(lead_id), LEAD_SK, version=lead["version"])
    actions = [getattr(LeadItem, name).set(value) for name, value in changes.items()]
    actions.append(LeadItem.updated_at.set(now))
    try:
        with TransactWrite(connection=_connection()) as tx:
            tx.update(item, actions=actions, condition=LeadItem.erasing.does_not_exist())
            for kind, detail in entries:
                tx.save(
                    HistoryItem(
                        lead_pk(lead_id),
                        history_sk(now, kind, uuid.uuid4().hex[:12]),
                        entity="history",
                        lead_id=lead_id,
                        kind=kind,
                        at=now,
                        detail=detail,
                        source="rescore",
                        created_at=now,
                    ),
                    condition=HistoryItem.pk.does_not_exist(),
                )
    except TransactWriteError as error:
        if error.cause_response_code == "TransactionCanceledException":
            raise WriteConflict("lead_changed") from error
        raise StoreUnavailable("The lead store did not take the write; retry shortly.") from error
    except PynamoDBException as error:
        raise StoreUnavailable("The lead store did not take the write; retry shortly.") from error
