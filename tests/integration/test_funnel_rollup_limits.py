"""Funnel roll-ups at their limits: a dimension with thousands of values, and a table upgraded from day items.

- A roll-up item holds each value as one fixed-size list under a byte budget below DynamoDB's 400 KB item limit;
  values beyond item 0's budget spill to 7 items by value hash, and values that find their spill item full too
  stay in the day items, which the report then reads for them. Nothing fails, nothing is lost.
- After an upgrade from a version that wrote day items only, no `leadflow report rebuild` is needed: a period
  the stream never counted since has no roll-up and is read from its day items; the first change counted in a
  period makes its roll-up from the day items already there.
"""

from __future__ import annotations

import random
from collections import Counter
from datetime import date, timedelta

import pytest

from leadflow.domain.funnel import COUNTERS, Change
from leadflow.services import funnel
from leadflow.store import funnel as store

ITEM_LIMIT = 400 * 1024  # DynamoDB's item size limit


def _size(item: dict) -> int:
    """An item's size as DynamoDB counts it (names + values; a number ~1 byte per 2 digits + 1; a list 3 bytes
    + 1 per element)."""

    def value_size(typed: dict) -> int:
        ((kind, value),) = typed.items()
        if kind == "N":
            return len(value.lstrip("-").replace(".", "").strip("0") or "0") // 2 + 2
        if kind == "L":
            return 3 + sum(1 + value_size(v) for v in value)
        if kind == "BOOL":
            return 1
        return len(str(value).encode())

    return sum(len(name.encode()) + value_size(typed) for name, typed in item.items())


def _rollup_items(dimension: str, month: str, prefix: str = "R#") -> list[dict]:
    return list(store._query(store.counter_pk(dimension, month), prefix, prefix + "~"))


def _counts(report: dict) -> dict[str, Counter]:
    return {row["group"]: +Counter(row["counts"]) for row in report["rows"]}


@pytest.mark.slow
def test_two_thousand_campaigns_in_a_month_are_rolled_up_within_the_item_limit_and_reported_right(aws):
    # Given 2,000 campaigns' counters in a week of November (a rebuild's write, at the real 350 KB budget: item 0
    # takes about 900 such values, so the rest spill; 5,000 or more spread the same way, only slower in moto)
    rng = random.Random(2)
    campaigns = [f"campaign-{i:05d}-{'x' * rng.randrange(30)}" for i in range(2000)]
    expected: dict[str, Counter] = {}
    rows = []
    for day in range(2, 9):
        by_value = {}
        for campaign in dict.fromkeys(campaigns[(day - 2) * 300 : (day - 1) * 300] + rng.sample(campaigns, 50)):
            stages = rng.choice([("lead",), ("lead", "mql"), ("lead", "mql", "sql")])
            by_value[campaign] = {f"in_{s}": 1 for s in stages}
            expected.setdefault(campaign, Counter()).update(stages)
        for shard, values in store.day_shards(by_value).items():
            rows.append(("last.utm_campaign", f"2026-11-{day:02d}", shard, values))
            rows.append((store.TREND, f"2026-11-{day:02d}", shard, {"all": {"in_lead": len(values)}}))
    store.write_counters(rows)

    # When the month is reported
    report = funnel.funnel_report("utm_campaign", "last", "2026-11-01", "2026-11-30", today=date(2026, 12, 1))

    # Then every campaign's counts are right, and the roll-up spread over items that each fit DynamoDB's limit
    assert _counts(report) == expected
    month_items = _rollup_items("last.utm_campaign", "2026-11", "R#M#")
    assert len(month_items) > 1
    assert max(_size(i) for i in month_items) < ITEM_LIMIT
    assert sum(1 for i in month_items for name in i if name.startswith("v:")) == len(expected)


