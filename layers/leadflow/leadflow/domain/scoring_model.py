"""The scoring model, compiled once from its configuration document (pure: no I/O, no clock).

`compile_model(document)` takes a document that already passed `schemas/scoring_model.v1.json` and
returns an immutable `ScoringModel` with every regular expression compiled and every default filled in,
or raises `ModelProblems` listing what the schema cannot express (duplicate ids, overlapping personas,
grades not descending, invalid regular expressions, unknown list or persona names, unreachable rules),
each with the path of the field in the document so the loader can name its line.

Semantics (the README's "Scoring" section says the same for marketing ops):
- personas: the first rule whose `company_size` range (inclusive) and `title` patterns both match wins;
  otherwise `default`.
- fit rules: every rule whose conditions all hold adds its points; among rules sharing an `exclusive`
  name only the first that holds counts (list the strongest first).
- behaviour rules: an event earns points from the first rule of its type whose `properties` patterns
  match; caps keep the newest events; decay fades points by event age at `now`.
- qualification: MQL when grade ≥ `min_grade` and behaviour ≥ `min_behaviour`.
"""

from __future__ import annotations

import math
import re
import unicodedata
from dataclasses import dataclass, field
from typing import Any

GRADES = ("A", "B", "C", "D")
DAY = 86400.0
DECISIONS_MAX = 4096

Path = tuple[str | int, ...]


class ModelProblems(Exception):
    """The document breaks rules the schema cannot express: `problems` = [(path, message)]."""

    def __init__(self, problems: list[tuple[Path, str]]) -> None:
        super().__init__("; ".join(f"{format_path(p)}: {m}" for p, m in problems))
        self.problems = problems


def format_path(path: Path) -> str:
    """('fit', 'rules', 3, 'points') → 'fit.rules[3].points'."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def fold(value: Any) -> str:
    """The form text is compared in: NFKC (full-width → ASCII, compatibility forms) and case-folded."""
    text = value if type(value) is str else str(value)
    if text.isascii():  # NFKC leaves ASCII as it is, and ASCII case-folds to lower case
        return text.lower().strip()
    return unicodedata.normalize("NFKC", text).casefold().strip()


_NUMBER = re.compile(r"(\d[\d,]*(?:\.\d+)?)(?:\s*([kKmM])\b|\s*(万))?")
_SCALE = {"k": 1e3, "m": 1e6, "万": 1e4}


def to_number(value: Any) -> float | None:
    """A count or amount as typed: 250, '250', '$50k', '1,000+', '201-500' (a range counts as its lower bound,
    the size the company is known to have at least; the normalised bands '51-200', '1001-5000' read so)."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return float(value)
    found = _NUMBER.search(str(value))
    if not found:
        return None
    number = float(found.group(1).replace(",", ""))
    suffix = found.group(2) or found.group(3)
    return number * _SCALE[suffix.lower()] if suffix else number


def _regex(pattern: str, path: Path, problems: list) -> re.Pattern | None:
    try:
        return re.compile(unicodedata.normalize("NFKC", pattern), re.IGNORECASE)
    except re.error as error:
        problems.append((path, f"invalid regular expression: {error}"))
        return None


def _regexes(patterns: list[str] | None, path: Path, problems: list) -> re.Pattern | None:
    """One alternation of all patterns (one `search` per value instead of one per pattern)."""
    if not patterns:
        return None
    compiled = [_regex(p, (*path, i), problems) for i, p in enumerate(patterns)]
    if any(c is None for c in compiled):
        return None
    if len(compiled) == 1:
        return compiled[0]
    try:
        return re.compile("|".join(f"(?:{c.pattern})" for c in compiled), re.IGNORECASE)
    except re.error as error:  # e.g. inline flags or back-references that only work alone
        problems.append(
            (path, f"patterns cannot be combined into one expression ({error}); matching is already case-insensitive")
        )
        return None


_PLAIN = re.compile(r"[A-Za-z0-9/_\-:=&%@,;~ !'\"<>]*")


