"""Journey configuration and planning: pure, no AWS (tests/workflow runs the state machine)."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal

import pytest

from leadflow.domain.journey import (
    Condition,
    SendPolicy,
    Touch,
    Wait,
    exit_reason,
    field_holds,
    is_eligible,
    lead_time_zone,
    next_allowed_time,
    plan_from,
    send_refusal,
    variant_for,
)
from leadflow.errors import JourneyConfigInvalid
from leadflow.journey_config import configured_journeys, load_journeys

MONDAY_10 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
POLICY = SendPolicy(country_time_zones={"JP": "Asia/Tokyo"})
LEAD = {"lead_id": "L1", "lifecycle_stage": "lead", "consent": {"email": True}, "email": "a@example.com"}


def test_the_shipped_configuration_loads_with_one_default_journey():
    config = configured_journeys()
    assert config.default is not None and config.default.name == "default"
    assert [t.id for t in config.default.touches] == ["welcome", "case-study", "demo-invite"]
    assert (config.policy.per_day, config.policy.per_week) == (1, 3)


@pytest.mark.parametrize(
    ("yaml_text", "expected"),
    [
        (
            "journeys:\n  - name: x\n    steps:\n      - wait: {dayz: 2}\n",
            "j.yaml:4: journeys[0].steps[0].wait.dayz: unknown field",
        ),
        (
            "templates: {}\njourneys:\n  - name: x\n    steps:\n      - touch: {id: a, channel: sms, template: nope}\n",
            "j.yaml:5: journeys[0].steps[0].touch.template: no template nope in templates",
        ),
        (
            "templates: {t: {body: b}}\njourneys:\n  - name: x\n    steps:\n"
            "      - touch: {id: a, channel: sms, template: t}\n"
            "      - wait: {until_event: email_click}\n",
            "j.yaml:6: journeys[0].steps[1].wait: until_event needs timeout_days",
        ),
        (
            "send_policy: {time_zone: Mars/Olympus}\ntemplates: {t: {body: b}}\n"
            "journeys:\n  - name: x\n    steps:\n      - touch: {id: a, channel: sms, template: t}\n",
            "j.yaml:1: send_policy.time_zone: 'Mars/Olympus' is not an IANA time zone",
        ),
        (
            "templates: {t: {body: b}}\njourneys:\n  - name: x\n    steps:\n"
            "      - wait: {until_event: email_click, timeout_days: 3}\n"
            "      - touch: {id: a, channel: sms, template: t}\n",
            "j.yaml:5: journeys[0].steps[0].wait: a journey starts with a touch or a time wait",
        ),
        (
            "templates: {t: {body: b}}\njourneys:\n  - name: x\n    steps:\n"
            "      - touch: {id: a, channel: sms, template: t}\n"
            "      - branch:\n          if: {field: scor.total, at_least: 40}\n"
            "          then: [{touch: {id: b, channel: sms, template: t}}]\n",
            "j.yaml:7: journeys[0].steps[1].branch.if.field: 'scor.total' is not a lead field a branch can test",
        ),
        (
            "templates: {t: {body: b}}\njourneys:\n  - name: x\n    steps:\n"
            "      - touch: {id: a, channel: sms, template: t}\n"
            "      - branch:\n          if: {event: email_clik}\n"
            "          then: [{touch: {id: b, channel: sms, template: t}}]\n",
            "j.yaml:7: journeys[0].steps[1].branch.if.event:",
        ),
        (
            "templates: {t: {body: b}}\njourneys:\n  - name: x\n    steps:\n"
            "      - touch: {id: a, channel: sms, template: t}\n"
            "      - branch:\n          if: {field: persona, equals: cto, in: [cfo]}\n"
            "          then: [{touch: {id: b, channel: sms, template: t}}]\n",
            "j.yaml:7: journeys[0].steps[1].branch.if: a field needs exactly one of equals, in, at_least",
        ),
        (
            "templates: {t: {body: b}}\njourneys:\n  - name: x\n    steps:\n"
            "      - touch: {id: a, channel: sms, template: t}\n"
            "      - branch:\n          if: {field: persona, exists: true}\n"
            "          then: [{touch: {id: b, channel: sms, template: nope}}]\n",
            "j.yaml:8: journeys[0].steps[1].branch.then[0].touch.template: no template nope in templates",
        ),
        (
            "templates: {t: {body: b}}\njourneys:\n  - name: x\n    steps:\n"
            "      - touch: {id: a, channel: webhook, template: t}\n",
            "j.yaml:5: journeys[0].steps[0].touch.channel: a webhook touch needs webhook.url",
        ),
    ],
)
def test_a_broken_configuration_is_refused_naming_file_line_and_field(yaml_text, expected):
    with pytest.raises(JourneyConfigInvalid) as refused:
        load_journeys(yaml_text, "j.yaml")
    assert any(p.startswith(expected) for p in refused.value.problems), refused.value.problems


def test_entry_needs_an_unqualified_lead_with_consent():
    journey = configured_journeys().default
    assert is_eligible(journey, LEAD)
    assert not is_eligible(journey, {**LEAD, "consent": {"email": False}})
    assert not is_eligible(journey, {**LEAD, "lifecycle_stage": "mql"})
    assert is_eligible(journey, {**LEAD, "lifecycle_stage": "recycled"})


def test_exit_on_mql_suppression_or_erasure():
    journey = configured_journeys().default
    assert exit_reason(journey, LEAD) is None
    assert exit_reason(journey, {**LEAD, "lifecycle_stage": "sql"}) == "stage:sql"
    assert exit_reason(journey, {**LEAD, "suppressed": {"reason": "unsubscribe"}}) == "suppressed"
    assert exit_reason(journey, {**LEAD, "erasing": "2026-03-02T00:00:00Z"}) == "erased"
    assert exit_reason(journey, None) == "erased"


def test_send_refusal_checks_channel_consent_and_address():
    sms = Touch("nudge", "sms", "sms_nudge")
    assert send_refusal(sms, LEAD) == "no_consent:sms"
    assert send_refusal(sms, {**LEAD, "consent": {"sms": True}}) == "no_address:sms"
    assert send_refusal(Touch("w", "email", "welcome"), LEAD) is None


def test_time_zone_from_phone_then_country_then_default():
    assert lead_time_zone({"phone": "+442071234567", "country": "JP"}, POLICY).key == "Europe/London"
    assert lead_time_zone({"country": "JP"}, POLICY).key == "Asia/Tokyo"
    assert lead_time_zone({"country": "ZZ"}, POLICY).key == "UTC"


def test_a_touch_over_the_daily_cap_is_deferred_until_the_day_has_passed():
    sent = [MONDAY_10 - timedelta(hours=1)]
    assert next_allowed_time(MONDAY_10, sent, lead_time_zone({}, POLICY), POLICY) == sent[0] + timedelta(days=1)


def test_the_weekly_cap_counts_sends_of_every_journey():
    sent = [MONDAY_10 - timedelta(days=d) for d in (1, 2, 3)]  # three this week, none today
    allowed = next_allowed_time(MONDAY_10, sent, lead_time_zone({}, POLICY), POLICY)
    assert allowed == MONDAY_10 - timedelta(days=3) + timedelta(days=7)


def test_quiet_hours_move_a_touch_to_the_next_morning_in_the_leads_zone():
    tokyo = lead_time_zone({"country": "JP"}, POLICY)
    # 10:00 UTC is 19:00 in Tokyo: allowed; 12:00 UTC is 21:00 there: quiet until 08:00 Tokyo = 23:00 UTC
    assert next_allowed_time(MONDAY_10 - timedelta(hours=1), [], tokyo, POLICY) == MONDAY_10 - timedelta(hours=1)
    assert next_allowed_time(MONDAY_10 + timedelta(hours=2), [], tokyo, POLICY) == datetime(
        2026, 3, 2, 23, 0, tzinfo=UTC
    )


def test_a_variant_split_of_1000_leads_lands_within_3_points_of_its_weights():
    touch = Touch("welcome", "email", "welcome", (("a", 70), ("b", 30)))
    counts = Counter(variant_for(f"lead-{i}", "default", touch) for i in range(1000))
    assert abs(counts["a"] / 1000 - 0.70) <= 0.03 and abs(counts["b"] / 1000 - 0.30) <= 0.03
    assert variant_for("lead-7", "default", touch) == variant_for("lead-7", "default", touch)


def test_plan_folds_time_waits_and_stops_at_touches_and_event_waits():
    journey = configured_journeys().default
    zone = lead_time_zone({}, POLICY)
    assert plan_from(journey, 0, MONDAY_10, zone).route == "wait"
    after_first = plan_from(journey, 1, MONDAY_10, zone)
    assert (after_first.route, after_first.step, after_first.at) == ("wait", 2, MONDAY_10 + timedelta(days=2))
    event = plan_from(journey, 3, MONDAY_10, zone)
    assert (event.route, event.step, event.event, event.at) == (
        "wait_event",
        4,
        "email_click",
        MONDAY_10 + timedelta(days=3),
    )
    assert plan_from(journey, 5, MONDAY_10, zone).route == "done"


def test_a_wait_until_a_local_time_ends_at_that_time_in_the_leads_zone():
    from dataclasses import replace

    journey = configured_journeys().default
    steps = (journey.steps[0], Wait(86400, time(9, 30)), journey.steps[2])
    plan = plan_from(replace(journey, steps=steps), 1, MONDAY_10, lead_time_zone({"country": "JP"}, POLICY))
    assert plan.at == datetime(2026, 3, 4, 0, 30, tzinfo=UTC)  # 09:30 Tokyo on Wednesday


BRANCHING = """
templates: {t: {body: b}}
journeys:
  - name: x
    steps:
      - touch: {id: a, channel: sms, template: t}
      - branch:
          if: {field: score.total, at_least: 40}
          then:
            - touch: {id: hot, channel: sms, template: t}
          else:
            - wait: {days: 1}
            - touch: {id: cold, channel: sms, template: t}
      - touch: {id: last, channel: sms, template: t}
