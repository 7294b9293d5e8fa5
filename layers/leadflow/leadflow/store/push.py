"""What CRM pushes read and write in the leads table: the leads to push, the write-back, timeline entries
and the disabled state of a target (a webhook endpoint that answered 410).

The write-back (`crm.<target> = {id, synced_at, version}`) is an UpdateItem of that one map entry that does
not move the lead's `version`: the stream record it causes differs from the previous image only in `crm`,
so the push router sees nothing to push and a push never triggers another.
"""

from __future__ import annotations

import uuid
from typing import Any

from pynamodb.exceptions import DoesNotExist, PynamoDBException

from leadflow.errors import StoreUnavailable
from leadflow.store.leads import _lead_dict
from leadflow.store.models import LEAD_SK, HistoryItem, KeyItem, LeadItem, history_sk, lead_pk

TARGET_STATE_SK = "STATE"


def get_leads(lead_ids: list[str]) -> dict[str, dict]:
    """The current leads (consistent reads, one BatchGetItem per 100); absent ids are left out."""
    wanted = [(lead_pk(lead_id), LEAD_SK) for lead_id in dict.fromkeys(lead_ids)]
    try:
        return {item.lead_id: _lead_dict(item) for item in LeadItem.batch_get(wanted, consistent_read=True)}
    except PynamoDBException as exc:
        raise StoreUnavailable("The lead store did not answer; retry shortly.") from exc


def record_push(lead_id: str, target: str, *, crm_id: str | None, version: int, synced_at: str) -> bool:
    """Write `crm.<target>` back on the lead without a version bump; False if the lead is gone or erasing."""
    value: dict[str, Any] = {"synced_at": synced_at, "version": version}
    if crm_id:
        value["id"] = crm_id
    try:
        # the model's table connection (it knows the key schema); not LeadItem.update, which moves the version
        LeadItem._get_connection().update_item(
            lead_pk(lead_id),
            LEAD_SK,
            actions=[LeadItem.crm[target].set(value)],
            condition=LeadItem.pk.exists() & LeadItem.erasing.does_not_exist(),
        )
    except PynamoDBException as exc:
        if getattr(exc, "cause_response_code", None) == "ConditionalCheckFailedException":
            return False
        raise StoreUnavailable("The lead store did not take the write; retry shortly.") from exc
    return True


def add_history(lead_id: str, at: str, detail: dict[str, Any]) -> None:
    """A `push` timeline entry (target, outcome, version, CRM id or reason: never personal data)."""
    entry = HistoryItem(
        lead_pk(lead_id),
        history_sk(at, "push", uuid.uuid4().hex[:12]),
        entity="history",
        lead_id=lead_id,
        kind="push",
        at=at,
        detail={k: v for k, v in detail.items() if v is not None},
        source=str(detail.get("target") or ""),
        created_at=at,
    )
    try:
        entry.save()
    except PynamoDBException as exc:
        raise StoreUnavailable("The lead store did not take the write; retry shortly.") from exc


def _target_key(target: str) -> str:
    return f"CRMTARGET#{target}"


def disable_target(target: str, at: str, reason: str) -> None:
    KeyItem(
        _target_key(target),
        TARGET_STATE_SK,
        entity="crm_target",
        answer={"disabled_at": at, "reason": reason},
        created_at=at,
    ).save()


def enable_target(target: str, at: str) -> None:
    try:
        KeyItem(
            _target_key(target), TARGET_STATE_SK, entity="crm_target", answer={"enabled_at": at}, created_at=at
        ).save()
    except PynamoDBException as exc:
        raise StoreUnavailable("The lead store did not take the write; retry shortly.") from exc


def target_disabled(target: str) -> dict | None:
    try:
        item = KeyItem.get(_target_key(target), TARGET_STATE_SK, consistent_read=True)
    except DoesNotExist:
        return None
    except PynamoDBException as exc:
        raise StoreUnavailable("The lead store did not answer; retry shortly.") from exc
    state = item.answer.as_dict() if item.answer is not None else {}
    return state if state.get("disabled_at") else None
