"""Funnel analytics (pure): what one lead change adds to the counters, and a report from counter rows.

Counters are flows, per UTC day and per value of each dimension: `in_<stage>` (entries), `out_<stage>`
(exits) and `h_<stage>_<bucket>` (time spent in the previous stage before entering this one, in hour
buckets, so medians are read without touching a lead). A forward move that skips stages (lead → sql)
enters the skipped funnel stages too, so `mql` counts every lead that got at least that far; a new lead
enters `lead` (or, created further down the funnel, every funnel stage up to its own). `recycled` → `lead`
enters `lead` again (a re-engaged lead).

A lead's dimension values are read from the lead as it is when it moves (the last touch at the time of the
move, the owner at the time of the move): an MQL is credited to the campaign that was its last touch when
it qualified.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from leadflow.domain.lifecycle import EXITS, FUNNEL

STAGES = FUNNEL + EXITS  # the report's stages, funnel order then the exits
ENTRY = FUNNEL.index("lead")
# stage-to-stage rates of the report (numerator stage, denominator stage)
RATES = {
    "lead_to_mql": ("lead", "mql"),
    "mql_to_sql": ("mql", "sql"),
    "sql_to_opportunity": ("sql", "opportunity"),
    "opportunity_to_customer": ("opportunity", "customer"),
    "sql_to_customer": ("sql", "customer"),
}
# upper bounds (hours) of the time-in-stage buckets; the last bucket is open-ended
BUCKETS = (1, 4, 12, 24, 48, 72, 168, 336, 720, 1440, 2160, 4320)
# the counters a roll-up keeps per value, in this fixed order (one list of numbers, `vector`): entries and exits of
# every stage and the time-in-stage histograms the report's medians read; the same size whatever the leads
MEDIAN_STAGES = tuple(b for name, (_a, b) in RATES.items() if name != "sql_to_customer")
NONE = "(none)"
MAX_VALUE = 200  # characters of a dimension value kept in a key
ATTRIBUTIONS = ("first", "last")
TOUCH_DIMENSIONS = ("source", "utm_source", "utm_medium", "utm_campaign")
LEAD_DIMENSIONS = ("owner", "team", "variant")
GROUP_BY = TOUCH_DIMENSIONS + LEAD_DIMENSIONS
DIMENSIONS = tuple(f"{a}.{d}" for a in ATTRIBUTIONS for d in TOUCH_DIMENSIONS) + LEAD_DIMENSIONS


def dimension(group_by: str, attribution: str) -> str:
    """The counter dimension of a report: touch dimensions per attribution mode, owner/team/variant as is."""
    return f"{attribution}.{group_by}" if group_by in TOUCH_DIMENSIONS else group_by


@dataclass(frozen=True)
class Change:
    """What one lead change adds: entries and exits of stages on `day`, under each dimension value."""

    day: str  # YYYY-MM-DD (UTC)
    values: dict[str, str]  # dimension → value
    entries: tuple[str, ...]
    exits: tuple[str, ...] = ()
    hours: dict[str, float] = field(default_factory=dict)  # entered stage → hours in the previous stage

    def increments(self) -> dict[str, int]:
        """Counter attribute → amount, the same for every dimension value of the change."""
        out = {f"in_{s}": 1 for s in self.entries}
        out.update({f"out_{s}": 1 for s in self.exits})
        for stage, hours in self.hours.items():
            out[f"h_{stage}_{bucket_of(hours)}"] = 1
        return out


COUNTERS = (
    tuple(f"in_{s}" for s in STAGES)
    + tuple(f"out_{s}" for s in STAGES)
    + tuple(f"h_{s}_{i}" for s in MEDIAN_STAGES for i in range(len(BUCKETS) + 1))
)
COUNTER_INDEX = {name: i for i, name in enumerate(COUNTERS)}


def vector(numbers: Mapping[str, int]) -> list[int]:
    """A value's counters as the fixed-size list of `COUNTERS` (those a roll-up does not keep are left out)."""
    out = [0] * len(COUNTERS)
    for name, n in numbers.items():
        if name in COUNTER_INDEX:
            out[COUNTER_INDEX[name]] += int(n)
    return out


