"""Engagement events in the leads table: the one read and the one transaction an event costs.

- `read_for_event`: one consistent BatchGetItem of the event's delivery item and either the lead (by id) or
  the email's identity item and its anonymous-events marker (by email).
- `save_event`: one TransactWriteItems: the lead at the version read (optimistic locking: a concurrent
  writer cancels it, the service re-reads and retries, so no point is lost or counted twice), the EventItem
  (`attribute_not_exists`), the delivery item (`attribute_not_exists`: a redelivery racing this one
  cancels it) and the HistoryItems of what changed; adopted anonymous events are deleted in it too.
- `save_anonymous`: an event for an email no lead holds yet, with its delivery and the email's marker, on the
  condition that the identity item still does not exist (a lead created meanwhile cancels it: retried, the
  event goes to that lead).
- `anonymous_events`, `drop_marker`, `erase_anonymous`: adopting them, and erasure.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from pynamodb.exceptions import DeleteError, PynamoDBException, TransactWriteError
from pynamodb.transactions import TransactWrite

from leadflow.errors import StoreUnavailable
from leadflow.store.leads import (
    ERASED_ANSWER,
    TOMBSTONE,
    _compact,
    _connection,
    _lead_dict,
    _lead_item,
    _plain,
    _save_delivery,
    _transaction_conflict,
    crm_as_read,
)
from leadflow.store.models import (
    ANON_MARKER_SK,
    DELIVERY_SK,
    IDENTITY_SK,
    LEAD_SK,
    AnonymousEventItem,
    EventItem,
    EventLookupItem,
    HistoryItem,
    KeyItem,
    LeadItem,
    anonymous_pk,
    event_sk,
    history_sk,
    lead_pk,
)


@dataclass(frozen=True)
class EventRead:
    answer: dict | None = None  # the answer already given to this delivery (a tombstone: erased)
    lead: dict | None = None  # by lead id: the lead, if it exists
    owner: str | None = None  # by email: the lead holding it, if any
    waiting: bool = False  # by email: anonymous events of this email wait for its lead
    answers: dict[str, dict] = field(default_factory=dict)  # delivery key → its answer (read_for_events)


@dataclass
class NewEvent:
    """One event to store on a lead (or, anonymous, under its email)."""

    type: str
    occurred_at: str
    properties: dict[str, Any]
    source: str
    delivery_key: str | None
    event_id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    adopted_sk: str | None = None  # the anonymous item this event was, deleted in the same transaction
    answer: dict | None = None  # this event's own delivery answer (events of one delivery), else save_event's


def read_for_event(delivery_key: str, *, lead_id: str | None = None, email: str | None = None) -> EventRead:
    return read_for_events([delivery_key], lead_id=lead_id, email=email)


def read_for_events(delivery_keys: list[str], *, lead_id: str | None = None, email: str | None = None) -> EventRead:
    """`read_for_event` for several events of one lead: their delivery items in the same BatchGetItem (one call
    up to 97 keys; `answer` is the first key's)."""
    wanted = [(key, DELIVERY_SK) for key in dict.fromkeys(delivery_keys)]
    if lead_id is not None:
        wanted.append((lead_pk(lead_id), LEAD_SK))
    if email is not None:
        wanted += [(f"EMAIL#{email}", IDENTITY_SK), (anonymous_pk(email), ANON_MARKER_SK)]
    lead = owner = None
    answers: dict[str, dict] = {}
    waiting = False
    try:
        for item in EventLookupItem.batch_get(wanted, consistent_read=True):
            if item.sk == DELIVERY_SK:
                answers[item.pk] = dict(ERASED_ANSWER) if item.entity == TOMBSTONE else _plain(item.answer)
            elif item.sk == LEAD_SK:
                lead = _lead_dict(item)
            elif item.sk == IDENTITY_SK:
                owner = item.lead_id
            elif item.sk == ANON_MARKER_SK:
                waiting = True
    except PynamoDBException as exc:
        raise StoreUnavailable("The lead store did not answer; retry shortly.") from exc
    return EventRead(answers.get(delivery_keys[0]), lead, owner, waiting, answers)


def _history_items(lead_id: str, at: str, history: list[tuple[str, dict]], now: str) -> list[HistoryItem]:
    return [
        HistoryItem(
            lead_pk(lead_id),
            history_sk(at, kind, uuid.uuid4().hex[:12]),
            entity="history",
            lead_id=lead_id,
            kind=kind,
            at=at,
            detail=_compact(detail),
            source=detail.get("source"),
            created_at=now,
        )
        for kind, detail in history
    ]


def save_event(
    lead: dict,
    events: list[NewEvent],
    history: list[tuple[str, dict]],
    *,
    answer: dict | None,
    now: str,
    delivery_expires_at: int,
    email: str | None = None,
) -> None:
    """The lead (at the version read), its new events and history, the delivery: all or nothing.

    `answer` is stored for each event's delivery key (None: the keys exist already, e.g. adopted events).
    Raises WriteConflict: `delivery_exists` (a concurrent redelivery won) or `lead_changed` (re-read, retry).
    """
    lead_id = lead["lead_id"]
    ops: list[str] = []  # the puts, in order
    deletes: list[str] = []  # TransactWriteItems lists checks, then deletes, then puts: reasons follow that order
    try:
        with TransactWrite(connection=_connection()) as tx:
            # at the version read, with the CRM write-backs read (crm_as_read)
            tx.save(_lead_item(lead), condition=LeadItem.erasing.does_not_exist() & crm_as_read(lead))
            ops.append("lead")
            for event in events:
                tx.save(
                    EventItem(
                        lead_pk(lead_id),
                        event_sk(event.occurred_at, event.event_id),
                        entity="event",
                        lead_id=lead_id,
                        type=event.type,
                        occurred_at=event.occurred_at,
                        properties=_compact(event.properties),
                        source=event.source,
                        delivery_key=event.delivery_key,
                        created_at=now,
                    ),
                    condition=EventItem.pk.does_not_exist(),
                )
                ops.append("event")
                delivery_answer = event.answer if event.answer is not None else answer
                if delivery_answer is not None and event.delivery_key:
                    _save_delivery(tx, event.delivery_key, lead_id, delivery_answer, now, delivery_expires_at)
                    ops.append("delivery")
                if event.adopted_sk and email:
                    tx.delete(
                        AnonymousEventItem(anonymous_pk(email), event.adopted_sk),
                        condition=AnonymousEventItem.pk.exists(),
                    )
                    deletes.append("adopted")
            at = max((e.occurred_at for e in events), default=now)
            for item in _history_items(lead_id, max(at, now), history, now):
                tx.save(item)
                ops.append("history")
    except TransactWriteError as exc:
        raise _transaction_conflict(exc, deletes + ops) from exc
    except PynamoDBException as exc:
        raise StoreUnavailable("The lead store did not take the write; retry shortly.") from exc


def save_anonymous(
    email: str, event: NewEvent, *, answer: dict, now: str, expires_at: int, delivery_expires_at: int
) -> None:
    """Keep an event of an unknown email (TTL) with its delivery, while no lead holds the email."""
    pk = anonymous_pk(email)
    ops: list[str] = []
    try:
        with TransactWrite(connection=_connection()) as tx:
            tx.condition_check(KeyItem, f"EMAIL#{email}", IDENTITY_SK, condition=KeyItem.pk.does_not_exist())
            ops.append("identity")
            tx.save(
                AnonymousEventItem(
                    pk,
                    event_sk(event.occurred_at, event.event_id),
                    entity="anonymous_event",
                    type=event.type,
                    occurred_at=event.occurred_at,
                    properties=_compact(event.properties),
                    source=event.source,
                    delivery_key=event.delivery_key,
                    created_at=now,
                    expires_at=expires_at,
                ),
                condition=AnonymousEventItem.pk.does_not_exist(),
            )
            ops.append("event")
            tx.save(
                AnonymousEventItem(pk, ANON_MARKER_SK, entity="anonymous_marker", created_at=now, expires_at=expires_at)
            )
            ops.append("marker")
            if event.delivery_key:
                _save_delivery(tx, event.delivery_key, None, answer, now, delivery_expires_at)
                ops.append("delivery")
    except TransactWriteError as exc:
        raise _transaction_conflict(exc, ops) from exc
    except PynamoDBException as exc:
        raise StoreUnavailable("The lead store did not take the write; retry shortly.") from exc


def anonymous_events(email: str) -> tuple[list[dict], str | None]:
    """The events waiting for this email (oldest first) and the marker's `created_at` (None: no marker)."""
    events, marker = [], None
    try:
        for item in AnonymousEventItem.query(anonymous_pk(email), consistent_read=True):
            if item.sk == ANON_MARKER_SK:
                marker = item.created_at
            elif item.sk.startswith("EVENT#"):
                events.append(
                    {
                        "sk": item.sk,
                        "type": item.type,
                        "occurred_at": item.occurred_at,
                        "properties": _plain(item.properties) or {},
                        "source": item.source,
                        "delivery_key": item.delivery_key,
                    }
                )
    except PynamoDBException as exc:
        raise StoreUnavailable("The lead store did not answer; retry shortly.") from exc
    return events, marker


def drop_marker(email: str, written: str | None) -> None:
    """Remove the marker unless a newer anonymous event rewrote it meanwhile (then it stays for next time)."""
    try:
        AnonymousEventItem(anonymous_pk(email), ANON_MARKER_SK).delete(
            condition=AnonymousEventItem.created_at == written if written else AnonymousEventItem.pk.exists()
        )
    except DeleteError as exc:
        if exc.cause_response_code != "ConditionalCheckFailedException":
            raise StoreUnavailable("The lead store did not take the write; retry shortly.") from exc


def erase_anonymous(emails: list[str], stamp: str, tombstone_expires_at: int) -> None:
    """Erasure: a person's waiting events (their deliveries become tombstones) and markers, by email."""
    for email in emails:
        items = list(AnonymousEventItem.query(anonymous_pk(email), consistent_read=True))
        with KeyItem.batch_write() as batch:
            for item in items:
                if item.delivery_key:
                    batch.save(
                        KeyItem(
                            item.delivery_key,
                            DELIVERY_SK,
                            entity=TOMBSTONE,
                            created_at=stamp,
                            expires_at=tombstone_expires_at,
                        )
                    )
        with AnonymousEventItem.batch_write() as batch:
            for item in items:
                batch.delete(AnonymousEventItem(item.pk, item.sk))
