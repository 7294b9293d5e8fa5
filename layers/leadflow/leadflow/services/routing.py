"""Routing use cases: assign an MQL its owner, enforce the response-time SLA, accept, explain, simulate.

Flow: a lead reaching `mql` (scoring, an event, an operator's or a CRM's stage move: whatever wrote it) shows
up on the leads stream; the CRM push router (the stream's existing reader) sends leads that need an owner to
the routing queue instead of the CRM queues. `route_messages` (RouteLeadsFunction) assigns them:
1 GetItem + 1 PutItem of the routing state (race-free at its version), 1 GetItem + 1 TransactWriteItems of the
lead (`owner` and an `owner` timeline entry), then one EventBridge Scheduler one-time schedule for its SLA.
The owner change comes back on the stream and the router pushes the lead, owner included, to the CRMs.

`check_sla` (RoutingSlaFunction, invoked by that schedule) does nothing when the assignment was accepted
(`leadflow leads accept`, or the stage moved on from mql: a CRM's stage change counts), superseded, or the lead
is gone; otherwise it reassigns by the same rules without the owners who let it lapse, or recycles it to
nurture (through the lifecycle service), as configured. Nothing here ever scans: the schedule names the lead.
"""

from __future__ import annotations

import json
import random
import time
from collections import Counter
from datetime import UTC, datetime

from aws_lambda_powertools.metrics import MetricUnit

from leadflow.domain import routing as domain
from leadflow.domain.attribution import iso
from leadflow.domain.routing import Decision, RoutingConfig, State
from leadflow.errors import (
    NotFound,
    RoutingConfigInvalid,
    StageTransitionForbidden,
    StoreUnavailable,
    UpstreamUnavailable,
)
from leadflow.observability import logger, metrics
from leadflow.store import leads as lead_store
from leadflow.store import routing as store
from leadflow.store.leads import WriteConflict

MAX_ATTEMPTS = 12  # the lead's write at its version
STATE_ATTEMPTS = 200  # the routing state under contention: each lost round re-reads (jittered, capped backoff)


def utcnow() -> datetime:
    return datetime.now(UTC)


def routing_config() -> RoutingConfig:
    """The rules in force; a bad configuration is logged (file, line, field) and counted for the alarm, and the
    message is retried (the leads wait for the fix instead of being routed by a half-read configuration)."""
    from leadflow.routing_config import configured_routing

    try:
        return configured_routing()
    except RoutingConfigInvalid as invalid:
        logger.error(
            "routing configuration refused", extra={"source": invalid.source, "problems": invalid.problems[:20]}
        )
        metrics.add_metric(name="RoutingConfigInvalid", unit=MetricUnit.Count, value=1)
        raise UpstreamUnavailable("The routing configuration is not valid; retry after it is fixed.") from None


def _backoff(attempt: int, cap: float) -> None:
    time.sleep(random.uniform(0, min(cap, 0.001 * 2 ** min(attempt, 10))))  # noqa: S311 - jitter, not crypto


def reserve(lead: dict, config: RoutingConfig, now: datetime, exclude: frozenset[str] = frozenset()) -> Decision:
    """Decide the lead's owner and record the turn and the owner's daily count: race-free, at the state's version.

    A decision that changes nothing in the state (a queue) writes nothing."""
    for attempt in range(STATE_ATTEMPTS):
        state, version = store.read_state()
        decision = domain.decide(lead, config, state, now, exclude)
        if decision.owner is None:
            return decision
        after = domain.apply(state, decision, now)
        if after == state or store.save_state(after, version, iso(now)):
            return decision
        _backoff(attempt, 0.05)
    raise StoreUnavailable("The routing state kept changing; retry shortly.")


