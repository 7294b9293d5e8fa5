"""Every touch re-checks at send time: exit criteria, consent, the frequency cap, quiet hours (→ deferred)."""

from __future__ import annotations

import time
from datetime import datetime, timedelta

from leadflow.services.journeys import enrol
from leadflow.store.journeys import get_lead, history
from tests.workflow.conftest import MONDAY_10_UTC

TEMPLATES = """
templates:
  hello: {subject: Hello, body: Hi}
  again: {subject: Again, body: Hi again}
email: {from: nurture@example.com}
send_policy:
  time_zone: UTC
  country_time_zones: {JP: Asia/Tokyo}
"""


def _journey(*steps: str) -> str:
    return (
        TEMPLATES
        + "journeys:\n  - name: checks\n    default: true\n"
        + "    entry: {lifecycle_stages: [lead, recycled]}\n    steps:\n"
        + "".join(f"      - {s}\n" for s in steps)
    )


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _outcomes(lead_id: str) -> list[tuple[str, str | None, str | None]]:
    return [(e["outcome"], e.get("touch"), e.get("reason")) for e in history(lead_id)]


def test_a_lead_that_qualifies_mid_journey_gets_no_further_touch(world):
    # Given a journey with a long wait between two touches, and a lead in it
    world.use_journeys(
        _journey(
            "touch: {id: hello, channel: email, template: hello}",
            "wait: {days: 20}",
            "touch: {id: again, channel: email, template: again}",
        )
    )
    lead_id = world.lead("L-MQL")
    name = enrol(lead_id)
    deadline = time.monotonic() + 3
    while not history(lead_id) and time.monotonic() < deadline:
        time.sleep(0.005)

    # When the lead becomes an MQL during the wait
    world.update(lead_id, lifecycle_stage="mql")
    described = world.wait_for_end(world.execution_arn(name))

    # Then the second touch is never sent: the journey ends with the exit reason on the timeline and the lead
    assert described["status"] == "SUCCEEDED", described.get("cause")
    assert _outcomes(lead_id) == [("sent", "hello", None), ("exited", None, "stage:mql")]
    journey = get_lead(lead_id)["journey"]
    assert (journey["status"], journey["exit_reason"]) == ("stopped", "stage:mql")


def test_the_frequency_cap_defers_a_touch_to_the_next_allowed_time(world):
    # Given a lead that got a touch from another journey an hour ago (cap: one a day)
    world.use_journeys(_journey("touch: {id: hello, channel: email, template: hello}"))
    earlier = MONDAY_10_UTC - timedelta(hours=1)
    lead_id = world.lead(
        "L-CAP",
        journey={"name": "other", "status": "completed", "sends": [earlier.strftime("%Y-%m-%dT%H:%M:%SZ")]},
        lifecycle_stage="recycled",
    )

    # When it enters this journey
    described = world.wait_for_end(world.execution_arn(enrol(lead_id)))

    # Then the touch is deferred (not dropped, not sent) and goes out when a day has passed since the last one
    assert described["status"] == "SUCCEEDED", described.get("cause")
    entries = history(lead_id)
    assert [(e["outcome"], e.get("reason")) for e in entries] == [("deferred", "frequency_cap"), ("sent", None)]
    assert _at(entries[0]["until"]) == earlier + timedelta(days=1)
    assert _at(entries[1]["at"]) - (earlier + timedelta(days=1)) < timedelta(seconds=2)


def test_quiet_hours_move_a_touch_to_the_next_morning_in_the_leads_time_zone(world):
    # Given a lead in Japan and a touch due two hours after 19:00 Tokyo time (10:00 UTC)
    world.use_journeys(_journey("wait: {hours: 2}", "touch: {id: hello, channel: email, template: hello}"))
    lead_id = world.lead("L-QUIET", country="JP")

    # When the journey runs
    described = world.wait_for_end(world.execution_arn(enrol(lead_id)))

    # Then the touch due at 21:00 Tokyo is deferred to 08:00 Tokyo (23:00 UTC) and sent then
    assert described["status"] == "SUCCEEDED", described.get("cause")
    entries = history(lead_id)
    assert [(e["outcome"], e.get("reason")) for e in entries] == [("deferred", "quiet_hours"), ("sent", None)]
    expected = datetime(2026, 3, 2, 23, 0, tzinfo=MONDAY_10_UTC.tzinfo)
    assert _at(entries[0]["until"]) == expected
    assert _at(entries[1]["at"]) - expected < timedelta(seconds=2)


def test_a_touch_without_channel_consent_is_skipped_and_the_journey_goes_on(world):
    # Given an SMS touch then an email touch, and a lead with email consent only
    world.use_journeys(
        _journey(
            "touch: {id: nudge, channel: sms, template: hello}",
            "wait: {days: 1}",
            "touch: {id: hello, channel: email, template: hello}",
        )
    )
    lead_id = world.lead("L-SMS", phone="+447700900123")  # London: 10:00 is not quiet

    # When the journey runs
    described = world.wait_for_end(world.execution_arn(enrol(lead_id)))

    # Then no SMS goes out (skipped, with the reason) and the email does
    assert described["status"] == "SUCCEEDED", described.get("cause")
    assert _outcomes(lead_id) == [("skipped", "nudge", "no_consent:sms"), ("sent", "hello", None)]
