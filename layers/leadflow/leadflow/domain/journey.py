"""Journey planning: pure functions over a compiled journey, a lead (a dict as stored) and `now`.

No I/O and no clock: the service passes `now` (journey time, which the local runtime scales). Times are
timezone-aware datetimes; the lead's time zone comes from its phone number, else its country, else the
configured default. A touch that would break the frequency cap (across all journeys) or fall in quiet
hours is deferred to the next allowed time (`next_allowed_time`), never dropped and never sent early.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DAY = timedelta(days=1)
WEEK = timedelta(days=7)
# Stages at which nurture ends: the lead belongs to sales (or is out) from MQL on.
EXIT_STAGES = ("mql", "sql", "opportunity", "customer", "disqualified")
CHANNEL_CONSENT = {"email": "email", "sms": "sms", "webhook": None}


@dataclass(frozen=True)
class Touch:
    id: str
    channel: str  # email | sms | webhook
    template: str
    variants: tuple[tuple[str, int], ...] = ()  # (name, weight); empty = no split


@dataclass(frozen=True)
class Wait:
    seconds: float | None = None  # a duration
    local_time: time | None = None  # until this local time of day (after `seconds`, if both)
    until_event: str | None = None  # or until this event, at most `seconds`


# Lead data a branch may test: top-level fields of the lead JSON, and named parts of its maps.
BRANCH_FIELDS = (
    "lifecycle_stage", "persona", "source", "country", "company", "job_title", "email", "phone", "first_name",
    "last_name", "touch_count", "is_test", "mql_at", "suppressed", "owner",
)  # fmt: skip
BRANCH_FIELD_MAPS = ("attributes", "score", "consent", "attribution.first_touch", "attribution.last_touch", "owner")


@dataclass(frozen=True)
class Condition:
    """A branch's test: on lead data (`field` with one of equals / one_of / at_least / at_most / exists) or
    on a past event (`event`, at most `within_days` old; any time when None)."""

    field: str | None = None
    equals: Any = None
    one_of: tuple[Any, ...] = ()
    at_least: float | None = None
    at_most: float | None = None
    exists: bool | None = None
    event: str | None = None
    within_days: float | None = None


@dataclass(frozen=True)
class Branch:
    """Go on with the next step when `condition` holds, else jump to step `otherwise` (the compiled `else`)."""

    condition: Condition
    otherwise: int


@dataclass(frozen=True)
class Jump:
    """The end of a branch's `then` steps: continue after its `else` steps."""

    to: int


@dataclass(frozen=True)
class Entry:
    lifecycle_stages: tuple[str, ...] = ("lead",)
    personas: tuple[str, ...] = ()  # empty = any
    sources: tuple[str, ...] = ()  # empty = any
    consent: str | None = "email"  # the channel consent a lead needs to enter


@dataclass(frozen=True)
class Journey:
    name: str
    entry: Entry
    steps: tuple[Touch | Wait | Branch | Jump, ...]
    exit_stages: tuple[str, ...] = EXIT_STAGES
    default: bool = False

    @property
    def touches(self) -> tuple[Touch, ...]:
        return tuple(s for s in self.steps if isinstance(s, Touch))


@dataclass(frozen=True)
class SendPolicy:
    per_day: int = 1
    per_week: int = 3
    quiet_start: time = time(20, 0)
    quiet_end: time = time(8, 0)
    time_zone: str = "UTC"
    country_time_zones: dict[str, str] = field(default_factory=dict)


# ------------------------------------------------------------------------------------------ entry / exit
def is_eligible(journey: Journey, lead: dict[str, Any]) -> bool:
    """Whether `lead` enters `journey` now (entry criteria, and no exit criterion already met)."""
    entry = journey.entry
    if exit_reason(journey, lead) is not None:
        return False
    if (lead.get("lifecycle_stage") or "lead") not in entry.lifecycle_stages:
        return False
    if entry.personas and lead.get("persona") not in entry.personas:
        return False
    if entry.sources and lead.get("source") not in entry.sources:
        return False
    return entry.consent is None or has_consent(lead, entry.consent)


