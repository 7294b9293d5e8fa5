"""CRM push targets: each module builds batch requests and classifies every answer per record.

They never open sockets: `leadflow.services.push` sends the `Call`s they build through `leadflow.http` and
hands the `Response` back to their `classify`, which says for every record whether it is `done` (with the
CRM's record id), to `retry` later (429, 5xx, timeouts, locks; `retry_after` when the CRM said how long),
or `failed` for good (validation, duplicates: the DLQ keeps the reason).

A record is named by its push key `<lead_id>#<version>`: the idempotency key of a push.

Erasure: when a lead is erased, each target it was pushed to gets an `Erasure` (the lead id and the CRM's
record id, nothing else) through the same queue; `build_erase_calls` builds the CRM's delete (HubSpot's GDPR
delete, Salesforce's delete of the record, a signed `lead.erased` event) and `classify_erase` says done (also
when the record is gone already), retry or failed, keyed by `<lead_id>#erase`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

TARGETS = ("hubspot", "salesforce", "webhook")

Status = Literal["done", "retry", "failed"]


def push_key(lead_id: str, version: int) -> str:
    return f"{lead_id}#{version}"


def erase_key(lead_id: str) -> str:
    return f"{lead_id}#erase"


@dataclass(frozen=True)
class Erasure:
    """What deleting an erased lead in a CRM needs: no personal data, only ids."""

    lead_id: str
    crm_id: str | None = None  # the CRM's record id written back by the push (None: not known)

    @property
    def key(self) -> str:
        return erase_key(self.lead_id)


@dataclass(frozen=True)
class Outcome:
    status: Status
    crm_id: str | None = None
    reason: str = ""  # codes and field names only: never a value (it could be personal data)
    retry_after: float | None = None
    disable: bool = False  # the target said it is gone for good (webhook 410)


@dataclass(frozen=True)
class Call:
    """One HTTP request a CRM module wants sent, and the push keys it carries."""

    method: str
    url: str
    keys: tuple[str, ...]
    headers: dict[str, str] = field(default_factory=dict)
    json_body: Any = None
    data: bytes | None = None


def every(keys: tuple[str, ...] | list[str], outcome: Outcome) -> dict[str, Outcome]:
    return dict.fromkeys(keys, outcome)
