"""Load the routing rules from YAML text: schema and semantic checks, errors naming file, line and field.

`configured_routing()` reads them through `yaml_config.config_text` ("routing"): `LEADFLOW_ROUTING_FILE`,
else on AWS the SSM parameter named by `LEADFLOW_ROUTING_PARAMETER` (Powertools, max age five minutes; the
stack's placeholder `default` means no override), else the shipped `infra/routing/default.yaml` (packaged in
the layer as `leadflow/defaults/routing/default.yaml`). Compiled once per text. Errors read like the scoring
model's:
`infra/routing/default.yaml:31: rules[2].assign.team: no team 'emea' (teams: na_sales, emea_sales)`.
"""

from __future__ import annotations

import hashlib
from datetime import time, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from leadflow.domain.routing import (
    DAYS,
    Action,
    Condition,
    Owner,
    RoutingConfig,
    Rule,
    Sla,
    Team,
    Territory,
    WorkingHours,
)
from leadflow.errors import RoutingConfigInvalid
from leadflow.yaml_config import config_text, default_file, parse, read, render, schema_problems

SCHEMA = "routing.v1.json"
DEFAULT_FILE = default_file("routing")  # the layer's packaged copy, or infra/routing/default.yaml
ACTIONS = ("owner", "team", "partner", "queue")
LIST_CONDITIONS = ("persona", "grade", "source", "campaign", "country", "territory", "industry")
RANGE_CONDITIONS = ("score", "company_size")


def load_routing(text: str, source: str = "<routing>") -> RoutingConfig:
    """The compiled routing of YAML `text`, or RoutingConfigInvalid listing every problem by line."""
    return _load(text, source)


def load_routing_file(path: str | Path) -> RoutingConfig:
    path = Path(path)
    return load_routing(read(path, str(path), RoutingConfigInvalid), str(path))


def configured_routing() -> RoutingConfig:
    """The routing in force: LEADFLOW_ROUTING_FILE, else the SSM parameter LEADFLOW_ROUTING_PARAMETER (unless it
    holds the placeholder `default`), else the packaged default. UpstreamUnavailable when the parameter cannot
    be read (the message is retried); RoutingConfigInvalid (file:line: field) when the rules are not valid."""
    return load_routing(*config_text("routing", RoutingConfigInvalid, "The routing rules could not be read"))


@lru_cache(maxsize=8)
def _load(text: str, source: str) -> RoutingConfig:
    from leadflow.schemas import conforms, validator

    node, document = parse(text, source, RoutingConfigInvalid, "the routing configuration is empty")
    problems: list[tuple[tuple, str]] = []
    if conforms(SCHEMA, document) is not True:  # the stdlib fast path; jsonschema decides and explains the rest
        for error in validator(SCHEMA).iter_errors(document):
            problems.extend(schema_problems(error))
    if not problems:
        compiled, problems = _compile(document, hashlib.sha256(text.encode("utf-8")).hexdigest()[:12])
        if compiled is not None:
            return compiled
    raise RoutingConfigInvalid(source, render(problems, node, source))


def _clock(text: str) -> tuple[time, bool]:
    hours, minutes = (int(part) for part in text.split(":"))
    return (time(0, 0), True) if hours == 24 else (time(hours, minutes), False)


def _zone(name: str, path: tuple, problems: list) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        problems.append((path, f"{name!r} is not an IANA time zone"))
        return "UTC"
    return name


def _owner(raw: dict, where: tuple, zone: str, problems: list) -> Owner:
    hours = None
    if "working_hours" in raw:
        spec = raw["working_hours"]
        start, _ = _clock(spec.get("start", "09:00"))
        end, end_of_day = _clock(spec.get("end", "17:00"))
        if not end_of_day and end <= start:
            problems.append(((*where, "working_hours", "end"), "must be after start"))
        hours = WorkingHours(
            tuple(DAYS.index(d) for d in spec.get("days", DAYS[:5])), start, end, end_of_day=end_of_day
        )
    return Owner(
        id=raw["id"],
        name=raw["name"],
        kind=raw.get("kind", "person"),
        crm=dict(raw.get("crm") or {}),
        time_zone=_zone(raw.get("time_zone", zone), (*where, "time_zone"), problems),
        hours=hours,
        away=bool(raw.get("away", False)),
        away_until=raw.get("away_until"),
        daily_capacity=raw.get("daily_capacity"),
    )


def _conditions(when: dict, where: tuple, territories: dict, problems: list) -> tuple[Condition, ...]:
    conditions: list[Condition] = []
    for kind in LIST_CONDITIONS:
        if kind in when:
            values = tuple(when[kind])
            if kind == "territory":
                for i, name in enumerate(values):
                    if name not in territories:
                        known = ", ".join(sorted(territories)) or "none defined"
                        problems.append(((*where, "territory", i), f"no territory {name!r} (territories: {known})"))
            conditions.append(Condition(kind, values))
    for kind in RANGE_CONDITIONS:
        if kind in when:
            low, high = when[kind].get("min"), when[kind].get("max")
            if low is not None and high is not None and low > high:
                problems.append(((*where, kind), "min is above max"))
            conditions.append(Condition(kind, low=low, high=high))
    for i, spec in enumerate(when.get("fields") or []):
        tests = [k for k in ("in", "contains", "exists") if k in spec] + (
            ["min/max"] if {"min", "max"} & set(spec) else []
        )
        if len(tests) != 1:
            problems.append(((*where, "fields", i), "give exactly one of in, contains, exists or min/max"))
        conditions.append(
            Condition(
                "field",
                tuple(spec.get("in", ())),
                low=spec.get("min"),
                high=spec.get("max"),
                field=spec["field"],
                contains=spec.get("contains"),
                exists=spec.get("exists"),
            )
        )
    return tuple(conditions)