def required_literal(pattern: str) -> str | None:
    """A lower-case ASCII text that every match of `pattern` contains (its plain prefix), or None.

    A cheap `in` test on the lower-cased value rules most patterns out before the regular expression runs.
    Conservative: no literal for alternations, inline flags or groups `(?`, or fewer than 2 characters.
    """
    if "|" in pattern or "(?" in pattern:
        return None
    body = pattern[1:] if pattern.startswith("^") else pattern
    prefix = _PLAIN.match(body).group(0)
    if len(prefix) < len(body) and body[len(prefix)] in "?*{+":
        prefix = prefix[:-1]  # the last character is optional or repeated
    return prefix.lower() if len(prefix) >= 2 else None


@dataclass(frozen=True)
class FieldRef:
    """A lead field: a top-level name (read from the lead, then from its attributes) or `attributes.<name>`."""

    name: str

    def get(self, lead: dict) -> Any:
        if self.name.startswith("attributes."):
            return (lead.get("attributes") or {}).get(self.name[len("attributes.") :])
        value = lead.get(self.name)
        if value is None or value == "":
            value = (lead.get("attributes") or {}).get(self.name)
        return None if value == "" else value


@dataclass(frozen=True)
class Persona:
    id: str
    size_min: float
    size_max: float
    title: re.Pattern | None
    has_size: bool


@dataclass(frozen=True)
class FitRule:
    id: str
    points: int
    exclusive: str | None = None
    field: FieldRef | None = None
    values: frozenset[str] | None = None
    matches: re.Pattern | None = None
    min: float | None = None
    max: float | None = None
    present: bool | None = None
    domains: frozenset[str] | None = None
    personas: frozenset[str] | None = None


@dataclass(frozen=True)
class Decay:
    half_life_days: float | None = None
    window_days: float | None = None

    def describe(self) -> str:
        parts = []
        if self.half_life_days:
            parts.append(f"half-life {self.half_life_days:g}d")
        if self.window_days:
            parts.append(f"window {self.window_days:g}d")
        return ", ".join(parts) or "none"


@dataclass(frozen=True)
class BehaviourRule:
    id: str
    index: int  # position in the model's behaviour rules
    event: str
    points: int
    # (event property, patterns as one expression, literals one of which the value must contain or None)
    properties: tuple[tuple[str, re.Pattern, tuple[str, ...] | None], ...] = ()
    skip_first: int = 0
    max_events: int | None = None  # from max_events and max_points (points are fixed per event)
    period_seconds: float | None = None
    period_max_events: int | None = None
    decay: Decay = field(default_factory=Decay)
    decay_text: str = "none"
    rate: float = 0.0  # ln 2 / half-life in seconds (0: no half-life)
    window_seconds: float | None = None
    ordered: bool = True  # its events are counted newest first (caps, a window or skip_first need the order)


def _property_matches(text: str, pattern: re.Pattern, literals: tuple[str, ...] | None) -> bool:
    if literals is not None and text.isascii():
        lowered = text.lower()
        if not any(literal in lowered for literal in literals):
            return False  # no pattern can match: the regular expression need not run
    return pattern.search(text) is not None


