"""Webhook touches through the real state machine: a Standard Webhooks signed POST to the configured URL (a
small local receiver here), the same `webhook-id` on every retry, on the lead's timeline and in the outbox."""

from __future__ import annotations

import io
import json
import time

from leadflow.services.journeys import enrol
from leadflow.sources.base import verify_standard_webhook
from leadflow.store.journeys import get_lead, history
from leadflow_local.outbox import lead_outbox
from tests.support.signing import dev_secret
from tests.support.webhook_receiver import WebhookReceiver

WEBHOOK_JOURNEY = """
templates:
  wecom_hello: {body: "Hello from LeadFlow"}
  hello: {subject: Hello, body: Hi}
email: {from: nurture@example.com}
webhook: {url: "https://tools.example.com/leadflow/touches", timeout_seconds: 2}
journeys:
  - name: bridge
    default: true
    steps:
      - touch: {id: wecom-hello, channel: webhook, template: wecom_hello}
      - wait: {days: 1}
      - touch: {id: hello, channel: email, template: hello}
"""


def test_a_webhook_touch_is_retried_under_the_same_webhook_id_and_recorded_once(world):
    # Given a journey whose first touch is a webhook, and a receiver (the operator's URL override points at
    # it) that answers 503 once, then 204
    world.use_journeys(WEBHOOK_JOURNEY)
    lead_id = world.lead("L-HOOK", phone="+4915123456789", first_name="Ada")
    with WebhookReceiver([503, 204]) as receiver:
        world.monkeypatch.setenv("LEADFLOW_JOURNEY_WEBHOOK_URL", receiver.url)

        # When the lead runs through the journey
        described = world.wait_for_end(world.execution_arn(enrol(lead_id)), timeout=15)

    # Then the execution succeeded after the Touch task's retry: two deliveries of one touch, one webhook-id,
    # each validly signed (Standard Webhooks, secret journeys/webhook)
    assert described["status"] == "SUCCEEDED", described.get("cause")
    first, second = receiver.received
    assert first.headers["webhook-id"] == second.headers["webhook-id"] == "L-HOOK-bridge-1-wecom-hello"
    secret = dev_secret("journeys/webhook")["secret"]
    for request in (first, second):
        assert verify_standard_webhook(request.headers, request.body, [secret], time.time(), 300)
    # And the body names the lead, the touch and its text, with the contact fields the tool needs
    body = json.loads(second.body)
    assert body["type"] == "journey.touch"
    assert body["data"]["touch"] == "wecom-hello" and body["data"]["body"] == "Hello from LeadFlow"
    assert body["data"]["contact"] == {"email": "l-hook@example.org", "phone": "+4915123456789", "first_name": "Ada"}
    # And the timeline has one send of it (then the email), recorded with the receiver's host, never the person
    sent = [e for e in history(lead_id) if e["outcome"] == "sent"]
    assert [(e["touch"], e["channel"]) for e in sent] == [("wecom-hello", "webhook"), ("hello", "email")]
    assert sent[0]["to"] == receiver.host and sent[0]["message_id"] == "L-HOOK-bridge-1-wecom-hello"
    # And `leadflow outbox --lead` lists it
    out = io.StringIO()
    lead_outbox(lead_id, out)
    assert "sent      bridge/wecom-hello" in out.getvalue()
    assert f"webhook to {receiver.host}" in out.getvalue()
    assert out.getvalue().splitlines()[-1] == "2 sent to lead L-HOOK"


def test_a_webhook_refused_for_good_is_on_the_timeline_and_the_journey_goes_on(world):
    # Given a receiver that answers 400 to every touch
    world.use_journeys(WEBHOOK_JOURNEY)
    lead_id = world.lead("L-HOOK-400")
    with WebhookReceiver([400]) as receiver:
        world.monkeypatch.setenv("LEADFLOW_JOURNEY_WEBHOOK_URL", receiver.url)
        described = world.wait_for_end(world.execution_arn(enrol(lead_id)), timeout=15)

    # Then it was tried once (a 400 is not retried), recorded as failed, and the next touch still went out
    assert described["status"] == "SUCCEEDED", described.get("cause")
    assert len(receiver.received) == 1
    outcomes = [(e["outcome"], e.get("touch"), e.get("reason")) for e in history(lead_id)]
    assert outcomes == [("failed", "wecom-hello", "refused:HTTP 400"), ("sent", "hello", None)]
    assert get_lead(lead_id)["journey"]["status"] == "completed"
