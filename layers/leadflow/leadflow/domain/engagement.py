"""Engagement events and what they do to a lead (pure: `now` and the model are passed in).

- `parse_events(document, now)`: the body of `POST /v1/events` (one event, `{"events": [...]}` or a JSON array
  of up to MAX_EVENTS) → one `Parsed` per event: the checked event, or its field errors. A bad event never
  spoils the good ones of its batch.
- `apply_events(lead, events, model, now, source)`: the lead after the events (its compact engagement
  summary, consent and suppression, score, persona and stage) and the HistoryItem entries of what changed.
- `rescore(lead, model, now, reason, source)`: the same scoring step alone (capture calls it when the
  profile changes the fit).

The lead keeps a compact summary of its engagement (`engagement`: one string per scored event,
`<occurred_at>|<type>|<JSON of only the properties scoring reads>`) so that an event is scored with one read
of the lead, never a Query of all its events. The summary is bounded (MAX_ENGAGEMENT entries and
MAX_ENGAGEMENT_BYTES, so the lead item stays small: every event rewrites it): events older than the model's
longest window are dropped first (they score nothing), then the oldest. Every event is also stored whole as
an EventItem for the timeline and for rescoring after a model change.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from leadflow.domain import lifecycle
from leadflow.domain.attribution import iso
from leadflow.domain.model import EVENT_TYPES, SUPPRESSION_EVENT_TYPES
from leadflow.domain.normalise import normalise_email
from leadflow.domain.scoring import score_lead
from leadflow.domain.scoring_model import ScoringModel
from leadflow.errors import FieldError

MAX_EVENTS = 100  # per delivery
MAX_FUTURE = timedelta(minutes=5)  # clock skew allowed for occurred_at
MAX_PROPERTIES = 50
MAX_PROPERTY_NAME = 64
MAX_TEXT = 2048
MAX_LIST = 20
MAX_PROPERTIES_BYTES = 8 * 1024
MAX_EVENT_ID = 200
MAX_ENGAGEMENT = 200  # summary entries on the lead
MAX_ENGAGEMENT_BYTES = 16 * 1024  # written with every event (2 WCU per KB in a transaction): keep it small
SUMMARY_TEXT = 256  # a summarised property value is cut to this many characters
ALWAYS_SUMMARISED = ("url", "product")
_LEAD_ID_CHARS = frozenset("0123456789abcdefABCDEF-")


@dataclass(frozen=True)
class Event:
    index: int
    type: str
    occurred_at: str  # ISO 8601 UTC, milliseconds
    properties: dict[str, Any]
    lead_id: str | None = None
    email: str | None = None
    event_id: str | None = None  # the sender's own id of the event (stable across deliveries), if given

    @property
    def suppresses(self) -> bool:
        return self.type in SUPPRESSION_EVENT_TYPES


@dataclass(frozen=True)
class Parsed:
    index: int
    event: Event | None = None
    errors: tuple[FieldError, ...] = ()


@dataclass
class Outcome:
    """A lead after some events: the new lead and the history entries (kind, detail) to write with it."""

    lead: dict
    history: list[tuple[str, dict]] = field(default_factory=list)


def event_list(document: Any) -> list[Any] | list[FieldError]:
    """The events of a body: a JSON array, `{"events": [...]}` or one event object."""
    if isinstance(document, list):
        return document
    if isinstance(document, dict) and "events" in document and "type" not in document:
        events = document["events"]
        return events if isinstance(events, list) else [FieldError("events", "must be an array of events")]
    return [document]


def parse_events(events: list[Any], now: datetime, max_age: timedelta) -> list[Parsed]:
    return [parse_event(i, raw, now, max_age) for i, raw in enumerate(events)]


def parse_event(index: int, raw: Any, now: datetime, max_age: timedelta) -> Parsed:
    if not isinstance(raw, dict):
        return Parsed(index, errors=(FieldError("", "an event must be a JSON object"),))
    errors: list[FieldError] = []
    kind = raw.get("type")
    if not isinstance(kind, str) or kind not in EVENT_TYPES:
        errors.append(FieldError("type", "must be one of " + ", ".join(EVENT_TYPES)))
    lead_id, email = raw.get("lead_id"), raw.get("email")
    if (lead_id is None) == (email is None):
        errors.append(FieldError("email", "give either email or lead_id (exactly one)"))
    elif lead_id is not None:
        if not isinstance(lead_id, str) or not 0 < len(lead_id) <= 64 or not set(lead_id) <= _LEAD_ID_CHARS:
            errors.append(FieldError("lead_id", "is not a lead id"))
            lead_id = None
        else:
            lead_id = lead_id.lower()
    else:
        email, error = normalise_email(email if isinstance(email, str) else None)
        if error or not email:
            errors.append(FieldError("email", "is not a valid email address"))
    occurred = _time(raw.get("occurred_at"))
    if occurred is None:
        errors.append(FieldError("occurred_at", "must be an ISO 8601 date-time with a time zone"))
    elif occurred > now + MAX_FUTURE:
        errors.append(FieldError("occurred_at", "is in the future (more than 5 minutes ahead)"))
    elif occurred < now - max_age:
        errors.append(FieldError("occurred_at", f"is older than {max_age.days} days"))
    properties = raw.get("properties", {})
    errors.extend(_property_errors(properties))
    if not errors and kind == "page_view" and not isinstance(properties.get("url"), str):
        errors.append(FieldError("properties.url", "is required for page_view (the page's URL)"))
    event_id = raw.get("id")
    if event_id is not None and (not isinstance(event_id, str) or not 0 < len(event_id) <= MAX_EVENT_ID):
        errors.append(FieldError("id", f"must be a string of 1 to {MAX_EVENT_ID} characters"))
    if errors:
        return Parsed(index, errors=tuple(errors))
    assert occurred is not None and isinstance(kind, str)  # noqa: S101 - narrowed by the checks above
    return Parsed(
        index,
        Event(index, kind, iso(occurred), dict(properties or {}), lead_id, email, event_id),
    )


def _time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not 10 <= len(value) <= 40:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        return None
    try:
        return parsed.astimezone(UTC)
    except (OverflowError, ValueError):
        return None


def _property_errors(properties: Any) -> list[FieldError]:
    if properties is None:
        return []
    if not isinstance(properties, dict):
        return [FieldError("properties", "must be an object")]
    errors = []
    if len(properties) > MAX_PROPERTIES:
        errors.append(FieldError("properties", f"at most {MAX_PROPERTIES} properties"))
    for name, value in list(properties.items())[: MAX_PROPERTIES + 1]:
        where = f"properties.{str(name)[:MAX_PROPERTY_NAME]}"
        if not name or len(name) > MAX_PROPERTY_NAME:
            errors.append(FieldError("properties", f"property names have 1 to {MAX_PROPERTY_NAME} characters"))
        elif isinstance(value, list):
            if len(value) > MAX_LIST or not all(_scalar_ok(v) for v in value):
                errors.append(FieldError(where, f"a list holds at most {MAX_LIST} texts, numbers or booleans"))
        elif not _scalar_ok(value):
            errors.append(FieldError(where, f"must be a text (at most {MAX_TEXT} characters), number or boolean"))
    if not errors and len(json.dumps(properties, ensure_ascii=False).encode()) > MAX_PROPERTIES_BYTES:
        errors.append(FieldError("properties", f"at most {MAX_PROPERTIES_BYTES} bytes"))
    return errors


def _scalar_ok(value: Any) -> bool:
    if value is None or isinstance(value, bool):
        return True
    if isinstance(value, str):
        return len(value) <= MAX_TEXT
    if isinstance(value, int):
        return abs(value) < 10**38
    if isinstance(value, float):
        return math.isfinite(value) and (value == 0 or 1e-130 <= abs(value) < 1e126)
    return False


# ------------------------------------------------------------------------------------------ the lead
def summarised_properties(model: ScoringModel) -> frozenset[str]:
    """The event properties scoring reads (rule patterns and the score group), kept in the lead's summary."""
    names = {name for rule in model.behaviour_rules for name, _, _ in rule.properties}
    if model.group_property:
        names.add(model.group_property)
    return frozenset(names | set(ALWAYS_SUMMARISED))


