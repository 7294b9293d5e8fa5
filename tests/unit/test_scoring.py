"""score_lead: personas, every fit rule kind, grades, behaviour caps, groups and decay, and the default model."""

from __future__ import annotations

import copy
import random
from datetime import UTC, datetime, timedelta

import pytest
import yaml

from leadflow.domain.scoring import score_lead
from leadflow.scoring_model import default_model, load_model

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)

BASE = {
    "version": 1,
    "personas": {
        "default": "unknown",
        "rules": [
            {"id": "smb", "company_size": {"max": 49}},
            {"id": "mid_market", "company_size": {"min": 50, "max": 999}},
            {"id": "enterprise", "company_size": {"min": 1000}},
        ],
    },
    "fit": {"grades": {"A": 60, "B": 40, "C": 20}, "rules": []},
    "behaviour": {"rules": []},
    "qualification": {"mql": {"min_grade": "B", "min_behaviour": 50}},
}


def model_with(fit_rules=(), behaviour_rules=(), **sections):
    doc = copy.deepcopy(BASE)
    doc["fit"]["rules"] = list(fit_rules)
    doc["behaviour"]["rules"] = list(behaviour_rules)
    for name, value in sections.items():
        section, _, key = name.partition("__")
        if key:
            doc[section][key] = value
        else:
            doc[section] = value
    return load_model(yaml.safe_dump(doc, allow_unicode=True, sort_keys=False), "test.yaml")


def event(kind, days_ago=0.0, **properties):
    at = NOW - timedelta(days=days_ago)
    return {"type": kind, "occurred_at": at.isoformat().replace("+00:00", "Z"), "properties": properties}


def points_of(score, rule):
    return {item["rule"]: item["points"] for item in score.breakdown}.get(rule)


def item_of(score, rule):
    return next(item for item in score.breakdown if item["rule"] == rule)


# --- personas ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "persona"),
    [
        (1, "smb"),
        (49, "smb"),
        (50, "mid_market"),
        (999, "mid_market"),
        (1000, "enterprise"),
        (250000, "enterprise"),
        ("49", "smb"),
        ("1,000+", "enterprise"),
        ("11-50", "smb"),  # a normalised band counts as its lower bound
        ("51-200", "mid_market"),
        ("501-1000", "mid_market"),
        ("1001-5000", "enterprise"),
        (None, "unknown"),
        ("a few", "unknown"),
    ],
)
def test_persona_from_company_size_thresholds(size, persona):
    model = model_with()
    lead = {"attributes": {"company_size": size}} if size is not None else {}
    assert score_lead(lead, [], model, NOW).persona == persona


def test_a_persona_narrowed_by_title_wins_when_listed_first():
    doc_personas = copy.deepcopy(BASE["personas"])
    doc_personas["rules"].insert(
        0, {"id": "enterprise_exec", "company_size": {"min": 1000}, "title": ["\\bvp\\b", "总裁"]}
    )
    model = model_with(personas=doc_personas)
    big = {"company_size": 5000}
    assert score_lead({"attributes": big, "job_title": "VP Sales"}, [], model, NOW).persona == "enterprise_exec"
    assert score_lead({"attributes": big, "job_title": "副总裁"}, [], model, NOW).persona == "enterprise_exec"
    assert score_lead({"attributes": {**big, "seniority": "VP"}}, [], model, NOW).persona == "enterprise_exec"
    assert score_lead({"attributes": big, "job_title": "Engineer"}, [], model, NOW).persona == "enterprise"
    assert score_lead({"attributes": {"company_size": 20}, "job_title": "VP"}, [], model, NOW).persona == "smb"


# --- fit rules --------------------------------------------------------------------------------------------


def test_industry_list_is_matched_case_insensitively_from_a_named_list():
    model = model_with(
        [{"id": "industry", "field": "industry", "in": "targets", "points": 20}],
        lists={"targets": ["Software", "SaaS", "互联网"]},
    )
    for industry in ("software", "SAAS", " SaaS ", "互联网"):
        assert score_lead({"attributes": {"industry": industry}}, [], model, NOW).fit == 20
    assert score_lead({"attributes": {"industry": "Retail"}}, [], model, NOW).fit == 0
    assert score_lead({}, [], model, NOW).fit == 0


