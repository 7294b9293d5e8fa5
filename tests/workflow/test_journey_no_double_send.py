"""No double send: a touch that was sent and then failed to be recorded is never sent again by the retry.

The Touch task is retried by the state machine when the store does not answer (StoreUnavailable). Here the
store fails once, on its first write after the provider took the email: the timeline entry, the lead's
journey map or the send ledger's completion. The retry must find the send ledger entry (claimed before the
send) and finish the touch without a second email.
"""

from __future__ import annotations

import pytest
from moto.ses.models import ses_backends

from leadflow.errors import StoreUnavailable
from leadflow.services.journeys import enrol
from leadflow.store import journeys as store
from leadflow.store.journeys import history

ONE_TOUCH = """
templates:
  hello: {subject: Hello, body: Hi}
  again: {subject: Again, body: Hi again}
email: {from: nurture@example.com}
journeys:
  - name: once
    default: true
    steps:
      - touch: {id: hello, channel: email, template: hello}
      - wait: {days: 2}
      - touch: {id: again, channel: email, template: again}
"""


def _emails_to(address: str) -> list[str]:
    messages = ses_backends["123456789012"]["us-east-1"].sent_messages
    return [m.subject for m in messages if address in str(m.destinations)]


@pytest.mark.slow
@pytest.mark.parametrize("failing_write", ["record_journey_entry", "update_journey", "complete_send"])
def test_a_touch_recorded_after_a_store_failure_is_sent_once(world, monkeypatch, failing_write):
    # Given a two-touch journey, and a store whose first write after the first email fails once
    world.use_journeys(ONE_TOUCH)
    lead_id = world.lead("L-ONCE")
    address = "l-once@example.org"
    real = getattr(store, failing_write, None)
    failed = []

    def flaky(*args, **kwargs):
        if _emails_to(address) and not failed:
            failed.append(failing_write)
            raise StoreUnavailable("The lead store did not answer; retry shortly.")
        return real(*args, **kwargs)

    monkeypatch.setattr(store, failing_write, flaky)

    # When the lead runs through the journey (the Touch task is retried after the failure)
    described = world.wait_for_end(world.execution_arn(enrol(lead_id)), timeout=15)

    # Then the failure happened after the send, and still each touch went out exactly once
    assert failed == [failing_write]
    assert described["status"] == "SUCCEEDED", described.get("cause")
    assert _emails_to(address) == ["Hello", "Again"]
    # And the timeline says so once per touch, the first one at the time of its first attempt
    sent = [e for e in history(lead_id) if e["outcome"] == "sent"]
    assert [e["touch"] for e in sent] == ["hello", "again"]
    # And the Touch state ran twice for the first touch (the retry), once for the second
    events = world.sfn.get_execution_history(executionArn=described["executionArn"], maxResults=1000)["events"]
    assert sum(1 for e in events if e["type"] == "LambdaFunctionFailed" or e["type"] == "TaskFailed") == 1


@pytest.mark.slow
def test_a_touch_whose_task_result_was_lost_is_neither_sent_nor_deferred_again(world, monkeypatch):
    # Given a two-touch journey (cap: one a day), and a Touch task whose every write succeeds but whose
    # answer is lost once, after the first email (the state machine retries it)
    from leadflow.services import journeys

    world.use_journeys(ONE_TOUCH)
    lead_id = world.lead("L-LOST")
    real, lost = journeys._advance, []

    def advance_then_lose_the_answer(*args, **kwargs):
        following = real(*args, **kwargs)
        if not lost:
            lost.append(following)
            raise StoreUnavailable("The answer did not reach the state machine.")
        return following

    monkeypatch.setattr(journeys, "_advance", advance_then_lose_the_answer)

    # When the lead runs through the journey
    described = world.wait_for_end(world.execution_arn(enrol(lead_id)), timeout=15)

    # Then the retried task neither sent the first touch again nor deferred it under the cap its own send
    # filled: the timeline is the two sends, two days apart
    assert lost and described["status"] == "SUCCEEDED", described.get("cause")
    assert _emails_to("l-lost@example.org") == ["Hello", "Again"]
    assert [(e["outcome"], e.get("touch")) for e in history(lead_id)] == [("sent", "hello"), ("sent", "again")]
