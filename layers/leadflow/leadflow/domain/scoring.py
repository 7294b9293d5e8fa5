"""Score a lead: persona, fit and grade from its fields, behaviour from its engagement events (pure).

`score_lead(lead, events, model, now)` reads the lead JSON of the contract (profile fields, `attributes`,
`email`) and the stored engagement events (`{"type", "occurred_at", "properties"}`) and returns a `Score`
whose `as_dict()` is the lead's `score` (`{fit, behaviour, total, breakdown: [{rule, points}], grade,
groups}`). Every point is explained in `breakdown`: the rule id and, for behaviour, how many events
counted, how many the caps or the decay window left out, and the points before decay. The total is the
sum of the breakdown.

Behaviour is one pass over the events (each goes to the first rule of its type whose property patterns
match), then one pass per rule over its own events, newest first, so caps keep the most recent
engagement and stale events never use up a cap.
"""

from __future__ import annotations

import math
import unicodedata
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from leadflow.domain.scoring_model import DAY, FitRule, ScoringModel, fold, to_number


@dataclass(frozen=True)
class Score:
    fit: int
    behaviour: int
    total: int
    grade: str
    persona: str
    groups: dict[str, int]
    breakdown: tuple[dict, ...]
    qualifies: bool  # the MQL criteria of the model are met (the stage move is lifecycle.qualify's)

    def as_dict(self) -> dict:
        """The contract's `score` object of the lead JSON (the persona is a field of the lead itself)."""
        return {
            "fit": self.fit,
            "behaviour": self.behaviour,
            "total": self.total,
            "breakdown": [dict(item) for item in self.breakdown],
            "grade": self.grade,
            "groups": dict(self.groups),
        }


def _round(value: float) -> int:
    return math.floor(value + 0.5)