@pytest.mark.parametrize(
    ("title", "points"),
    [
        ("VP Marketing", 25),
        ("vp of sales", 25),
        ("ＶＰ Engineering", 25),  # full-width letters (NFKC)
        ("Head of Growth", 25),
        ("销售总监", 25),
        ("市场部经理", 10),
        ("Marketing Manager", 10),
        ("Senior Engineer", 0),
        ("MVP developer", 0),  # \bvp\b: no match inside a word
    ],
)
def test_title_patterns_are_multilingual_and_exclusive(title, points):
    # Given a senior rule and a manager rule sharing `exclusive: seniority` (the first that holds counts)
    model = model_with(
        [
            {
                "id": "senior",
                "exclusive": "seniority",
                "field": "job_title",
                "matches": ["\\bvp\\b", "head of", "总监"],
                "points": 25,
            },
            {
                "id": "manager",
                "exclusive": "seniority",
                "field": "job_title",
                "matches": ["manager", "经理", "head"],
                "points": 10,
            },
        ]
    )
    # When a lead with that title is scored, Then exactly one of them counts (or none)
    score = score_lead({"job_title": title}, [], model, NOW)
    assert score.fit == points
    assert len(score.breakdown) == (1 if points else 0)


def test_country_list_and_region_list():
    model = model_with(
        [
            {"id": "dach", "field": "country", "in": "dach", "points": 10},
            {"id": "na", "field": "country", "in": ["US", "CA"], "points": 5},
        ],
        lists={"dach": ["DE", "AT", "CH"]},
    )
    assert score_lead({"country": "AT"}, [], model, NOW).fit == 10
    assert score_lead({"country": "us"}, [], model, NOW).fit == 5
    assert score_lead({"country": "FR"}, [], model, NOW).fit == 0


@pytest.mark.parametrize(
    ("budget", "rule"),
    [
        (50000, "budget_large"),
        ("$50k", "budget_large"),
        ("120,000 USD", "budget_large"),
        ("5万", "budget_large"),  # 50 000 written in Chinese units
        (49999, "budget_some"),
        ("10000", "budget_some"),
        (9999, None),
        ("unknown", None),
    ],
)
def test_budget_ranges(budget, rule):
    model = model_with(
        [
            {"id": "budget_large", "exclusive": "budget", "field": "budget", "min": 50000, "points": 15},
            {"id": "budget_some", "exclusive": "budget", "field": "budget", "min": 10000, "max": 49999, "points": 5},
        ]
    )
    score = score_lead({"attributes": {"budget": budget}}, [], model, NOW)
    assert [item["rule"] for item in score.breakdown] == ([rule] if rule else [])


def test_seats_timeline_and_product_interest():
    model = model_with(
        [
            {"id": "seats", "field": "seats", "min": 50, "points": 10},
            {"id": "soon", "field": "purchase_timeline", "matches": ["this quarter", "本季度"], "points": 10},
            {"id": "interest", "field": "product_interest", "present": True, "points": 5},
            {"id": "analytics", "field": "attributes.product_interest", "in": ["analytics"], "points": 3},
        ]
    )
    lead = {"attributes": {"seats": "75", "purchase_timeline": "本季度", "product_interest": ["Analytics", "CRM"]}}
    score = score_lead(lead, [], model, NOW)
    assert [(i["rule"], i["points"]) for i in score.breakdown] == [
        ("seats", 10),
        ("soon", 10),
        ("interest", 5),
        ("analytics", 3),
    ]
    assert score_lead({"attributes": {"seats": 12, "product_interest": []}}, [], model, NOW).fit == 0


