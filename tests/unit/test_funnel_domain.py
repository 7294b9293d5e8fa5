"""Funnel analytics, pure parts: what a lead change adds, UTM rules, the configuration and the report's marks."""

from __future__ import annotations

from datetime import date

import pytest

from leadflow.domain.attribution import apply_utm_rules, needs_utm_rules
from leadflow.domain.funnel import FunnelSettings, Tally, build_report, change_of, median_hours, range_targets
from leadflow.errors import FunnelConfigInvalid
from leadflow.funnel_config import DEFAULT_FILE, load_funnel_config, load_funnel_config_file

LEAD = {
    "lead_id": "l1",
    "lifecycle_stage": "lead",
    "created_at": "2026-11-02T10:00:00.000Z",
    "attribution": {"first_touch": {"source": "meta", "utm_source": "fb"}, "last_touch": {"source": "form:website"}},
}


def test_a_new_lead_enters_lead_under_each_dimension_value():
    change = change_of(LEAD, None)
    assert change.day == "2026-11-02" and change.entries == ("lead",) and change.exits == ()
    assert change.values["first.utm_source"] == "fb"
    assert change.values["last.utm_source"] == "(none)" and change.values["owner"] == "(none)"


def test_a_move_enters_the_skipped_stages_exits_the_old_one_and_measures_the_time_in_it():
    moved = {**LEAD, "lifecycle_stage": "sql", "stage_changed_at": "2026-11-03T16:00:00.000Z"}
    change = change_of(moved, LEAD)
    assert change.day == "2026-11-03"
    assert change.entries == ("mql", "sql") and change.exits == ("lead",)
    assert change.hours == {"sql": 30.0}


@pytest.mark.parametrize(("old", "new"), [("lead", "lead"), ("mql", "mql")])
def test_a_change_that_keeps_the_stage_adds_nothing(old, new):
    assert change_of({**LEAD, "lifecycle_stage": new, "score": {"total": 9}}, {**LEAD, "lifecycle_stage": old}) is None


def test_test_leads_and_erasures_are_not_counted():
    assert change_of({**LEAD, "is_test": True}, None) is None
    assert change_of({**LEAD, "erasing": "2026-11-03", "lifecycle_stage": "mql"}, LEAD) is None


def test_recycled_back_to_lead_enters_lead_again():
    recycled = {**LEAD, "lifecycle_stage": "recycled", "stage_changed_at": "2026-11-04T00:00:00.000Z"}
    back = {**LEAD, "lifecycle_stage": "lead", "stage_changed_at": "2026-11-05T00:00:00.000Z"}
    assert change_of(back, recycled).entries == ("lead",)


def test_median_hours_interpolates_in_its_bucket():
    tally = Tally()
    tally.add({"h_mql_3": 3, "h_mql_4": 1})  # three within 12-24 h, one within 24-48 h
    assert 12 < median_hours(tally, "mql") <= 24
    assert median_hours(tally, "sql") is None


def test_utm_rules_name_zhihu_and_baijiahao_and_never_replace_a_touch_own_utms():
    rules = list(load_funnel_config_file(DEFAULT_FILE).utm_rules)
    zhihu = apply_utm_rules({"source": "form:website", "referrer": "https://zhuanlan.zhihu.com/p/1"}, rules)
    assert (zhihu["utm_source"], zhihu["utm_medium"], zhihu["utm_rule"]) == ("zhihu", "social", "zhihu")
    bjh = apply_utm_rules({"source": "form:website", "landing_url": "https://www.example.com/lp/bjh/a?x=1"}, rules)
    assert bjh["utm_source"] == "baijiahao"
    param = apply_utm_rules({"source": "form:website", "landing_url": "https://www.example.com/?ch=partner-7"}, rules)
    assert (param["utm_source"], param["utm_campaign"]) == ("partner-7", "partner-7")
    own = {"source": "form:website", "referrer": "https://www.zhihu.com/", "utm_source": "newsletter"}
    assert apply_utm_rules(own, rules) == own
    lookalike = {"source": "form:website", "referrer": "https://notzhihu.com/"}
    assert apply_utm_rules(lookalike, rules) == lookalike