def from_vector(numbers: Iterable[int]) -> dict[str, int]:
    """The non-zero counters of a roll-up list (`vector`'s inverse)."""
    return {COUNTERS[i]: int(n) for i, n in enumerate(numbers) if n and i < len(COUNTERS)}


def period_days(month: str, period: str) -> list[str]:
    """The days (`YYYY-MM-DD`) a counter period of `month` stands for: the month, a week part or one day."""
    if len(period) == 10:
        return [period]
    first = date.fromisoformat(f"{month}-01")
    days = [first + timedelta(days=i) for i in range(31)]
    days = [d.isoformat() for d in days if d.month == first.month]
    return days if len(period) == 7 else [d for d in days if iso_week(d) == period]


def bucket_of(hours: float) -> int:
    for i, bound in enumerate(BUCKETS):
        if hours <= bound:
            return i
    return len(BUCKETS)


def _clean(value: Any) -> str:
    text = str(value).strip() if value not in (None, "") else ""
    return text[:MAX_VALUE] if text else NONE


def dimension_values(lead: Mapping[str, Any]) -> dict[str, str]:
    """The lead's value for every dimension (`(none)` when it has none)."""
    attribution = lead.get("attribution") or {}
    values = {}
    for mode in ATTRIBUTIONS:
        touch = attribution.get(f"{mode}_touch") or {}
        for name in TOUCH_DIMENSIONS:
            values[f"{mode}.{name}"] = _clean(touch.get(name))
    owner = lead.get("owner") or {}
    values["owner"] = _clean(owner.get("id"))
    values["team"] = _clean(owner.get("team"))
    journey = lead.get("journey") or {}
    variants = journey.get("variants") or {}
    label = ",".join(f"{k}={variants[k]}" for k in sorted(variants))
    values["variant"] = _clean(f"{journey.get('name')}:{label}" if journey.get("name") and label else None)
    return values


def _stage(lead: Mapping[str, Any] | None) -> str | None:
    if not lead:
        return None
    stage = lead.get("lifecycle_stage") or "lead"
    return stage if stage in STAGES else None


def _parse(text: Any) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        return None


def entered_on_creation(stage: str) -> tuple[str, ...]:
    """Stages a lead created in `stage` enters: the funnel stages from `lead` up to it (or just the stage)."""
    if stage in FUNNEL and FUNNEL.index(stage) >= ENTRY:
        return FUNNEL[ENTRY : FUNNEL.index(stage) + 1]
    return (stage,)


def entered_on_move(old: str, new: str) -> tuple[str, ...]:
    """Stages a move enters: a forward funnel move enters the stages it skipped too."""
    if old in FUNNEL and new in FUNNEL and FUNNEL.index(new) > FUNNEL.index(old):
        return FUNNEL[max(FUNNEL.index(old) + 1, ENTRY) : FUNNEL.index(new) + 1]
    return (new,)


def change_of(new: Mapping[str, Any] | None, old: Mapping[str, Any] | None) -> Change | None:
    """What a lead item change (stream images) adds to the counters; None when its stage did not change."""
    new_stage, old_stage = _stage(new), _stage(old)
    if new is None or new_stage is None or new.get("erasing") or new.get("is_test"):
        return None
    if not old:  # INSERT: no old image
        at = _parse(new.get("created_at"))
        if at is None:
            return None
        return Change(at.date().isoformat(), dimension_values(new), entered_on_creation(new_stage))
    if old_stage == new_stage or old_stage is None:
        return None
    at = _parse(new.get("stage_changed_at")) or _parse(new.get("updated_at"))
    if at is None:
        return None
    since = _parse(old.get("stage_changed_at")) or _parse(old.get("created_at"))
    hours = {new_stage: max(0.0, (at - since).total_seconds() / 3600)} if since else {}
    return Change(
        at.date().isoformat(), dimension_values(new), entered_on_move(old_stage, new_stage), (old_stage,), hours
    )