@pytest.mark.parametrize(
    ("email", "rule"),
    [
        ("ada@gmail.com", "free_mail"),
        ("li@qq.com", "free_mail"),
        ("wang@163.com", "free_mail"),
        ("s123@pku.edu.cn", "student"),
        ("jo@mit.edu", "student"),
        ("x@sales.rival.example", "competitor"),
        ("ada@acme.io", None),
        ("ada@notgmail.com", None),  # a suffix only at a dot
        (None, None),
    ],
)
def test_email_domain_lists_give_negative_points(email, rule):
    model = model_with(
        [
            {"id": "competitor", "domains": ["rival.example"], "points": -50},
            {"id": "student", "domains": "student", "points": -30},
            {"id": "free_mail", "domains": "free", "points": -25},
        ],
        lists={"free": ["gmail.com", "qq.com", "163.com"], "student": ["edu", "edu.cn", "ac.uk"]},
    )
    score = score_lead({"email": email}, [], model, NOW)
    assert [item["rule"] for item in score.breakdown] == ([rule] if rule else [])
    assert score.fit <= 0


def test_persona_condition_combined_with_a_field_condition():
    # All conditions of a rule must hold: an ICP-sized company AND a target industry
    model = model_with(
        [{"id": "icp", "persona": ["mid_market"], "field": "industry", "in": ["software"], "points": 30}]
    )
    assert score_lead({"attributes": {"company_size": 300, "industry": "Software"}}, [], model, NOW).fit == 30
    assert score_lead({"attributes": {"company_size": 3000, "industry": "Software"}}, [], model, NOW).fit == 0
    assert score_lead({"attributes": {"company_size": 300, "industry": "Retail"}}, [], model, NOW).fit == 0


@pytest.mark.parametrize(
    ("fit", "grade"), [(100, "A"), (60, "A"), (59, "B"), (40, "B"), (39, "C"), (20, "C"), (19, "D"), (-30, "D")]
)
def test_grade_boundaries(fit, grade):
    # Given one rule per possible fit value, so that a lead's `tier` attribute gives it exactly that fit
    model = model_with([{"id": f"tier_{abs(fit)}", "field": "tier", "in": [fit], "points": fit}])
    score = score_lead({"attributes": {"tier": fit}}, [], model, NOW)
    assert (score.fit, score.grade) == (fit, grade)


# --- behaviour --------------------------------------------------------------------------------------------

PAGES = [
    {"id": "pricing", "event": "page_view", "properties": {"url": ["/pricing\\b"]}, "points": 10},
    {"id": "careers", "event": "page_view", "properties": {"url": ["/careers"]}, "points": 0},
    {"id": "page", "event": "page_view", "points": 1},
]


def test_an_event_earns_points_from_the_first_rule_it_matches():
    model = model_with(behaviour_rules=PAGES)
    events = [
        event("page_view", url="https://acme.io/pricing?plan=pro"),
        event("page_view", url="https://acme.io/pricingplans"),  # not /pricing\b: the general rule takes it
        event("page_view", url="https://acme.io/careers/eng"),
        event("page_view", url="https://acme.io/"),
        event("page_view"),  # no url: only the rule without property patterns takes it
    ]
    score = score_lead({}, events, model, NOW)
    assert item_of(score, "pricing")["events"] == 1
    assert item_of(score, "careers") == {"rule": "careers", "points": 0, "events": 1, "before_decay": 0}
    assert item_of(score, "page")["events"] == 3
    assert score.behaviour == 13


def test_each_engagement_type_and_suppression_events_give_no_points():
    model = model_with(
        behaviour_rules=[
            {"id": kind, "event": kind, "points": points}
            for kind, points in [
                ("email_open", 1),
                ("email_click", 5),
                ("content_download", 8),
                ("webinar_registered", 5),
                ("webinar_attended", 15),
                ("meeting_booked", 30),
                ("form_submit", 5),
            ]
        ]
    )
    events = [event(kind) for kind in ("email_open", "email_click", "content_download", "webinar_registered")]
    events += [event(kind) for kind in ("webinar_attended", "meeting_booked", "form_submit")]
    events += [event("unsubscribe"), event("bounce"), event("complaint"), event("made_up")]
    score = score_lead({}, events, model, NOW)
    assert score.behaviour == 1 + 5 + 8 + 5 + 15 + 30 + 5
    assert {item["rule"] for item in score.breakdown} == {
        "email_open",
        "email_click",
        "content_download",
        "webinar_registered",
        "webinar_attended",
        "meeting_booked",
        "form_submit",
    }