def test_capture_reads_the_utm_rules_only_for_a_touch_a_rule_could_change():
    # A touch with its own utm_source, or with neither a referrer nor a landing URL, is never changed by a rule
    # (so capture does not load the funnel configuration for it); any other touch is offered to the rules
    assert needs_utm_rules({"source": "form:website", "referrer": "https://www.zhihu.com/"})
    assert needs_utm_rules({"source": "form:website", "landing_url": "https://www.example.com/?ch=partner-7"})
    assert not needs_utm_rules({"source": "form:website", "landing_url": "https://x.example/", "utm_source": "g"})
    assert not needs_utm_rules({"source": "generic"})
    # which holds because every valid rule matches on a referrer host, a landing path or a landing parameter:
    # `param_value` alone (a rule that would match every touch) is refused at load, naming the field
    text = "currency: CNY\nutm_rules:\n  - id: a\n    when: {param_value: x}\n    set: {utm_source: s}\n"
    with pytest.raises(FunnelConfigInvalid) as raised:
        load_funnel_config(text, "funnel.yaml")
    assert raised.value.problems[0].startswith("funnel.yaml:4: utm_rules[0].when")


def test_a_broken_configuration_names_file_line_and_field():
    text = "currency: CNY\nutm_rules:\n  - id: a\n    when: {referrer_host: [x.com]}\n    set: {utm_source: ''}\n"
    with pytest.raises(FunnelConfigInvalid) as raised:
        load_funnel_config(text, "funnel.yaml")
    assert raised.value.problems[0].startswith("funnel.yaml:5: utm_rules[0].set.utm_source:")
    with pytest.raises(FunnelConfigInvalid) as raised:
        load_funnel_config("reference_bands: {lead_to_mql: [0.5, 0.2]}\n", "f.yaml")
    assert raised.value.problems == [
        "f.yaml:1: reference_bands.lead_to_mql: the band's low end 0.5 is above its high end 0.2"
    ]


def test_quarter_targets_are_pro_rated_over_the_range():
    settings = FunnelSettings(targets={"2026-Q4": {"lead": 920}, "2027-Q1": {"lead": 900}})
    assert range_targets(date(2026, 10, 1), date(2026, 12, 31), settings) == {"lead": 920.0}
    assert range_targets(date(2026, 12, 31), date(2027, 1, 1), settings) == {"lead": 20.0}


def test_rates_are_marked_against_the_bands_and_the_target_and_costs_follow_spend():
    settings = FunnelSettings(
        currency="CNY",
        customer_value=1000.0,
        reference_bands={"lead_to_mql": (0.30, 0.40), "mql_to_sql": (0.5, 0.7)},
        targets={"2026-Q4": {"lead": 100, "mql": 50}},
    )
    counters = [
        ("2026-11-02", "zhihu", {"in_lead": 10, "in_mql": 2}),
        ("2026-11-03", "baidu", {"in_lead": 10, "in_mql": 5, "in_sql": 3, "in_customer": 1}),
    ]
    spend = [("2026-11-02", "zhihu", "q4", 400.0), ("2026-11-02", "baidu", "q4", 500.0)]
    report = build_report("utm_source", "first", date(2026, 10, 1), date(2026, 12, 31), counters, spend, settings)
    rows = {r["group"]: r for r in report["rows"]}
    assert rows["zhihu"]["marks"]["lead_to_mql"]["band"] == "below"
    assert rows["baidu"]["marks"]["lead_to_mql"]["band"] == "above"
    assert rows["zhihu"]["cost_per"] == {"lead": 40.0, "mql": 200.0, "sql": None, "customer": None}
    assert rows["baidu"]["roi"] == 1.0  # (1 customer × 1000 - 500) / 500
    assert report["totals"]["marks"]["lead_to_mql"]["target"] == 0.5
    assert report["totals"]["marks"]["lead_to_mql"]["vs_target"] == "below"  # 7/20 = 0.35
    assert report["totals"]["targets"]["lead"] == {"target": 100.0, "actual": 20, "met": False}