@pytest.mark.slow
def test_the_stream_spills_values_past_a_full_roll_up_and_the_report_stays_right(aws, monkeypatch):
    # Given roll-up items that take about 6 values each (a budget scaled down from 350 KB, same logic)
    monkeypatch.setattr(store, "ROLLUP_BUDGET", 6 * store.value_bytes("campaign-000"))
    monkeypatch.setattr(store, "_where", {})

    # When 400 changes of 150 campaigns are counted through the stream's path
    rng = random.Random(7)
    expected: dict[str, Counter] = {}
    for i in range(400):
        campaign = f"campaign-{rng.randrange(150):03d}"
        day = date(2026, 11, 2) + timedelta(days=rng.randrange(20))
        stage = rng.choice(["lead", "mql", "sql"])
        change = Change(day.isoformat(), {"last.utm_campaign": campaign}, (stage,))
        assert store.count_change(f"rec-{i}", change)
        expected.setdefault(campaign, Counter())[stage] += 1

    # Then nothing failed and the report counts every campaign right (from the roll-ups where values fit,
    # from the day items for values whose item 0 and spill item were full)
    report = funnel.funnel_report("utm_campaign", "last", "2026-11-01", "2026-11-30", today=date(2026, 11, 30))
    assert _counts(report) == expected
    assert sum(sum(w["counts"].values()) for w in report["weeks"]) == 400
    # and the roll-ups did fill up: item 0 and spill items are full, so values really were left to the day items
    month_items = {i["sk"]["S"]: i for i in _rollup_items("last.utm_campaign", "2026-11", "R#M#")}
    assert month_items["R#M#0"].get("full") and len(month_items) == store.ROLLUP_SHARDS
    listed = {name for i in month_items.values() for name in i if name.startswith("v:")}
    assert len(listed) < len(expected)


@pytest.mark.slow
def test_after_an_upgrade_from_day_items_only_the_report_is_right_without_a_rebuild(aws):
    # Given day items only, as a version without roll-ups wrote them, for September to 15 November
    rng = random.Random(11)
    expected: dict[str, Counter] = {}
    old: dict[tuple[str, str], dict[str, dict[str, int]]] = {}
    day = date(2026, 9, 1)
    while day <= date(2026, 11, 15):
        for _ in range(3):
            campaign, stage = rng.choice(["spring", "autumn", "brand"]), rng.choice(["lead", "mql", "sql"])
            for dimension, value in (("last.utm_campaign", campaign), (store.TREND, "all")):
                numbers = old.setdefault((dimension, day.isoformat()), {}).setdefault(value, {})
                numbers[f"in_{stage}"] = numbers.get(f"in_{stage}", 0) + 1
            expected.setdefault(campaign, Counter())[stage] += 1
        day += timedelta(days=1)
    store.write_counters(((d, day, 0, v) for (d, day), v in old.items()), rollups=False)
    assert _rollup_items("last.utm_campaign", "2026-10") == []

    # When this version counts the changes from 16 November on (the stream), and no one runs a rebuild
    november: Counter = Counter()
    for (d, day), by_value in old.items():
        if d == "last.utm_campaign" and day >= "2026-11-01":
            for numbers in by_value.values():
                november.update({name[3:]: n for name, n in numbers.items()})
    for i in range(60):
        day = date(2026, 11, 16) + timedelta(days=i % 14)
        campaign, stage = rng.choice(["spring", "autumn", "brand"]), rng.choice(["lead", "mql", "sql"])
        assert store.count_change(f"new-{i}", Change(day.isoformat(), {"last.utm_campaign": campaign}, (stage,)))
        expected[campaign][stage] += 1
        november[stage] += 1

    # Then the report of the whole range is right: October (no roll-up) from its day items, November from the
    # roll-up its first new change made from the day items already there
    report = funnel.funnel_report("utm_campaign", "last", "2026-09-01", "2026-11-29", today=date(2026, 11, 30))
    assert _counts(report) == expected
    assert sum(sum(w["counts"].values()) for w in report["weeks"]) == sum(sum(c.values()) for c in expected.values())
    assert _rollup_items("last.utm_campaign", "2026-10") == []
    month = next(i for i in _rollup_items("last.utm_campaign", "2026-11", "R#M#0"))
    rolled = Counter()
    for name, typed in month.items():
        if name.startswith("v:"):
            rolled.update({stage: int(typed["L"][COUNTERS.index(f"in_{stage}")]["N"]) for stage in november})
    assert rolled == november  # 1 to 15 November (day items of the old version) and the new changes