@dataclass(frozen=True)
class EventDispatch:
    """The behaviour rules of one event type, in order: `index_for(properties)` is the first that matches.

    `key` is the one event property all the type's patterns read (usually `url`), or None when several
    are read. With a key, an event's rule depends on that value alone: the scorer decides it once per
    distinct value, and `checks` hold each rule's (pattern, literals) on the key (None: takes every event).
    Rules are named by their index in the model's behaviour rules; -1 is "no rule".
    """

    rules: tuple[BehaviourRule, ...]
    key: str | None
    checks: tuple[tuple[BehaviourRule, re.Pattern | None, tuple[str, ...] | None], ...] = ()
    literals: tuple[tuple[str, int], ...] = ()  # (literal, index in checks) for rules that have literals
    unfiltered: tuple[int, ...] = ()  # indices of the checks without literals (always tried)
    # value → index of the rule decided for it (-1 none): the same pages are viewed by many leads. A memo of a
    # pure function (no state of any lead), bounded: emptied when it reaches DECISIONS_MAX values.
    decided: dict = field(default_factory=dict, compare=False, repr=False)

    def index_for_key(self, value: Any) -> int:
        """`rule_for_value`'s index, remembered per distinct text (the scorer reads `decided` first)."""
        index = _index(self.rule_for_value(value))
        # Only texts (and None) are remembered: 1, 1.0 and True are equal keys of a dict but differ as text.
        if value is None or type(value) is str:
            if len(self.decided) >= DECISIONS_MAX:
                self.decided.clear()
            self.decided[value] = index
        return index

    def index_for(self, props: dict) -> int:
        if self.checks:
            return _index(self.rule_for_value(props.get(self.key)))
        for rule in self.rules:
            for name, pattern, literals in rule.properties:
                value = props.get(name)
                if value is None or not _property_matches(
                    value if type(value) is str else str(value), pattern, literals
                ):
                    break
            else:
                return rule.index
        return -1

    def rule_for_value(self, value: Any) -> BehaviourRule | None:
        text = None if value is None else value if type(value) is str else str(value)
        if text is not None and self.literals and text.isascii():
            # Only rules one of whose literals the value contains (or that have none) can match.
            lowered = text.lower()
            candidates = {i for literal, i in self.literals if literal in lowered}
            candidates.update(self.unfiltered)
            order = sorted(candidates)
        else:
            order = range(len(self.checks))
        for i in order:
            rule, pattern, _ = self.checks[i]
            if pattern is None:
                return rule
            if text is not None and pattern.search(text) is not None:
                return rule
        return None


def _dispatch(rules: list[BehaviourRule]) -> EventDispatch:
    names = {name for rule in rules for name, _, _ in rule.properties}
    if len(names) > 1 or any(len(rule.properties) > 1 for rule in rules):
        return EventDispatch(tuple(rules), None)
    checks = tuple(
        (rule, rule.properties[0][1], rule.properties[0][2]) if rule.properties else (rule, None, None)
        for rule in rules
    )
    literals = tuple((literal, i) for i, (_, _, lits) in enumerate(checks) for literal in lits or ())
    unfiltered = tuple(i for i, (_, _, lits) in enumerate(checks) if lits is None)
    return EventDispatch(tuple(rules), next(iter(names), None), checks, literals, unfiltered)


def _index(rule: BehaviourRule | None) -> int:
    return -1 if rule is None else rule.index


@dataclass(frozen=True)
class ScoringModel:
    name: str
    size_field: FieldRef
    default_persona: str
    personas: tuple[Persona, ...]
    grades: tuple[tuple[str, int], ...]  # (grade, least fit score), best first; D is everything below
    fit_rules: tuple[FitRule, ...]
    behaviour_rules: tuple[BehaviourRule, ...]
    dispatch: dict[str, EventDispatch]  # event type → its rules
    # event type → (the one property its rules read, "" none or None several; its decision memo; its rules;
    # the index of the rule that takes every event of the type when its first rule reads no property, else -1)
    routes: dict[str, tuple[str | None, dict, EventDispatch, int]]
    # per behaviour rule, what counting its events reads, as one tuple (unpacked once per rule and lead):
    # (id, points, max events or None, period seconds or None, max events per period, half-life rate,
    # window seconds or None, skip_first, ordered, decay text or None)
    tallies: tuple[tuple, ...]
    # per fit rule, in order: (id, points, exclusive, field name or None, the attribute name of an
    # `attributes.<name>` field or None, personas, domains, present, values, matches, low, high), low and high
    # both None when the rule has no range
    fit_plan: tuple[tuple, ...]
    fit_forms: dict[str, tuple[bool, bool, bool]]  # fit field → compared folded (in), as text (matches), as number
    group_property: str | None
    group_values: tuple[str, ...]
    group_by_folded: dict[str, str]
    mql_min_grade: str
    mql_min_behaviour: int
    digest: str = ""
    # group property value → index of its score group, -1 none (a bounded memo of `group_of`, like `decided`)
    group_slots: dict = field(default_factory=lambda: {None: -1}, compare=False, repr=False)

    def group_of(self, value: Any) -> str | None:
        """The configured score group an event property value names, or None."""
        return self.group_by_folded.get(fold(value))

    def group_slot(self, value: Any) -> int:
        """The index in `group_values` of the group `value` names, -1 none; remembered per text."""
        name = self.group_of(value)
        slot = self.group_values.index(name) if name is not None else -1
        if type(value) is str:  # as in `decided`: 1, 1.0 and True are one dict key but three texts
            if len(self.group_slots) >= DECISIONS_MAX:
                self.group_slots.clear()
                self.group_slots[None] = -1
            self.group_slots[value] = slot
        return slot

    def grade_of(self, fit: int) -> str:
        for grade, least in self.grades:
            if fit >= least:
                return grade
        return "D"

    def qualifies(self, grade: str, behaviour: int) -> bool:
        """MQL criteria: both the grade and the behaviour score reach their thresholds."""
        return GRADES.index(grade) <= GRADES.index(self.mql_min_grade) and behaviour >= self.mql_min_behaviour

    def mql_criteria(self) -> str:
        return f"grade ≥ {self.mql_min_grade} and behaviour ≥ {self.mql_min_behaviour}"


