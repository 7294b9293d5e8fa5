"""The lead's journey state (`journey` map on the lead item) and its journey timeline entries."""

from __future__ import annotations

from typing import Any

from pynamodb.exceptions import DoesNotExist, PynamoDBException, UpdateError

from leadflow.errors import StoreUnavailable
from leadflow.store.leads import _lead_dict, _plain, get_lead
from leadflow.store.models import LEAD_SK, HistoryItem, LeadItem, history_sk, lead_pk

__all__ = ["get_lead", "history", "record_journey_entry", "update_journey"]


def update_journey(lead_id: str, change: Any, attempts: int = 5) -> dict | None:
    """Apply `change(lead) -> new journey map | None` with the lead's version as the lock; None = no write.

    Returns the lead as written (or as read when `change` wrote nothing); None when the lead is gone."""
    for _ in range(attempts):
        try:
            item = LeadItem.get(lead_pk(lead_id), LEAD_SK, consistent_read=True)
        except DoesNotExist:
            return None
        except PynamoDBException as exc:
            raise StoreUnavailable("The lead store did not answer; retry shortly.") from exc
        current = _lead_dict(item)
        journey = change(current)
        if journey is None:
            return current
        try:
            item.update(actions=[LeadItem.journey.set(journey)])
        except UpdateError as exc:
            if _conditional(exc):
                continue  # the lead changed since the read: read again and re-decide
            raise StoreUnavailable("The lead store did not answer; retry shortly.") from exc
        return {**current, "journey": journey}
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
