"""The stage a scoring replay gives a stored lead, and when it counts as having reached MQL."""

from __future__ import annotations

import pytest

from leadflow.domain.replay import WhatIf, first_touch_source, reached_mql, replay_stage


@pytest.mark.parametrize(
    ("stored", "qualifies", "replayed"),
    [
        ("lead", True, "mql"),
        ("lead", False, "lead"),
        ("subscriber", True, "mql"),
        ("subscriber", False, "subscriber"),
        ("mql", True, "mql"),
        ("mql", False, "lead"),  # had this model been in place, it would not have qualified
        (None, True, "mql"),
        ("sql", False, "sql"),  # set by the CRM or an operator: kept
        ("customer", False, "customer"),
        ("recycled", True, "recycled"),
        ("disqualified", True, "disqualified"),
    ],
)
def test_scoring_owns_only_the_stages_before_sql(stored, qualifies, replayed):
    assert replay_stage(stored, qualifies) == replayed


def test_reached_mql_counts_later_stages_and_exits_that_were_mql():
    assert [reached_mql(s, None) for s in ("lead", "mql", "sql", "opportunity", "customer")] == [
        False,
        True,
        True,
        True,
        True,
    ]
    assert reached_mql("recycled", "2026-01-01T00:00:00.000Z") and not reached_mql("recycled", None)
    assert reached_mql("disqualified", "2026-01-01T00:00:00.000Z") and not reached_mql("disqualified", None)


def test_what_if_totals_and_rates_by_source():
    # Given two website leads (one loses MQL, one changes grade only) and one webinar lead that stays MQL
    what_if = WhatIf()
    what_if.add("form:website", ("A", "mql", True, True), ("B", "lead", False, False))
    what_if.add("form:website", ("C", "lead", False, False), ("D", "lead", False, False))
    what_if.add("webhook:zoom", ("A", "mql", True, True), ("A", "mql", True, True))

    # When it is summarised / Then
    report = what_if.as_dict()
    assert report["totals"] == {
        "leads": 3,
        "grade_changed": 2,
        "stage_changed": 1,
        "mql_before": 2,
        "mql_after": 1,
        "lead_to_mql_before": 0.6667,
        "lead_to_mql_after": 0.3333,
        "qualified_before": 2,
        "qualified_after": 1,
    }
    assert report["by_source"]["form:website"]["lead_to_mql_before"] == 0.5
    assert report["by_source"]["form:website"]["lead_to_mql_after"] == 0.0
    assert list(report["by_source"]) == ["form:website", "webhook:zoom"]


def test_a_lead_the_crm_moved_on_keeps_its_mql_but_counts_as_no_longer_qualified_by_a_stricter_model():
    # Given a customer (moved on by the CRM) whose score qualifies under the current model but not the candidate
    what_if = WhatIf()
    what_if.add("form:website", ("A", "customer", True, True), ("A", "customer", True, False))
    what_if.add("form:website", ("B", "lead", False, False), ("B", "lead", False, False))

    # When it is summarised
    totals = what_if.as_dict()["totals"]

    # Then its MQL stays (the CRM's stage is kept), while the candidate's criteria qualify one lead fewer
    assert (totals["mql_before"], totals["mql_after"]) == (1, 1)
    assert (totals["qualified_before"], totals["qualified_after"]) == (1, 0)
    assert totals["stage_changed"] == 0


def test_the_first_touch_source_groups_a_lead():
    assert first_touch_source({"attribution": {"first_touch": {"source": "meta"}}, "source": "form:x"}) == "meta"
    assert first_touch_source({"source": "form:x"}) == "form:x"
    assert first_touch_source({}) == "unknown"
