"""The wire between POST /v1/events and a journey parked on "wait until email_click or 3 days": a signed
event of the awaited type resumes it at once; any other event is stored and scored but leaves it waiting."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from leadflow.domain.engagement import summary_events
from leadflow.errors import StoreUnavailable
from leadflow.services import journeys
from leadflow.services.journeys import enrol
from leadflow.store.journeys import get_lead, history
from tests.support.api import Api
from tests.workflow.test_journey_wait_for_event import CLICK_OR_THREE_DAYS, _at, _parked

# a cap loose enough for the second touch right after the first (the default cap would defer it)
LOOSE_CAP = "send_policy: {frequency_cap: {per_day: 3, per_week: 5}}\n"


def _event(lead_id: str, kind: str) -> dict:
    return {"events": [{"type": kind, "lead_id": lead_id, "occurred_at": datetime.now(UTC).isoformat()}]}


def test_a_signed_click_resumes_the_waiting_journey_and_another_event_does_not(world):
    # Given a lead parked after its first touch, waiting (as good as forever) for a click
    world.use_journeys(LOOSE_CAP + CLICK_OR_THREE_DAYS.replace("timeout_days: 3", "timeout_days: 300"))
    lead_id = world.lead("0b9d2c7e-5f1a-4c3e-9a57-1d2e3f4a5b6c")
    execution = world.execution_arn(enrol(lead_id))
    assert _parked(lead_id)["waiting_for"] == "email_click"
    api = Api()

    # When a signed email_open arrives for it
    viewed = api.post_events(_event(lead_id, "email_open"), "msg_wire_view")

    # Then the event is accepted and the journey still waits on its token
    assert viewed.status == 202
    assert viewed.json["results"][0]["status"] == "accepted"
    journey = get_lead(lead_id)["journey"]
    assert (journey["status"], journey["waiting_for"]) == ("waiting_event", "email_click")
    assert journey.get("task_token")
    assert world.sfn.describe_execution(executionArn=execution)["status"] == "RUNNING"

    # When the signed click arrives
    clicked_at = world.clock()
    clicked = api.post_events(_event(lead_id, "email_click"), "msg_wire_click")

    # Then it is accepted, and the journey goes on at once: the second touch is sent, the token is gone
    assert clicked.status == 202
    assert clicked.json["results"][0] == {"index": 0, "status": "accepted", "lead_id": lead_id}
    described = world.wait_for_end(execution)
    assert described["status"] == "SUCCEEDED", described.get("cause")
    entries = history(lead_id)
    assert [(e["outcome"], e.get("touch")) for e in entries] == [
        ("sent", "hello"),
        ("resumed", None),
        ("sent", "again"),
    ]
    assert entries[1]["event"] == "email_click"
    assert _at(entries[-1]["at"]) - clicked_at < timedelta(seconds=2)
    assert "task_token" not in get_lead(lead_id)["journey"]


def test_a_failed_resume_leaves_the_click_accepted_and_the_journey_waiting(world, monkeypatch, capsys):
    # Given a lead parked on its click, and the resume failing (the store or Step Functions down)
    world.use_journeys(LOOSE_CAP + CLICK_OR_THREE_DAYS.replace("timeout_days: 3", "timeout_days: 300"))
    lead_id = world.lead("7c1e0f2a-3b4d-4e5f-8a9b-0c1d2e3f4a5b")
    execution = world.execution_arn(enrol(lead_id))
    _parked(lead_id)

    def unavailable(lead_id: str, event_type: str) -> bool:
        raise StoreUnavailable("The lead store did not answer; retry shortly.")

    monkeypatch.setattr(journeys, "resume_on_event", unavailable)

    # When the signed click arrives
    clicked = Api().post_events(_event(lead_id, "email_click"), "msg_wire_click_failed")

    # Then the click is still accepted and scored on the lead; the journey keeps waiting (its timeout goes on)
    assert clicked.status == 202
    assert clicked.json["results"][0] == {"index": 0, "status": "accepted", "lead_id": lead_id}
    lead = get_lead(lead_id)
    assert [e["type"] for e in summary_events(lead["engagement"])] == ["email_click"]
    assert lead["journey"]["waiting_for"] == "email_click"
    assert world.sfn.describe_execution(executionArn=execution)["status"] == "RUNNING"
    # And the operator's alarm metric counted it (the function's EMF output)
    assert '"JourneyResumeFailed":[1.0]' in capsys.readouterr().out
