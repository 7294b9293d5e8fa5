"""The periods a funnel report reads add up to exactly the days of its range (roll-ups, week parts, days)."""

from __future__ import annotations

import random
from collections import Counter
from datetime import date, timedelta

from leadflow.domain.funnel import iso_week, read_plan


def _days(month: str, period: str) -> list[date]:
    """The days a period of the plan stands for (a whole month, the days of an ISO week in a month, a day)."""
    first = date.fromisoformat(f"{month}-01")
    month_days = [first + timedelta(days=i) for i in range(31) if (first + timedelta(days=i)).month == first.month]
    if len(period) == 7:
        return month_days
    if "W" in period:
        return [d for d in month_days if iso_week(d.isoformat()) == period]
    return [date.fromisoformat(period)]


def test_every_range_is_covered_exactly_once_by_its_groups_and_by_its_trend():
    rng = random.Random(4)
    for _ in range(300):
        # Given a range of 1 to 731 days somewhere in 2025-2028
        start = date(2025, 1, 1) + timedelta(days=rng.randrange(1200))
        end = start + timedelta(days=rng.randrange(731))
        wanted = Counter(start + timedelta(days=i) for i in range((end - start).days + 1))

        # When the read plan is made (a day item costing 4 roll-ups, as with 4 shards)
        groups, trend = read_plan(start, end, day_cost=4)

        # Then the signed group periods sum to each day of the range once, and nothing outside it
        covered: Counter = Counter()
        for month, period, sign in groups:
            for day in _days(month, period):
                covered[day] += sign
        assert +covered == wanted and -covered == Counter(), (start, end)
        # and the trend periods are inside the range, each day once, never a whole month (weeks are needed)
        assert Counter(d for month, period in trend for d in _days(month, period)) == wanted, (start, end)
        assert all(len(period) != 7 for _month, period in trend)


def test_a_range_of_whole_months_reads_one_roll_up_per_month():
    groups, trend = read_plan(date(2026, 9, 1), date(2026, 11, 30), day_cost=4)
    assert groups == [("2026-09", "2026-09", 1), ("2026-10", "2026-10", 1), ("2026-11", "2026-11", 1)]
    assert ("2026-11", "2026-W48") in trend and ("2026-09", "2026-W36") in trend
