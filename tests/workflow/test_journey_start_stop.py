"""Start from the stream (once per enrolment, whatever the redeliveries) and stop at once when the lead exits."""

from __future__ import annotations

import time

import pytest

from leadflow.services.journeys import enrol, execution_name
from leadflow.store.journeys import get_lead, history

LONG_WAIT = """
templates:
  hello: {subject: Hello, body: Hi}
  again: {subject: Again, body: Hi again}
email: {from: nurture@example.com}
journeys:
  - name: slow
    default: true
    steps:
      - touch: {id: hello, channel: email, template: hello}
      - wait: {days: 60}
      - touch: {id: again, channel: email, template: again}
"""


def _executions(world) -> list[dict]:
    return world.sfn.list_executions(stateMachineArn=world.arn)["executions"]


def _waiting_after_first_send(world, lead_id: str, name: str) -> None:
    """Until the first touch was sent and its Touch task has returned: the execution waits for the second
    (a stop while a task runs shows ABORTED in moto only once the in-process handler returns)."""
    deadline = time.monotonic() + 20  # seconds on a loaded machine; ~0.1 s alone
    while time.monotonic() < deadline:
        sent = any(e["outcome"] == "sent" for e in history(lead_id))
        if sent and world.states_entered(world.execution_arn(name)).count("WaitForTouch") == 2:
            return
        time.sleep(0.005)
    raise AssertionError(f"the execution never waited for its second touch: {history(lead_id)}")


def test_a_new_lead_is_enrolled_from_the_stream_and_a_redelivery_starts_nothing(world):
    # Given the shipped-style journey and a new lead with email consent, seen by the stream
    world.use_journeys(LONG_WAIT)
    lead_id = world.lead("L-START")
    stream = world.stream()

    # When the stream delivers its records (and then everything again, as after a redelivery)
    stream.poll_once()
    stream.poll_once()
    name = execution_name(lead_id, "slow", 1)
    assert enrol(lead_id) is None  # a record of the same change, delivered again: nothing to start

    # And even when a start was claimed but its outcome lost (status still `starting`), starting again
    world.update(lead_id, journey={**get_lead(lead_id)["journey"], "status": "starting"})
    assert enrol(lead_id) == name

    # Then exactly one execution runs, under the deterministic name
    executions = _executions(world)
    assert [e["name"] for e in executions] == [name]
    assert get_lead(lead_id)["journey"]["status"] in ("active", "waiting_event")
    world.sfn.stop_execution(executionArn=executions[0]["executionArn"])


def test_a_lead_not_eligible_is_not_enrolled(world):
    # Given a lead without email consent
    world.use_journeys(LONG_WAIT)
    world.lead("L-NOCONSENT", consent={"email": False})

    # When the stream delivers it / Then no journey starts
    world.stream().poll_once()
    assert _executions(world) == []


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"suppressed": {"reason": "unsubscribe", "since": "2026-03-02T11:00:00Z", "source": "email"}}, "suppressed"),
        ({"lifecycle_stage": "mql"}, "stage:mql"),
        ({"erasing": "2026-03-02T11:00:00Z"}, "erased"),
    ],
    ids=["unsubscribe", "mql", "erasure"],
)
def test_an_exit_stops_the_running_execution_at_once(world, change, reason):
    # Given a lead in a journey, waiting 60 days (1.5 s here) for its second touch
    world.use_journeys(LONG_WAIT)
    lead_id = world.lead("L-STOP")
    stream = world.stream()
    stream.poll_once()
    name = execution_name(lead_id, "slow", 1)
    _waiting_after_first_send(world, lead_id, name)

    # When the lead exits (unsubscribe, MQL, erasure) and the stream delivers that change
    started = time.monotonic()
    world.update(lead_id, **change)
    stream.poll_once()
    # (StopExecution returns at once; moto's worker thread reflects ABORTED a moment later, hence the wait: a
    # run that was not stopped would send its second touch 1.5 s in, which the timeline check below refuses)
    described = world.wait_for_end(world.execution_arn(name), timeout=5.0)

    # Then the execution is stopped now, not at its next touch, and the timeline says why
    assert described["status"] == "ABORTED", [
        (e["type"], e.get("executionFailedEventDetails"), e.get("taskFailedEventDetails"))
        for e in world.sfn.get_execution_history(executionArn=described["executionArn"])["events"]
        if "Failed" in e["type"]
    ] + [history(lead_id), get_lead(lead_id)["journey"]]
    assert time.monotonic() - started < 5.0  # the stop is synchronous; slack for a loaded machine
    assert [(e["outcome"], e.get("reason")) for e in history(lead_id)] == [("sent", None), ("exited", reason)]
    assert get_lead(lead_id)["journey"]["status"] == "stopped"
