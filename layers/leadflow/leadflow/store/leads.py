"""Lead repository: race-free capture writes, reads by id and email, and erasure.

Capture costs a fixed number of calls per submission, whatever the table size (no Scan anywhere):
- new lead:   1 BatchGetItem (identity + delivery + ad click keys) + 1 TransactWriteItems
- merge:      1 BatchGetItem + 1 GetItem (the lead) + 1 TransactWriteItems
- redelivery: 1 BatchGetItem (the stored answer is returned)
Uniqueness is enforced by DynamoDB, not by the read: every identity item is written with
attribute_not_exists in the lead's transaction, and an existing lead is replaced only at the version read
(optimistic locking), so two concurrent submissions can never create two leads for one key.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pynamodb.attributes import MapAttribute
from pynamodb.connection import Connection
from pynamodb.exceptions import DoesNotExist, PynamoDBException, TransactWriteError
from pynamodb.transactions import TransactWrite

from leadflow.errors import StoreUnavailable
from leadflow.store.clicks import click_view
from leadflow.store.models import (
    CLICK_SK,
    DELIVERY_SK,
    IDENTITY_SK,
    LEAD_SK,
    AnyItem,
    ConflictItem,
    KeyItem,
    LeadItem,
    LookupItem,
    TouchItem,
    connection,
    lead_pk,
)

_LEAD_FIELDS = tuple(name for name in LeadItem.get_attributes() if name not in ("pk", "sk", "entity"))


class WriteConflict(Exception):
    """The transaction lost a race; `reason` says which: key_taken, delivery_exists or lead_changed."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class KeyLookup:
    owners: dict[str, str]  # identity key → lead id
    answer: dict | None  # the answer already given to this delivery, if any
    clicks: dict[str, dict] = field(default_factory=dict)  # ad click key → the announced click


