"""Lead repository: race-free capture writes, reads by id and email, and erasure.

Capture costs a fixed number of calls per submission, whatever the table size (no Scan anywhere):
- new lead:   1 BatchGetItem (identity + delivery + ad click keys) + 1 TransactWriteItems
- merge:      1 BatchGetItem + 1 GetItem (the lead) + 1 TransactWriteItems
- redelivery: 1 BatchGetItem (the stored answer is returned; a tombstone answers "erased")
Uniqueness is enforced by DynamoDB, not by the read: every identity item is written with
attribute_not_exists in the lead's transaction, and an existing lead is replaced only at the version read
(optimistic locking), so two concurrent submissions can never create two leads for one key.

Erasure (`erase_lead`) is a procedure that can be retried to completion from any point: it marks the lead
`erasing` first (capture transactions condition on the leads they write to not being erasing), reads the
lead's partition consistently, then removes what the partition names, dependants before what names them:
delivery records become PII-free tombstones, identity items are deleted when they still point at the lead,
conflict twins on other leads, the partition's own items, and the lead item last.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from pynamodb.attributes import MapAttribute
from pynamodb.connection import Connection
from pynamodb.exceptions import DeleteError, DoesNotExist, PynamoDBException, TransactWriteError, UpdateError
from pynamodb.transactions import TransactWrite

from leadflow.domain.identity import email_key, phone_key
from leadflow.errors import StoreUnavailable
from leadflow.store.clicks import click_view
from leadflow.store.models import (
    ANON_MARKER_SK,
    CLICK_SK,
    DELIVERY_SK,
    IDENTITY_SK,
    LEAD_SK,
    AnyItem,
    ConflictItem,
    HistoryItem,
    KeyItem,
    LeadItem,
    LookupItem,
    TouchItem,
    anonymous_pk,
    connection,
    history_sk,
    lead_pk,
)

_LEAD_FIELDS = tuple(name for name in LeadItem.get_attributes() if name not in ("pk", "sk", "entity"))
TOMBSTONE = "tombstone"
ERASED_ANSWER = {"lead_id": None, "status": "erased"}  # what a delivery of an erased lead is answered


class WriteConflict(Exception):
    """The transaction lost a race; `reason` says which: key_taken, delivery_exists, lead_changed, or
    owner_gone (a conflicting key's owner, in `lead_ids`, is being erased or no longer exists)."""

    def __init__(self, reason: str, lead_ids: frozenset[str] = frozenset()) -> None:
        super().__init__(reason)
        self.reason = reason
        self.lead_ids = lead_ids


@dataclass(frozen=True)
class KeyLookup:
    owners: dict[str, str]  # identity key → lead id
    answer: dict | None  # the answer already given to this delivery, if any
    clicks: dict[str, dict] = field(default_factory=dict)  # ad click key → the announced click
    waiting: bool = False  # anonymous events wait for the submission's email (its ANON# marker exists)


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


def _save_delivery(tx: TransactWrite, key: str, lead_id: str | None, answer: dict, now: str, expires_at: int) -> None:
    """In `tx`, the delivery (idempotency) item with the answer given, only if no item holds the key yet (a
    redelivery racing this one cancels the transaction)."""
    item = KeyItem(
        key, DELIVERY_SK, entity="delivery", lead_id=lead_id, answer=answer, created_at=now, expires_at=expires_at
    )
    tx.save(item, condition=KeyItem.pk.does_not_exist())


def _failed_conditions(exc: TransactWriteError, ops: list[Any]) -> list[Any]:
    """The entries of `ops` (one per action, in order) whose condition failed in the cancelled transaction."""
    reasons = exc.cancellation_reasons or []
    return [
        ops[i] for i, r in enumerate(reasons) if r is not None and i < len(ops) and r.code == "ConditionalCheckFailed"
    ]


def _transaction_conflict(exc: TransactWriteError, ops: list[str]) -> Exception:
    """What a cancelled transaction of a delivery and its lead means: the delivery was already stored (a
    redelivery: answer it again), the lead changed meanwhile (read again and reapply), or the store failed."""
    failed = set(_failed_conditions(exc, ops))
    if "delivery" in failed:
        return WriteConflict("delivery_exists")
    if failed or exc.cause_response_code == "TransactionCanceledException":
        return WriteConflict("lead_changed")
    return StoreUnavailable("The lead store did not take the write; retry shortly.")


def _lead_dict(item: LeadItem) -> dict:
    return {name: _plain(getattr(item, name)) for name in _LEAD_FIELDS}


def _lead_item(lead: dict) -> LeadItem:
    values = {name: _compact(lead.get(name)) for name in _LEAD_FIELDS if lead.get(name) is not None}
    return LeadItem(lead_pk(lead["lead_id"]), LEAD_SK, entity="lead", **values)


def crm_as_read(lead: dict) -> Any:
    """The condition that `crm` is still what `lead` was read with.

    `crm` is written only by the CRM push write-back (store.push.record_push: an UpdateItem of one map entry
    that leaves the version alone, so it never triggers another push). A write of the whole lead at the version
    it read would put back the `crm` it read and lose a write-back that landed in between; with this condition
    that write is cancelled instead (WriteConflict `lead_changed`), and the writer reads again and reapplies.
    """
    crm = _compact(lead.get("crm") or {})
    return LeadItem.crm == crm if crm else LeadItem.crm.does_not_exist() | (LeadItem.crm == {})


def _connection() -> Connection:
    """The process's one connection (one botocore client) per endpoint: creating one costs ~100 ms."""
    return connection()


def lookup_keys(
    keys: list[str], delivery_key: str | None, click_keys: list[str] | None = None, email: str | None = None
) -> KeyLookup:
    wanted = [(key, IDENTITY_SK) for key in keys]
    if delivery_key:
        wanted.append((delivery_key, DELIVERY_SK))
    wanted += [(key, CLICK_SK) for key in click_keys or ()]
    if email:
        wanted.append((anonymous_pk(email), ANON_MARKER_SK))
    owners: dict[str, str] = {}
    answer = None
    clicks: dict[str, dict] = {}
    waiting = False
    try:
        for item in LookupItem.batch_get(wanted, consistent_read=True):
            if item.sk == ANON_MARKER_SK:
                waiting = True
            elif item.sk == DELIVERY_SK:
                answer = dict(ERASED_ANSWER) if item.entity == TOMBSTONE else _plain(item.answer)
            elif item.sk == CLICK_SK:
                clicks[item.pk] = click_view(item)
            else:
                owners[item.pk] = item.lead_id
    except PynamoDBException as exc:
        raise StoreUnavailable("The lead store did not answer; retry shortly.") from exc
    return KeyLookup(owners, answer, clicks, waiting)


def get_lead(lead_id: str) -> dict | None:
    """The lead, consistently read; `erasing` is set when its erasure has started (callers treat it as gone)."""
    try:
        return _lead_dict(LeadItem.get(lead_pk(lead_id), LEAD_SK, consistent_read=True))
    except DoesNotExist:
        return None


def erased_deliveries(delivery_keys: list[str]) -> set[str]:
    """The delivery keys among these that belong to an erased lead (tombstones): one BatchGetItem."""
    wanted = [(key, DELIVERY_SK) for key in dict.fromkeys(delivery_keys)]
    if not wanted:
        return set()
    try:
        return {item.pk for item in KeyItem.batch_get(wanted, consistent_read=True) if item.entity == TOMBSTONE}
    except PynamoDBException as exc:
        raise StoreUnavailable("The lead store did not answer; retry shortly.") from exc


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
    replace: dict[str, str] | None = None,
    history: list[tuple[str, dict]] | None = None,
    no_marker: str | None = None,
) -> None:
    """Write a capture atomically: the lead, its new identity keys, the touch, conflicts and the delivery.

    The transaction conditions on every lead it writes to: a merged lead at the version read and not
    erasing, and each conflicting key's owner present and not erasing (its conflict twin is written into
    that owner's partition). `replace` maps a claimed key to the lead id of a dangling identity item
    (its lead erased or gone): the item is taken over only while it still names that lead. `history` are the
    (kind, detail) timeline entries of the score and stage changes; `no_marker` (an email) checks that no
    anonymous event of it arrived since the lookup (one did: `lead_changed`, and the retry adopts it).
    """
    lead_id = lead["lead_id"]
    item = _lead_item(lead)
    replace = replace or {}
    others = sorted({other for _, other in conflicts})
    # TransactWriteItems lists condition checks first, then puts: `ops` follows that order.
    ops: list[tuple[str, str]] = [("owner", other) for other in others]
    try:
        with TransactWrite(connection=_connection()) as tx:
            if no_marker:
                marker = (anonymous_pk(no_marker), ANON_MARKER_SK)
                tx.condition_check(KeyItem, *marker, condition=KeyItem.pk.does_not_exist())
                ops.insert(0, ("marker", no_marker))
            for other in others:
                tx.condition_check(
                    LeadItem,
                    lead_pk(other),
                    LEAD_SK,
                    condition=LeadItem.pk.exists() & LeadItem.erasing.does_not_exist(),
                )
            if is_new:
                tx.save(item, condition=LeadItem.pk.does_not_exist())
            else:
                # at the version read (VersionAttribute), with the CRM write-backs read
                tx.save(item, condition=LeadItem.erasing.does_not_exist() & crm_as_read(lead))
            ops.append(("lead", lead_id))
            for key in claim:
                identity = KeyItem(key, IDENTITY_SK, entity="identity", lead_id=lead_id, created_at=now)
                condition = KeyItem.pk.does_not_exist()
                if key in replace:
                    condition = condition | (KeyItem.lead_id == replace[key])
                tx.save(identity, condition=condition)
                ops.append(("key", key))
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
            ops.append(("touch", lead_id))
            for key, other in conflicts:
                for mine, theirs in ((lead_id, other), (other, lead_id)):
                    # One item per (key, other lead): erasing either lead finds and removes both twins.
                    tx.save(
                        ConflictItem(
                            lead_pk(mine),
                            conflict_sk(key, theirs),
                            entity="conflict",
                            key=key,
                            other_lead_id=theirs,
                            detected_at=now,
                        )
                    )
                    ops.append(("conflict", mine))
            if delivery_key:
                _save_delivery(tx, delivery_key, lead_id, answer, now, delivery_expires_at)
                ops.append(("delivery", delivery_key))
            for n, (kind, detail) in enumerate(history or ()):
                entry = HistoryItem(
                    lead_pk(lead_id),
                    history_sk(now, kind, f"{touch_sk[-12:]}{n}"),
                    entity="history",
                    lead_id=lead_id,
                    kind=kind,
                    at=now,
                    detail=_compact(detail),
                    source=detail.get("source"),
                    created_at=now,
                )
                tx.save(entry)
                ops.append(("history", lead_id))
    except TransactWriteError as exc:
        failed = _failed_conditions(exc, ops)
        kinds = {kind for kind, _ in failed}
        if "delivery" in kinds:
            raise WriteConflict("delivery_exists") from exc
        if "key" in kinds:
            raise WriteConflict("key_taken") from exc
        if "owner" in kinds:
            raise WriteConflict("owner_gone", frozenset(ref for kind, ref in failed if kind == "owner")) from exc
        if "lead" in kinds or "marker" in kinds or exc.cause_response_code == "TransactionCanceledException":
            # A version mismatch, an erasure that started, or a concurrent transaction on the same items.
            raise WriteConflict("lead_changed") from exc
        raise StoreUnavailable("The lead store did not take the write; retry shortly.") from exc
    except PynamoDBException as exc:
        raise StoreUnavailable("The lead store did not take the write; retry shortly.") from exc