def compile_model(doc: dict, digest: str = "") -> ScoringModel:
    """The compiled model of a schema-valid document, or ModelProblems naming each field at fault."""
    problems: list[tuple[Path, str]] = []
    lists = {name: frozenset(fold(v) for v in values) for name, values in (doc.get("lists") or {}).items()}

    personas_doc = doc["personas"]
    personas = _personas(personas_doc, problems)
    persona_ids = {p.id for p in personas} | {personas_doc["default"]}

    grades_doc = doc["fit"]["grades"]
    for better, worse in (("A", "B"), ("B", "C")):
        if grades_doc[worse] >= grades_doc[better]:
            problems.append(
                (("fit", "grades", worse), f"must be below {better} ({grades_doc[better]}): grades descend A > B > C")
            )
    grades = tuple((g, grades_doc[g]) for g in ("A", "B", "C"))

    seen_ids: dict[str, Path] = {}

    def unique(rule_id: str, path: Path) -> None:
        if rule_id in seen_ids:
            problems.append(((*path, "id"), f"duplicate rule id {rule_id!r} (also {format_path(seen_ids[rule_id])})"))
        else:
            seen_ids[rule_id] = path

    fit_rules = []
    for i, rule in enumerate(doc["fit"]["rules"]):
        path: Path = ("fit", "rules", i)
        unique(rule["id"], path)
        fit_rules.append(_fit_rule(rule, path, lists, persona_ids, problems))

    behaviour_doc = doc["behaviour"]
    default_decay = _decay(behaviour_doc.get("decay"))
    behaviour_rules = []
    catch_all: dict[str, str] = {}
    for i, rule in enumerate(behaviour_doc["rules"]):
        path = ("behaviour", "rules", i)
        unique(rule["id"], path)
        if rule["event"] in catch_all:
            problems.append(
                (
                    (*path, "event"),
                    f"unreachable: rule {catch_all[rule['event']]!r} before it takes every {rule['event']} event "
                    "(an event earns points from the first rule it matches; list specific rules first)",
                )
            )
        if not rule.get("properties"):
            catch_all.setdefault(rule["event"], rule["id"])
        behaviour_rules.append(_behaviour_rule(rule, path, default_decay, problems))

    groups = behaviour_doc.get("groups") or {}
    if problems:
        raise ModelProblems(problems)
    by_event: dict[str, list[BehaviourRule]] = {}
    for rule in behaviour_rules:
        by_event.setdefault(rule.event, []).append(rule)
    mql = doc["qualification"]["mql"]
    dispatch = {kind: _dispatch(rules) for kind, rules in by_event.items()}
    return ScoringModel(
        name=doc.get("name") or "scoring model",
        size_field=FieldRef(personas_doc.get("size_field") or "company_size"),
        default_persona=personas_doc["default"],
        personas=tuple(personas),
        grades=grades,
        fit_rules=tuple(fit_rules),
        behaviour_rules=tuple(behaviour_rules),
        dispatch=dispatch,
        routes={
            kind: (
                (plan.key or "") if plan.checks else None,
                plan.decided,
                plan,
                -1 if plan.rules[0].properties else plan.rules[0].index,
            )
            for kind, plan in dispatch.items()
        },
        tallies=tuple(
            (
                rule.id,
                rule.points,
                rule.max_events,
                rule.period_seconds,
                rule.period_max_events,
                rule.rate,
                rule.window_seconds,
                rule.skip_first,
                rule.ordered,
                None if rule.decay_text == "none" else rule.decay_text,
            )
            for rule in behaviour_rules
        ),
        fit_plan=tuple(_fit_plan(rule) for rule in fit_rules),
        fit_forms=_fit_forms(fit_rules),
        group_property=groups.get("property"),
        group_values=tuple(groups.get("values") or ()),
        group_by_folded={fold(g): g for g in groups.get("values") or ()},
        mql_min_grade=mql["min_grade"],
        mql_min_behaviour=mql["min_behaviour"],
        digest=digest,
    )


