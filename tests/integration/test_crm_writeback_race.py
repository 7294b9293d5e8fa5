"""The CRM write-back (`crm.<target>`) is never lost to a capture, an event or a stage move that read the lead
before it landed and writes the lead after it.

The write-back does not move the lead's version (so it never triggers another push), so a writer of the whole
lead at the version it read is not stopped by it: each test lands a write-back exactly between that writer's
read and its write, then checks what the operator sees in `GET /v1/leads/{id}`.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from leadflow.services import leads as lead_service
from leadflow.store import events as event_store
from leadflow.store import leads as lead_store
from leadflow.store import push as push_store


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _write_back_after_reading(monkeypatch, module, name: str, lead_id: str) -> list[int]:
    """Wrap `module.name` (a read of the lead) so that the CRM write-back lands right after the first read."""
    real = getattr(module, name)
    landed: list[int] = []

    def read_then_write_back(*args, **kwargs):
        found = real(*args, **kwargs)
        if not landed:
            assert push_store.record_push(lead_id, "hubspot", crm_id="1001", version=1, synced_at=_now())
            landed.append(1)
        return found

    monkeypatch.setattr(module, name, read_then_write_back)
    return landed


@pytest.fixture
def lead_id(api) -> str:
    reply = api.post_form("website", {"email": "ada.race@initech.io", "first_name": "Ada"})
    assert reply.status == 202
    return reply.json["lead_id"]


def test_a_write_back_between_a_merging_captures_read_and_write_is_kept(api, lead_id, monkeypatch):
    # Given the CRM write-back lands after a merging capture read the lead and before it writes
    landed = _write_back_after_reading(monkeypatch, lead_store, "get_lead", lead_id)
    # When the same person submits again (a merge into the lead)
    reply = api.post_form("website", {"email": "ada.race@initech.io", "company": "Initech"})
    assert reply.status == 202 and reply.json == {"lead_id": lead_id, "status": "merged"}
    assert landed
    # Then the lead shows both: the merged submission and the CRM id written back
    lead = api.request("GET", f"/v1/leads/{lead_id}").json
    assert lead["company"] == "Initech" and lead["touches"]["count"] == 2
    assert lead["crm"]["hubspot"]["id"] == "1001"


def test_a_write_back_between_an_events_read_and_write_is_kept(api, lead_id, monkeypatch):
    # Given the write-back lands after an engagement event read the lead and before it writes
    landed = _write_back_after_reading(monkeypatch, event_store, "read_for_event", lead_id)
    # When an event for the lead is posted
    reply = api.post_events({"type": "email_open", "lead_id": lead_id, "occurred_at": _now()}, "msg_race_1")
    assert reply.status == 202 and reply.json["results"][0]["status"] == "accepted"
    assert landed
    # Then the event counted and the CRM id is still on the lead
    lead = api.request("GET", f"/v1/leads/{lead_id}").json
    assert lead["score"]["behaviour"] > 0
    assert lead["crm"]["hubspot"]["id"] == "1001"


def test_a_write_back_between_a_stage_moves_read_and_write_is_kept(api, lead_id, monkeypatch):
    # Given the write-back lands after an operator's stage move read the lead and before it writes
    landed = _write_back_after_reading(monkeypatch, lead_store, "get_lead", lead_id)
    # When the operator moves the lead to SQL
    lead = lead_service.set_stage(lead_id, "sql", "called back")
    assert landed
    # Then the stage moved and the CRM id is still on the lead
    assert lead["lifecycle_stage"] == "sql"
    assert lead["crm"]["hubspot"]["id"] == "1001"
