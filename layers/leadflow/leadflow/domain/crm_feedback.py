"""CRM feedback (pure): a CRM's verdict on a lead → its lifecycle move and the next action its reason calls for.

A CRM event is reduced to a `CrmEvent`: an outcome (`sql`, `opportunity`, `won`, `lost`, `disqualified`), a
reason, a deal value, or an association (a deal's contact). `decide` applies one event to a lead:
- outcomes move the lead through `domain.lifecycle` (won → customer, lost → recycled, disqualified), never
  backwards: an event not newer than the last outcome applied (`crm_feedback.at`, the CRM's own time) is
  stale, a move the funnel forbids is ignored, and a customer is never recycled by a lost deal;
- a lost or disqualified lead's reason picks the first matching rule of the configuration, whose action may
  disqualify, suppress for N days and/or schedule a journey N days later (or when the suppression ends);
- every decision is a `crm` timeline entry naming the CRM, the event and, for an action, its rule.
No I/O, no clock: `now` is passed in (journey time for the schedules).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from leadflow.domain import lifecycle
from leadflow.domain.attribution import iso
from leadflow.errors import StageTransitionForbidden

OUTCOME_STAGE = {
    "sql": "sql",
    "opportunity": "opportunity",
    "won": "customer",
    "lost": "recycled",
    "disqualified": "disqualified",
}
OUTCOMES = tuple(OUTCOME_STAGE)
MAX_REASON = 200
DEFAULT_RULE = "default-lost"  # the action of a lost outcome whose reason matches no rule (or has none yet)


@dataclass(frozen=True)
class Action:
    stage: str | None = None  # recycled | disqualified
    journey: str | None = None
    after_days: int | None = None
    suppress_days: int | None = None


@dataclass(frozen=True)
class ReasonRule:
    id: str
    match: tuple[str, ...]
    action: Action


@dataclass(frozen=True)
class FeedbackConfig:
    contact_properties: dict[str, dict[str, str]] = field(default_factory=dict)
    deal_properties: dict[str, dict[str, str]] = field(default_factory=dict)
    reason_properties: tuple[str, ...] = ()
    value_property: str | None = None
    reasons: tuple[ReasonRule, ...] = ()
    default_lost_action: Action = Action(stage="recycled")

    def rule_for(self, reason: str | None) -> ReasonRule | None:
        text = _normal(reason)
        if not text:
            return None
        for rule in self.reasons:
            if any(_normal(m) in text for m in rule.match):
                return rule
        return None


def _normal(text: str | None) -> str:
    return " ".join((text or "").lower().replace("_", " ").replace("-", " ").split())


@dataclass(frozen=True)
class CrmEvent:
    """One CRM event, as LeadFlow reads it (ids and values only, no personal data but `email`)."""

    crm: str  # the CRM target name, as in the lead's `crm` map (hubspot, salesforce, ...)
    event_id: str  # the delivery key's id part: a redelivery carries the same
    occurred_at: str  # ISO 8601 UTC, the CRM's time of the change
    kind: str  # outcome | reason | value | association
    object_type: str = "contact"  # contact | deal | record
    object_id: str | None = None  # the CRM record the event is about
    outcome: str | None = None
    reason: str | None = None
    value: float | None = None
    currency: str | None = None
    contact_id: str | None = None  # association: the deal's contact
    removed: bool = False  # association removed
    lead_id: str | None = None  # generic events may name the lead directly
    email: str | None = None  # or by its email (normalised)
    detail: str | None = None  # what the CRM said, for the timeline (e.g. "dealstage=closedwon")

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v not in (None, False)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CrmEvent:
        known = set(cls.__dataclass_fields__)
        values = {k: v for k, v in data.items() if k in known}
        if values.get("value") is not None:
            values["value"] = float(values["value"])
        return cls(**values)


@dataclass
class Decision:
    status: str  # applied | stale | ignored
    lead: dict
    history: list[tuple[str, dict]] = field(default_factory=list)
    schedule: dict | None = None  # {journey, start_at} when a journey is to be started later
    why: str | None = None


def _source(event: CrmEvent) -> str:
    return f"crm:{event.crm}"


def _entry(event: CrmEvent, **detail: Any) -> tuple[str, dict]:
    base = {
        "crm": event.crm,
        "event": event.kind,
        "object": f"{event.object_type}:{event.object_id}" if event.object_id else None,
        "said": event.detail,
        "source": _source(event),
    }
    base.update(detail)
    return "crm", {k: v for k, v in base.items() if v is not None}


def decide(
    lead: dict,
    event: CrmEvent,
    config: FeedbackConfig,
    now: datetime,
    journey_now: datetime,
    journeys: frozenset[str] = frozenset(),
) -> Decision:
    """The lead after `event` (a new dict), the history to write, and a journey to schedule, if any."""
    state = dict(lead.get("crm_feedback") or {})
    updated = dict(lead)
    if event.kind == "outcome" and event.outcome in OUTCOME_STAGE:
        return _outcome(updated, state, event, config, now, journey_now, journeys)
    if event.kind == "reason":
        return _reason(updated, state, event, config, now, journey_now, journeys)
    if event.kind == "value":
        if state.get("value_at") and state["value_at"] >= event.occurred_at:
            return _not_applied("stale", lead, event, "an equal or newer value was applied")
        state.update(value=event.value, currency=event.currency, value_at=event.occurred_at)
        updated["crm_feedback"] = _clean(state)
        return Decision("applied", updated, [_entry(event, outcome="value", value=event.value)])
    return _not_applied("ignored", lead, event, "nothing to apply")


def _not_applied(status: str, lead: dict, event: CrmEvent, why: str) -> Decision:
    return Decision(status, lead, [_entry(event, outcome=status, why=why)], why=why)


def _clean(state: dict) -> dict:
    return {k: v for k, v in state.items() if v is not None}


def _outcome(
    lead: dict,
    state: dict,
    event: CrmEvent,
    config: FeedbackConfig,
    now: datetime,
    journey_now: datetime,
    journeys: frozenset[str],
) -> Decision:
    assert event.outcome is not None
    if state.get("at") and state["at"] >= event.occurred_at:
        return _not_applied("stale", lead, event, f"an outcome of {state['at']} is newer or equal")
    current = lead.get("lifecycle_stage") or "lead"
    target = OUTCOME_STAGE[event.outcome]
    if state.get("outcome") == event.outcome and current == (state.get("stage") or target):
        return _not_applied("ignored", lead, event, f"already {event.outcome}")  # e.g. our own push echoed
    if current == "customer" and event.outcome in ("lost", "disqualified"):
        return _not_applied("ignored", lead, event, "the lead is a customer")
    reason = (event.reason or state.get("pending_reason") or "")[:MAX_REASON] or None
    rule = config.rule_for(reason) if event.outcome in ("lost", "disqualified") else None
    action = rule.action if rule else (config.default_lost_action if event.outcome == "lost" else None)
    if action is not None and action.stage:
        target = action.stage if event.outcome == "lost" else target
    history: list[tuple[str, dict]] = []
    try:
        moved = _move(lead, target, reason or event.detail or event.outcome, _source(event), now, history)
    except StageTransitionForbidden as refused:
        return _not_applied("ignored", lead, event, refused.detail)
    state.update(
        at=event.occurred_at,
        outcome=event.outcome,
        stage=moved.get("lifecycle_stage"),
        crm=event.crm,
        reason=reason,
        pending_reason=None,
        rule=None,
    )
    if event.object_type == "deal" and event.object_id:
        state["deals"] = sorted({*(state.get("deals") or []), event.object_id})[-20:]
    value = event.value if event.value is not None else (state.get("value") if event.outcome == "won" else None)
    if event.value is not None:
        state.update(value=event.value, currency=event.currency, value_at=event.occurred_at)
    moved["crm_feedback"] = _clean(state)
    detail: dict[str, Any] = {"outcome": event.outcome, "stage": moved.get("lifecycle_stage"), "reason": reason}
    if event.outcome == "won" and value is not None:
        detail.update(value=value, currency=event.currency or state.get("currency"))
    history.append(_entry(event, **detail))
    decision = Decision("applied", moved, history)
    if rule is not None or (action is not None and event.outcome == "lost"):
        _act(decision, event, rule, action, now, journey_now, journeys)
    return decision


def _reason(
    lead: dict,
    state: dict,
    event: CrmEvent,
    config: FeedbackConfig,
    now: datetime,
    journey_now: datetime,
    journeys: frozenset[str],
) -> Decision:
    """A reason that came on its own (HubSpot sends each property change as its own event)."""
    reason = (event.reason or "")[:MAX_REASON] or None
    if not reason:
        return _not_applied("ignored", lead, event, "no reason given")
    if state.get("reason_at") and state["reason_at"] >= event.occurred_at:
        return _not_applied("stale", lead, event, "an equal or newer reason was applied")
    state["reason_at"] = event.occurred_at
    if state.get("outcome") not in ("lost", "disqualified") or (state.get("at") or "") > event.occurred_at:
        # the outcome has not come yet (or a newer one replaced it): kept for the lost/disqualified to come
        state["pending_reason"] = reason
        lead["crm_feedback"] = _clean(state)
        return Decision("applied", lead, [_entry(event, outcome="reason_kept", reason=reason)])
    if state.get("rule") not in (None, DEFAULT_RULE):
        return _not_applied("ignored", lead, event, f"rule {state['rule']} already acted on this outcome")
    state["reason"] = reason
    lead["crm_feedback"] = _clean(state)
    rule = config.rule_for(reason)
    decision = Decision("applied", lead, [])
    if rule is None:
        decision.history.append(_entry(event, outcome="reason", reason=reason, rule=None))
        return decision
    if rule.action.stage and rule.action.stage != (lead.get("lifecycle_stage") or "lead"):
        try:
            decision.lead = _move(lead, rule.action.stage, reason, _source(event), now, decision.history)
        except StageTransitionForbidden as refused:
            return _not_applied("ignored", lead, event, refused.detail)
    decision.history.append(_entry(event, outcome="reason", reason=reason))
    _act(decision, event, rule, rule.action, now, journey_now, journeys)
    return decision


def _move(lead: dict, target: str, reason: str, source: str, now: datetime, history: list) -> dict:
    """`lead` moved to `target` through the lifecycle; a recycled (or CRM-disqualified) lead that the CRM
    reopens goes back through recycled → lead first, as the funnel requires."""
    current = lead.get("lifecycle_stage") or "lead"
    if current == target:
        return dict(lead)
    path = [target]
    if target in lifecycle.FUNNEL and current in lifecycle.EXITS:
        path = (["recycled"] if current == "disqualified" else []) + ["lead", target]
    moved = lead
    for stage in path:
        move = lifecycle.transition(moved.get("lifecycle_stage") or "lead", stage, reason, source, now)
        moved = lifecycle.apply_transition(moved, move)
        history.append(("stage", move.as_dict()))
    return moved


def _act(
    decision: Decision,
    event: CrmEvent,
    rule: ReasonRule | None,
    action: Action | None,
    now: datetime,
    journey_now: datetime,
    journeys: frozenset[str],
) -> None:
    """The rule's next action on the decided lead: suppression, a later journey; one `crm` entry naming it."""
    if action is None:
        return
    lead = decision.lead
    rule_id = rule.id if rule else DEFAULT_RULE
    state = dict(lead.get("crm_feedback") or {})
    state["rule"] = rule_id
    detail: dict[str, Any] = {"outcome": "action", "rule": rule_id, "stage": lead.get("lifecycle_stage")}
    start: datetime | None = None
    if action.suppress_days:
        until = now + timedelta(days=action.suppress_days)
        lead["suppressed"] = {
            "reason": f"crm:{rule_id}",
            "since": iso(now),
            "until": iso(until),
            "source": _source(event),
        }
        decision.history.append(("suppression", dict(lead["suppressed"])))
        detail["suppressed_until"] = iso(until)
        start = journey_now + timedelta(days=action.suppress_days)
    if action.journey and lead.get("lifecycle_stage") != "disqualified":
        if action.after_days is not None:
            start = journey_now + timedelta(days=action.after_days)
        start = start or journey_now
        if journeys and action.journey not in journeys:
            detail["journey_refused"] = f"{action.journey} is not a configured journey"
        else:
            decision.schedule = {"journey": action.journey, "start_at": start}
            detail.update(journey=action.journey, journey_at=iso(start))
    lead["crm_feedback"] = _clean(state)
    decision.history.append(_entry(event, **detail))