def _action(raw: dict, where: tuple, owners: dict[str, Owner], teams: dict[str, Team], problems: list) -> Action:
    given = [kind for kind in ACTIONS if kind in raw]
    if len(given) != 1:
        problems.append((where, "give exactly one of owner, team, partner or queue"))
        return Action("queue", "")
    kind = given[0]
    target = raw[kind]
    if "strategy" in raw and kind != "team":
        problems.append(((*where, "strategy"), "only a team has a strategy"))
    if kind == "team":
        if target not in teams:
            problems.append(((*where, "team"), f"no team {target!r} (teams: {', '.join(teams) or 'none defined'})"))
        return Action("team", target, raw.get("strategy", "round_robin"))
    wanted = {"owner": "person", "partner": "partner", "queue": "queue"}[kind]
    owner = owners.get(target)
    if owner is None:
        problems.append(((*where, kind), f"no owner {target!r}"))
    elif owner.kind != wanted:
        problems.append(((*where, kind), f"{target!r} is a {owner.kind}, not a {wanted}"))
    return Action(kind, target)


def _compile(document: dict[str, Any], digest: str) -> tuple[RoutingConfig | None, list[tuple[tuple, str]]]:
    problems: list[tuple[tuple, str]] = []
    zone = _zone(document.get("time_zone", "UTC"), ("time_zone",), problems)
    territories = {
        name: Territory(name, frozenset(spec.get("countries", ())), frozenset(spec.get("regions", ())))
        for name, spec in (document.get("territories") or {}).items()
    }
    for name, territory in territories.items():
        if not territory.countries and not territory.regions:
            problems.append((("territories", name), "a territory needs countries or regions"))
    owners: dict[str, Owner] = {}
    for i, raw in enumerate(document["owners"]):
        if raw["id"] in owners:
            problems.append((("owners", i, "id"), f"{raw['id']!r} is already the id of another owner"))
        owners[raw["id"]] = _owner(raw, ("owners", i), zone, problems)
    if not owners:
        problems.append((("owners",), "at least one owner is needed"))
    teams: dict[str, Team] = {}
    for i, raw in enumerate(document.get("teams") or []):
        if raw["id"] in teams:
            problems.append((("teams", i, "id"), f"{raw['id']!r} is already the id of another team"))
        for j, member in enumerate(raw["members"]):
            if member not in owners:
                problems.append((("teams", i, "members", j), f"no owner {member!r}"))
            elif owners[member].kind == "queue":
                problems.append((("teams", i, "members", j), f"{member!r} is a queue, not a team member"))
        teams[raw["id"]] = Team(raw["id"], raw.get("name", raw["id"]), tuple(raw["members"]))
    rules: list[Rule] = []
    names: set[str] = set()
    for i, raw in enumerate(document["rules"]):
        where = ("rules", i)
        if raw["name"] in names:
            problems.append(((*where, "name"), f"{raw['name']!r} is already the name of another rule"))
        names.add(raw["name"])
        default = bool(raw.get("default"))
        if default and raw.get("when"):
            problems.append(((*where, "when"), "the default rule takes every lead: it has no conditions"))
        if not default and not raw.get("when"):
            problems.append(((*where, "when"), "a rule needs conditions (or `default: true` as the last rule)"))
        if default and i != len(document["rules"]) - 1:
            problems.append(((*where, "default"), "the default rule must be the last rule"))
        conditions = _conditions(raw.get("when") or {}, (*where, "when"), territories, problems)
        action = _action(raw["assign"], (*where, "assign"), owners, teams, problems)
        rules.append(Rule(raw["name"], conditions, action, default))
    if not any(rule.default for rule in rules):
        problems.append((("rules",), "a default rule is required (the last rule, `default: true`)"))
    sla = _sla(document.get("sla") or {}, problems)
    if problems:
        return None, problems
    return RoutingConfig(owners, teams, territories, tuple(rules), sla, digest), []


def _sla(raw: dict, problems: list) -> Sla:
    within = raw.get("respond_within") or {}
    business = bool(raw.get("business_hours", False))
    days = int(within.get("days", 0))
    extra = timedelta(hours=within.get("hours", 0), minutes=within.get("minutes", 0))
    if raw and not within:
        problems.append((("sla", "respond_within"), "say how long owners have to respond (days, hours, minutes)"))
    if within and not days and not extra:
        problems.append((("sla", "respond_within"), "must be longer than zero"))
    if not within:
        return Sla()
    return Sla(
        respond_within=(extra if business else extra + timedelta(days=days)) or None,
        working_days=days if business else 0,
        business_hours=business,
        on_breach=raw.get("on_breach", "reassign"),
        max_reassignments=int(raw.get("max_reassignments", 2)),
    )
