"""What CRM feedback reads and writes in the leads table (no Scan anywhere).

- `lookup`: one consistent BatchGetItem of the event's delivery item and the keys that can name its lead:
  `CRMID#<crm>#<record id>` (the link the push writes back with `crm.<crm>.id`), `CRMDEAL#<crm>#<deal id>`
  (a deal → its contact), `EMAIL#<email>` (identity); with the lead itself when its id is known.
- `save_applied`: one TransactWriteItems: the lead at the version read (not erasing), the delivery item
  (new, or replacing this event's own `pending` answer), the HistoryItems, and the pending item it came
  from (deleted).
- `save_pending`: an event for a record no lead is linked to yet: the pending item (TTL), its delivery, and
  `answer.pending` on the record's link item, only while the link names no lead (a link written meanwhile
  cancels it: the service reads again and applies the event).
- `link_record` / `link_deal`: the write-back of a CRM id (called by the push) and a deal's contact; each is
  one UpdateItem that returns whether events were waiting for that record.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from pynamodb.exceptions import PynamoDBException, TransactWriteError
from pynamodb.transactions import TransactWrite

from leadflow.errors import StoreUnavailable
from leadflow.store.events import _history_items
from leadflow.store.leads import (
    ERASED_ANSWER,
    TOMBSTONE,
    _compact,
    _connection,
    _lead_dict,
    _lead_item,
    _plain,
    _transaction_conflict,
)
from leadflow.store.models import (
    DELIVERY_SK,
    IDENTITY_SK,
    LEAD_SK,
    CrmPendingItem,
    EventLookupItem,
    KeyItem,
    LeadItem,
    lead_pk,
)


def record_key(crm: str, record_id: str) -> str:
    return f"CRMID#{crm}#{record_id}"


def deal_key(crm: str, deal_id: str) -> str:
    return f"CRMDEAL#{crm}#{deal_id}"


def pending_key(crm: str, object_type: str, object_id: str) -> str:
    return f"CRMPENDING#{crm}#{object_type}#{object_id}"


@dataclass(frozen=True)
class FeedbackRead:
    answer: dict | None = None  # the answer already given to this event's delivery
    owners: dict[str, str] = field(default_factory=dict)  # link / identity key → lead id
    contacts: dict[str, str] = field(default_factory=dict)  # deal key → its contact's record id
    lead: dict | None = None


def lookup(delivery_key: str, keys: list[str], lead_id: str | None = None) -> FeedbackRead:
    wanted = [(delivery_key, DELIVERY_SK)] + [(key, IDENTITY_SK) for key in dict.fromkeys(keys)]
    if lead_id is not None:
        wanted.append((lead_pk(lead_id), LEAD_SK))
    answer, lead = None, None
    owners: dict[str, str] = {}
    contacts: dict[str, str] = {}
    try:
        for item in EventLookupItem.batch_get(wanted, consistent_read=True):
            if item.sk == DELIVERY_SK:
                answer = dict(ERASED_ANSWER) if item.entity == TOMBSTONE else _plain(item.answer)
            elif item.sk == LEAD_SK:
                lead = _lead_dict(item)
            else:
                if item.lead_id:
                    owners[item.pk] = item.lead_id
                contact = (_plain(item.answer) or {}).get("contact")
                if contact:
                    contacts[item.pk] = str(contact)
    except PynamoDBException as exc:
        raise StoreUnavailable("The lead store did not answer; retry shortly.") from exc
    return FeedbackRead(answer, owners, contacts, lead)


def owners(keys: list[str]) -> dict[str, str]:
    """Link / identity key → lead id, for those that name one (one BatchGetItem)."""
    try:
        return {
            item.pk: item.lead_id
            for item in KeyItem.batch_get([(k, IDENTITY_SK) for k in keys], consistent_read=True)
            if item.lead_id
        }
    except PynamoDBException as exc:
        raise StoreUnavailable("The lead store did not answer; retry shortly.") from exc


def _delivery(tx: TransactWrite, key: str, lead_id: str | None, answer: dict, now: str, expires_at: int) -> None:
    """The event's delivery item: new, or replacing its own `pending` answer (the event applied later)."""
    item = KeyItem(
        key, DELIVERY_SK, entity="delivery", lead_id=lead_id, answer=answer, created_at=now, expires_at=expires_at
    )
    tx.save(item, condition=KeyItem.pk.does_not_exist() | (KeyItem.answer["status"] == "pending"))


