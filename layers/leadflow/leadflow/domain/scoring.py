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

from leadflow.domain.scoring_model import BehaviourRule, FitRule, ScoringModel, fold, to_number


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
    titles = [_nfkc(t) for t in (lead.get("job_title"), _attr(lead, "seniority")) if t]
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


class _FieldView:
    """One lead field as the fit rules compare it: present, case-folded values, NFKC texts, numbers."""

    __slots__ = ("present", "folded", "texts", "numbers")

    def __init__(self, value: Any, forms: tuple[bool, bool, bool]) -> None:
        values = _values(value)
        self.present = bool(values)
        folded, texts, numbers = forms  # only the forms some rule on this field compares
        self.folded = {fold(v) for v in values} if folded else set()
        self.texts = [_nfkc(v) for v in values] if texts else []
        self.numbers = [n for n in map(to_number, values) if n is not None] if numbers else []


def _nfkc(value: Any) -> str:
    text = value if type(value) is str else str(value)
    return text if text.isascii() else unicodedata.normalize("NFKC", text)


def _holds(rule: FitRule, view: _FieldView | None, persona: str, domain: str | None) -> bool:
    if rule.personas is not None and persona not in rule.personas:
        return False
    if rule.domains is not None and not (domain and _domain_in(domain, rule.domains)):
        return False
    if view is None:
        return True
    if rule.present is not None and view.present != rule.present:
        return False
    if rule.values is not None and rule.values.isdisjoint(view.folded):
        return False
    if rule.matches is not None and not any(rule.matches.search(text) for text in view.texts):
        return False
    if rule.min is not None or rule.max is not None:
        low = -math.inf if rule.min is None else rule.min
        high = math.inf if rule.max is None else rule.max
        if not any(low <= n <= high for n in view.numbers):
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
    views: dict[str, _FieldView] = {}
    for rule in model.fit_rules:
        if rule.exclusive is not None and rule.exclusive in taken:
            continue
        view = None
        if rule.field is not None:
            view = views.get(rule.field.name)
            if view is None:
                view = views[rule.field.name] = _FieldView(rule.field.get(lead), model.fit_forms[rule.field.name])
        if _holds(rule, view, persona, domain):
            fit += rule.points
            breakdown.append({"rule": rule.id, "points": rule.points})
            if rule.exclusive is not None:
                taken.add(rule.exclusive)
    return fit, breakdown


_NO_PROPERTIES: dict = {}


