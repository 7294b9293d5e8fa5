"""Branch steps through the real state machine: on lead data and on a past event, decided by the Touch task
(the router never decides one), with no state of their own."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from leadflow.services.journeys import enrol
from leadflow.store.journeys import get_lead, history
from tests.support.api import Api

BRANCHES = """
send_policy: {frequency_cap: {per_day: 3, per_week: 5}}
templates:
  hello: {subject: Hello, body: Hi}
  docs: {subject: Docs, body: The API reference}
  story: {subject: Story, body: A customer story}
  demo: {subject: Demo, body: Book a demo}
email: {from: nurture@example.com}
journeys:
  - name: branches
    default: true
    steps:
      - touch: {id: hello, channel: email, template: hello}
      - branch:
          if: {field: attributes.industry, in: [software, saas]}
          then:
            - touch: {id: docs, channel: email, template: docs}
          else:
            - touch: {id: story, channel: email, template: story}
      - wait: {days: 2}
      - branch:
          if: {event: content_download, within_days: 7}
          then:
            - touch: {id: demo, channel: email, template: demo}
"""


def _sent(lead_id: str) -> list[str]:
    return [e["touch"] for e in history(lead_id) if e["outcome"] == "sent"]


def test_a_branch_on_lead_data_and_one_on_a_past_event_choose_each_leads_touches(world):
    # Given a journey that branches on the industry, then (two days later) on a download in the last week
    world.use_journeys(BRANCHES)
    # And a software lead who downloaded a white paper, and a lead with neither
    buyer = world.lead("0c1d2e3f-4a5b-4c6d-8e7f-000000000001", attributes={"industry": "software"})
    other = world.lead("0c1d2e3f-4a5b-4c6d-8e7f-000000000002")
    download = {"type": "content_download", "lead_id": buyer, "occurred_at": datetime.now(UTC).isoformat()}
    assert Api().post_events({"events": [download]}, "msg_branch_download").status == 202

    # When both run through the journey
    executions = {lead: world.execution_arn(enrol(lead)) for lead in (buyer, other)}
    described = {lead: world.wait_for_end(arn) for lead, arn in executions.items()}

    # Then each took its own path: the software lead got the docs and, after the wait, the demo; the other the story
    assert all(d["status"] == "SUCCEEDED" for d in described.values()), [d.get("cause") for d in described.values()]
    assert _sent(buyer) == ["hello", "docs", "demo"]
    assert _sent(other) == ["hello", "story"]
    assert get_lead(other)["journey"]["status"] == "completed"
    # And a branch costs no state of its own: 3 per touch; a branch after a wait that ends the journey costs
    # the wake-up (Wait, Touch, Route) that decides it
    assert world.states_entered(described[buyer]["executionArn"]) == (
        ["WaitForTouch", "Touch", "Route"] * 3 + ["Finished"]
    )
    assert world.states_entered(described[other]["executionArn"]) == ["WaitForTouch", "Touch", "Route"] * 3 + [
        "Finished"
    ]


def test_a_branch_after_a_wait_reads_the_lead_as_it_is_then(world):
    # Given a journey that waits 20 days, then branches on the lead's score
    world.use_journeys(
        BRANCHES.split("journeys:")[0]
        + """journeys:
  - name: branches
    default: true
    steps:
      - touch: {id: hello, channel: email, template: hello}
      - wait: {days: 20}
      - branch:
          if: {field: score.total, at_least: 40}
          then:
            - touch: {id: demo, channel: email, template: demo}
          else:
            - touch: {id: story, channel: email, template: story}
"""
    )
    lead_id = world.lead("L-LATER", score={"total": 10})
    execution = world.execution_arn(enrol(lead_id))
    deadline = time.monotonic() + 3
    while not _sent(lead_id) and time.monotonic() < deadline:  # the first touch goes out, the wait begins
        time.sleep(0.005)

    # When the lead's score rises during the wait
    world.update(lead_id, score={"total": 45})
    described = world.wait_for_end(execution)

    # Then the branch saw the new score
    assert described["status"] == "SUCCEEDED", described.get("cause")
    assert _sent(lead_id) == ["hello", "demo"]


CLICK_THEN_BRANCH = """
send_policy: {frequency_cap: {per_day: 3, per_week: 5}}
templates:
  hello: {subject: Hello, body: Hi}
  demo: {subject: Demo, body: Book a demo}
  story: {subject: Story, body: A customer story}
email: {from: nurture@example.com}
journeys:
  - name: clicks
    default: true
    steps:
      - touch: {id: hello, channel: email, template: hello}
      - wait: {until_event: email_click, timeout_days: 300}
      - branch:
          if: {event: email_click, within_days: 1}
          then:
            - touch: {id: demo, channel: email, template: demo}
          else:
            - touch: {id: story, channel: email, template: story}
"""


def test_a_click_resumes_the_journey_and_the_task_decides_the_branch_on_it(world, monkeypatch):
    # Given a lead parked on "wait until email_click", followed by a branch on that click
    import threading

    from leadflow.store import journeys as store
    from tests.workflow.test_journey_wait_for_event import _parked

    world.use_journeys(CLICK_THEN_BRANCH)
    lead_id = world.lead("0c1d2e3f-4a5b-4c6d-8e7f-000000000003")
    execution = world.execution_arn(enrol(lead_id))
    _parked(lead_id)
    readers = []
    real = store.had_event
    monkeypatch.setattr(store, "had_event", lambda *a: readers.append(threading.current_thread()) or real(*a))

    # When the signed click arrives through the events API
    click = {"type": "email_click", "lead_id": lead_id, "occurred_at": datetime.now(UTC).isoformat()}
    assert Api().post_events({"events": [click]}, "msg_branch_click").status == 202
    described = world.wait_for_end(execution)

    # Then the journey went on to the branch's `then` touch
    assert described["status"] == "SUCCEEDED", described.get("cause")
    assert _sent(lead_id) == ["hello", "demo"]
    # And the events were read by the journey's task, never by the events function that resumed it (whose
    # grants reach no lead's events)
    assert readers and threading.main_thread() not in readers