def assign_lead(
    lead_id: str, now: datetime | None = None, *, replacing: int | None = None, reason: str = "qualified"
) -> dict | None:
    """Give the lead its owner (or, `replacing` assignment n after an SLA breach, the next one); the `owner`
    written, or None when there is nothing to do (already routed, accepted, moved on, gone, nobody available)."""
    now = now or utcnow()
    config = routing_config()
    decision: Decision | None = None  # reserved once: a retry of the lead's write reuses the same turn
    for attempt in range(MAX_ATTEMPTS):
        lead = lead_store.get_lead(lead_id)
        if lead is None or lead.get("erasing"):
            return None
        current = lead.get("owner") or {}
        if replacing is None:
            if not domain.needs_owner(lead):
                _ensure_sla_check(lead)
                return None
            previous: list[str] = []
        else:
            if current.get("assignment") != replacing or _settled(lead):
                return None
            previous = [*(current.get("previous") or []), current["id"]]
        if decision is None:
            decision = reserve(lead, config, now, frozenset(previous))
        number = int(current.get("assignment") or 0) + 1
        if decision.owner is None:
            metrics.add_metric(name="RoutingNobodyAvailable", unit=MetricUnit.Count, value=1)
            logger.warning("no owner available", extra={"lead_id": lead_id, "excluded": len(previous)})
            if replacing is not None:
                return None  # the SLA check recycles it
            # Routed to nobody: said on the lead and its timeline, and the push goes ahead without an owner
            try:
                store.save_owner(
                    lead,
                    {"assigned_at": iso(now), "assignment": number, "unassigned": True},
                    {"owner": None, "reason": "nobody available: " + "; ".join(t.why for t in decision.trace)[:400]},
                    iso(now),
                )
            except WriteConflict:
                _backoff(attempt, 0.2)
                continue
            return None
        due = domain.due_at(decision.owner, config.sla, now)
        entry = domain.owner_entry(decision, now, number, previous, due)
        detail = {
            "owner": entry["id"],
            "team": entry["team"],
            "rule": entry["rule"],
            "reason": reason,
            "previous_owner": current.get("id") if replacing is not None else None,
            "due_at": entry.get("due_at"),
            "source": "routing",
        }
        try:
            store.save_owner(lead, entry, detail, iso(now))
        except WriteConflict:
            _backoff(attempt, 0.2)
            continue
        metrics.add_metric(
            name="LeadAssigned" if replacing is None else "LeadReassigned", unit=MetricUnit.Count, value=1
        )
        logger.info(
            "lead assigned", extra={"lead_id": lead_id, "owner": entry["id"], "rule": entry["rule"], "n": number}
        )
        if due is not None:
            from leadflow import schedules

            schedules.create_sla_check(lead_id, number, due)
        return entry
    raise StoreUnavailable("The lead kept changing; retry shortly.")


def _settled(lead: dict) -> bool:
    """The owner answered: accepted, or the lead left mql (sql and later from the CRM, recycled, disqualified)."""
    return bool((lead.get("owner") or {}).get("accepted_at")) or lead.get("lifecycle_stage") != "mql"


def _ensure_sla_check(lead: dict) -> None:
    """A redelivered routing message after the owner was written: make sure its SLA check exists (idempotent)."""
    owner = lead.get("owner") or {}
    if owner.get("due_at") and owner.get("assignment") and not _settled(lead):
        from leadflow import schedules

        due = datetime.fromisoformat(owner["due_at"].replace("Z", "+00:00"))
        schedules.create_sla_check(lead["lead_id"], int(owner["assignment"]), due)


def route_messages(bodies: list[str]) -> int:
    """RouteLeadsFunction: assign each lead of the routing messages (`{"leads": [{"lead_id"}]}`)."""
    assigned = 0
    for body in bodies:
        for ref in json.loads(body).get("leads") or []:
            if assign_lead(str(ref["lead_id"])) is not None:
                assigned += 1
    return assigned


def check_sla(lead_id: str, assignment: int, now: datetime | None = None) -> str:
    """RoutingSlaFunction: what the SLA check did: accepted, superseded, gone, reassigned, recycled, unassigned."""
    now = now or utcnow()
    lead = lead_store.get_lead(lead_id)
    if lead is None or lead.get("erasing"):
        return "gone"
    owner = lead.get("owner") or {}
    if owner.get("assignment") != assignment:
        return "superseded"
    if _settled(lead):
        return "accepted"
    config = routing_config()
    sla = config.sla
    lapsed = f"no response from {owner['id']} within {sla.describe()}"
    metrics.add_metric(name="RoutingSlaBreached", unit=MetricUnit.Count, value=1)
    if sla.on_breach == "reassign" and len(owner.get("previous") or []) < sla.max_reassignments:
        entry = assign_lead(lead_id, now, replacing=assignment, reason=f"reassigned: {lapsed}")
        if entry is not None:
            return "reassigned"
        again = lead_store.get_lead(lead_id) or {}
        if (again.get("owner") or {}).get("assignment") != assignment or _settled(again):
            return "accepted"  # answered (or moved on) while the check ran
        why = f"{lapsed}, and nobody else is available"
    elif sla.on_breach == "reassign":
        why = f"{lapsed} (after {sla.max_reassignments} reassignments)"
    else:
        why = lapsed
    return _recycle(lead_id, why, now)


