"""Lead routing (pure: the configuration, the routing state and `now` are passed in).

`decide(lead, config, state, now, exclude)` tries the rules in order; the first whose conditions all hold
and whose action finds an available owner wins. Every rule tried leaves a `RuleTrace` saying why it matched
or not, so `leadflow route explain` can show it. Actions:
- `owner`, `partner`, `queue`: that one owner (a queue is never away or full);
- `team` with `round_robin`: the next available member after the team's cursor (the cursor moves past the
  one chosen, so over time every member gets their turn, whatever was skipped);
- `team` with `weighted`: the available member with the lowest share of their daily capacity used today,
  ties broken in turn from the cursor.
An owner is unavailable when `away` (or `away_until` a later date), excluded (a reassignment never goes back
to an owner who let the lead lapse), or full (today's assignments, in the owner's time zone, reached their
`daily_capacity`). A rule whose action finds nobody falls through to the next rule, and says so.

`due_at(owner, sla, start)` is when an assignment made at `start` breaches the response-time SLA, counted in
the owner's working hours when the SLA says `business_hours`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from leadflow.domain.attribution import iso
from leadflow.domain.ownership import needs_owner  # noqa: F401 - part of this module's API
from leadflow.domain.scoring_model import to_number

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass(frozen=True)
class WorkingHours:
    days: tuple[int, ...] = (0, 1, 2, 3, 4)  # Monday = 0
    start: time = time(9, 0)
    end: time = time(17, 0)  # time(0, 0) with end_of_day: midnight

    end_of_day: bool = False

    def length(self) -> timedelta:
        end = timedelta(hours=24) if self.end_of_day else timedelta(hours=self.end.hour, minutes=self.end.minute)
        return end - timedelta(hours=self.start.hour, minutes=self.start.minute)


@dataclass(frozen=True)
class Owner:
    id: str
    name: str
    kind: str = "person"  # person, partner or queue
    crm: dict[str, str] = field(default_factory=dict)
    time_zone: str = "UTC"
    hours: WorkingHours | None = None
    away: bool = False
    away_until: str | None = None  # ISO date: away up to and including that day
    daily_capacity: int | None = None

    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.time_zone)

    def local_day(self, now: datetime) -> str:
        return now.astimezone(self.zone()).date().isoformat()


@dataclass(frozen=True)
class Team:
    id: str
    name: str
    members: tuple[str, ...]


@dataclass(frozen=True)
class Condition:
    kind: str  # persona, grade, score, source, campaign, country, territory, industry, company_size, field
    values: tuple[Any, ...] = ()
    low: float | None = None
    high: float | None = None
    field: str | None = None
    contains: str | None = None
    exists: bool | None = None


@dataclass(frozen=True)
class Action:
    kind: str  # owner, team, partner, queue
    target: str
    strategy: str = "round_robin"


@dataclass(frozen=True)
class Rule:
    name: str
    conditions: tuple[Condition, ...]
    action: Action
    default: bool = False


@dataclass(frozen=True)
class Territory:
    name: str
    countries: frozenset[str]
    regions: frozenset[str]  # ISO 3166-2 codes, e.g. US-CA, CN-GD


@dataclass(frozen=True)
class Sla:
    respond_within: timedelta | None = None  # None: no SLA
    working_days: int = 0  # with business_hours: whole working days, then `respond_within` of working time
    business_hours: bool = False
    on_breach: str = "reassign"  # or recycle
    max_reassignments: int = 2

    def describe(self) -> str:
        parts = []
        if self.working_days:
            parts.append(f"{self.working_days} working day{'s' * (self.working_days != 1)}")
        if self.respond_within:
            minutes = int(self.respond_within.total_seconds() // 60)
            hours, rest = divmod(minutes, 60)
            unit = "working " if self.business_hours else ""
            if hours:
                parts.append(f"{hours} {unit}hour{'s' * (hours != 1)}")
            if rest:
                parts.append(f"{rest} {unit}minute{'s' * (rest != 1)}")
        return " ".join(parts) or "no time"


@dataclass(frozen=True)
class RoutingConfig:
    owners: dict[str, Owner]
    teams: dict[str, Team]
    territories: dict[str, Territory]
    rules: tuple[Rule, ...]
    sla: Sla
    digest: str = ""


@dataclass
class State:
    """The routing state read from the store: team cursors and each owner's assignments on their local day."""

    cursors: dict[str, int] = field(default_factory=dict)
    counts: dict[str, dict[str, Any]] = field(default_factory=dict)  # owner id -> {"day": ISO date, "n": int}

    def today(self, owner: Owner, now: datetime) -> int:
        entry = self.counts.get(owner.id) or {}
        return int(entry.get("n") or 0) if entry.get("day") == owner.local_day(now) else 0

    def count(self, owner: Owner, now: datetime) -> None:
        self.counts[owner.id] = {"day": owner.local_day(now), "n": self.today(owner, now) + 1}