def replay_changes(lead: Mapping[str, Any], moves: Iterable[Mapping[str, Any]]) -> list[Change]:
    """The changes a stored lead made, from its creation and its stage history (`{from, to, at}`, oldest
    first): what `leadflow report rebuild` counts. Dimension values are the lead's current ones."""
    moves = sorted((m for m in moves if m.get("at")), key=lambda m: m["at"])
    first = moves[0]["from"] if moves else _stage(lead)
    current = dict(lead)
    current.update(lifecycle_stage=first, stage_changed_at=None)
    changes = [c for c in [change_of(current, None)] if c]
    for move in moves:
        if move.get("from") not in STAGES or move.get("to") not in STAGES:
            continue
        after = {**current, "lifecycle_stage": move["to"], "stage_changed_at": move["at"]}
        change = change_of(after, {**current, "lifecycle_stage": move["from"]})
        if change:
            changes.append(change)
        current = after
    return changes


# ------------------------------------------------------------------------------------------------ report
@dataclass(frozen=True)
class FunnelSettings:
    """The report's configuration (infra/funnel/default.yaml): currency, value, bands and targets."""

    currency: str = "USD"
    exchange_rates: dict[str, float] = field(default_factory=dict)
    customer_value: float | None = None
    reference_bands: dict[str, tuple[float, float]] = field(default_factory=dict)
    targets: dict[str, dict[str, int]] = field(default_factory=dict)  # "2026-Q4" → stage → entries


@dataclass
class Tally:
    """Counters summed over days for one group (entries, exits, histograms) and its spend."""

    values: dict[str, int] = field(default_factory=dict)
    spend: float = 0.0

    def add(self, attributes: Mapping[str, Any]) -> None:
        for name, amount in attributes.items():
            if name.startswith(("in_", "out_", "h_")):
                self.values[name] = self.values.get(name, 0) + int(amount)

    def count(self, stage: str) -> int:
        return self.values.get(f"in_{stage}", 0)


def median_hours(tally: Tally, stage: str) -> float | None:
    """The median time in the previous stage before entering `stage`, interpolated in its hour bucket."""
    counts = [tally.values.get(f"h_{stage}_{i}", 0) for i in range(len(BUCKETS) + 1)]
    total = sum(counts)
    if not total:
        return None
    half, seen = total / 2, 0
    for i, n in enumerate(counts):
        if n and seen + n >= half:
            low = BUCKETS[i - 1] if i else 0.0
            high = BUCKETS[i] if i < len(BUCKETS) else BUCKETS[-1] * 2
            return round(low + (high - low) * ((half - seen) / n), 1)
        seen += n
    return None


def _rate(numerator: int, denominator: int) -> float | None:
    return round(numerator / denominator, 4) if denominator else None


def band_mark(rate: float | None, band: tuple[float, float] | None) -> str | None:
    if rate is None or band is None:
        return None
    return "below" if rate < band[0] else "above" if rate > band[1] else "within"


def quarter_of(day: date) -> str:
    return f"{day.year}-Q{(day.month - 1) // 3 + 1}"