def score_behaviour(events: list[dict], model: ScoringModel, now: datetime) -> tuple[int, dict[str, int], list[dict]]:
    now_ts = now.timestamp()
    group_property = model.group_property
    group_names = model.group_values
    # rule index → [(event time, index of its score group or -1)]. An event's rule depends only on its type and
    # the one property its type's patterns read (usually `url`): the model remembers it per distinct value.
    collected: list[list[tuple[float, int]] | None] = [None] * len(model.behaviour_rules)
    group_index: dict[Any, int] = {None: -1}  # group property value → index of its score group, -1 none

    def group_of(value: Any) -> int:
        name = model.group_of(value)
        index = group_names.index(name) if name is not None else -1
        if isinstance(value, str | int):
            group_index[value] = index
        return index

    routes = model.routes  # type → (the one property its rules read or None; memo; rules; the rule of every event)
    parse = datetime.fromisoformat
    for event in events:
        route = routes.get(event.get("type"))
        if route is None:
            continue  # unsubscribe, bounce, complaint and types no rule scores
        key, decided, plan, rule = route
        props = event.get("properties") or _NO_PROPERTIES
        if rule is not None:
            pass  # every event of the type goes to one rule
        elif key is None:
            rule = plan.rule_for(props)
        else:
            value = props.get(key) if key else None
            try:
                rule = decided[value]  # the process remembers which rule a value goes to
            except (KeyError, TypeError):
                rule = plan.rule_for_key(value)
        if rule is None:
            continue
        times = collected[rule.index]
        if times is None:
            times = collected[rule.index] = []
        occurred = event.get("occurred_at")
        if type(occurred) is str:  # the stored form; other forms take the general path
            try:
                moment = parse(occurred)
            except ValueError:
                continue
            ts = moment.timestamp() if moment.tzinfo else moment.replace(tzinfo=UTC).timestamp()
        else:
            ts = timestamp(occurred)
            if ts is None:
                continue
        if group_property is None:
            times.append((ts, -1))
            continue
        group_value = props.get(group_property)
        try:
            group = group_index[group_value]
        except KeyError:
            group = group_of(group_value)
        except TypeError:
            group = -1
        times.append((ts, group))

    behaviour = 0
    group_count = len(group_names)
    group_points = [0] * group_count
    breakdown = []
    for rule in model.behaviour_rules:
        pairs = collected[rule.index]
        if not pairs:
            continue
        if rule.ordered:
            pairs.sort(reverse=True)  # newest first: caps keep the most recent engagement; expired ones at the end
        if rule.skip_first:
            pairs = pairs[: -rule.skip_first] if rule.skip_first < len(pairs) else []
        kept = len(pairs)
        if rule.window_seconds is not None:
            cutoff = now_ts - rule.window_seconds
            while kept and pairs[kept - 1][0] < cutoff:
                kept -= 1
        counted, total, per_group = _count(pairs, kept, rule, now_ts, group_count)
        points = rule.points
        rounded = math.floor(points * total + 0.5)
        behaviour += rounded
        if per_group is not None and any(per_group):
            for group, weight in enumerate(per_group):
                if weight:
                    group_points[group] += math.floor(points * weight + 0.5)
        item = {"rule": rule.id, "points": rounded, "events": counted, "before_decay": counted * points}
        if kept != counted:
            item["capped"] = kept - counted
        if len(pairs) != kept:
            item["expired"] = len(pairs) - kept
        if rule.decay_text != "none":
            item["decay"] = rule.decay_text
        breakdown.append(item)
    return behaviour, dict(zip(group_names, group_points, strict=True)), breakdown


def _count(
    pairs: list[tuple[float, int]], kept: int, rule: BehaviourRule, now_ts: float, groups: int
) -> tuple[int, float, list[float] | None]:
    """The events of a rule that count, newest first: at most `max_events`, and at most `period_max_events`
    within any `period_seconds` (a sliding window); their decayed weight in total and per score group."""
    limit, period, rate = rule.max_events, rule.period_seconds, rule.rate
    exp = math.exp
    if period is None or kept <= rule.period_max_events:  # no window can hold more than the cap
        counting = pairs[: kept if limit is None or limit > kept else limit]
        if not groups:
            if rate:
                return (
                    len(counting),
                    math.fsum([exp(rate * (t - now_ts)) if t < now_ts else 1.0 for t, _ in counting]),
                    None,
                )
            return len(counting), float(len(counting)), None
        per_group = [0.0] * groups
        total = 0.0
        for ts, group in counting:
            weight = exp(rate * (ts - now_ts)) if rate and ts < now_ts else 1.0
            total += weight
            if group >= 0:
                per_group[group] += weight
        return len(counting), total, per_group
    period_max = rule.period_max_events
    per_group = [0.0] * groups if groups else None
    recent: deque[float] = deque()
    counted = 0
    total = 0.0
    in_window = 0  # len(recent)
    for ts, group in pairs[:kept] if kept < len(pairs) else pairs:
        while in_window and recent[0] - ts >= period:
            recent.popleft()
            in_window -= 1
        if in_window >= period_max:
            continue
        recent.append(ts)
        in_window += 1
        weight = exp(rate * (ts - now_ts)) if rate and ts < now_ts else 1.0
        total += weight
        if group >= 0 and per_group is not None:
            per_group[group] += weight
        counted += 1
        if counted == limit:
            break
    return counted, total, per_group


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
