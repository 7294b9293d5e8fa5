"""Routing in the leads table: the routing state item, an assignment's lead write, and recent MQLs.

An assignment costs 1 GetItem (the state, consistent) + 1 PutItem (the state at the version read) + 1
TransactWriteItems (the lead's `owner` at the lead's version, and the owner HistoryItem). Two assignments that
read the same state version cannot both write it: the loser reads again and decides again (so round-robin
turns and daily counts are exact under any concurrency, with no state in memory).
"""

from __future__ import annotations

import uuid
from typing import Any

from pynamodb.exceptions import DoesNotExist, PutError, PynamoDBException, TransactWriteError
from pynamodb.transactions import TransactWrite

from leadflow.domain.routing import State
from leadflow.errors import StoreUnavailable
from leadflow.store.leads import WriteConflict, _compact, _connection, _plain
from leadflow.store.models import LEAD_SK, HistoryItem, LeadItem, LeadKeyItem, RoutingStateItem, history_sk, lead_pk

STATE_PK, STATE_SK = "ROUTING", "STATE"


def read_state() -> tuple[State, int | None]:
    """The routing state and its version (None: never written)."""
    try:
        item = RoutingStateItem.get(STATE_PK, STATE_SK, consistent_read=True)
    except DoesNotExist:
        return State(), None
    except PynamoDBException as error:
        raise StoreUnavailable("The lead store did not answer; retry shortly.") from error
    return State(dict(_plain(item.cursors) or {}), dict(_plain(item.counts) or {})), item.version


def save_state(state: State, version: int | None, now: str) -> bool:
    """Write the state if it is still at `version`; False when another assignment wrote it first."""
    item = RoutingStateItem(
        STATE_PK,
        STATE_SK,
        entity="routing",
        cursors={k: int(v) for k, v in state.cursors.items()},
        counts={k: {"day": v["day"], "n": int(v["n"])} for k, v in state.counts.items()},
        updated_at=now,
    )
    if version is not None:
        item.version = version  # save() conditions on it (attribute_not_exists when unset) and adds one
    try:
        item.save()
    except PutError as error:
        if error.cause_response_code == "ConditionalCheckFailedException":
            return False
        raise StoreUnavailable("The lead store did not take the write; retry shortly.") from error
    except PynamoDBException as error:
        raise StoreUnavailable("The lead store did not take the write; retry shortly.") from error
    return True


def save_owner(lead: dict, owner: dict | Any, detail: dict, now: str, changes: dict | None = None) -> None:
    """The lead's `owner` (and other `changes`) at the version read, with an `owner` timeline entry.

    WriteConflict("lead_changed") when the lead changed since it was read (or is being erased)."""
    lead_id = lead["lead_id"]
    actions = [LeadItem.owner.set(_compact(owner)), LeadItem.updated_at.set(now)]
    actions += [getattr(LeadItem, name).set(value) for name, value in (changes or {}).items()]
    try:
        with TransactWrite(connection=_connection()) as tx:
            tx.update(
                LeadItem(lead_pk(lead_id), LEAD_SK, version=lead["version"]),
                actions=actions,
                condition=LeadItem.erasing.does_not_exist(),
            )
            tx.save(
                HistoryItem(
                    lead_pk(lead_id),
                    history_sk(now, "owner", uuid.uuid4().hex[:12]),
                    entity="history",
                    lead_id=lead_id,
                    kind="owner",
                    at=now,
                    detail=_compact(detail),
                    source="routing",
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


def recent_mql_ids(limit: int) -> list[str]:
    """Ids of the most recently created leads in stage mql, newest first: one Query of `LeadsByStage`."""
    try:
        found = LeadKeyItem.by_stage.query("mql", scan_index_forward=False, limit=limit, page_size=min(limit, 100))
        return [item.pk.removeprefix("LEAD#") for item in found if item.sk == LEAD_SK][:limit]
    except PynamoDBException as error:
        raise StoreUnavailable("The lead store did not answer; retry shortly.") from error
