"""Whether a lead waits for an owner (pure, no imports: the CRM push router asks it of every MQL it sees)."""

from __future__ import annotations


def needs_owner(lead: dict | None) -> bool:
    """An MQL without an owner for its current qualification (a lead that re-qualifies is routed again)."""
    if not lead or lead.get("lifecycle_stage") != "mql" or lead.get("erasing"):
        return False
    owner = lead.get("owner") or {}
    if not owner.get("id") and not owner.get("assigned_at"):
        return True  # (routed to nobody available: `assigned_at` without `id`, then pushed without an owner)
    assigned, qualified = owner.get("assigned_at"), lead.get("mql_at")
    return bool(assigned and qualified and assigned < qualified)