def summary_entry(event: Event, keep: frozenset[str]) -> str:
    props = {}
    for name in sorted(keep & event.properties.keys()):
        value = event.properties[name]
        if isinstance(value, str):
            value = value[:SUMMARY_TEXT]
        elif isinstance(value, list):
            value = [v[:SUMMARY_TEXT] if isinstance(v, str) else v for v in value]
        props[name] = value
    text = json.dumps(props, ensure_ascii=False, separators=(",", ":")) if props else ""
    return f"{event.occurred_at}|{event.type}|{text}"


def summary_events(entries: list[str]) -> list[dict]:
    """The summary as the events scoring reads (`{"type", "occurred_at", "properties"}`)."""
    events = []
    for entry in entries:
        if not isinstance(entry, str):
            continue
        occurred, _, rest = entry.partition("|")
        kind, _, props = rest.partition("|")
        try:
            properties = json.loads(props) if props else {}
        except ValueError:
            properties = {}
        events.append({"type": kind, "occurred_at": occurred, "properties": properties})
    return events


def cap_engagement(entries: list[str], model: ScoringModel, now: datetime) -> list[str]:
    """Newest first within the caps: out-of-window entries go first (they score nothing), then the oldest.

    ISO 8601 UTC times of one format sort as text, so the entry strings sort by time."""
    windows = [rule.window_seconds for rule in model.behaviour_rules]
    ordered = sorted((e for e in entries if isinstance(e, str)), reverse=True)
    if windows and all(w is not None for w in windows):
        cutoff = iso(now - timedelta(seconds=max(w for w in windows if w is not None)))
        ordered = [e for e in ordered if e >= cutoff]
    ordered = ordered[:MAX_ENGAGEMENT]
    size = sum(len(e.encode()) + 1 for e in ordered)
    while ordered and size > MAX_ENGAGEMENT_BYTES:
        size -= len(ordered.pop().encode()) + 1
    return ordered


