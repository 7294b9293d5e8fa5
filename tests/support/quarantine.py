"""What the quarantine holds, as an operator sees it (`leadflow quarantine list`), and what else the table holds."""

from __future__ import annotations

from leadflow.config import settings

QUARANTINE_ENTITIES = {"quarantine", "quarantine_key"}


def list_quarantine() -> list[dict]:
    """What `leadflow quarantine list` shows (imported late: the suite still collects without the feature)."""
    from leadflow.services.quarantine import list_quarantine as listing

    return listing()


def reasons(item: dict) -> dict[str, str]:
    return {r["field"]: r["message"] for r in item["reason"]}


def assert_quarantined(reply, source: str) -> dict:
    """A signed delivery validation refused: acknowledged 2xx, and exactly one quarantine item for it."""
    assert reply.status == 200, reply.body
    assert reply.json["quarantined"] == 1
    assert reply.json.get("leads", []) == []
    (item,) = list_quarantine()
    assert item["source"] == source
    return item


def assert_no_lead_stored(aws) -> None:
    """Nothing but the quarantine: no lead, touch, identity or delivery record."""
    items = aws.scan(TableName=settings().table_name)["Items"]
    assert {item["entity"]["S"] for item in items} <= QUARANTINE_ENTITIES
