"""Quarantine repository: signed deliveries that validation refused, kept (TTL) until a replay passes.

Items live in the leads table, so the raw body (personal data) has exactly a lead's protection: same table,
same encryption at rest, never logged, gone when `expires_at` passes.
- `QUARANTINE` / `QUARANTINE#<id>`: the delivery. One partition, so listing is a Query (never a Scan) and
  the listing reads only the PII-free attributes.
- `<identity key>` / `QUARANTINE#<id>`: one per normalised email/phone/provider id known for it, so an
  erasure request finds a person's quarantined deliveries (`quarantined_for_keys`, `remove`).
A repeat of the same delivery (same id) is stored once: the item is written with attribute_not_exists.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pynamodb.exceptions import DoesNotExist, PynamoDBException, TransactWriteError
from pynamodb.transactions import TransactWrite

from leadflow.errors import StoreUnavailable
from leadflow.store.leads import _connection, _plain
from leadflow.store.models import QUARANTINE_PK, QuarantineItem, QuarantineKeyItem

# What `list_items` reads: never the body, the verified value or the pointer.
_SUMMARY = ["pk", "sk", "quarantine_id", "source", "kind", "delivery_key", "reason", "received_at", "replays"]


def quarantine_sk(quarantine_id: str) -> str:
    return f"QUARANTINE#{quarantine_id}"


@dataclass(frozen=True)
class Quarantined:
    quarantine_id: str
    source: str
    kind: str  # "delivery" or "pointer"
    reason: list[dict[str, str]]  # [{"field", "message"}]: paths and rules, never values
    received_at: str
    expires_at: int
    delivery_key: str | None = None
    body: bytes | None = None
    verified: str | None = None
    pointer: dict[str, Any] | None = None
    identity_keys: list[str] = field(default_factory=list)
    replays: int = 0
    replayed_at: str | None = None


def put(record: Quarantined) -> bool:
    """Store a quarantined delivery durably; False when the same delivery was already quarantined."""
    item = QuarantineItem(
        QUARANTINE_PK,
        quarantine_sk(record.quarantine_id),
        entity="quarantine",
        quarantine_id=record.quarantine_id,
        source=record.source,
        kind=record.kind,
        delivery_key=record.delivery_key,
        reason=record.reason,
        received_at=record.received_at,
        body=record.body,
        verified=record.verified,
        pointer=record.pointer,
        identity_keys=list(record.identity_keys) or None,
        expires_at=record.expires_at,
    )
    try:
        with TransactWrite(connection=_connection()) as tx:
            tx.save(item, condition=QuarantineItem.pk.does_not_exist())
            for key in record.identity_keys:
                index = QuarantineKeyItem(
                    key,
                    quarantine_sk(record.quarantine_id),
                    entity="quarantine_key",
                    quarantine_id=record.quarantine_id,
                    expires_at=record.expires_at,
                )
                tx.save(index)
    except TransactWriteError as exc:
        reasons = exc.cancellation_reasons or []
        if reasons and reasons[0] is not None and reasons[0].code == "ConditionalCheckFailed":
            return False  # the same delivery is already quarantined: nothing more to keep
        raise StoreUnavailable("The quarantine did not take the write; retry shortly.") from exc
    except PynamoDBException as exc:
        raise StoreUnavailable("The quarantine did not take the write; retry shortly.") from exc
    return True


def _record(item: QuarantineItem) -> Quarantined:
    return Quarantined(
        quarantine_id=item.quarantine_id,
        source=item.source,
        kind=item.kind,
        reason=[_plain(r) for r in item.reason or []],
        received_at=item.received_at,
        expires_at=int(item.expires_at or 0),
        delivery_key=item.delivery_key,
        body=item.body,
        verified=item.verified,
        pointer=_plain(item.pointer) if item.pointer is not None else None,
        identity_keys=list(item.identity_keys or []),
        replays=int(item.replays or 0),
        replayed_at=item.replayed_at,
    )


def list_items() -> list[dict[str, Any]]:
    """Every quarantined delivery, oldest first: id, source, kind, reason, received_at (no personal data)."""
    try:
        items = QuarantineItem.query(
            QUARANTINE_PK,
            QuarantineItem.sk.startswith("QUARANTINE#"),
            consistent_read=True,
            attributes_to_get=_SUMMARY,
        )
        summaries = [
            {
                "quarantine_id": item.quarantine_id,
                "source": item.source,
                "kind": item.kind,
                "delivery_key": item.delivery_key,
                "reason": [_plain(r) for r in item.reason or []],
                "received_at": item.received_at,
                "replays": int(item.replays or 0),
            }
            for item in items
        ]
    except PynamoDBException as exc:
        raise StoreUnavailable("The quarantine could not be read; retry shortly.") from exc
    return sorted(summaries, key=lambda s: (s["received_at"], s["quarantine_id"]))


def get(quarantine_id: str) -> Quarantined | None:
    try:
        return _record(QuarantineItem.get(QUARANTINE_PK, quarantine_sk(quarantine_id), consistent_read=True))
    except DoesNotExist:
        return None


def record_replay(quarantine_id: str, reason: list[dict[str, str]], now: str) -> None:
    """A replay that still fails: the item stays, with the new reason."""
    item = QuarantineItem(QUARANTINE_PK, quarantine_sk(quarantine_id))
    try:
        item.update(
            actions=[
                QuarantineItem.reason.set(reason),
                QuarantineItem.replayed_at.set(now),
                QuarantineItem.replays.add(1),
            ],
            condition=QuarantineItem.pk.exists(),
        )
    except PynamoDBException as exc:
        raise StoreUnavailable("The quarantine did not take the write; retry shortly.") from exc


def remove(quarantine_id: str, identity_keys: list[str] | None = None) -> None:
    """Delete a quarantined delivery and its identity index items (a replay passed, or an erasure)."""
    if identity_keys is None:
        found = get(quarantine_id)
        identity_keys = found.identity_keys if found else []
    sk = quarantine_sk(quarantine_id)
    try:
        with QuarantineItem.batch_write() as batch:
            batch.delete(QuarantineItem(QUARANTINE_PK, sk))
            for key in identity_keys:
                batch.delete(QuarantineItem(key, sk))
    except PynamoDBException as exc:
        raise StoreUnavailable("The quarantine did not take the write; retry shortly.") from exc


def quarantined_for_keys(keys: list[str]) -> dict[str, set[str]]:
    """A person's quarantined deliveries by their identity keys (for erasure): id → keys; one Query per key."""
    found: dict[str, set[str]] = {}
    try:
        for key in keys:
            for item in QuarantineKeyItem.query(
                key, QuarantineKeyItem.sk.startswith("QUARANTINE#"), consistent_read=True
            ):
                found.setdefault(item.quarantine_id, set()).add(key)
    except PynamoDBException as exc:
        raise StoreUnavailable("The quarantine could not be read; retry shortly.") from exc
    return found


def erase_for_keys(keys: list[str]) -> int:
    """Remove every quarantined delivery indexed under these identity keys (retry-safe); returns how many."""
    found = quarantined_for_keys(keys)
    for quarantine_id, via in found.items():
        record = get(quarantine_id)
        remove(quarantine_id, sorted(via | set(record.identity_keys if record else [])))
    return len(found)
