"""Funnel numbers from the leads stream match the test's own count of the traffic it sent.

Leads are captured through the form route, owners assigned and stages moved through the lifecycle service;
the table's stream records go to the real JourneyRouterFunction handler in Lambda batches (its filter, batch
size and partial-failure answer), and the report is read through `GET /v1/reports/funnel` like an operator.
"""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import pytest

from leadflow_local.apigw import LambdaContext, load_function
from tests.support.api import Api
from tests.support.aws import local_aws
from tests.support.funnel import Traffic, journey_router_mapping, stream_records

pytestmark = pytest.mark.slow

GROUPS = [
    ("source", "first"),
    ("source", "last"),
    ("utm_source", "first"),
    ("utm_source", "last"),
    ("utm_medium", "first"),
    ("utm_medium", "last"),
    ("utm_campaign", "first"),
    ("utm_campaign", "last"),
    ("owner", "first"),
    ("team", "last"),
]
STAGES = ["lead", "mql", "sql", "opportunity", "customer", "recycled", "disqualified"]


def deliver(records: list[dict]) -> list[dict]:
    """The records to the JourneyRouterFunction handler in batches of the template's size; its failure answers."""
    mapping = journey_router_mapping()
    module, attribute = load_function(mapping.code_uri, mapping.handler)
    answers = []
    for start in range(0, len(records), mapping.batch_size):
        event = {"Records": records[start : start + mapping.batch_size]}
        answers.append(getattr(module, attribute)(event, LambdaContext(function_name="JourneyRouterFunction")))
    return answers


@pytest.fixture(scope="module")
def world():
    """One stack for the module: the traffic is sent and its records delivered once."""
    from leadflow.config import settings

    with pytest.MonkeyPatch.context() as monkeypatch, local_aws(monkeypatch):
        api = Api()
        traffic = Traffic(api, leads=24).run()
        records = stream_records(settings().table_name)
        answers = deliver(records)
        assert all(a == {"batchItemFailures": []} for a in answers)
        yield traffic, records, api


@pytest.fixture
def traffic(world):
    return world[:2]


@pytest.fixture
def api(world):
    return world[2]


def _report(api, group_by: str, attribution: str, first: str, last: str) -> dict:
    reply = api.request(
        "GET", f"/v1/reports/funnel?group_by={group_by}&attribution={attribution}&from={first}&to={last}"
    )
    assert reply.status == 200, reply.body
    return reply.json


def _range(traffic: Traffic) -> tuple[str, str]:
    return (traffic.today - timedelta(days=1)).date().isoformat(), (
        traffic.today + timedelta(days=5)
    ).date().isoformat()


def test_counts_per_dimension_and_attribution_match_the_traffic_sent(traffic, api):
    traffic, _ = traffic
    first, last = _range(traffic)
    for group_by, attribution in GROUPS:
        # Given the traffic the test sent, counted by the test itself
        dimension = group_by if group_by in ("owner", "team") else f"{attribution}.{group_by}"
        expected = traffic.expected(dimension, first, last)
        # When the operator asks for the report
        report = _report(api, group_by, attribution, first, last)
        # Then every group has exactly the entries the test counted, and the totals add up
        got = {row["group"]: Counter({s: n for s, n in row["counts"].items() if n}) for row in report["rows"]}
        assert got == {g: Counter({s: n for s, n in c.items() if n}) for g, c in expected.items()}, (
            group_by,
            attribution,
        )
        all_entries = Counter(e.stage for e in traffic.entries)
        assert {s: n for s, n in report["totals"]["counts"].items() if n} == dict(all_entries)
        # And the rates are the ratios of those counts
        totals = report["totals"]["counts"]
        assert report["totals"]["rates"]["lead_to_mql"] == round(totals["mql"] / totals["lead"], 4)


def test_a_lead_moving_twice_in_a_day_is_counted_in_both_stages_that_day(traffic, api):
    traffic, _ = traffic
    day = (traffic.today + timedelta(days=1)).date().isoformat()
    # Given the entries of one day (some leads went lead → mql at 09:00 and mql → sql at 16:00 that day)
    expected = Counter(e.stage for e in traffic.entries if e.day == day)
    assert expected["sql"] >= 1 and expected["mql"] >= expected["sql"]
    # When the report covers only that day
    report = _report(api, "source", "first", day, day)
    # Then both moves count on that day, and the exits too (a lead leaves mql the day it entered it)
    assert {s: n for s, n in report["totals"]["counts"].items() if n} == dict(expected)
    assert report["totals"]["exits"]["mql"] >= expected["sql"]


def test_redelivered_records_change_nothing(traffic, api):
    traffic, records = traffic
    first, last = _range(traffic)
    before = _report(api, "utm_campaign", "last", first, last)
    # When Lambda delivers every record again (a retried batch, a replayed shard)
    deliver(records)
    deliver(records[::-1][:40])
    # Then the report is the same
    assert _report(api, "utm_campaign", "last", first, last) == before


def test_median_time_between_stages_and_weeks(traffic, api):
    traffic, _ = traffic
    first, last = _range(traffic)
    report = _report(api, "source", "first", first, last)
    # Then the median time lead → mql is within a day and a half (every MQL move is the next morning)
    assert 0 < report["totals"]["median_hours"]["lead_to_mql"] <= 36
    # And the weekly trend adds up to the totals
    weekly = Counter()
    for week in report["weeks"]:
        weekly.update(week["counts"])
    assert all(weekly[s] == report["totals"]["counts"][s] for s in STAGES)


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("group_by=colour", "group_by"),
        ("attribution=middle", "attribution"),
        ("from=2026-02-30", "from"),
        ("from=2026-11-10&to=2026-11-01", "from"),
        ("from=2020-01-01&to=2026-11-01", "to"),
    ],
)
def test_bad_dimensions_and_ranges_are_problem_json(api, query, field):
    reply = api.request("GET", f"/v1/reports/funnel?{query}")
    assert reply.status == 400
    assert reply.headers["content-type"] == "application/problem+json"
    assert [e["field"] for e in reply.json["errors"]] == [field]
