"""The operator's view of a lead's history: `GET /v1/leads/{lead_id}/timeline` (newest first, paginated)."""

from __future__ import annotations

from leadflow.errors import NotFound
from leadflow.services.leads import _check_id
from leadflow.store import leads as store
from leadflow.store import timeline


def lead_timeline(lead_id: str, cursor: str | None = None, limit: str | None = None) -> dict:
    """`{"items": [{"at", "kind", "detail"}], "next"}`; 404 for an unknown or erasing lead, 400 for a bad
    cursor or limit. Costs one GetItem and at most three Queries."""
    _check_id(lead_id)
    size = timeline.parse_limit(limit)
    lead = store.get_lead(lead_id)
    if lead is None or lead.get("erasing"):
        raise NotFound(f"No lead with id {lead_id}.")
    page = timeline.read_page(lead_id, size, cursor)
    return {"items": page.items, "next": page.next}
