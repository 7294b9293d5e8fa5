"""A journey's touches, in order and on time (journey time), through the real state machine."""

from __future__ import annotations

from datetime import datetime, timedelta

from moto.ses.models import ses_backends

from leadflow.store.journeys import get_lead, history
from tests.workflow.conftest import MONDAY_10_UTC

TWO_TOUCHES = """
templates:
  hello: {subject: Hello, body: Hi}
  again: {subject: Again, body: Hi again}
email: {from: nurture@example.com, unsubscribe_url: "https://example.com/u"}
journeys:
  - name: short
    default: true
    steps:
      - touch: {id: hello, channel: email, template: hello}
      - wait: {days: 2}
      - touch: {id: again, channel: email, template: again}
"""


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _sent(lead_id: str) -> list[dict]:
    return [e for e in history(lead_id) if e["outcome"] == "sent"]


def test_a_journey_sends_its_touches_in_order_and_on_time(world):
    # Given a two-touch journey, two days apart, and a new lead with email consent
    world.use_journeys(TWO_TOUCHES)
    lead_id = world.lead("L-SEQ")

    # When the lead is enrolled and the execution runs to its end (journey time scaled)
    from leadflow.services.journeys import enrol

    name = enrol(lead_id)
    described = world.wait_for_end(world.execution_arn(name))

    # Then it succeeded, with both touches sent in order, two days apart, starting at once
    assert described["status"] == "SUCCEEDED", described.get("cause")
    sent = _sent(lead_id)
    assert [e["touch"] for e in sent] == ["hello", "again"]
    first, second = (_at(e["at"]) for e in sent)
    assert first - MONDAY_10_UTC < timedelta(seconds=2)
    assert timedelta(days=2) <= second - first < timedelta(days=2, seconds=2)
    # And the timeline shows a masked recipient and SES's message id; SES got both emails with the headers
    assert all(e["to"] == "***@example.org" and e["message_id"] for e in sent)
    messages = ses_backends["123456789012"]["us-east-1"].sent_messages
    assert [m.subject for m in messages if "l-seq@example.org" in str(m.destinations)] == ["Hello", "Again"]
    # And the lead's journey says completed; 3 states per touch (Wait, Touch, Route), plus Finished
    assert get_lead(lead_id)["journey"]["status"] == "completed"
    entered = world.states_entered(described["executionArn"])
    assert entered == ["WaitForTouch", "Touch", "Route"] * 2 + ["Finished"]


def test_the_outbox_lists_a_leads_sends_with_the_recipient_masked(world):
    # Given a lead that went through the two-touch journey
    import io

    from leadflow.services.journeys import enrol
    from leadflow_local.outbox import lead_outbox

    world.use_journeys(TWO_TOUCHES)
    lead_id = world.lead("L-OUT")
    world.wait_for_end(world.execution_arn(enrol(lead_id)))

    # When the operator asks for its outbox
    out = io.StringIO()
    lead_outbox(lead_id, out)

    # Then each send is a line with its time, touch, channel and masked recipient; the address never shows
    lines = out.getvalue().splitlines()
    assert [line.split()[1:3] for line in lines[:2]] == [["sent", "short/hello"], ["sent", "short/again"]]
    assert all("email to ***@example.org" in line for line in lines[:2])
    assert "l-out@" not in out.getvalue()
    assert lines[-1] == "2 sent to lead L-OUT"