def save_applied(
    lead: dict | None,
    lead_id: str,
    history: list[tuple[str, dict]],
    *,
    delivery_key: str,
    answer: dict,
    now: str,
    at: str,
    delivery_expires_at: int,
    pending: tuple[str, str] | None = None,
) -> None:
    """The lead (at the version read), its history, the delivery and the pending item's removal: all or none.
    Raises WriteConflict `delivery_exists` (a redelivery won) or `lead_changed` (re-read and decide again)."""
    ops: list[str] = []
    try:
        with TransactWrite(connection=_connection()) as tx:
            if pending is not None:
                tx.delete(CrmPendingItem(*pending))
                ops.append("pending")
            if lead is not None:  # a stale or ignored event changes no lead: only its answer and timeline entry
                tx.save(_lead_item(lead), condition=LeadItem.erasing.does_not_exist())  # and the version read
                ops.append("lead")
            _delivery(tx, delivery_key, lead_id, answer, now, delivery_expires_at)
            ops.append("delivery")
            for item in _history_items(lead_id, max(at, now), history, now):
                tx.save(item)
                ops.append("history")
    except TransactWriteError as exc:
        raise _transaction_conflict(exc, ops) from exc
    except PynamoDBException as exc:
        raise StoreUnavailable("The lead store did not take the write; retry shortly.") from exc


def save_answer(delivery_key: str, lead_id: str | None, answer: dict, *, now: str, expires_at: int) -> None:
    """Only the delivery's answer (an event that moved nothing and names no lead, e.g. an association)."""
    try:
        with TransactWrite(connection=_connection()) as tx:
            _delivery(tx, delivery_key, lead_id, answer, now, expires_at)
    except TransactWriteError as exc:
        raise _transaction_conflict(exc, ["delivery"]) from exc
    except PynamoDBException as exc:
        raise StoreUnavailable("The lead store did not take the write; retry shortly.") from exc


def save_pending(
    pending_pk: str,
    link: str,
    event: dict[str, Any],
    *,
    delivery_key: str,
    answer: dict,
    now: str,
    expires_at: int,
    delivery_expires_at: int,
) -> None:
    """Keep an event for a record no lead is linked to (`link` names the record or deal key)."""
    deal = link.startswith("CRMDEAL#")
    ops: list[str] = []
    try:
        with TransactWrite(connection=_connection()) as tx:
            tx.save(
                CrmPendingItem(
                    pending_pk,
                    f"EVENT#{event['occurred_at']}#{uuid.uuid5(uuid.NAMESPACE_URL, delivery_key).hex[:16]}",
                    entity="crm_pending",
                    event=_compact(event),
                    delivery_key=delivery_key,
                    created_at=now,
                    expires_at=expires_at,
                )
            )
            ops.append("pending")
            # the link still names nobody: else the event belongs to that lead (the caller reads again)
            unlinked = KeyItem.answer["contact"].does_not_exist() if deal else KeyItem.lead_id.does_not_exist()
            # (no contact yet means the answer is absent or only {pending}: setting it whole keeps nothing else)
            tx.update(
                KeyItem(link, IDENTITY_SK),
                actions=[KeyItem.answer.set({"pending": True}), KeyItem.entity.set("crm_link")],
                condition=unlinked,
            )
            ops.append("link")
            _delivery(tx, delivery_key, None, answer, now, delivery_expires_at)
            ops.append("delivery")
    except TransactWriteError as exc:
        raise _transaction_conflict(exc, ops) from exc
    except PynamoDBException as exc:
        raise StoreUnavailable("The lead store did not take the write; retry shortly.") from exc


def _link(key: str, actions: list, *, now: str) -> bool:
    """Apply `actions` to a link item; True when events were waiting for it (its old `answer.pending`)."""
    try:
        old = LeadItem._get_connection().update_item(
            key,
            IDENTITY_SK,
            actions=[*actions, KeyItem.entity.set("crm_link"), KeyItem.created_at.set(now)],
            return_values="ALL_OLD",
        )
    except PynamoDBException as exc:
        raise StoreUnavailable("The lead store did not take the write; retry shortly.") from exc
    answer = ((old or {}).get("Attributes") or {}).get("answer") or {}
    return bool((answer.get("M") or {}).get("pending", {}).get("BOOL"))


def link_record(crm: str, record_id: str, lead_id: str, *, now: str) -> bool:
    """The CRM record `record_id` is the lead `lead_id` (the push wrote it back); True if events waited."""
    return _link(record_key(crm, record_id), [KeyItem.lead_id.set(lead_id), KeyItem.answer.remove()], now=now)


def link_deal(crm: str, deal_id: str, contact_id: str, *, now: str) -> bool:
    """The deal `deal_id` belongs to the contact `contact_id`; True if events waited for the deal."""
    return _link(deal_key(crm, deal_id), [KeyItem.answer.set({"contact": contact_id})], now=now)


def pending_events(pending_pk: str, limit: int = 100) -> list[tuple[str, dict, str]]:
    """The events waiting under `pending_pk`, oldest first: (sort key, event, delivery key)."""
    try:
        return [
            (item.sk, _plain(item.event) or {}, item.delivery_key or "")
            for item in CrmPendingItem.query(pending_pk, consistent_read=True, limit=limit)
        ]
    except PynamoDBException as exc:
        raise StoreUnavailable("The lead store did not answer; retry shortly.") from exc


def drop_pending(pending_pk: str, sk: str) -> None:
    try:
        CrmPendingItem(pending_pk, sk).delete()
    except PynamoDBException as exc:
        raise StoreUnavailable("The lead store did not take the write; retry shortly.") from exc
