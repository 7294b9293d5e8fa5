""" "Wait until a click or 3 days": the execution parks on a task token that the events API resumes."""

from __future__ import annotations

import time
from datetime import datetime, timedelta

from leadflow.services.journeys import enrol, resume_on_event
from leadflow.store.journeys import get_lead, history

CLICK_OR_THREE_DAYS = """
templates:
  hello: {subject: Hello, body: Hi}
  again: {subject: Again, body: Hi again}
email: {from: nurture@example.com}
journeys:
  - name: click
    default: true
    steps:
      - touch: {id: hello, channel: email, template: hello}
      - wait: {until_event: email_click, timeout_days: 3}
      - touch: {id: again, channel: email, template: again}
"""


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _parked(lead_id: str) -> dict:
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        journey = get_lead(lead_id).get("journey") or {}
        if journey.get("task_token"):
            return journey
        time.sleep(0.005)
    raise AssertionError("the journey never parked on its task token")


def test_a_click_resumes_the_journey_at_once(world):
    # Given a lead parked after its first touch, waiting up to 3 days for a click
    # (a cap loose enough for a click right after the first touch; the default cap would defer the touch)
    world.use_journeys(
        "send_policy: {frequency_cap: {per_day: 3, per_week: 5}}\n"
        + CLICK_OR_THREE_DAYS.replace("timeout_days: 3", "timeout_days: 300")  # never times out here
    )
    lead_id = world.lead("L-CLICK")
    name = enrol(lead_id)
    parked = _parked(lead_id)
    assert (parked["status"], parked["waiting_for"]) == ("waiting_event", "email_click")

    # When an unrelated event arrives, then the click (what POST /v1/events calls)
    assert resume_on_event(lead_id, "page_view") is False
    clicked_at = world.clock()
    assert resume_on_event(lead_id, "email_click") is True
    described = world.wait_for_end(world.execution_arn(name))

    # Then the next touch goes at the click, not after the timeout, and the token is gone (used once)
    assert described["status"] == "SUCCEEDED", described.get("cause")
    entries = history(lead_id)
    assert [(e["outcome"], e.get("touch")) for e in entries] == [
        ("sent", "hello"),
        ("resumed", None),
        ("sent", "again"),
    ]
    assert _at(entries[-1]["at"]) - clicked_at < timedelta(seconds=2)
    assert "task_token" not in get_lead(lead_id)["journey"]
    assert resume_on_event(lead_id, "email_click") is False


def test_without_a_click_the_journey_goes_on_after_the_timeout(world):
    # Given the same journey and a lead that never clicks
    world.use_journeys(CLICK_OR_THREE_DAYS)
    lead_id = world.lead("L-NOCLICK")

    # When it runs
    described = world.wait_for_end(world.execution_arn(enrol(lead_id)))

    # Then the second touch goes three days after the first, and the token is cleared
    assert described["status"] == "SUCCEEDED", described.get("cause")
    first, second = [_at(e["at"]) for e in history(lead_id) if e["outcome"] == "sent"]
    assert timedelta(days=3) <= second - first < timedelta(days=3, seconds=2)
    assert "task_token" not in get_lead(lead_id)["journey"]