def _recycle(lead_id: str, why: str, now: datetime) -> str:
    from leadflow.services.leads import set_stage

    try:
        set_stage(lead_id, "recycled", f"recycled to nurture: {why}", source="routing", now=now)
    except (NotFound, StageTransitionForbidden):
        return "gone"
    metrics.add_metric(name="LeadRecycledBySla", unit=MetricUnit.Count, value=1)
    logger.info("lead recycled by SLA", extra={"lead_id": lead_id})
    return "recycled"


def accept_lead(lead_id: str, now: datetime | None = None) -> dict:
    """The owner accepts the lead (`leadflow leads accept`): its SLA check will find nothing to do."""
    from leadflow.services.leads import _check_id, get_lead

    _check_id(lead_id)
    now = now or utcnow()
    for attempt in range(MAX_ATTEMPTS):
        lead = lead_store.get_lead(lead_id)
        if lead is None or lead.get("erasing"):
            raise NotFound(f"No lead with id {lead_id}.")
        owner = dict(lead.get("owner") or {})
        if not owner.get("id"):
            raise StageTransitionForbidden("The lead has no owner to accept it.")
        if owner.get("accepted_at"):
            return get_lead(lead_id)
        owner["accepted_at"] = iso(now)
        detail = {"owner": owner["id"], "team": owner.get("team"), "accepted": True, "source": "operator"}
        try:
            store.save_owner(lead, owner, detail, iso(now))
        except WriteConflict:
            _backoff(attempt, 0.2)
            continue
        metrics.add_metric(name="LeadAccepted", unit=MetricUnit.Count, value=1)
        return get_lead(lead_id)
    raise StoreUnavailable("The lead kept changing; retry shortly.")


# ------------------------------------------------------------------------------------- operator what-ifs
def explain(lead_id: str, config: RoutingConfig | None = None, now: datetime | None = None) -> list[str]:
    """Which rule matches the lead now (with today's availability) and why each earlier rule did not."""
    from leadflow.services.leads import _check_id

    _check_id(lead_id)
    lead = lead_store.get_lead(lead_id)
    if lead is None or lead.get("erasing"):
        raise NotFound(f"No lead with id {lead_id}.")
    config = config or routing_config()
    state, _ = store.read_state()
    owner = lead.get("owner") or {}
    exclude = frozenset([*(owner.get("previous") or [])])
    lines = [f"lead {lead_id} (stage {lead.get('lifecycle_stage')})"]
    if owner.get("id"):
        lines.append(f"owner now: {owner['id']} by rule {owner.get('rule')} at {owner.get('assigned_at')}")
    return lines + domain.decide(lead, config, state, now or utcnow(), exclude).explain()


def simulate(candidate: RoutingConfig, current: RoutingConfig, limit: int = 200, now: datetime | None = None) -> dict:
    """How the most recent MQLs (one Query of LeadsByStage, one BatchGetItem per 100) would be distributed by
    `candidate` and by `current`, each from a fresh state in order of arrival. Writes nothing."""
    from leadflow.store import cohort

    now = now or utcnow()
    ids = store.recent_mql_ids(limit)
    leads = [lead for i in range(0, len(ids), 100) for lead in cohort.read_leads(ids[i : i + 100])]
    leads.sort(key=lambda lead: lead.get("mql_at") or lead.get("created_at") or "")
    result = {}
    picks: dict[str, list[str | None]] = {}
    for name, config in (("current", current), ("candidate", candidate)):
        state = State()
        owners: Counter = Counter()
        rules: Counter = Counter()
        chosen: list[str | None] = []
        for lead in leads:
            decision = domain.decide(lead, config, state, now)
            state = domain.apply(state, decision, now)
            owners[decision.owner.id if decision.owner else "(nobody)"] += 1
            rules[decision.rule or "(none)"] += 1
            chosen.append(decision.owner.id if decision.owner else None)
        result[name] = {"by_owner": dict(owners), "by_rule": dict(rules)}
        picks[name] = chosen
    changed = sum(1 for a, b in zip(picks["current"], picks["candidate"], strict=True) if a != b)
    return {"leads": len(leads), "changed": changed, **result}
