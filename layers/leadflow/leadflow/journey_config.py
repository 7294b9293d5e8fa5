"""Load the nurture journeys from YAML text: schema and semantic checks, errors naming file, line and field.

`configured_journeys()` reads them through `yaml_config.config_text` ("journeys"): `LEADFLOW_JOURNEYS_FILE`,
else on AWS the SSM parameter named by `LEADFLOW_JOURNEYS_PARAMETER` when a stage sets one (Powertools, max
age five minutes), else the shipped `infra/journeys/default.yaml` (packaged in the layer as
`leadflow/defaults/journeys/default.yaml`). Compiled once per text.
Errors read like the scoring model's: `infra/journeys/default.yaml:12: journeys[0].steps[2].touch.template:
'nope' is not a template`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import time
from functools import lru_cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from leadflow.domain.journey import (
    EXIT_STAGES,
    Branch,
    Condition,
    Entry,
    Journey,
    Jump,
    SendPolicy,
    Touch,
    Wait,
    is_lead_field,
)
from leadflow.errors import JourneyConfigInvalid
from leadflow.yaml_config import config_text, default_file, parse, read, render, schema_problems

SCHEMA = "journeys.v1.json"
DEFAULT_FILE = default_file("journeys")  # the layer's packaged copy, or infra/journeys/default.yaml


@dataclass(frozen=True)
class JourneyConfig:
    journeys: dict[str, Journey]
    policy: SendPolicy
    templates: dict[str, dict[str, str]]
    email: dict[str, str] = field(default_factory=dict)
    webhook: dict[str, str] = field(default_factory=dict)

    @property
    def default(self) -> Journey | None:
        return next((j for j in self.journeys.values() if j.default), None)


def load_journeys(text: str, source: str = "<journeys>") -> JourneyConfig:
    """The compiled journeys of YAML `text`, or JourneyConfigInvalid listing every problem by line."""
    return _load(text, source)


def load_journeys_file(path: str | Path) -> JourneyConfig:
    path = Path(path)
    return load_journeys(read(path, str(path), JourneyConfigInvalid), str(path))


def configured_journeys() -> JourneyConfig:
    """The journeys this process runs: `LEADFLOW_JOURNEYS_FILE`, else the SSM parameter of
    `LEADFLOW_JOURNEYS_PARAMETER`, else the shipped default (packaged in the layer)."""
    return load_journeys(*config_text("journeys", JourneyConfigInvalid, "The journeys could not be read"))


@lru_cache(maxsize=8)
def _load(text: str, source: str) -> JourneyConfig:
    from leadflow.schemas import conforms, validator

    node, document = parse(text, source, JourneyConfigInvalid, "the configuration is empty")
    problems: list[tuple[tuple, str]] = []
    if conforms(SCHEMA, document) is not True:  # the stdlib fast path; jsonschema decides and explains the rest
        for error in validator(SCHEMA).iter_errors(document):
            problems.extend(schema_problems(error))
    if not problems:
        compiled, problems = _compile(document)
        if compiled is not None:
            return compiled
    raise JourneyConfigInvalid(source, render(problems, node, source))


def _clock(text: str) -> time:
    hours, minutes = text.split(":")
    return time(int(hours), int(minutes))


def _zone_problem(name: str) -> str | None:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return f"{name!r} is not an IANA time zone"
    return None


Step = Touch | Wait | Branch | Jump
FIELD_TESTS = ("equals", "in", "at_least", "at_most", "exists")


def _compile_steps(
    raw_steps: list[dict],
    where: tuple,
    steps: list[Step],
    templates: dict,
    problems: list[tuple[tuple, str]],
    webhook: bool,
) -> None:
    """Append `raw_steps` to the flat `steps`: a branch becomes Branch (→ its `else`), its `then` steps, a Jump
    over its `else` steps (when it has some), then those."""
    for s, step in enumerate(raw_steps):
        here = (*where, s)
        if "touch" in step:
            touch = step["touch"]
            names = [f"{touch['template']}_{v}" for v in touch.get("variants", {})] or [touch["template"]]
            missing = [n for n in names if n not in templates]
            if missing:
                problems.append(((*here, "touch", "template"), f"no template {', '.join(missing)} in templates"))
            elif touch["channel"] == "email" and any("subject" not in templates[n] for n in names):
                problems.append(((*here, "touch", "template"), "an email template needs a subject"))
            if len(touch.get("variants", {})) == 1:
                problems.append(((*here, "touch", "variants"), "a split needs two variants or more"))
            if touch["channel"] == "webhook" and not webhook:
                problems.append(((*here, "touch", "channel"), "a webhook touch needs webhook.url"))
            steps.append(
                Touch(touch["id"], touch["channel"], touch["template"], tuple(touch.get("variants", {}).items()))
            )
        elif "branch" in step:
            branch = step["branch"]
            condition = _condition(branch["if"], (*here, "branch", "if"), problems)
            at = len(steps)
            steps.append(Branch(condition, -1))
            _compile_steps(branch["then"], (*here, "branch", "then"), steps, templates, problems, webhook)
            if branch.get("else"):
                jump = len(steps)
                steps.append(Jump(-1))
                steps[at] = Branch(condition, len(steps))
                _compile_steps(branch["else"], (*here, "branch", "else"), steps, templates, problems, webhook)
                steps[jump] = Jump(len(steps))
            else:
                steps[at] = Branch(condition, len(steps))
        else:
            wait = step["wait"]
            seconds = wait.get("days", 0) * 86400 + wait.get("hours", 0) * 3600
            if "until_event" in wait:
                if "timeout_days" not in wait:
                    problems.append(((*here, "wait"), "until_event needs timeout_days"))
                seconds = wait.get("timeout_days", 0) * 86400
            elif "timeout_days" in wait:
                problems.append(((*here, "wait", "timeout_days"), "only with until_event"))
            if not wait:
                problems.append(((*here, "wait"), "days, hours, a local time or an event"))
            local = _clock(wait["until_local_time"]) if "until_local_time" in wait else None
            steps.append(Wait(seconds or None, local, wait.get("until_event")))


def _condition(raw: dict, where: tuple, problems: list[tuple[tuple, str]]) -> Condition:
    """A branch's `if`: a lead field with exactly one test, or an event (optionally `within_days`)."""
    tests = [name for name in FIELD_TESTS if name in raw]
    if "event" in raw:
        for name in ("field", *tests):
            if name in raw:
                problems.append(((*where, name), "a branch tests a lead field or an event, not both"))
        return Condition(event=raw["event"], within_days=raw.get("within_days"))
    if "field" not in raw:
        problems.append((where, "a branch needs a field (lead data) or an event"))
        return Condition(field="")
    if not is_lead_field(raw["field"]):
        problems.append(((*where, "field"), f"{raw['field']!r} is not a lead field a branch can test"))
    if len(tests) != 1:
        problems.append((where, f"a field needs exactly one of {', '.join(FIELD_TESTS)}"))
    if "within_days" in raw:
        problems.append(((*where, "within_days"), "only with event"))
    return Condition(
        field=raw["field"],
        equals=raw.get("equals"),
        one_of=tuple(raw.get("in", ())),
        at_least=raw.get("at_least"),
        at_most=raw.get("at_most"),
        exists=raw.get("exists"),
    )