"""


def test_a_branch_is_decided_where_it_is_reached_and_its_then_steps_skip_the_else_steps():
    # Given a journey with a branch on the score after its first touch (compiled to flat steps)
    journey = load_journeys(BRANCHING, "b.yaml").journeys["x"]
    zone = lead_time_zone({}, POLICY)

    def plan(score: int, step: int = 1):
        holds = lambda condition: field_holds(condition, {"score": {"total": score}})  # noqa: E731
        return plan_from(journey, step, MONDAY_10, zone, holds)

    # Then a hot lead goes to `hot` at once, and after it straight to `last` (over the else steps)
    hot = plan(45)
    assert (hot.route, journey.steps[hot.step].id, hot.at) == ("wait", "hot", MONDAY_10)
    after_hot = plan(45, hot.step + 1)
    assert (journey.steps[after_hot.step].id, after_hot.at) == ("last", MONDAY_10)
    # And a cold lead waits a day for `cold`
    cold = plan(10)
    assert (journey.steps[cold.step].id, cold.at) == ("cold", MONDAY_10 + timedelta(days=1))
    # And without a decider (the stream's router) the plan stops at the branch, for the task to decide it
    undecided = plan_from(journey, 1, MONDAY_10, zone)
    assert (undecided.route, undecided.step, undecided.at) == ("wait", 1, MONDAY_10)


@pytest.mark.parametrize(
    ("condition", "lead", "expected"),
    [
        (Condition(field="persona", equals="cto"), {"persona": "cto"}, True),
        (Condition(field="persona", equals="cto"), {}, False),
        (Condition(field="attributes.industry", one_of=("software",)), {"attributes": {"industry": "software"}}, True),
        (Condition(field="score.total", at_least=40), {"score": {"total": Decimal("40")}}, True),
        (Condition(field="score.total", at_most=39), {"score": {"total": 40}}, False),
        (Condition(field="score.total", at_least=40), {"score": {}}, False),
        (Condition(field="consent.sms", equals=True), {"consent": {"sms": {"granted": True}}}, True),
        (Condition(field="owner", exists=False), {}, True),
    ],
)
def test_a_lead_data_condition_reads_the_lead_as_stored(condition, lead, expected):
    assert field_holds(condition, lead) is expected