def test_cap_per_rule_keeps_the_newest_events():
    model = model_with(behaviour_rules=[{"id": "download", "event": "content_download", "points": 8, "max_points": 20}])
    score = score_lead({}, [event("content_download", days) for days in (1, 2, 3, 4)], model, NOW)
    assert item_of(score, "download") == {
        "rule": "download",
        "points": 16,
        "events": 2,
        "before_decay": 16,
        "capped": 2,
    }

    model = model_with(behaviour_rules=[{"id": "download", "event": "content_download", "points": 8, "max_events": 3}])
    assert score_lead({}, [event("content_download", days) for days in (1, 2, 3, 4)], model, NOW).behaviour == 24


def test_cap_per_period_counts_at_most_n_events_in_any_window():
    # Given at most 3 email_click points-events per 7 days
    model = model_with(
        behaviour_rules=[
            {"id": "click", "event": "email_click", "points": 5, "per_period": {"days": 7, "max_events": 3}}
        ]
    )
    # When 5 clicks arrive within one week, Then 3 count
    burst = score_lead({}, [event("email_click", d) for d in (0.1, 1, 2, 3, 4)], model, NOW)
    assert (burst.behaviour, item_of(burst, "click")["capped"]) == (15, 2)
    # When clicks come 7 days apart or more, Then each counts
    spread = score_lead({}, [event("email_click", d) for d in (0, 7, 14, 21, 28)], model, NOW)
    assert spread.behaviour == 25
    # A sliding window: 3 on days 0-2, 3 on days 8-10 → 6 count; a 4th on day 5 shares a window with both
    mixed = [event("email_click", d) for d in (0, 1, 2, 5, 8, 9, 10)]
    assert score_lead({}, mixed, model, NOW).behaviour == 30


def test_skip_first_counts_only_repeats():
    model = model_with(behaviour_rules=[{"id": "again", "event": "webinar_registered", "points": 10, "skip_first": 1}])
    assert score_lead({}, [event("webinar_registered", 3)], model, NOW).behaviour == 0
    assert score_lead({}, [event("webinar_registered", d) for d in (3, 1)], model, NOW).behaviour == 10


def test_score_groups_are_kept_beside_the_total():
    model = model_with(
        behaviour_rules=PAGES + [{"id": "webinar", "event": "webinar_attended", "points": 15}],
        behaviour__groups={"property": "product", "values": ["analytics", "crm"]},
    )
    events = [
        event("page_view", url="/pricing", product="Analytics"),
        event("page_view", url="/pricing", product="crm"),
        event("webinar_attended", product="analytics"),
        event("page_view", url="/pricing", product="other"),  # not a configured group: counts in the total only
        event("page_view", url="/pricing"),
    ]
    score = score_lead({}, events, model, NOW)
    assert score.groups == {"analytics": 25, "crm": 10}
    assert score.behaviour == 55
    assert score_lead({}, [], model, NOW).groups == {"analytics": 0, "crm": 0}


def test_half_life_decay_is_computed_from_event_times_and_now():
    model = model_with(
        behaviour_rules=[{"id": "meeting", "event": "meeting_booked", "points": 40}],
        behaviour__decay={"half_life_days": 30},
    )
    booked = [event("meeting_booked", 30)]
    score = score_lead({}, booked, model, NOW)
    assert item_of(score, "meeting") == {
        "rule": "meeting",
        "points": 20,
        "events": 1,
        "before_decay": 40,
        "decay": "half-life 30d",
    }
    # the same events scored 30 days later are worth half again; an event of now is worth all its points
    assert score_lead({}, booked, model, NOW + timedelta(days=30)).behaviour == 10
    assert score_lead({}, [event("meeting_booked", 0)], model, NOW).behaviour == 40
    # an event stamped in the future is worth its points, never more
    assert score_lead({}, [event("meeting_booked", -3)], model, NOW).behaviour == 40