def _compile(document: dict[str, Any]) -> tuple[JourneyConfig | None, list[tuple[tuple, str]]]:
    """Checks the schema cannot express (names unique, templates exist, zones real), then the dataclasses."""
    problems: list[tuple[tuple, str]] = []
    raw_policy = document.get("send_policy") or {}
    cap = raw_policy.get("frequency_cap") or {}
    quiet = raw_policy.get("quiet_hours") or {"start": "20:00", "end": "08:00"}
    zones = raw_policy.get("country_time_zones") or {}
    for path, name in [(("send_policy", "time_zone"), raw_policy.get("time_zone", "UTC"))] + [
        (("send_policy", "country_time_zones", c), z) for c, z in zones.items()
    ]:
        if message := _zone_problem(name):
            problems.append((path, message))
    policy = SendPolicy(
        per_day=cap.get("per_day", 1),
        per_week=cap.get("per_week", 3),
        quiet_start=_clock(quiet["start"]),
        quiet_end=_clock(quiet["end"]),
        time_zone=raw_policy.get("time_zone", "UTC"),
        country_time_zones=dict(zones),
    )
    if policy.per_week < policy.per_day:
        problems.append((("send_policy", "frequency_cap", "per_week"), "must be at least per_day"))
    templates = document.get("templates") or {}
    journeys: dict[str, Journey] = {}
    defaults = 0
    for j, raw in enumerate(document["journeys"]):
        where = ("journeys", j)
        if raw["name"] in journeys:
            problems.append(((*where, "name"), f"{raw['name']!r} is already the name of another journey"))
        steps: list[Step] = []
        webhook = bool((document.get("webhook") or {}).get("url"))
        _compile_steps(raw["steps"], (*where, "steps"), steps, templates, problems, webhook)
        if steps and isinstance(steps[0], Wait) and steps[0].until_event is not None:
            problems.append(((*where, "steps", 0, "wait"), "a journey starts with a touch or a time wait"))
        if not any(isinstance(step, Touch) for step in steps):
            problems.append(((*where, "steps"), "a journey needs at least one touch"))
        touch_ids = [step.id for step in steps if isinstance(step, Touch)]  # across every branch
        if len(set(touch_ids)) != len(touch_ids):
            problems.append(((*where, "steps"), "touch ids must be unique within a journey"))
        entry = raw.get("entry") or {}
        if entry.get("lifecycle_stages") == []:
            problems.append(((*where, "entry", "lifecycle_stages"), "no stage: no lead could ever enter"))
        defaults += bool(raw.get("default"))
        journeys[raw["name"]] = Journey(
            name=raw["name"],
            entry=Entry(
                lifecycle_stages=tuple(entry.get("lifecycle_stages", ("lead",))),
                personas=tuple(entry.get("personas", ())),
                sources=tuple(entry.get("sources", ())),
                consent=entry.get("consent", "email"),
            ),
            steps=tuple(steps),
            exit_stages=tuple((raw.get("exit") or {}).get("lifecycle_stages", EXIT_STAGES)),
            default=bool(raw.get("default")),
        )
    if not journeys:
        problems.append((("journeys",), "at least one journey is needed"))
    if defaults > 1:
        problems.append((("journeys",), "at most one journey can be the default"))
    if problems:
        return None, problems
    return JourneyConfig(journeys, policy, templates, document.get("email") or {}, document.get("webhook") or {}), []