def _plain(value: Any) -> Any:
    if isinstance(value, MapAttribute):
        return {k: _plain(v) for k, v in value.as_dict().items()}
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _compact(value: Any) -> Any:
    """Drop None values inside maps (DynamoDB stores them as NULL; the lead JSON omits them)."""
    if isinstance(value, dict):
        return {k: _compact(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_compact(v) for v in value]
    return value


def _lead_dict(item: LeadItem) -> dict:
    return {name: _plain(getattr(item, name)) for name in _LEAD_FIELDS}


def _lead_item(lead: dict) -> LeadItem:
    values = {name: _compact(lead.get(name)) for name in _LEAD_FIELDS if lead.get(name) is not None}
    return LeadItem(lead_pk(lead["lead_id"]), LEAD_SK, entity="lead", **values)


def _connection() -> Connection:
    """The process's one connection (one botocore client) per endpoint: creating one costs ~100 ms."""
    return connection()


def lookup_keys(keys: list[str], delivery_key: str | None, click_keys: list[str] | None = None) -> KeyLookup:
    wanted = [(key, IDENTITY_SK) for key in keys]
    if delivery_key:
        wanted.append((delivery_key, DELIVERY_SK))
    wanted += [(key, CLICK_SK) for key in click_keys or ()]
    owners: dict[str, str] = {}
    answer = None
    clicks: dict[str, dict] = {}
    try:
        for item in LookupItem.batch_get(wanted, consistent_read=True):
            if item.sk == DELIVERY_SK:
                answer = _plain(item.answer)
            elif item.sk == CLICK_SK:
                clicks[item.pk] = click_view(item)
            else:
                owners[item.pk] = item.lead_id
    except PynamoDBException as exc:
        raise StoreUnavailable("The lead store did not answer; retry shortly.") from exc
    return KeyLookup(owners, answer, clicks)


def get_lead(lead_id: str) -> dict | None:
    try:
        return _lead_dict(LeadItem.get(lead_pk(lead_id), LEAD_SK, consistent_read=True))
    except DoesNotExist:
        return None


def lead_id_for_email(email: str) -> str | None:
    try:
        return KeyItem.get(f"EMAIL#{email}", IDENTITY_SK, consistent_read=True).lead_id
    except DoesNotExist:
        return None


def conflicts_of(lead_id: str) -> list[dict]:
    return [
        {"key": c.key, "other_lead_id": c.other_lead_id, "detected_at": c.detected_at}
        for c in ConflictItem.query(lead_pk(lead_id), ConflictItem.sk.startswith("CONFLICT#"))
    ]


def save_capture(
    lead: dict,
    *,
    is_new: bool,
    touch_sk: str,
    touch: dict,
    submitted: dict,
    claim: list[str],
    conflicts: list[tuple[str, str]],
    delivery_key: str | None,
    answer: dict,
    now: str,
    delivery_expires_at: int,
) -> None:
    """Write a capture atomically: the lead, its new identity keys, the touch, conflicts and the delivery."""
    lead_id = lead["lead_id"]
    item = _lead_item(lead)
    ops: list[str] = []
    try:
        with TransactWrite(connection=_connection()) as tx:
            if is_new:
                tx.save(item, condition=LeadItem.pk.does_not_exist())
            else:
                tx.save(item)  # VersionAttribute: only at the version read
            ops.append("lead")
            for key in claim:
                identity = KeyItem(key, IDENTITY_SK, entity="identity", lead_id=lead_id, created_at=now)
                tx.save(identity, condition=KeyItem.pk.does_not_exist())
                ops.append("key")
            tx.save(
                TouchItem(
                    lead_pk(lead_id),
                    touch_sk,
                    entity="touch",
                    lead_id=lead_id,
                    source=touch["source"],
                    touch=_compact(touch),
                    submitted=_compact(submitted),
                    delivery_key=delivery_key,
                    created_at=now,
                )
            )
            ops.append("touch")
            for key, other in conflicts:
                for mine, theirs in ((lead_id, other), (other, lead_id)):
                    tx.save(
                        ConflictItem(
                            lead_pk(mine),
                            f"CONFLICT#{key}",
                            entity="conflict",
                            key=key,
                            other_lead_id=theirs,
                            detected_at=now,
                        )
                    )
                    ops.append("conflict")
            if delivery_key:
                delivery = KeyItem(
                    delivery_key,
                    DELIVERY_SK,
                    entity="delivery",
                    lead_id=lead_id,
                    answer=answer,
                    created_at=now,
                    expires_at=delivery_expires_at,
                )
                tx.save(delivery, condition=KeyItem.pk.does_not_exist())
                ops.append("delivery")
    except TransactWriteError as exc:
        reasons = exc.cancellation_reasons or []
        failed = {
            ops[i]
            for i, r in enumerate(reasons)
            if r is not None and i < len(ops) and r.code == "ConditionalCheckFailed"
        }
        if "delivery" in failed:
            raise WriteConflict("delivery_exists") from exc
        if "key" in failed:
            raise WriteConflict("key_taken") from exc
        if "lead" in failed or exc.cause_response_code == "TransactionCanceledException":
            # A version mismatch, or a concurrent transaction on the same items (TransactionConflict).
            raise WriteConflict("lead_changed") from exc
        raise StoreUnavailable("The lead store did not take the write; retry shortly.") from exc
    except PynamoDBException as exc:
        raise StoreUnavailable("The lead store did not take the write; retry shortly.") from exc


def erase_lead(lead_id: str) -> bool:
    """Delete the lead, its touches, conflicts (both twins), identity items and delivery records."""
    partition = list(AnyItem.query(lead_pk(lead_id)))
    if not any(item.sk == LEAD_SK for item in partition):
        return False
    doomed: set[tuple[str, str]] = set()
    for item in partition:
        doomed.add((item.pk, item.sk))
        if item.sk == LEAD_SK:
            doomed.update((key, IDENTITY_SK) for key in item.identity_keys or [])
        if item.delivery_key:
            doomed.add((item.delivery_key, DELIVERY_SK))
        if item.sk.startswith("CONFLICT#") and item.other_lead_id:
            doomed.add((lead_pk(item.other_lead_id), item.sk))
    with AnyItem.batch_write() as batch:
        for pk, sk in sorted(doomed):
            batch.delete(AnyItem(pk, sk))
    return True