def apply_events(lead: dict, events: list[Event], model: ScoringModel, now: datetime, source: str) -> Outcome:
    """The lead after `events`: summary, consent/suppression, score and stage, with the history to write."""
    updated = dict(lead)
    history: list[tuple[str, dict]] = []
    keep = summarised_properties(model)
    summary = list(updated.get("engagement") or [])
    scored = []
    for event in events:
        if event.suppresses:
            _suppress(updated, event, source, history)
        elif event.type in model.routes:
            summary.append(summary_entry(event, keep))
            scored.append(event.type)
    updated["engagement"] = cap_engagement(summary, model, now)
    reason = "events: " + ", ".join(sorted(set(scored))) if scored else "events"
    outcome = rescore(updated, model, now, reason, source)
    outcome.history[:0] = history
    outcome.lead["updated_at"] = iso(now)
    return outcome


def _suppress(lead: dict, event: Event, source: str, history: list[tuple[str, dict]]) -> None:
    consent = dict(lead.get("consent") or {})
    current = consent.get("email") or {}
    if not current or (current.get("captured_at") or "") <= event.occurred_at:
        consent["email"] = {"granted": False, "captured_at": event.occurred_at, "source": f"{source}:{event.type}"}
    lead["consent"] = consent
    if not lead.get("suppressed"):
        lead["suppressed"] = {"reason": event.type, "since": event.occurred_at, "source": source}
        history.append(("suppression", {"reason": event.type, "since": event.occurred_at, "source": source}))


def rescore(lead: dict, model: ScoringModel, now: datetime, reason: str, source: str) -> Outcome:
    """Score the lead (fit from its fields, behaviour from its summary), qualify it, and say what changed."""
    updated = dict(lead)
    score = score_lead(updated, summary_events(list(updated.get("engagement") or [])), model, now)
    before = updated.get("score") or {}
    after = score.as_dict()
    history: list[tuple[str, dict]] = []
    updated["score"] = after
    updated["persona"] = score.persona
    if _headline(before) != _headline(after):
        history.append(
            (
                "score",
                {
                    "from": _headline(before),
                    "to": _headline(after),
                    "rules": _changed_rules(before.get("breakdown") or [], after["breakdown"]),
                    "reason": reason,
                    "source": source,
                    "model": model.name,
                },
            )
        )
    move = lifecycle.qualify(updated.get("lifecycle_stage") or "lead", score, model, now, source=source)
    if move is not None:
        updated = lifecycle.apply_transition(updated, move)
        history.append(("stage", move.as_dict()))
    return Outcome(updated, history)


def _headline(score: dict) -> dict:
    return {name: score.get(name) for name in ("fit", "behaviour", "total", "grade")}


def _changed_rules(before: list[dict], after: list[dict]) -> list[dict]:
    """The rules whose points changed: `{rule, points}` with the new points (0 when a rule no longer counts)."""
    old = {item.get("rule"): item.get("points") for item in before}
    new = {item["rule"]: item["points"] for item in after}
    changed = [{"rule": rule, "points": points} for rule, points in new.items() if old.get(rule) != points]
    changed += [{"rule": rule, "points": 0} for rule in old if rule not in new]
    return changed
