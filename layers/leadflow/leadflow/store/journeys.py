"""The lead's journey state (`journey` map on the lead item) and its journey timeline entries."""

from __future__ import annotations

from typing import Any

from pynamodb.exceptions import DoesNotExist, PutError, PynamoDBException, UpdateError

from leadflow.errors import StoreUnavailable
from leadflow.store.leads import _lead_dict, _plain, get_lead
from leadflow.store.models import (
    LEAD_SK,
    EventItem,
    HistoryItem,
    LeadItem,
    SendItem,
    history_sk,
    lead_pk,
    send_sk,
)

__all__ = [
    "claim_send",
    "complete_send",
    "get_lead",
    "had_event",
    "history",
    "record_journey_entry",
    "release_send",
    "sends",
    "update_journey",
]
SEND_LEDGER_DAYS = 90  # a touch's task is retried within hours; the entry outlives that by far


def update_journey(lead_id: str, change: Any, attempts: int = 5, read: dict | None = None) -> dict | None:
    """Apply `change(lead) -> new journey map | None` with the lead's version as the lock; None = no write.

    `read`: the lead as the caller just read it (consistently, with its `version`, e.g. from `get_lead` or an
    earlier `update_journey`): the first attempt decides on it and writes at its version instead of reading
    the lead again; a lead changed since fails that write, and it is read again and re-decided.
    Returns the lead as written (with its new version) or as read when `change` wrote nothing; None when
    the lead is gone. The write asks for no item back (the caller has it): one UpdateItem of the map."""
    for _ in range(attempts):
        if read is not None and read.get("version") is not None:
            current = read
        else:
            try:
                current = _lead_dict(LeadItem.get(lead_pk(lead_id), LEAD_SK, consistent_read=True))
            except DoesNotExist:
                return None
            except PynamoDBException as exc:
                raise StoreUnavailable("The lead store did not answer; retry shortly.") from exc
        read = None
        journey = change(current)
        if journey is None:
            return current
        version = current.get("version")
        at_version = LeadItem.version == version if version is not None else LeadItem.version.does_not_exist()
        try:
            # the model's table connection, like LeadItem.update but without ReturnValues ALL_NEW
            LeadItem._get_connection().update_item(
                lead_pk(lead_id),
                LEAD_SK,
                actions=[LeadItem.journey.set(journey), LeadItem.version.set((version or 0) + 1)],
                condition=LeadItem.pk.exists() & at_version,
            )
        except UpdateError as exc:
            if _conditional(exc):
                continue  # the lead changed (or went) since the read: read again and re-decide
            raise StoreUnavailable("The lead store did not answer; retry shortly.") from exc
        return {**current, "journey": journey, "version": (version or 0) + 1}
    raise StoreUnavailable("The lead kept changing while its journey was being updated; retry shortly.")


def _conditional(exc: PynamoDBException) -> bool:
    return getattr(exc, "cause_response_code", None) == "ConditionalCheckFailedException"


def record_journey_entry(lead_id: str, at: str, entry_id: str, detail: dict[str, Any]) -> None:
    """A `journey` timeline entry (send, deferral, skip, exit); the id makes a retried write the same item."""
    try:
        HistoryItem(
            lead_pk(lead_id),
            history_sk(at, "journey", entry_id),
            entity="history",
            lead_id=lead_id,
            kind="journey",
            at=at,
            detail=detail,
            source="journey",
            created_at=at,
        ).save()
    except PynamoDBException as exc:
        raise StoreUnavailable("The lead store did not answer; retry shortly.") from exc


def history(lead_id: str) -> list[dict[str, Any]]:
    """The lead's journey timeline entries, oldest first (one Query on the lead's partition)."""
    try:
        items = HistoryItem.query(lead_pk(lead_id), HistoryItem.sk.startswith("HIST#"), consistent_read=True)
        return [{"at": i.at, **_plain(i.detail)} for i in items if i.kind == "journey"]
    except PynamoDBException as exc:
        raise StoreUnavailable("The lead store did not answer; retry shortly.") from exc