def test_window_decay_drops_old_events_without_using_up_caps():
    model = model_with(
        behaviour_rules=[{"id": "click", "event": "email_click", "points": 5, "max_events": 2}],
        behaviour__decay={"window_days": 90},
    )
    events = [event("email_click", d) for d in (100, 95, 91, 89, 10)]
    score = score_lead({}, events, model, NOW)
    assert item_of(score, "click") == {
        "rule": "click",
        "points": 10,
        "events": 2,
        "before_decay": 10,
        "expired": 3,
        "decay": "window 90d",
    }
    # an event exactly 90 days old still counts; a day later it is gone
    assert score_lead({}, events, model, NOW + timedelta(days=80)).behaviour == 5
    assert score_lead({}, events, model, NOW + timedelta(days=81)).behaviour == 0


def test_a_rule_may_decay_differently_from_the_model():
    model = model_with(
        behaviour_rules=[
            {"id": "click", "event": "email_click", "points": 8},
            {"id": "meeting", "event": "meeting_booked", "points": 8, "decay": {"half_life_days": 60}},
        ],
        behaviour__decay={"half_life_days": 15},
    )
    score = score_lead({}, [event("email_click", 30), event("meeting_booked", 30)], model, NOW)
    assert (points_of(score, "click"), points_of(score, "meeting")) == (2, 6)  # 8/4 and 8/√2 = 5.66


def test_event_order_does_not_change_the_score():
    model = default_model()
    rng = random.Random(7)
    kinds = ["page_view", "email_click", "email_open", "webinar_attended", "content_download"]
    events = [
        event(rng.choice(kinds), rng.uniform(0, 200), url=rng.choice(["/pricing", "/blog", "/demo"])) for _ in range(80)
    ]
    shuffled = events[:]
    rng.shuffle(shuffled)
    assert score_lead({}, events, model, NOW) == score_lead({}, shuffled, model, NOW)


def test_events_without_a_readable_time_are_ignored():
    model = model_with(behaviour_rules=[{"id": "click", "event": "email_click", "points": 5}])
    events = [{"type": "email_click", "occurred_at": "yesterday"}, {"type": "email_click"}, event("email_click")]
    assert score_lead({}, events, model, NOW).behaviour == 5


def test_every_point_is_explained_and_the_score_has_the_contracts_shape():
    model = default_model()
    lead = {"email": "li@163.com", "job_title": "Head of IT", "attributes": {"company_size": "201-500"}}
    events = [event("email_click", d) for d in range(10)] + [event("page_view", 2, url="/pricing", product="scoring")]
    score = score_lead(lead, events, model, NOW)
    shown = score.as_dict()
    assert set(shown) == {"fit", "behaviour", "total", "breakdown", "grade", "groups"}
    assert shown["total"] == shown["fit"] + shown["behaviour"] == sum(item["points"] for item in shown["breakdown"])
    assert all({"rule", "points"} <= set(item) for item in shown["breakdown"])


# --- the shipped default model ----------------------------------------------------------------------------

HOT_ENGAGEMENT = [
    event("page_view", 1, url="https://www.example.com/pricing"),
    event("page_view", 3, url="https://www.example.com/pricing?plan=team"),
    event("email_click", 2),
    event("email_click", 5),
    event("webinar_attended", 12),
    event("meeting_booked", 1),
]


@pytest.mark.parametrize(
    ("title", "size", "industry"),
    [
        ("VP Marketing", "201-500", "Software"),
        ("Head of Growth", 800, "SaaS"),
        ("市场总监", "501-1000", "互联网"),
        ("Vice President, Sales", 250, "Internet"),
    ],
)
def test_the_default_model_qualifies_an_obviously_hot_lead(title, size, industry):
    # Given a senior title at an ICP-sized company in a target industry, with strong engagement
    lead = {
        "email": "exec@acme-software.example",
        "job_title": title,
        "country": "US",
        "attributes": {"company_size": size, "industry": industry},
    }
    # When the shipped default model scores it
    score = score_lead(lead, HOT_ENGAGEMENT, default_model(), NOW)
    # Then it meets the MQL criteria
    assert score.grade in ("A", "B")
    assert score.qualifies, score.as_dict()