@dataclass(frozen=True)
class RuleTrace:
    rule: str
    matched: bool
    why: str


@dataclass(frozen=True)
class Decision:
    owner: Owner | None
    rule: str | None
    team: str | None
    trace: tuple[RuleTrace, ...]
    cursor: tuple[str, int] | None = None  # (team, new cursor) when a team's turn moved

    def explain(self) -> list[str]:
        lines = [f"{'+' if t.matched else '-'} {t.rule}: {t.why}" for t in self.trace]
        if self.owner is None:
            lines.append("-> nobody available: the lead stays unassigned")
        else:
            lines.append(f"-> {self.owner.id} ({self.owner.name}" + (f", team {self.team}" if self.team else "") + ")")
        return lines


# --------------------------------------------------------------------------------------------- conditions
def _text(value: Any) -> str:
    return str(value).strip().casefold()


def lead_field(lead: dict, path: str) -> Any:
    """A dotted path into the lead; a bare name not on the lead is looked up in its attributes."""
    value: Any = lead
    parts = path.split(".")
    if parts[0] not in lead and parts[0] != "attributes":
        value = lead.get("attributes") or {}
    for part in parts:
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def lead_region(lead: dict) -> str | None:
    """The lead's ISO 3166-2 region (`US-CA`) from its country and `region`/`state`/`province` attribute."""
    attributes = lead.get("attributes") or {}
    raw = next((attributes[k] for k in ("region", "state", "province") if attributes.get(k)), None)
    if raw is None:
        return None
    code = str(raw).strip().upper()
    country = str(lead.get("country") or "").upper()
    if "-" in code:
        return code
    return f"{country}-{code}" if country else None


def _touch(lead: dict) -> tuple[dict, dict]:
    attribution = lead.get("attribution") or {}
    return attribution.get("first_touch") or {}, attribution.get("last_touch") or {}


def _in(value: Any, wanted: tuple[Any, ...]) -> bool:
    return value is not None and _text(value) in {_text(w) for w in wanted}


def _range_text(cond: Condition) -> str:
    if cond.low is not None and cond.high is not None:
        return f"between {cond.low:g} and {cond.high:g}"
    return f"at least {cond.low:g}" if cond.low is not None else f"at most {cond.high:g}"


def _within(number: float | None, cond: Condition) -> bool:
    return (
        number is not None and (cond.low is None or number >= cond.low) and (cond.high is None or number <= cond.high)
    )


