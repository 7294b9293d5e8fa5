"""Routing rules (pure): every condition and action kind, territories, away and full owners skipped, the default
rule, the explanation, the SLA deadline in working hours, and configuration errors by file, line and field."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from leadflow.domain.routing import State, apply, decide, due_at, needs_owner
from leadflow.errors import RoutingConfigInvalid
from leadflow.routing_config import DEFAULT_FILE, load_routing, load_routing_file

NOW = datetime(2026, 11, 25, 15, 0, tzinfo=UTC)  # a Wednesday

BASE = """
territories:
  dach: {countries: [DE, AT, CH]}
  us_west: {regions: [US-CA, US-WA]}
owners:
  - {id: ann, name: Ann, crm: {hubspot: "11", salesforce: "005A"}, daily_capacity: 2}
  - {id: bob, name: Bob, crm: {hubspot: "12"}}
  - {id: cid, name: Cid}
  - {id: dee, name: Dee, daily_capacity: 4}
  - {id: eve, name: Eve, daily_capacity: 1}
  - {id: agency, name: Agency, kind: partner}
  - {id: sdr, name: SDR queue, kind: queue}
teams:
  - {id: west, members: [ann, bob, cid]}
  - {id: cap, members: [dee, eve]}
rules:
{rules}
  - name: fallback
    default: true
    assign: {queue: sdr}
