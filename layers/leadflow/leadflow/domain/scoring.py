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
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from leadflow.domain.scoring_model import ScoringModel, fold, to_number


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


def _view(value: Any, forms: tuple[bool, bool, bool]) -> tuple[bool, frozenset | set, list, list]:
    """One lead field as the fit rules compare it: (present, case-folded values, NFKC texts, numbers), each
    form computed only when some rule on the field compares it. A multi-select answer (a list) is matched
    item by item."""
    if value is None:
        return _ABSENT
    values = [v for v in value if v not in (None, "")] if isinstance(value, list | tuple) else [value]
    folded, texts, numbers = forms
    return (
        bool(values),
        {fold(v) for v in values} if folded else _NOTHING,
        [_nfkc(v) for v in values] if texts else [],
        [n for n in map(to_number, values) if n is not None] if numbers else [],
    )


_NOTHING: frozenset = frozenset()
_ABSENT = (False, _NOTHING, [], [])


def _nfkc(value: Any) -> str:
    text = value if type(value) is str else str(value)
    return text if text.isascii() else unicodedata.normalize("NFKC", text)


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
    """Every fit rule whose conditions all hold adds its points; of the rules sharing an `exclusive` name only
    the first that holds. The rules come as `model.fit_plan` tuples (one unpack instead of attribute reads)."""
    email = lead.get("email")
    email = email if type(email) is str else str(email or "")
    domain = email.rpartition("@")[2].strip().lower() if "@" in email else None
    attributes = lead.get("attributes") or _NO_PROPERTIES
    fit, breakdown, taken = 0, [], set()
    views: dict[str, tuple] = {}
    forms = model.fit_forms
    for rule in model.fit_plan:
        rule_id, points, exclusive, name, attribute, personas, domains, present, values, matches, low, high = rule
        if exclusive is not None and exclusive in taken:
            continue
        if personas is not None and persona not in personas:
            continue
        if domains is not None and not (domain and _domain_in(domain, domains)):
            continue
        if name is not None:
            view = views.get(name)
            if view is None:
                if attribute is not None:  # `attributes.<name>`: only from the attributes
                    value = attributes.get(attribute)
                else:  # from the lead, else from its attributes; empty text is no value
                    value = lead.get(name)
                    if value is None or value == "":
                        value = attributes.get(name)
                    if value == "":
                        value = None
                view = views[name] = _view(value, forms[name])
            has, folded, texts, numbers = view
            if present is not None and has != present:
                continue
            if values is not None and values.isdisjoint(folded):
                continue
            if matches is not None:
                for text in texts:
                    if matches.search(text) is not None:
                        break
                else:
                    continue
            if low is not None:
                for number in numbers:
                    if low <= number <= high:
                        break
                else:
                    continue
        fit += points
        breakdown.append({"rule": rule_id, "points": points})
        if exclusive is not None:
            taken.add(exclusive)
    return fit, breakdown


_NO_PROPERTIES: dict = {}


def score_behaviour(events: list[dict], model: ScoringModel, now: datetime) -> tuple[int, dict[str, int], list[dict]]:
    now_ts = now.timestamp()
    group_property = model.group_property
    group_slots = model.group_slots  # group property value → index of its score group, -1 none (process memo)
    # rule index → its events: (event time, index of its score group or -1), or the time alone without groups.
    # An event's rule depends only on its type and the one property its type's patterns read (usually `url`):
    # the model remembers it per distinct value.
    collected: list[list] = [[] for _ in model.tallies]
    routes = model.routes  # type → (the one property its rules read or None; memo; rules; the rule of every event)
    parse = datetime.fromisoformat
    for event in events:
        try:
            key, decided, plan, index = routes[event["type"]]
            occurred = event["occurred_at"]
        except (KeyError, TypeError):
            continue  # unsubscribe, bounce, complaint and types no rule scores; no type or no time
        props = event.get("properties") or _NO_PROPERTIES
        if index < 0:
            if key is None:
                index = plan.index_for(props)
            else:
                value = props.get(key) if key else None
                try:
                    index = decided[value]  # the process remembers which rule a value goes to
                except (KeyError, TypeError):
                    index = plan.index_for_key(value)
            if index < 0:
                continue
        try:
            moment = parse(occurred)  # the stored form: ISO 8601 text
        except ValueError:
            continue
        except TypeError:  # not text: the general path (a datetime, epoch seconds)
            ts = timestamp(occurred)
            if ts is None:
                continue
        else:
            ts = moment.timestamp() if moment.tzinfo is not None else moment.replace(tzinfo=UTC).timestamp()
        if group_property is None:
            collected[index].append(ts)
            continue
        group_value = props.get(group_property)
        try:
            group = group_slots[group_value]
        except KeyError:
            group = model.group_slot(group_value)
        except TypeError:
            group = -1
        collected[index].append((ts, group))
    if group_property is None:
        return _tally_plain(collected, model, now_ts)
    return _tally_grouped(collected, model, now_ts)