def check(cond: Condition, lead: dict, config: RoutingConfig) -> tuple[bool, str]:
    """Whether the lead meets one condition, and a short reason naming the lead's value."""
    listed = ", ".join(str(v) for v in cond.values)
    score = lead.get("score") or {}
    if cond.kind in ("persona", "industry", "country"):
        value = lead.get("persona") if cond.kind == "persona" else lead_field(lead, cond.kind)
        ok = _in(value, cond.values)
        return ok, f"{cond.kind} {value or '(none)'} {'is' if ok else 'is not'} in [{listed}]"
    if cond.kind == "grade":
        ok = score.get("grade") in cond.values
        return ok, f"grade {score.get('grade') or '(none)'} {'is' if ok else 'is not'} in [{listed}]"
    if cond.kind == "score":
        total = to_number(score.get("total"))
        ok = _within(total, cond)
        return ok, f"score {total if total is None else f'{total:g}'} {'is' if ok else 'is not'} {_range_text(cond)}"
    if cond.kind == "company_size":
        raw = lead_field(lead, "company_size")
        ok = _within(to_number(raw), cond)
        return ok, f"company size {raw or '(none)'} {'is' if ok else 'is not'} {_range_text(cond)}"
    if cond.kind == "source":
        first, last = _touch(lead)
        seen = [s for s in (lead.get("source"), first.get("source"), last.get("source")) if s]
        ok = any(_in(s, cond.values) for s in seen)
        return ok, f"source {'/'.join(dict.fromkeys(seen)) or '(none)'} {'is' if ok else 'is not'} in [{listed}]"
    if cond.kind == "campaign":
        first, last = _touch(lead)
        seen = [c for c in (first.get("utm_campaign"), last.get("utm_campaign")) if c]
        ok = any(_in(c, cond.values) for c in seen)
        return ok, f"campaign {'/'.join(dict.fromkeys(seen)) or '(none)'} {'is' if ok else 'is not'} in [{listed}]"
    if cond.kind == "territory":
        country, region = str(lead.get("country") or "").upper(), lead_region(lead)
        for name in cond.values:
            territory = config.territories[name]
            if country in territory.countries or (region is not None and region in territory.regions):
                where = region if region in territory.regions else country
                return True, f"{where} is in territory {name}"
        where = f"{country or '(no country)'}" + (f"/{region}" if region else "")
        return False, f"{where} is in none of the territories [{listed}]"
    if cond.kind == "field":
        value = lead_field(lead, cond.field or "")
        if cond.exists is not None:
            ok = (value not in (None, "", [], {})) == cond.exists
            return ok, f"{cond.field} {'is set' if value not in (None, '', [], {}) else 'is not set'}"
        if cond.values:
            ok = _in(value, cond.values)
            return ok, f"{cond.field} {value!r} {'is' if ok else 'is not'} in [{listed}]"
        if cond.contains is not None:
            ok = value is not None and _text(cond.contains) in _text(value)
            return ok, f"{cond.field} {'contains' if ok else 'does not contain'} {cond.contains!r}"
        ok = _within(to_number(value), cond)
        return ok, f"{cond.field} {value!r} {'is' if ok else 'is not'} {_range_text(cond)}"
    raise ValueError(cond.kind)


# --------------------------------------------------------------------------------------------- owners
def unavailable(owner: Owner, state: State, now: datetime, exclude: frozenset[str]) -> str | None:
    """Why this owner cannot take a lead now (None: they can)."""
    if owner.id in exclude:
        return "already had the lead"
    if owner.away:
        return "away"
    if owner.away_until and owner.local_day(now) <= owner.away_until:
        return f"away until {owner.away_until}"
    if owner.daily_capacity is not None and state.today(owner, now) >= owner.daily_capacity:
        return f"full ({owner.daily_capacity} today)"
    return None


def _pick_from_team(
    team: Team, strategy: str, config: RoutingConfig, state: State, now: datetime, exclude: frozenset[str]
) -> tuple[Owner | None, int | None, list[str]]:
    members = [config.owners[m] for m in team.members]
    start = state.cursors.get(team.id, 0) % len(members)
    order = [(start + i) % len(members) for i in range(len(members))]  # in turn from the cursor
    skipped: list[str] = []
    available: list[int] = []
    for index in order:
        why = unavailable(members[index], state, now, exclude)
        if why:
            skipped.append(f"{members[index].id} {why}")
        else:
            available.append(index)
    if not available:
        return None, None, skipped
    if strategy == "weighted":

        def load(index: int) -> float:
            owner = members[index]
            return state.today(owner, now) / (owner.daily_capacity or 1_000_000)

        chosen = min(available, key=lambda index: (load(index), available.index(index)))
    else:
        chosen = available[0]
    return members[chosen], (chosen + 1) % len(members), skipped


