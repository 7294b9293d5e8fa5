"""Funnel analytics: count stage changes from the leads stream, report, import spend, rebuild.

- `count_stage_change` runs in the JourneyRouterFunction for every lead record of the stream (no third reader
  on the stream): O(1) per record (nothing for a change that keeps the stage; else one TransactWriteItems of
  the record's marker and, per dimension, ADDs to its day item and to its value's list in the week-part and
  month roll-ups),
  exactly once per record.
- `funnel_report` reads counters by exact key: month and ISO-week roll-ups for the whole periods of the range,
  day items for its edge days (BatchGetItem, one call per 100 keys), and one Query per month for spend; it
  never reads a lead.
- `rebuild` (`leadflow report rebuild`, an operator command, never a request path) recounts from the stored
  leads and their stage history, paging lead keys through the `LeadsByStage` index.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from leadflow.domain.attribution import apply_utm_rules
from leadflow.domain.funnel import (
    ATTRIBUTIONS,
    DIMENSIONS,
    GROUP_BY,
    build_report,
    change_of,
    convert,
    dimension,
    is_finite,
    months,
    replay_changes,
)
from leadflow.errors import FieldError, ReportQueryInvalid, ValidationFailed
from leadflow.store import funnel as store

MAX_DAYS = 731  # a report covers at most two years (a bounded number of month partitions)
DEFAULT_DAYS = 90


def count_stage_change(
    record_id: str, new_image: Mapping[str, Any] | None, old_image: Mapping[str, Any] | None
) -> bool:
    """Count one stream record of a lead item; True when it changed the counters (False: no stage change, or
    already counted)."""
    change = change_of(new_image, old_image)
    if change is None:
        return False
    return store.count_change(record_id, change)


def _day(text: str | None, name: str, errors: list[FieldError]) -> date | None:
    if text in (None, ""):
        return None
    try:
        return date.fromisoformat(text)
    except (TypeError, ValueError):
        errors.append(FieldError(name, "must be a date YYYY-MM-DD"))
        return None


def report_range(from_text: str | None, to_text: str | None, today: date) -> tuple[date, date]:
    errors: list[FieldError] = []
    start, end = _day(from_text, "from", errors), _day(to_text, "to", errors)
    if errors:
        raise ReportQueryInvalid(errors)
    end = end or today
    start = start or end - timedelta(days=DEFAULT_DAYS - 1)
    if start > end:
        raise ReportQueryInvalid([FieldError("from", "must not be after to")])
    if (end - start).days + 1 > MAX_DAYS:
        raise ReportQueryInvalid([FieldError("to", f"the range may cover at most {MAX_DAYS} days")])
    return start, end


def funnel_report(
    group_by: str | None,
    attribution: str | None,
    from_text: str | None,
    to_text: str | None,
    today: date | None = None,
) -> dict:
    """The funnel report of the contract (`GET /v1/reports/funnel`); ReportQueryInvalid (400) for bad input."""
    from leadflow.funnel_config import current_config

    group_by, attribution = group_by or "source", attribution or "first"
    errors = []
    if group_by not in GROUP_BY:
        errors.append(FieldError("group_by", "must be one of " + ", ".join(GROUP_BY)))
    if attribution not in ATTRIBUTIONS:
        errors.append(FieldError("attribution", "must be one of " + ", ".join(ATTRIBUTIONS)))
    if errors:
        raise ReportQueryInvalid(errors)
    start, end = report_range(from_text, to_text, today or datetime.now(UTC).date())
    span = months(start, end)
    rows, trend = store.report_counters(dimension(group_by, attribution), start, end)
    spend = store.spend(span, start.isoformat(), end.isoformat())
    return build_report(group_by, attribution, start, end, rows, spend, current_config().settings, trend)


# ------------------------------------------------------------------------------------------------ spend
SPEND_COLUMNS = ("date", "channel", "campaign", "cost", "currency")


def import_spend(text: str, source: str = "spend.csv", now: datetime | None = None) -> int:
    """Store the spend rows of a CSV (`date, channel, campaign, cost, currency`; `source` is accepted for
    `channel`); ValidationFailed naming `file:line: column` for every bad row, nothing stored then."""
    from leadflow.funnel_config import current_config

    settings = current_config().settings
    reader = csv.DictReader(io.StringIO(text))
    header = [h.strip().lower() for h in reader.fieldnames or []]
    reader.fieldnames = ["channel" if h == "source" else h for h in header]
    missing = [c for c in SPEND_COLUMNS if c not in reader.fieldnames and c != "currency"]
    if missing:
        raise ValidationFailed([FieldError(f"{source}:1", "missing column(s) " + ", ".join(missing))])
    rows, errors = [], []
    for line, raw in enumerate(reader, start=2):
        values = {k: (v or "").strip() for k, v in raw.items() if k}
        where = f"{source}:{line}"
        try:
            day = date.fromisoformat(values.get("date", "")).isoformat()
        except ValueError:
            errors.append(FieldError(f"{where}: date", "must be a date YYYY-MM-DD"))
            continue
        channel, campaign = values.get("channel", ""), values.get("campaign", "") or "(none)"
        if not channel:
            errors.append(FieldError(f"{where}: channel", "is required"))
            continue
        try:
            amount = float(Decimal(values.get("cost", "")))
        except (InvalidOperation, ValueError):
            amount = float("nan")
        if not is_finite(amount) or amount < 0:
            errors.append(FieldError(f"{where}: cost", "must be a number, 0 or more"))
            continue
        currency = (values.get("currency") or settings.currency).upper()
        cost = convert(amount, currency, settings)
        if cost is None:
            errors.append(FieldError(f"{where}: currency", f"no exchange rate for {currency} to {settings.currency}"))
            continue
        rows.append(
            {
                "day": day,
                "channel": channel[:200],
                "campaign": campaign[:200],
                "cost": round(cost, 2),
                "amount": amount,
                "currency": currency,
            }
        )
    if errors:
        raise ValidationFailed(errors, "The spend file has errors; nothing was imported.")
    moment = (now or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return store.put_spend(rows, moment)


# ------------------------------------------------------------------------------------------------ rebuild
def rebuild(today: date | None = None) -> dict[str, int]:
    """Recount every counter from the stored leads (current attribution with today's UTM rules, stage history):
    clear each dimension's month partitions from the first lead's month to today, then write the totals."""
    from leadflow.funnel_config import current_config
    from leadflow.store.cohort import lead_id_pages, read_leads

    rules = list(current_config().utm_rules)
    today = today or datetime.now(UTC).date()
    totals: dict[tuple[str, str], dict[str, dict[str, int]]] = {}  # (dimension, day) → value → counter → n
    leads = 0
    earliest = latest = today
    for page in lead_id_pages():
        for lead in read_leads(page):
            if lead.get("is_test"):
                continue
            leads += 1
            attribution = dict(lead.get("attribution") or {})
            for mode in ATTRIBUTIONS:
                if attribution.get(f"{mode}_touch"):
                    attribution[f"{mode}_touch"] = apply_utm_rules(attribution[f"{mode}_touch"], rules)
            for change in replay_changes({**lead, "attribution": attribution}, store.stage_moves(lead["lead_id"])):
                earliest = min(earliest, date.fromisoformat(change.day))
                latest = max(latest, date.fromisoformat(change.day))
                for dim, value in {**change.values, store.TREND: store.TREND}.items():
                    numbers = totals.setdefault((dim, change.day), {}).setdefault(value, {})
                    for name, amount in change.increments().items():
                        numbers[name] = numbers.get(name, 0) + amount
    span = months(earliest, latest)
    cleared = sum(store.clear_counters(dim, span) for dim in (*DIMENSIONS, store.TREND))
    written = store.write_counters(
        (dim, day, shard, values)
        for (dim, day), by_value in sorted(totals.items())
        for shard, values in store.day_shards(by_value).items()
    )
    return {"leads": leads, "cleared": cleared, "written": written, "months": len(span)}