def exit_reason(journey: Journey, lead: dict[str, Any] | None, now: datetime | None = None) -> str | None:
    """Why the lead leaves the journey now (`erased`, `suppressed`, `stage:<stage>`), or None to stay.

    With `now`, a suppression whose `until` has passed (a CRM reason's, e.g. 180 days) no longer counts."""
    if lead is None or lead.get("erasing"):
        return "erased"
    suppressed = lead.get("suppressed")
    if suppressed and not (now is not None and _lifted(suppressed, now)):
        return "suppressed"
    stage = lead.get("lifecycle_stage") or "lead"
    if stage in journey.exit_stages:
        return f"stage:{stage}"
    return None


def _lifted(suppressed: Any, now: datetime) -> bool:
    until = suppressed.get("until") if isinstance(suppressed, dict) else None
    try:
        return bool(until) and datetime.fromisoformat(str(until).replace("Z", "+00:00")) <= now
    except ValueError:
        return False


def has_consent(lead: dict[str, Any], channel: str) -> bool:
    """Consent to `channel` (`consent.<channel>` true, or `consent.<channel>.granted` true)."""
    value = (lead.get("consent") or {}).get(channel)
    if isinstance(value, dict):
        value = value.get("granted")
    return value is True


def send_refusal(touch: Touch, lead: dict[str, Any]) -> str | None:
    """Why this touch must not go to this lead at all (no consent, no address), or None."""
    needed = CHANNEL_CONSENT.get(touch.channel)
    if needed is not None and not has_consent(lead, needed):
        return f"no_consent:{needed}"
    if touch.channel == "email" and not lead.get("email"):
        return "no_address:email"
    if touch.channel == "sms" and not lead.get("phone"):
        return "no_address:sms"
    return None


def is_lead_field(path: str) -> bool:
    """Whether a branch may test `path` (`persona`, `score.total`, `attributes.industry`, ...)."""
    if path in BRANCH_FIELDS:
        return True
    return any(
        path.startswith(prefix + ".") and path.count(".") == prefix.count(".") + 1 for prefix in BRANCH_FIELD_MAPS
    )


def lead_value(lead: dict[str, Any], path: str) -> Any:
    """The value at a dotted path of the lead (None when absent); a consent's `{granted}` reads as the flag."""
    value: Any = lead
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    if path.startswith("consent.") and isinstance(value, dict):
        value = value.get("granted")
    return value


def field_holds(condition: Condition, lead: dict[str, Any]) -> bool:
    """A lead-data condition (the caller evaluates event conditions: they need the lead's past events)."""
    assert condition.field is not None  # noqa: S101 - event conditions never come here
    value = lead_value(lead, condition.field)
    if condition.exists is not None:
        return (value not in (None, "", [], {})) == condition.exists
    if condition.one_of:
        return value in condition.one_of
    if condition.at_least is not None or condition.at_most is not None:
        if isinstance(value, bool) or not isinstance(value, int | float):
            try:
                value = float(value)  # DynamoDB numbers and numeric strings
            except (TypeError, ValueError):
                return False
        low = condition.at_least if condition.at_least is not None else float("-inf")
        high = condition.at_most if condition.at_most is not None else float("inf")
        return low <= value <= high
    return value == condition.equals


# ------------------------------------------------------------------------------------------ time
def lead_time_zone(lead: dict[str, Any], policy: SendPolicy) -> ZoneInfo:
    """The lead's zone: from its phone number (one zone for the number's region), else country, else default."""
    for name in (_phone_zone(lead.get("phone")), policy.country_time_zones.get((lead.get("country") or "").upper())):
        if name:
            try:
                return ZoneInfo(name)
            except (ZoneInfoNotFoundError, ValueError):
                continue
    return ZoneInfo(policy.time_zone)


def _phone_zone(phone: str | None) -> str | None:
    if not phone:
        return None
    import phonenumbers
    from phonenumbers import timezone as phone_timezones

    try:
        zones = phone_timezones.time_zones_for_number(phonenumbers.parse(phone, None))
    except phonenumbers.NumberParseException:
        return None
    known = [z for z in zones if z != phone_timezones.UNKNOWN_TIMEZONE]
    return known[0] if known else None


def in_quiet_hours(moment: datetime, zone: ZoneInfo, policy: SendPolicy) -> bool:
    local = moment.astimezone(zone).time()
    start, end = policy.quiet_start, policy.quiet_end
    if start == end:
        return False
    if start < end:
        return start <= local < end
    return local >= start or local < end  # overnight, e.g. 20:00 → 08:00