def _fit_plan(rule: FitRule) -> tuple:
    name = rule.field.name if rule.field is not None else None
    attribute = name[len("attributes.") :] if name is not None and name.startswith("attributes.") else None
    ranged = rule.min is not None or rule.max is not None
    return (
        rule.id,
        rule.points,
        rule.exclusive,
        name,
        attribute,
        rule.personas,
        rule.domains,
        rule.present,
        rule.values,
        rule.matches,
        (-math.inf if rule.min is None else rule.min) if ranged else None,
        (math.inf if rule.max is None else rule.max) if ranged else None,
    )


def _fit_forms(rules: list[FitRule]) -> dict[str, tuple[bool, bool, bool]]:
    forms: dict[str, tuple[bool, bool, bool]] = {}
    for rule in rules:
        if rule.field is not None:
            folded, texts, numbers = forms.get(rule.field.name, (False, False, False))
            forms[rule.field.name] = (
                folded or rule.values is not None,
                texts or rule.matches is not None,
                numbers or rule.min is not None or rule.max is not None,
            )
    return forms


def _range(doc: dict | None, path: Path, problems: list) -> tuple[float, float]:
    low = (doc or {}).get("min", -math.inf)
    high = (doc or {}).get("max", math.inf)
    if low > high:
        problems.append(((*path, "max"), f"must not be below min ({low:g})"))
    return low, high


def _personas(doc: dict, problems: list) -> list[Persona]:
    personas: list[Persona] = []
    seen: dict[str, int] = {}
    for i, rule in enumerate(doc["rules"]):
        path: Path = ("personas", "rules", i)
        if rule["id"] in seen:
            problems.append(
                ((*path, "id"), f"duplicate persona id {rule['id']!r} (also personas.rules[{seen[rule['id']]}])")
            )
        seen.setdefault(rule["id"], i)
        if "company_size" not in rule and "title" not in rule:
            problems.append((path, "needs company_size or title (a persona for every lead is personas.default)"))
            continue
        low, high = _range(rule.get("company_size"), (*path, "company_size"), problems)
        title = _regexes(rule.get("title"), (*path, "title"), problems)
        persona = Persona(rule["id"], low, high, title, "company_size" in rule)
        if persona.title is None and persona.has_size:
            # Size-only personas must not overlap: with "first match wins" the later one would silently lose
            # the shared sizes. (A persona with title patterns may sit inside a size range, listed first.)
            for j, other in enumerate(personas):
                if other.title is None and other.has_size and low <= other.size_max and other.size_min <= high:
                    problems.append(
                        (
                            (*path, "company_size"),
                            f"overlaps persona {other.id!r} (personas.rules[{j}].company_size): "
                            f"{_span(low, high)} and {_span(other.size_min, other.size_max)}",
                        )
                    )
        personas.append(persona)
    return personas


