"""The funnel report read from month and ISO-week roll-ups equals the answer summed from day items only.

Changes are counted through the stream's path (`store.count_change`, one transaction per record: day item,
week part and month roll-ups), over five months that cross a year end (ISO week 2026-W53 spans December and
January). Each report range (whole months, partial months at either end, one day, a range ending today) is
read the roll-up way (`GET /v1/reports/funnel`'s service) and compared with the report built from the day
items of the range alone, and with the test's own tally of the changes it counted.
"""

from __future__ import annotations

import random
from collections import Counter
from datetime import date, timedelta

import pytest

from leadflow.domain.funnel import Change, build_report, iso_week, months
from leadflow.funnel_config import current_config
from leadflow.services import funnel
from leadflow.store import funnel as store

FIRST_DAY = date(2026, 9, 14)
LAST_DAY = date(2027, 1, 20)
CAMPAIGNS = ["spring", "autumn", "brand", "retarget", "(none)"]
PATHS = [("lead",), ("lead", "mql"), ("lead", "mql", "sql"), ("lead", "mql", "sql", "opportunity", "customer")]
RANGES = [
    ("2026-10-01", "2026-11-30"),  # whole months
    ("2026-09-20", "2026-12-09"),  # partial months at both ends
    ("2026-10-03", "2026-10-28"),  # inside one month
    ("2026-12-24", "2027-01-07"),  # across the year end and ISO week 2026-W53
    ("2026-11-11", "2026-11-11"),  # one day
    ("2026-09-01", "2027-01-31"),  # everything
    ("2026-10-17", "2027-01-20"),  # ends "today": the rest of January is subtracted (nothing there)
]


def _counted(seed: int = 5, leads: int = 160) -> list[tuple[str, str, tuple[str, ...]]]:
    """Count `leads` leads' stage changes through the stream's path; returns (day, campaign, entries) of each."""
    rng = random.Random(seed)
    counted = []
    span = (LAST_DAY - FIRST_DAY).days
    for lead in range(leads):
        day = FIRST_DAY + timedelta(days=rng.randrange(span + 1))
        path = rng.choice(PATHS)
        campaign = rng.choice(CAMPAIGNS)
        values = {"last.utm_campaign": campaign, "first.source": rng.choice(["meta", "google-ads"])}
        for step, stage in enumerate(path):
            if step:
                day = min(LAST_DAY, day + timedelta(days=rng.randrange(12)))
            hours = {stage: rng.uniform(1, 400)} if step else {}
            exits = (path[step - 1],) if step else ()
            change = Change(day.isoformat(), values, (stage,), exits, hours)
            assert store.count_change(f"rec-{lead}-{step}", change)
            counted.append((day.isoformat(), campaign, (stage,)))
    return counted


def _daily_only(start: str, end: str) -> dict:
    first, last = date.fromisoformat(start), date.fromisoformat(end)
    rows = store.counters("last.utm_campaign", months(first, last), start, end)
    spend = store.spend(months(first, last), start, end)
    return build_report("utm_campaign", "last", first, last, rows, spend, current_config().settings)


class CountingClient:
    """The store's botocore client, counting calls and the counter items they return."""

    def __init__(self, client) -> None:
        self.client, self.calls, self.items = client, Counter(), 0

    def __getattr__(self, name):
        method = getattr(self.client, name)

        def call(**kwargs):
            self.calls[name] += 1
            answer = method(**kwargs)
            self.items += sum(len(items) for items in (answer.get("Responses") or {}).values())
            self.items += len(answer.get("Items") or [])
            return answer

        return call


@pytest.mark.slow
def test_report_from_rollups_equals_the_day_items_answer_and_the_tests_own_count(aws, monkeypatch):
    # Given stage changes counted over five months, through the stream's transaction
    counted = _counted()

    for start, end in RANGES:
        # When the report is read (roll-ups for whole periods, day items at the edges)
        report = funnel.funnel_report("utm_campaign", "last", start, end, today=LAST_DAY)

        # Then it equals the report summed from the day items alone: groups, totals and the weekly trend
        daily = _daily_only(start, end)
        assert report["rows"] == daily["rows"], (start, end)
        assert report["totals"] == daily["totals"], (start, end)
        assert report["weeks"] == daily["weeks"], (start, end)
        # and the test's own tally of what it counted in the range
        inside = [(day, campaign, stages) for day, campaign, stages in counted if start <= day <= end]
        expected: dict[str, Counter] = {}
        for _day, campaign, stages in inside:
            expected.setdefault(campaign, Counter()).update(stages)
        got = {row["group"]: +Counter(row["counts"]) for row in report["rows"]}
        assert got == expected, (start, end)
        weeks = Counter()
        for day, _campaign, stages in inside:
            weeks[iso_week(day)] += len(stages)
        assert {w["week"]: sum(w["counts"].values()) for w in report["weeks"]} == weeks, (start, end)


@pytest.mark.slow
def test_a_report_reads_a_bounded_number_of_items_in_one_batch_call(aws, monkeypatch):
    # Given counters over five months (every day of the 90-day range below has some)
    _counted(seed=9, leads=400)
    client = CountingClient(store._client())
    monkeypatch.setattr(store, "_client", lambda: client)

    # When a 90-day report is read
    funnel.funnel_report("utm_campaign", "last", "2026-10-08", "2027-01-05", today=LAST_DAY)

    # Then the counters come from one BatchGetItem (no Scan, no Query of counters; spend: one Query per month),
    # and the items are the roll-ups of its months and weeks and the day items of its edges, far fewer than
    # the days × shards of day items (360) the range spans
    assert client.calls["batch_get_item"] == 1
    assert "scan" not in client.calls
    assert client.items <= 60, client.items