def decide(
    lead: dict, config: RoutingConfig, state: State, now: datetime, exclude: frozenset[str] = frozenset()
) -> Decision:
    """The owner the rules give this lead (first matching rule with an available owner), with the trace."""
    trace: list[RuleTrace] = []
    for rule in config.rules:
        failed = None
        for cond in rule.conditions:
            ok, why = check(cond, lead, config)
            if not ok:
                failed = why
                break
        if failed is not None:
            trace.append(RuleTrace(rule.name, False, failed))
            continue
        matched = "default rule" if rule.default else "; ".join(check(c, lead, config)[1] for c in rule.conditions)
        action = rule.action
        if action.kind == "team":
            team = config.teams[action.target]
            owner, cursor, skipped = _pick_from_team(team, action.strategy, config, state, now, exclude)
            if owner is None:
                trace.append(
                    RuleTrace(
                        rule.name, False, f"{matched}, but nobody in team {team.id} is available ({'; '.join(skipped)})"
                    )
                )
                continue
            how = "in turn" if action.strategy == "round_robin" else "by capacity"
            note = f"; skipped {', '.join(skipped)}" if skipped else ""
            trace.append(RuleTrace(rule.name, True, f"{matched} -> team {team.id} {how}: {owner.id}{note}"))
            return Decision(owner, rule.name, team.id, tuple(trace), (team.id, cursor or 0))
        owner = config.owners[action.target]
        why = None if owner.kind == "queue" else unavailable(owner, state, now, exclude)
        if owner.kind == "queue" and owner.id in exclude:
            why = "already had the lead"
        if why:
            trace.append(RuleTrace(rule.name, False, f"{matched}, but {action.kind} {owner.id} is {why}"))
            continue
        trace.append(RuleTrace(rule.name, True, f"{matched} -> {action.kind} {owner.id}"))
        return Decision(owner, rule.name, _team_of(owner, config), tuple(trace))
    return Decision(None, None, None, tuple(trace))


def _team_of(owner: Owner, config: RoutingConfig) -> str | None:
    return next((t.id for t in config.teams.values() if owner.id in t.members), None)


def apply(state: State, decision: Decision, now: datetime) -> State:
    """The state after the decision: the owner's count for today and the team's cursor."""
    new = State(dict(state.cursors), {k: dict(v) for k, v in state.counts.items()})
    if decision.owner is not None and decision.owner.kind != "queue":
        new.count(decision.owner, now)
    if decision.cursor is not None:
        new.cursors[decision.cursor[0]] = decision.cursor[1]
    return new


# --------------------------------------------------------------------------------------------- lead side
def owner_entry(decision: Decision, now: datetime, assignment: int, previous: list[str], due: datetime | None) -> dict:
    """The lead's `owner` value (contract fields first; the rest is routing bookkeeping)."""
    owner = decision.owner
    assert owner is not None
    entry: dict[str, Any] = {
        "id": owner.id,
        "name": owner.name,
        "team": decision.team,
        "rule": decision.rule,
        "assigned_at": iso(now),
        "kind": owner.kind,
        "crm": dict(owner.crm),
        "assignment": assignment,
        "previous": previous,
    }
    if due is not None:
        entry["due_at"] = iso(due)
    return entry


# --------------------------------------------------------------------------------------------- SLA
def _working_window(hours: WorkingHours, day: date, zone: ZoneInfo) -> tuple[datetime, datetime] | None:
    if day.weekday() not in hours.days:
        return None
    start = datetime.combine(day, hours.start, tzinfo=zone)
    end = (
        datetime.combine(day + timedelta(days=1), time(0, 0), tzinfo=zone)
        if hours.end_of_day
        else (datetime.combine(day, hours.end, tzinfo=zone))
    )
    return start, end


def due_at(owner: Owner, sla: Sla, start: datetime) -> datetime | None:
    """When an assignment made at `start` breaches the SLA (None: no SLA)."""
    if sla.respond_within is None and not sla.working_days:
        return None
    wall = sla.respond_within or timedelta(0)
    if not sla.business_hours or owner.hours is None:
        return start + wall + timedelta(days=sla.working_days)
    hours, zone = owner.hours, owner.zone()
    remaining = wall + hours.length() * sla.working_days
    cursor = start.astimezone(zone)
    for _ in range(3700):  # ten years of days at most: a configuration always has a working day
        window = _working_window(hours, cursor.date(), zone)
        if window is not None:
            begin, end = max(window[0], cursor), window[1]
            if begin < end:
                if remaining <= end - begin:
                    return (begin + remaining).astimezone(start.tzinfo)
                remaining -= end - begin
        cursor = datetime.combine(cursor.date() + timedelta(days=1), time(0, 0), tzinfo=zone)
    return None