def _tally_plain(collected: list[list], model: ScoringModel, now_ts: float) -> tuple[int, dict[str, int], list[dict]]:
    """Count each rule's events (times alone: the model has no score groups)."""
    exp, floor = math.exp, math.floor
    behaviour = 0
    breakdown = []
    for times, tally in zip(collected, model.tallies, strict=True):
        if not times:
            continue
        rule_id, points, limit, period, period_max, rate, window, skip, ordered, decay = tally
        if ordered:
            times.sort(reverse=True)  # newest first: caps keep the most recent engagement; expired ones last
        if skip:
            times = times[:-skip] if skip < len(times) else []
        kept = len(times)
        if window is not None:
            cutoff = now_ts - window
            while kept and times[kept - 1] < cutoff:
                kept -= 1
        if period is None or kept <= period_max:  # no window of the period can hold more than its cap
            counting = times[: kept if limit is None or limit > kept else limit]
            counted = len(counting)
            if rate:
                total = math.fsum([exp(rate * (t - now_ts)) if t < now_ts else 1.0 for t in counting])
            else:
                total = float(counted)
        else:
            counted, total = _sliding(times, kept, limit, period, period_max, rate, now_ts)
        rounded = floor(points * total + 0.5)
        behaviour += rounded
        item = {"rule": rule_id, "points": rounded, "events": counted, "before_decay": counted * points}
        if kept != counted:
            item["capped"] = kept - counted
        if len(times) != kept:
            item["expired"] = len(times) - kept
        if decay is not None:
            item["decay"] = decay
        breakdown.append(item)
    return behaviour, {}, breakdown


def _sliding(
    times: list[float], kept: int, limit: int | None, period: float, period_max: int, rate: float, now_ts: float
) -> tuple[int, float]:
    """The newest events (times newest first) that fit `period_max` per `period` seconds (a sliding window),
    at most `limit` of them: how many and their decayed weight."""
    exp = math.exp
    taken: list[float] = []  # the times counted, newest first
    counted = 0
    total = 0.0
    for ts in times[:kept] if kept < len(times) else times:
        # counted unless the period_max-th newest event counted so far lies within the period after it
        if counted >= period_max and taken[counted - period_max] - ts < period:
            continue
        taken.append(ts)
        counted += 1
        total += exp(rate * (ts - now_ts)) if rate and ts < now_ts else 1.0
        if counted == limit:
            break
    return counted, total


def _tally_grouped(collected: list[list], model: ScoringModel, now_ts: float) -> tuple[int, dict[str, int], list[dict]]:
    """Count each rule's events ((time, group) pairs) into the total and its score groups."""
    exp, floor = math.exp, math.floor
    group_names = model.group_values
    group_count = len(group_names)
    group_points = [0] * group_count
    behaviour = 0
    breakdown = []
    for pairs, tally in zip(collected, model.tallies, strict=True):
        if not pairs:
            continue
        rule_id, points, limit, period, period_max, rate, window, skip, ordered, decay = tally
        if ordered:
            pairs.sort(reverse=True)  # newest first: caps keep the most recent engagement; expired ones last
        if skip:
            pairs = pairs[:-skip] if skip < len(pairs) else []
        kept = len(pairs)
        if window is not None:
            cutoff = now_ts - window
            while kept and pairs[kept - 1][0] < cutoff:
                kept -= 1
        # weight per score group; the last slot collects the events of no group (index -1)
        per_group = [0.0] * (group_count + 1)
        total = 0.0
        if period is None or kept <= period_max:  # no window of the period can hold more than its cap
            counting = pairs[: kept if limit is None or limit > kept else limit]
            counted = len(counting)
            if rate:
                for ts, group in counting:
                    weight = exp(rate * (ts - now_ts)) if ts < now_ts else 1.0
                    total += weight
                    per_group[group] += weight
            else:
                for _, group in counting:
                    per_group[group] += 1.0
                total = float(counted)
        else:
            # Newest first, an event counts unless the period before the newer events already counted holds
            # period_max of them, i.e. unless the period_max-th newest counted event is within the period.
            taken: list[float] = []
            counted = 0
            for ts, group in pairs[:kept] if kept < len(pairs) else pairs:
                if counted >= period_max and taken[counted - period_max] - ts < period:
                    continue
                taken.append(ts)
                counted += 1
                weight = exp(rate * (ts - now_ts)) if rate and ts < now_ts else 1.0
                total += weight
                per_group[group] += weight
                if counted == limit:
                    break
        rounded = floor(points * total + 0.5)
        behaviour += rounded
        # a group without events of the rule adds floor(0.5) = 0; the last slot (no group) is not a group's
        group_points = [
            sum_ + floor(points * weight + 0.5) for sum_, weight in zip(group_points, per_group[:-1], strict=True)
        ]
        item = {"rule": rule_id, "points": rounded, "events": counted, "before_decay": counted * points}
        if kept != counted:
            item["capped"] = kept - counted
        if len(pairs) != kept:
            item["expired"] = len(pairs) - kept
        if decay is not None:
            item["decay"] = decay
        breakdown.append(item)
    return behaviour, dict(zip(group_names, group_points, strict=True)), breakdown


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