"""


def config(rules: str, **replace: str):
    text = BASE.replace("{rules}", rules)
    for old, new in replace.items():
        text = text.replace(old, new)
    return load_routing(text, "test.yaml")


def lead(**fields) -> dict:
    base = {
        "lead_id": "l1",
        "lifecycle_stage": "mql",
        "country": "US",
        "persona": "executive",
        "source": "website",
        "attributes": {"industry": "Software", "company_size": "201-500"},
        "score": {"grade": "A", "total": 72},
        "attribution": {"first_touch": {"source": "google-ads", "utm_campaign": "q4-launch"}, "last_touch": {}},
    }
    base.update(fields)
    return base


ONE_RULE = """  - name: first
    when: {when}
    assign: {owner: bob}"""


@pytest.mark.parametrize(
    ("when", "matching", "other"),
    [
        ("{persona: [executive]}", {}, {"persona": "student"}),
        ("{grade: [A, B]}", {}, {"score": {"grade": "C", "total": 30}}),
        ("{score: {min: 60, max: 90}}", {}, {"score": {"grade": "A", "total": 95}}),
        ("{source: [google-ads]}", {}, {"source": "linkedin", "attribution": {}}),
        ("{campaign: [q4-launch]}", {}, {"attribution": {"first_touch": {"utm_campaign": "spring"}}}),
        ("{country: [US, CA]}", {}, {"country": "FR"}),
        ("{industry: [software, saas]}", {}, {"attributes": {"industry": "Retail", "company_size": "201-500"}}),
        ("{company_size: {min: 200}}", {}, {"attributes": {"industry": "Software", "company_size": "11-50"}}),
        (
            "{fields: [{field: job_title, contains: chief}]}",
            {"job_title": "Chief Revenue Officer"},
            {"job_title": "Intern"},
        ),
        ("{fields: [{field: attributes.plan, in: [enterprise]}]}", {"attributes": {"plan": "Enterprise"}}, {}),
        ("{fields: [{field: phone, exists: true}]}", {"phone": "+14155550100"}, {}),
        ("{fields: [{field: attributes.seats, min: 50}]}", {"attributes": {"seats": 80}}, {"attributes": {"seats": 5}}),
    ],
)
def test_each_condition_kind_matches_its_leads_and_passes_the_others_on(when, matching, other):
    # Given a rule with one condition, before the default rule
    rules = config(ONE_RULE.replace("{when}", when))
    # When a lead that meets it and one that does not are routed
    hit = decide(lead(**matching), rules, State(), NOW)
    miss = decide(lead(**other), rules, State(), NOW)
    # Then the first goes to the rule's owner, the second falls through to the default (the queue), and says why
    assert (hit.owner.id, hit.rule) == ("bob", "first")
    assert (miss.owner.id, miss.rule) == ("sdr", "fallback")
    assert miss.trace[0].matched is False and miss.trace[0].why


def test_territories_match_by_country_or_by_region():
    rules = config(
        """  - name: dach
    when: {territory: [dach]}
    assign: {owner: ann}
  - name: west_coast
    when: {territory: [us_west]}
    assign: {partner: agency}"""
    )
    # A German lead is in DACH; a Californian (state given as a code or ISO 3166-2) is on the west coast
    assert decide(lead(country="DE"), rules, State(), NOW).owner.id == "ann"
    assert decide(lead(attributes={"state": "ca"}), rules, State(), NOW).owner.id == "agency"
    assert decide(lead(attributes={"region": "US-WA"}), rules, State(), NOW).rule == "west_coast"
    # A Texan is in neither: the default rule takes the lead, and the trace names the lead's place
    texan = decide(lead(attributes={"state": "TX"}), rules, State(), NOW)
    assert texan.rule == "fallback"
    assert texan.trace[1].why == "US/US-TX is in none of the territories [us_west]"


def test_round_robin_takes_turns_and_the_turn_survives_between_decisions():
    rules = config("""  - name: west
    when: {country: [US]}
    assign: {team: west, strategy: round_robin}""")
    state, picked = State(), []
    for _ in range(7):
        decision = decide(lead(), rules, state, NOW)
        state = apply(state, decision, NOW)
        picked.append(decision.owner.id)
    # Ann has a capacity of 2: after her second lead she is skipped, the others go on taking turns
    assert picked == ["ann", "bob", "cid", "ann", "bob", "cid", "bob"]
    assert "ann full (2 today)" in decide(lead(), rules, state, NOW).trace[-1].why


def test_capacity_counts_per_owner_local_day():
    rules = config("""  - name: west
    when: {country: [US]}
    assign: {owner: ann}""")
    state = State(counts={"ann": {"day": NOW.date().isoformat(), "n": 2}})
    # Full today: the rule falls through to the default and says so
    today = decide(lead(), rules, state, NOW)
    assert today.owner.id == "sdr" and today.trace[0].why.endswith("but owner ann is full (2 today)")
    # The next day the count starts again
    assert decide(lead(), rules, state, NOW + timedelta(days=1)).owner.id == "ann"


def test_weighted_team_fills_owners_in_proportion_to_their_capacity():
    rules = config("""  - name: cap
    when: {country: [US]}
    assign: {team: cap, strategy: weighted}""")
    state, picked = State(), []
    for _ in range(5):
        decision = decide(lead(), rules, state, NOW)
        state = apply(state, decision, NOW)
        picked.append(decision.owner.id)
    # Dee (capacity 4) takes four, Eve (capacity 1) one; then both are full and the default queue takes over
    assert sorted(picked) == ["dee", "dee", "dee", "dee", "eve"]
    assert decide(lead(), rules, state, NOW).owner.id == "sdr"


def test_away_owners_are_skipped_and_away_until_ends():
    rules = config(
        """  - name: west
    when: {country: [US]}
    assign: {team: west}""",
        **{
            "{id: ann, name: Ann,": "{id: ann, name: Ann, away: true,",
            "{id: bob, name: Bob,": "{id: bob, name: Bob, away_until: '2026-11-25',",
        },
    )
    decision = decide(lead(), rules, State(), NOW)
    assert decision.owner.id == "cid"
    assert "skipped ann away, bob away until 2026-11-25" in decision.trace[0].why
    # Bob is back the day after
    assert decide(lead(), rules, State(cursors={"west": 1}), NOW + timedelta(days=1)).owner.id == "bob"


def test_a_reassignment_never_goes_back_to_previous_owners():
    rules = config("""  - name: west
    when: {country: [US]}
    assign: {team: west}""")
    decision = decide(lead(), rules, State(), NOW, exclude=frozenset({"ann", "bob"}))
    assert decision.owner.id == "cid"
    everyone = decide(lead(), rules, State(), NOW, exclude=frozenset({"ann", "bob", "cid"}))
    assert everyone.owner.id == "sdr"  # the default queue, itself not excluded yet
    nobody = decide(lead(), rules, State(), NOW, exclude=frozenset({"ann", "bob", "cid", "sdr"}))
    assert nobody.owner is None and nobody.explain()[-1] == "-> nobody available: the lead stays unassigned"


def test_partner_and_queue_actions_and_queues_have_no_capacity():
    rules = config("""  - name: agency
    when: {country: [BR]}
    assign: {partner: agency}""")
    assert decide(lead(country="BR"), rules, State(), NOW).owner.kind == "partner"
    # A queue never fills up and does not count (no state write needed)
    queued = decide(lead(), rules, State(), NOW)
    assert queued.owner.kind == "queue" and apply(State(), queued, NOW) == State()


def test_explain_names_the_matching_rule_and_why_each_earlier_one_did_not():
    rules = config(
        """  - name: enterprise
    when: {company_size: {min: 5001}}
    assign: {owner: ann}
  - name: dach
    when: {territory: [dach], grade: [A]}
    assign: {owner: bob}
  - name: us
    when: {country: [US], grade: [A, B]}
    assign: {team: west}"""
    )
    lines = decide(lead(), rules, State(), NOW).explain()
    assert lines == [
        "- enterprise: company size 201-500 is not at least 5001",
        "- dach: US is in none of the territories [dach]",
        "+ us: grade A is in [A, B]; country US is in [US] -> team west in turn: ann",
        "-> ann (Ann, team west)",
    ]


def test_needs_owner_once_per_qualification():
    assert needs_owner(lead())
    owned = lead(mql_at="2026-11-25T10:00:00.000Z", owner={"id": "ann", "assigned_at": "2026-11-25T10:00:01.000Z"})
    assert not needs_owner(owned)
    # Recycled, then qualified again later: routed again
    assert needs_owner({**owned, "mql_at": "2026-12-01T09:00:00.000Z"})
    assert not needs_owner(lead(lifecycle_stage="sql"))
    assert not needs_owner(lead(owner={"id": "4711"}))  # an owner set by hand stays


def test_sla_deadline_counts_the_owners_working_hours():
    rules = load_routing_file(DEFAULT_FILE)
    ava = rules.owners["ava"]  # Los Angeles, Mon-Fri 08:00-17:00; the default SLA is 2 working days
    # Assigned Friday 16:00 UTC (08:00 in LA): Friday and Monday are the two working days
    friday = datetime(2026, 11, 27, 16, 0, tzinfo=UTC)
    assert due_at(ava, rules.sla, friday) == datetime(2026, 12, 1, 1, 0, tzinfo=UTC)  # Monday 17:00 in LA
    # Assigned Saturday: the clock starts Monday 08:00
    assert due_at(ava, rules.sla, friday + timedelta(days=1)) == datetime(2026, 12, 2, 1, 0, tzinfo=UTC)
    # Without business hours it is wall-clock time
    wall = config(
        "  - name: x\n    when: {country: [US]}\n    assign: {owner: ann}",
        **{"owners:": "sla: {respond_within: {hours: 4}}\nowners:"},
    )
    assert due_at(wall.owners["ann"], wall.sla, friday) == friday + timedelta(hours=4)


def test_the_shipped_default_routes_hot_leads_by_region():
    rules = load_routing_file(DEFAULT_FILE)
    assert decide(lead(), rules, State(), NOW).rule == "north_america"
    assert decide(lead(country="CN"), rules, State(), NOW).owner.id == "huaxia_partners"
    assert decide(lead(country="BR"), rules, State(), NOW).owner.id == "sdr_queue"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("{team: west}", "{team: east}"), "test.yaml:19: rules[0].assign.team: no team 'east' (teams: west, cap)"),
        (
            ("{territory: [dach]}", "{territory: [nordics]}"),
            "test.yaml:18: rules[0].when.territory[0]: no territory 'nordics'",
        ),
        (
            ("{team: west}", "{owner: agency}"),
            "test.yaml:19: rules[0].assign.owner: 'agency' is a partner, not a person",
        ),
        (
            ("{team: west}", "{team: west, queue: sdr}"),
            "test.yaml:19: rules[0].assign: give exactly one of owner, team",
        ),
        (("{team: west}", "{queue: sdr, strategy: weighted}"), "test.yaml:19: rules[0].assign.strategy: only a team"),
        (
            ("daily_capacity: 2", "daily_capacity: two"),
            "test.yaml:6: owners[0].daily_capacity: 'two' is not of type 'integer'",
        ),
        (
            ("{id: bob, name: Bob,", "{id: bob, name: Bob, time_zone: Mars/Olympus,"),
            "test.yaml:7: owners[1].time_zone: 'Mars/Olympus' is not an IANA",
        ),
        (("members: [ann, bob, cid]", "members: [ann, zed]"), "test.yaml:14: teams[0].members[1]: no owner 'zed'"),
        (("    default: true\n", ""), "test.yaml:16: rules: a default rule is required"),
        (
            ("assign: {team: west}", "assign: {team: west}\n    colour: blue"),
            "test.yaml:20: rules[0].colour: unknown field (known here: assign, default, name, when)",
        ),
    ],
)
def test_configuration_errors_name_file_line_and_field(change, message):
    text = BASE.replace("{rules}", "  - name: first\n    when: {territory: [dach]}\n    assign: {team: west}")
    with pytest.raises(RoutingConfigInvalid) as refused:
        load_routing(text.replace(*change), "test.yaml")
    assert any(line.startswith(message) for line in refused.value.problems), refused.value.problems


def test_a_default_rule_must_be_last_and_unconditional():
    text = BASE.replace(
        "{rules}", "  - name: early\n    default: true\n    when: {country: [US]}\n    assign: {owner: bob}"
    )
    with pytest.raises(RoutingConfigInvalid) as refused:
        load_routing(text, "test.yaml")
    problems = "\n".join(refused.value.problems)
    assert "rules[0].when: the default rule takes every lead" in problems
    assert "rules[0].default: the default rule must be the last rule" in problems


def test_the_shipped_configuration_is_valid_and_a_broken_file_is_named():
    assert load_routing_file(DEFAULT_FILE).rules[-1].default
    with pytest.raises(RoutingConfigInvalid) as refused:
        load_routing_file(Path("/nonexistent/rules.yaml"))
    assert refused.value.problems[0].startswith("/nonexistent/rules.yaml: cannot be read")


def test_a_lead_routed_to_nobody_is_not_held_back():
    # Routing found nobody (every owner away and no queue): the lead says so and is pushed without an owner
    nobody = lead(
        mql_at="2026-11-25T10:00:00.000Z", owner={"assigned_at": "2026-11-25T10:00:01.000Z", "unassigned": True}
    )
    assert not needs_owner(nobody)