def timestamp(value: Any) -> float | None:
    """Epoch seconds of an event time (ISO 8601 text, a datetime, or epoch seconds); naive means UTC."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return None
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp()
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return None


def persona_of(lead: dict, model: ScoringModel) -> str:
    """The first persona whose company-size range and title patterns both match, else the default."""
    size = to_number(model.size_field.get(lead))
    titles = [unicodedata.normalize("NFKC", str(t)) for t in (lead.get("job_title"), _attr(lead, "seniority")) if t]
    for persona in model.personas:
        if persona.has_size and (size is None or not persona.size_min <= size <= persona.size_max):
            continue
        if persona.title is not None and not any(persona.title.search(t) for t in titles):
            continue
        return persona.id
    return model.default_persona


def _attr(lead: dict, name: str) -> Any:
    return lead.get(name) or (lead.get("attributes") or {}).get(name)


def _values(value: Any) -> list[Any]:
    """A multi-select answer (a list) is matched item by item."""
    if value is None:
        return []
    return [v for v in value if v not in (None, "")] if isinstance(value, list | tuple) else [value]


def _holds(rule: FitRule, lead: dict, persona: str, domain: str | None) -> bool:
    if rule.personas is not None and persona not in rule.personas:
        return False
    if rule.domains is not None and not (domain and _domain_in(domain, rule.domains)):
        return False
    if rule.field is None:
        return True
    values = _values(rule.field.get(lead))
    if rule.present is not None and bool(values) != rule.present:
        return False
    if rule.values is not None and not any(fold(v) in rule.values for v in values):
        return False
    if rule.matches is not None and not any(rule.matches.search(unicodedata.normalize("NFKC", str(v))) for v in values):
        return False
    if rule.min is not None or rule.max is not None:
        numbers = [n for n in map(to_number, values) if n is not None]
        low = -math.inf if rule.min is None else rule.min
        high = math.inf if rule.max is None else rule.max
        if not any(low <= n <= high for n in numbers):
            return False
    return True


def _domain_in(domain: str, domains: frozenset[str]) -> bool:
    """`edu.cn` lists every *.edu.cn domain; `gmail.com` lists gmail.com and its subdomains."""
    if domain in domains:
        return True
    dot = domain.find(".")
    while dot != -1:
        if domain[dot + 1 :] in domains:
            return True
        dot = domain.find(".", dot + 1)
    return False


def score_fit(lead: dict, model: ScoringModel, persona: str) -> tuple[int, list[dict]]:
    email = str(lead.get("email") or "")
    domain = email.rpartition("@")[2].strip().lower() if "@" in email else None
    fit, breakdown, taken = 0, [], set()
    for rule in model.fit_rules:
        if rule.exclusive is not None and rule.exclusive in taken:
            continue
        if _holds(rule, lead, persona, domain):
            fit += rule.points
            breakdown.append({"rule": rule.id, "points": rule.points})
            if rule.exclusive is not None:
                taken.add(rule.exclusive)
    return fit, breakdown


def score_behaviour(events: list[dict], model: ScoringModel, now: datetime) -> tuple[int, dict[str, int], list[dict]]:
    now_ts = now.timestamp()
    group_property = model.group_property
    group_values = {fold(v): v for v in model.group_values}
    matched: dict[str, list[tuple[float, str | None]]] = {}
    by_event = model.rules_by_event
    for event in events:
        rules = by_event.get(event.get("type"))
        if not rules:
            continue  # unsubscribe, bounce, complaint and types no rule scores
        ts = timestamp(event.get("occurred_at"))
        if ts is None:
            continue
        props = event.get("properties") or {}
        for rule in rules:
            for name, pattern in rule.properties:
                value = props.get(name)
                if value is None or not pattern.search(str(value)):
                    break
            else:
                group = None
                if group_property is not None:
                    raw = props.get(group_property)
                    group = group_values.get(fold(raw)) if raw is not None else None
                matched.setdefault(rule.id, []).append((ts, group))
                break

    behaviour = 0
    groups = dict.fromkeys(model.group_values, 0)
    breakdown = []
    for rule in model.behaviour_rules:
        items = matched.get(rule.id)
        if not items:
            continue
        items.sort(key=lambda item: item[0], reverse=True)  # newest first: caps keep recent engagement
        if rule.skip_first:
            items = items[: -rule.skip_first] if rule.skip_first < len(items) else []
        decay = rule.decay
        cutoff = now_ts - decay.window_days * DAY if decay.window_days else -math.inf
        rate = math.log(2) / (decay.half_life_days * DAY) if decay.half_life_days else 0.0
        period, period_max = rule.period_seconds, rule.period_max_events
        recent: deque[float] = deque()
        limit = rule.max_events
        counted = capped = expired = 0
        points = 0.0
        by_group: dict[str, float] = {}
        for position, (ts, group) in enumerate(items):
            if ts < cutoff:
                expired = len(items) - position  # the rest are older still
                break
            if limit is not None and counted >= limit:
                capped += 1
                continue
            if period is not None:
                while recent and recent[0] - ts >= period:
                    recent.popleft()
                if len(recent) >= period_max:
                    capped += 1
                    continue
                recent.append(ts)
            counted += 1
            earned = rule.points * math.exp(-rate * (now_ts - ts)) if rate and ts < now_ts else rule.points
            points += earned
            if group is not None:
                by_group[group] = by_group.get(group, 0.0) + earned
        rounded = _round(points)
        behaviour += rounded
        for group, earned in by_group.items():
            groups[group] += _round(earned)
        item = {"rule": rule.id, "points": rounded, "events": counted, "before_decay": counted * rule.points}
        if capped:
            item["capped"] = capped
        if expired:
            item["expired"] = expired
        if decay.half_life_days or decay.window_days:
            item["decay"] = decay.describe()
        breakdown.append(item)
    return behaviour, groups, breakdown


def score_lead(lead: dict, events: list[dict], model: ScoringModel, now: datetime) -> Score:
    """The lead's score under `model` at `now` (events may come in any order)."""
    persona = persona_of(lead, model)
    fit, fit_breakdown = score_fit(lead, model, persona)
    behaviour, groups, behaviour_breakdown = score_behaviour(events, model, now)
    grade = model.grade_of(fit)
    return Score(
        fit=fit,
        behaviour=behaviour,
        total=fit + behaviour,
        grade=grade,
        persona=persona,
        groups=groups,
        breakdown=tuple(fit_breakdown + behaviour_breakdown),
        qualifies=model.qualifies(grade, behaviour),
    )