def _span(low: float, high: float) -> str:
    left = "" if low == -math.inf else f"{low:g}"
    right = "" if high == math.inf else f"{high:g}"
    return f"{left}–{right}" if left and right else (f"≥ {left}" if left else f"≤ {right}")


def _named(value: str | list, path: Path, lists: dict[str, frozenset[str]], problems: list) -> frozenset[str]:
    if isinstance(value, str):
        if value not in lists:
            known = ", ".join(sorted(lists)) or "none defined"
            problems.append((path, f"names no list under `lists` ({value!r}; lists: {known})"))
            return frozenset()
        return lists[value]
    return frozenset(fold(v) for v in value)


def _fit_rule(rule: dict, path: Path, lists: dict, persona_ids: set[str], problems: list) -> FitRule:
    operators = [k for k in ("in", "matches", "min", "max", "present") if k in rule]
    if "field" in rule and not operators:
        problems.append(((*path, "field"), "needs a condition on it: in, matches, min, max or present"))
    if not operators and "domains" not in rule and "persona" not in rule:
        problems.append((path, "needs a condition: field with in/matches/min/max/present, domains or persona"))
    if "min" in rule or "max" in rule:
        _range(rule, path, problems)
    for i, name in enumerate(rule.get("persona") or ()):
        if name not in persona_ids:
            problems.append(
                ((*path, "persona", i), f"unknown persona {name!r} (personas: {', '.join(sorted(persona_ids))})")
            )
    domains = rule.get("domains")
    return FitRule(
        id=rule["id"],
        points=rule["points"],
        exclusive=rule.get("exclusive"),
        field=FieldRef(rule["field"]) if "field" in rule else None,
        values=_named(rule["in"], (*path, "in"), lists, problems) if "in" in rule else None,
        matches=_regexes(rule.get("matches"), (*path, "matches"), problems),
        min=rule.get("min"),
        max=rule.get("max"),
        present=rule.get("present"),
        domains=_named(domains, (*path, "domains"), lists, problems) if domains is not None else None,
        personas=frozenset(rule["persona"]) if "persona" in rule else None,
    )


def _decay(doc: dict | None, default: Decay | None = None) -> Decay:
    if not doc:
        return default or Decay()
    return Decay(doc.get("half_life_days"), doc.get("window_days"))


def _behaviour_rule(rule: dict, path: Path, default_decay: Decay, problems: list) -> BehaviourRule:
    properties = []
    for name, patterns in (rule.get("properties") or {}).items():
        compiled = _regexes(patterns, (*path, "properties", name), problems)
        if compiled is not None:
            literals = [required_literal(p) for p in patterns]
            properties.append((name, compiled, None if None in literals else tuple(literals)))
    limit = rule.get("max_events")
    if "max_points" in rule and rule["points"]:
        by_points = rule["max_points"] // abs(rule["points"])
        if by_points == 0:
            problems.append(((*path, "max_points"), f"is below one event's points ({abs(rule['points'])})"))
        limit = by_points if limit is None else min(limit, by_points)
    period = rule.get("per_period")
    decay = _decay(rule.get("decay"), default_decay)
    return BehaviourRule(
        id=rule["id"],
        index=path[-1],  # type: ignore[arg-type]
        event=rule["event"],
        points=rule["points"],
        properties=tuple(properties),
        skip_first=rule.get("skip_first", 0),
        max_events=limit,
        period_seconds=period["days"] * DAY if period else None,
        period_max_events=period["max_events"] if period else None,
        decay=decay,
        decay_text=decay.describe(),
        rate=math.log(2) / (decay.half_life_days * DAY) if decay.half_life_days else 0.0,
        window_seconds=decay.window_days * DAY if decay.window_days else None,
        ordered=bool(limit is not None or period or rule.get("skip_first") or decay.window_days),
    )