def conflict_sk(key: str, other_lead_id: str) -> str:
    return f"CONFLICT#{key}#{other_lead_id}"


def crm_records(lead: AnyItem | None, partition: list[AnyItem]) -> dict[str, str | None]:
    """The CRM targets the lead was pushed to → the CRM's record id (None when only the push is known): from
    its `crm` write-backs and its `push` timeline entries (which also name a push whose write-back was lost)."""
    records: dict[str, str | None] = {}
    for target, entry in (_plain(lead.crm) if lead is not None and lead.crm is not None else {}).items():
        records[target] = (entry or {}).get("id") if isinstance(entry, dict) else None
    for item in partition:
        detail = _plain(item.detail) if item.kind == "push" and item.detail is not None else {}
        if detail.get("outcome") == "pushed" and detail.get("target"):
            records[detail["target"]] = records.get(detail["target"]) or detail.get("crm_id")
    return records


def erase_lead(
    lead_id: str,
    *,
    now: datetime,
    delivery_ttl: timedelta,
    before_delete: Callable[[dict[str, str | None]], None] | None = None,
) -> bool:
    """Erase the lead and everything that names it; False when nothing of it is left (already erased).

    `before_delete(crm_records)` runs once the lead is marked and read, before anything is deleted (it queues
    the deletion in the CRMs the lead was pushed to): if it raises, the erasing lead is left for the retry.

    Each step is idempotent and what a step removes is never needed to find what a later step removes, so
    a failure at any point leaves something (the `erasing` lead item, at least) from which a retry finishes
    the job. Cost: 1 UpdateItem + 1 Query of the partition + BatchWriteItems, plus one conditional DeleteItem
    per identity key (a key may have been taken over by a new lead meanwhile: it is left alone then).
    """
    pk = lead_pk(lead_id)
    stamp = now.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    try:
        marked = _mark_erasing(pk, stamp)
        partition = list(AnyItem.query(pk, consistent_read=True))
        if not marked and not partition:
            return False
        lead = next((item for item in partition if item.sk == LEAD_SK), None)
        if lead is not None and before_delete is not None:
            before_delete(crm_records(lead, partition))
        identity: set[str] = set(lead.identity_keys or []) if lead else set()
        for target, ref in (_plain(lead.crm) or {}).items() if lead else ():  # CRM id → lead links (CRM feedback)
            if isinstance(ref, dict) and ref.get("id"):
                identity.add(f"CRMID#{target}#{ref['id']}")
        tombstones: dict[str, int] = {}
        twins: set[tuple[str, str]] = set()
        legacy_twins: set[tuple[str, str]] = set()
        own: list[tuple[str, str]] = []
        for item in partition:
            if item.sk == LEAD_SK:
                continue
            own.append((item.pk, item.sk))
            if item.delivery_key:
                expires = _delivery_expiry(item.created_at, now, delivery_ttl)
                if expires > now.timestamp():
                    tombstones[item.delivery_key] = max(expires, tombstones.get(item.delivery_key, 0))
            submitted = _plain(item.submitted) or {}
            if submitted.get("email"):
                identity.add(email_key(submitted["email"]))
            if submitted.get("phone"):
                identity.add(phone_key(submitted["phone"]))
            if item.sk.startswith("CONFLICT#") and item.key and item.other_lead_id:
                if item.sk == f"CONFLICT#{item.key}":  # written before twins carried the other lead's id
                    legacy_twins.add((lead_pk(item.other_lead_id), item.sk))
                else:
                    twins.add((lead_pk(item.other_lead_id), conflict_sk(item.key, lead_id)))
        # 1. A redelivery or replay of the lead's deliveries must not bring the person back.
        with KeyItem.batch_write() as batch:
            for key, expires in sorted(tombstones.items()):
                batch.save(KeyItem(key, DELIVERY_SK, entity=TOMBSTONE, created_at=stamp, expires_at=expires))
        # 1b. Deliveries of the person that validation refused (quarantined with their identity keys). The
        # erasing lead item still names the keys, so a retry after a failure here finds them again.
        from leadflow.store import quarantine  # imports this module: bound late

        quarantine.erase_for_keys(sorted(identity))
        # 1c. Events that waited for the person's email (anonymous) and their deliveries (tombstoned).
        from leadflow.store import events  # imports this module: bound late

        emails = sorted(key.removeprefix("EMAIL#") for key in identity if key.startswith("EMAIL#"))
        events.erase_anonymous(emails, stamp, int((now + delivery_ttl).timestamp()))
        # 2. Identity items, found directly by key (never by what points at them), while still the lead's.
        for key in sorted(identity):
            _delete_if(KeyItem(key, IDENTITY_SK), KeyItem.lead_id == lead_id)
        for twin_pk, twin_sk in sorted(legacy_twins):
            _delete_if(ConflictItem(twin_pk, twin_sk), ConflictItem.other_lead_id == lead_id)
        # 3. Conflict twins on other leads, then the partition's own items (which named them), lead last.
        for doomed in (sorted(twins), own, [(pk, LEAD_SK)] if lead or marked else []):
            with AnyItem.batch_write() as batch:
                for item_pk, item_sk in doomed:
                    batch.delete(AnyItem(item_pk, item_sk))
    except PynamoDBException as exc:
        raise StoreUnavailable("The lead store did not complete the erasure; retry it.") from exc
    return True