@pytest.mark.parametrize("email", ["student@gmail.com", "xuesheng@qq.com", "xs2026@163.com", "s1@pku.edu.cn"])
@pytest.mark.parametrize("title", ["Student", "学生", None])
def test_the_default_model_never_qualifies_a_free_mail_student_without_engagement(email, title):
    lead = {"email": email, "job_title": title, "attributes": {"industry": "Education"}}
    score = score_lead(lead, [], default_model(), NOW)
    assert score.grade == "D"
    assert score.behaviour == 0
    assert not score.qualifies


# --- the shortcuts that keep scoring fast change no result --------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "literal"),
    [
        ("/pricing\\b", "/pricing"),
        ("^/Plans", "/plans"),
        ("/docs?/", "/doc"),
        ("/a+b", None),  # 'a' repeated: only '/' is certain, too short to help
        ("pricing|plans", None),
        ("(?i)/pricing", None),
        ("/定价", None),
        (".*", None),
    ],
)
def test_the_literal_prefilter_takes_only_text_every_match_contains(pattern, literal):
    from leadflow.domain.scoring_model import required_literal

    assert required_literal(pattern) == literal


URL_RULES = [
    {"id": "pricing", "event": "page_view", "properties": {"url": ["/Pricing\\b", "/plans?\\b"]}, "points": 10},
    {"id": "docs", "event": "page_view", "properties": {"url": ["/docs?/", "api"]}, "points": 3},
    {"id": "chinese", "event": "page_view", "properties": {"url": ["/定价", "/价格"]}, "points": 10},
    {"id": "any_case", "event": "page_view", "properties": {"url": ["(?i)/CAREERS"]}, "points": 0},
    {"id": "page", "event": "page_view", "points": 1},
]
URLS = [
    "https://x.io/pricing",
    "https://x.io/PRICING?x=1",
    "https://x.io/pricingplans",
    "https://x.io/plan",
    "https://x.io/plans/team",
    "https://x.io/doc/intro",
    "https://x.io/docs/api",
    "https://x.io/API",
    "https://x.io/定价",
    "https://x.io/ＰＲＩＣＩＮＧ",
    "https://x.io/careers",
    "https://x.io/",
    "",
    "https://x.io/İstanbul/pricing",
]


@pytest.mark.parametrize("url", URLS)
def test_rule_decisions_equal_a_plain_first_match_over_the_patterns(url):
    # Given page rules whose patterns mix cases, literals and non-ASCII text
    model = model_with(behaviour_rules=URL_RULES)
    import re

    def plain(value: str) -> str:
        for rule in URL_RULES:
            patterns = rule.get("properties", {}).get("url")
            if patterns is None or any(re.search(p, value, re.IGNORECASE) for p in patterns):
                return rule["id"]
        raise AssertionError("the last rule takes every page view")

    # When a page view of the URL is scored (twice: the second time the decision is remembered)
    for _ in range(2):
        score = score_lead({}, [event("page_view", url=url)], model, NOW)
        # Then it lands where a plain first-match over the patterns puts it
        assert [item["rule"] for item in score.breakdown] == [plain(url)]


def test_remembered_decisions_are_bounded(monkeypatch):
    from leadflow.domain import scoring_model

    monkeypatch.setattr(scoring_model, "DECISIONS_MAX", 8)
    model = model_with(behaviour_rules=URL_RULES)
    events = [event("page_view", url=f"https://x.io/blog/{i}") for i in range(30)] + [
        event("page_view", url="/pricing")
    ]
    score = score_lead({}, events, model, NOW)
    assert (points_of(score, "page"), points_of(score, "pricing")) == (30, 10)
    assert len(model.dispatch["page_view"].decided) <= 8