# ------------------------------------------------------------------------------------------ send ledger
def claim_send(lead_id: str, key: tuple[str, int, str], at: str, channel: str, expires_at: int) -> dict | None:
    """Claim a touch's send before making it: None when this call claimed it (send now), else the earlier
    claim (`status` sending or sent, its `at`, `message_id`, `to`): the touch must not be sent again.

    A claim whose send was refused (`failed`) is claimed again. One conditional PutItem."""
    item = SendItem(
        lead_pk(lead_id),
        send_sk(*key),
        entity="send",
        lead_id=lead_id,
        status="sending",
        at=at,
        channel=channel,
        expires_at=expires_at,
    )
    try:
        item.save(condition=SendItem.sk.does_not_exist() | (SendItem.status == "failed"))
        return None
    except PutError as exc:
        if not _conditional(exc):
            raise StoreUnavailable("The lead store did not answer; retry shortly.") from exc
    try:
        earlier = SendItem.get(lead_pk(lead_id), send_sk(*key), consistent_read=True)
    except PynamoDBException as exc:
        raise StoreUnavailable("The lead store did not answer; retry shortly.") from exc
    return {"status": earlier.status, "at": earlier.at, "message_id": earlier.message_id, "to": earlier.to}


def complete_send(lead_id: str, key: tuple[str, int, str], message_id: str, to: str | None) -> None:
    """The provider took the touch: keep its message id and masked recipient on the claim."""
    _update_send(lead_id, key, [SendItem.status.set("sent"), SendItem.message_id.set(message_id), SendItem.to.set(to)])


def release_send(lead_id: str, key: tuple[str, int, str]) -> None:
    """The provider refused the touch (nothing was sent): a retry may claim and send it."""
    _update_send(lead_id, key, [SendItem.status.set("failed")], SendItem.status == "sending")


def _update_send(lead_id: str, key: tuple[str, int, str], actions: list, condition: Any = None) -> None:
    if condition is None:
        condition = SendItem.sk.exists()
    try:  # no item back (pynamodb's Model.update asks for ALL_NEW)
        SendItem._get_connection().update_item(lead_pk(lead_id), send_sk(*key), actions=actions, condition=condition)
    except UpdateError as exc:
        if not _conditional(exc):
            raise StoreUnavailable("The lead store did not answer; retry shortly.") from exc


def sends(lead_id: str) -> list[dict[str, Any]]:
    """The lead's send ledger (one Query of its `SEND#` items): journey, enrolment, touch, status, the time
    of the first attempt, channel, message id and masked recipient (a webhook's URL host)."""
    try:
        items = SendItem.query(lead_pk(lead_id), SendItem.sk.startswith("SEND#"), consistent_read=True)
        found = []
        for item in items:
            _, journey, enrolment, touch = item.sk.split("#", 3)  # journey and touch ids never hold a '#'
            found.append(
                {
                    "journey": journey,
                    "enrolment": int(enrolment),
                    "touch": touch,
                    "status": item.status,
                    "at": item.at,
                    "channel": item.channel,
                    "message_id": item.message_id,
                    "to": item.to,
                }
            )
        return found
    except PynamoDBException as exc:
        raise StoreUnavailable("The lead store did not answer; retry shortly.") from exc


# ------------------------------------------------------------------------------------------ past events
def had_event(lead_id: str, event_type: str, since: str | None = None) -> bool:
    """Whether the lead has an engagement event of `event_type` (occurred at or after `since`, ISO 8601 UTC).

    One Query of the lead's EVENT# items (from `since` on), filtered by type, stopping at the first match."""
    low = f"EVENT#{since}" if since else "EVENT#"
    try:
        found = EventItem.query(
            lead_pk(lead_id),
            EventItem.sk.between(low, "EVENT#\uffff"),
            filter_condition=EventItem.type == event_type,
            consistent_read=True,
        )
        return next(iter(found), None) is not None
    except PynamoDBException as exc:
        raise StoreUnavailable("The lead store did not answer; retry shortly.") from exc