def _mark_erasing(pk: str, stamp: str) -> bool:
    """Set `erasing` (kept from the first attempt) and bump the version, so no writer can put the lead back."""
    try:
        LeadItem._get_connection().update_item(
            pk,
            LEAD_SK,
            actions=[LeadItem.erasing.set(LeadItem.erasing | stamp), LeadItem.version.add(1)],
            condition=LeadItem.pk.exists(),
        )
    except UpdateError as exc:
        if exc.cause_response_code == "ConditionalCheckFailedException":
            return False  # no lead item: a retry after it was deleted, or an unknown id
        raise
    return True


def _delete_if(item: KeyItem | ConflictItem, condition: Any) -> None:
    try:
        item.delete(condition=condition)
    except DeleteError as exc:
        # A failed condition: gone already, or another lead's now (taken over after a dangling repair).
        if exc.cause_response_code != "ConditionalCheckFailedException":
            raise


def _delivery_expiry(created_at: str | None, now: datetime, ttl: timedelta) -> int:
    """When the delivery record written with a touch expires (created with the touch, same TTL)."""
    try:
        created = datetime.fromisoformat(created_at) if created_at else now
    except ValueError:
        created = now
    if created.tzinfo is None:
        created = created.replace(tzinfo=UTC)
    return int((created + ttl).timestamp())