def _quarter_bounds(day: date) -> tuple[date, date]:
    first_month = 3 * ((day.month - 1) // 3) + 1
    start = date(day.year, first_month, 1)
    end = date(day.year + (first_month == 10), (first_month + 2) % 12 + 1, 1) - timedelta(days=1)
    return start, end


def range_targets(start: date, end: date, settings: FunnelSettings) -> dict[str, float]:
    """Stage targets for [start, end]: each quarter's targets pro-rated by the days of the range in it."""
    out: dict[str, float] = {}
    day = start
    while day <= end:
        q_start, q_end = _quarter_bounds(day)
        upto = min(end, q_end)
        share = ((upto - day).days + 1) / ((q_end - q_start).days + 1)
        for stage, target in (settings.targets.get(quarter_of(day)) or {}).items():
            out[stage] = out.get(stage, 0.0) + target * share
        day = upto + timedelta(days=1)
    return {stage: round(value, 1) for stage, value in out.items()}


def summarise(tally: Tally, settings: FunnelSettings, targets: Mapping[str, float]) -> dict:
    """One row of the report (without its group): counts, exits, rates, medians, marks, cost and ROI."""
    counts = {s: tally.count(s) for s in STAGES}
    rates = {name: _rate(counts[b], counts[a]) for name, (a, b) in RATES.items()}
    marks: dict[str, dict[str, Any]] = {}
    for name, (a, b) in RATES.items():
        mark: dict[str, Any] = {}
        band = settings.reference_bands.get(name)
        if band is not None:
            mark["reference"] = list(band)
            mark["band"] = band_mark(rates[name], band)
        if targets.get(a) and b in targets:
            target = round(targets[b] / targets[a], 4)
            mark["target"] = target
            mark["vs_target"] = None if rates[name] is None else ("met" if rates[name] >= target else "below")
        if mark:
            marks[name] = mark
    row: dict[str, Any] = {
        "counts": counts,
        "exits": {s: tally.values.get(f"out_{s}", 0) for s in STAGES},
        "rates": rates,
        "median_hours": {name: median_hours(tally, b) for name, (a, b) in RATES.items() if name != "sql_to_customer"},
        "marks": marks,
    }
    spend = round(tally.spend, 2)
    row["spend"] = spend
    row["cost_per"] = {
        s: (round(spend / counts[s], 2) if spend and counts[s] else None) for s in ("lead", "mql", "sql", "customer")
    }
    if settings.customer_value is not None and spend:
        row["roi"] = round((counts["customer"] * settings.customer_value - spend) / spend, 3)
    else:
        row["roi"] = None
    return row


def iso_week(day: str) -> str:
    year, week, _ = date.fromisoformat(day).isocalendar()
    return f"{year}-W{week:02d}"


def build_report(
    group_by: str,
    attribution: str,
    start: date,
    end: date,
    counters: Iterable[tuple[str, str, Mapping[str, Any]]],
    spend: Iterable[tuple[str, str, str, float]],
    settings: FunnelSettings,
    trend: Iterable[tuple[str, Mapping[str, Any]]] | None = None,
) -> dict:
    """The report from counter rows `(day, value, attributes)` of the dimension and spend rows
    `(day, channel, campaign, cost in the report currency)` of the range. With `trend` rows `(ISO week,
    attributes)` (the roll-up read), the weeks come from those and the rows' first field is not read."""
    groups: dict[str, Tally] = {}
    weeks: dict[str, Tally] = {}
    total = Tally()
    for day, value, attributes in counters:
        groups.setdefault(value, Tally()).add(attributes)
        if trend is None:
            weeks.setdefault(iso_week(day), Tally()).add(attributes)
        total.add(attributes)
    for week, attributes in trend or ():
        weeks.setdefault(week, Tally()).add(attributes)
    for value in [v for v, tally in groups.items() if not any(tally.values.values())]:
        del groups[value]  # only in periods a roll-up read subtracted: not in the range
    for tally in (*groups.values(), total):
        tally.values = {name: n for name, n in tally.values.items() if n}
    for _day, channel, campaign, cost in spend:
        total.spend += cost
        key = campaign if group_by == "utm_campaign" else channel if group_by in ("source", "utm_source") else None
        if key is not None:
            groups.setdefault(key, Tally()).spend += cost
    targets = range_targets(start, end, settings)
    rows = [
        {"group": value, **summarise(tally, settings, {})}
        for value, tally in sorted(groups.items(), key=lambda kv: (-kv[1].count("lead"), kv[0]))
    ]
    totals = summarise(total, settings, targets)
    totals["targets"] = {
        s: {"target": t, "actual": totals["counts"].get(s, 0), "met": totals["counts"].get(s, 0) >= t}
        for s, t in targets.items()
    }
    return {
        "group_by": group_by,
        "attribution": attribution,
        "from": start.isoformat(),
        "to": end.isoformat(),
        "currency": settings.currency,
        "stages": list(STAGES),
        "rows": rows,
        "totals": totals,
        "weeks": [
            {"week": week, "counts": {s: tally.count(s) for s in STAGES}} for week, tally in sorted(weeks.items())
        ],
    }


def months(start: date, end: date) -> list[str]:
    """The `YYYY-MM` of every month [start, end] touches (one counter partition each)."""
    out, year, month = [], start.year, start.month
    while (year, month) <= (end.year, end.month):
        out.append(f"{year:04d}-{month:02d}")
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return out


def _month_pieces(first: date, last: date) -> list[tuple[str, str]]:
    """`(month, period)` covering [first, last] (inside one month): whole week parts, else days."""
    month_start = first.replace(day=1)
    month_end = (month_start + timedelta(days=32)).replace(day=1) - timedelta(days=1)
    month, out, current = f"{first:%Y-%m}", [], first
    while current <= last:
        week_start = max(month_start, current - timedelta(days=current.weekday()))
        week_end = min(month_end, current + timedelta(days=6 - current.weekday()))
        if current == week_start and week_end <= last:
            out.append((month, iso_week(current.isoformat())))
            current = week_end + timedelta(days=1)
        else:
            out.append((month, current.isoformat()))
            current += timedelta(days=1)
    return out


def read_plan(start: date, end: date, day_cost: int = 1) -> tuple[list[tuple[str, str, int]], list[tuple[str, str]]]:
    """The counter periods whose sum is exactly [start, end]. A period is a whole month `YYYY-MM`, the days of
    an ISO week inside one month `YYYY-Www` (a week part) or one day `YYYY-MM-DD`, each with its month.

    First the report's group periods `(month, period, sign)`: a month the range covers is read whole; a month
    it covers in part is either its week parts and edge days inside the range (+1), or the whole month (+1)
    minus the week parts and days outside the range (-1), whichever reads fewer items (a day item costs
    `day_cost`, a roll-up 1; a range ending today subtracts only days to come, which hold nothing). Then the
    weekly trend's periods `(month, period)`: the week parts and edge days inside the range. So a report
    reads a number of items bounded by the months, weeks and edge days of its range, whatever the leads."""
    groups: list[tuple[str, str, int]] = []
    trend: list[tuple[str, str]] = []

    def cost(pieces: list[tuple[str, str]]) -> int:
        return sum(day_cost if len(period) == 10 else 1 for _month, period in pieces)

    day = start
    while day <= end:
        month_start = day.replace(day=1)
        month_end = (month_start + timedelta(days=32)).replace(day=1) - timedelta(days=1)
        stop = min(end, month_end)
        inside = _month_pieces(day, stop)
        trend.extend(inside)
        outside = []
        if day > month_start:
            outside += _month_pieces(month_start, day - timedelta(days=1))
        if stop < month_end:
            outside += _month_pieces(stop + timedelta(days=1), month_end)
        if not outside:
            groups.append((f"{day:%Y-%m}", f"{day:%Y-%m}", 1))
        elif 1 + cost(outside) < cost(inside):
            groups.append((f"{day:%Y-%m}", f"{day:%Y-%m}", 1))
            groups.extend((month, period, -1) for month, period in outside)
        else:
            groups.extend((month, period, 1) for month, period in inside)
        day = stop + timedelta(days=1)
    return groups, trend


def convert(amount: float, currency: str, settings: FunnelSettings) -> float | None:
    """`amount` in the report currency, or None when no exchange rate is configured for `currency`."""
    if currency == settings.currency:
        return amount
    rate = settings.exchange_rates.get(currency)
    return None if rate is None else amount * rate


def is_finite(value: float) -> bool:
    return not (math.isnan(value) or math.isinf(value))