def _quiet_end_after(moment: datetime, zone: ZoneInfo, policy: SendPolicy) -> datetime:
    local = moment.astimezone(zone)
    candidate = datetime.combine(local.date(), policy.quiet_end, tzinfo=zone)
    if candidate <= local:
        candidate = datetime.combine(local.date() + DAY, policy.quiet_end, tzinfo=zone)
    return candidate.astimezone(moment.tzinfo)


def next_allowed_time(now: datetime, sends: list[datetime], zone: ZoneInfo, policy: SendPolicy) -> datetime:
    """The earliest moment ≥ now when a touch keeps the cap (rolling day and week, all journeys) and is
    outside quiet hours in the lead's zone. `now` itself when the touch may go at once."""
    candidate = now
    for _ in range(32):  # each move only goes forward; a few rounds settle it
        moved = candidate
        for window, limit in ((DAY, policy.per_day), (WEEK, policy.per_week)):
            recent = sorted(s for s in sends if moved - window < s <= moved)
            if len(recent) >= limit:
                moved = recent[len(recent) - limit] + window  # when the oldest counted send leaves the window
        if in_quiet_hours(moved, zone, policy):
            moved = _quiet_end_after(moved, zone, policy)
        if moved == candidate:
            return candidate
        candidate = moved
    return candidate


def wait_until(now: datetime, wait: Wait, zone: ZoneInfo | Callable[[], ZoneInfo]) -> datetime:
    """When a time wait ends: after its duration, then at the next `local_time` in the lead's zone."""
    end = now + timedelta(seconds=wait.seconds or 0)
    if wait.local_time is not None:
        zone = zone() if callable(zone) else zone
        local = end.astimezone(zone)
        target = datetime.combine(local.date(), wait.local_time, tzinfo=zone)
        if target < local:
            target = datetime.combine(local.date() + DAY, wait.local_time, tzinfo=zone)
        end = target.astimezone(now.tzinfo)
    return end


def recent_sends(sends: list[datetime], now: datetime) -> list[datetime]:
    """The sends the cap can still count (the last week), to keep on the lead."""
    return sorted(s for s in sends if now - WEEK < s <= now)


# ------------------------------------------------------------------------------------------ A/B
def variant_for(lead_id: str, journey: str, touch: Touch) -> str | None:
    """The lead's variant of a split touch: a stable hash of (journey, touch, lead) over the weights."""
    if not touch.variants:
        return None
    total = sum(weight for _, weight in touch.variants)
    digest = hashlib.sha256(f"{journey}\x1f{touch.id}\x1f{lead_id}".encode()).digest()
    point = int.from_bytes(digest[:8], "big") % total
    for name, weight in touch.variants:
        if point < weight:
            return name
        point -= weight
    return touch.variants[-1][0]  # unreachable: the weights sum to total


# ------------------------------------------------------------------------------------------ plan
@dataclass(frozen=True)
class Plan:
    """What the state machine does next: `wait` until `at` then touch step `step`; `wait_event` for
    `event` at most until `at`, then continue at `step`; or `done`."""

    route: str
    step: int
    at: datetime | None = None
    event: str | None = None


def plan_from(
    journey: Journey,
    step: int,
    now: datetime,
    zone: ZoneInfo | Callable[[], ZoneInfo],
    holds: Callable[[Condition], bool] | None = None,
) -> Plan:
    """From step index `step` on: fold time waits into one moment, stop at the next touch or event wait.

    A branch is decided by `holds` when it is reached at `now`; one after a time wait is decided when that
    wait is over (the plan waits until then at the branch, and the task that wakes up decides it), and so is
    every branch when `holds` is None. `zone` (or a function giving it) is only asked for by local-time waits."""
    at = now
    for _ in range(len(journey.steps) + 1):  # jumps only go forward: each step is passed at most once
        if step >= len(journey.steps):
            break
        current = journey.steps[step]
        if isinstance(current, Touch):
            return Plan("wait", step, at)
        if isinstance(current, Jump):
            step = current.to
            continue
        if isinstance(current, Branch):
            if holds is None or at > now:
                return Plan("wait", step, at)
            step = step + 1 if holds(current.condition) else current.otherwise
            continue
        if current.until_event is not None:
            return Plan("wait_event", step + 1, at + timedelta(seconds=current.seconds or 0), current.until_event)
        at = wait_until(at, current, zone)
        step += 1
    return Plan("done", len(journey.steps))
