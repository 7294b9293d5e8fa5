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


def test_the_outbox_without_a_lead_lists_webhook_sends_with_the_emails_and_sms(world):
    # Given two leads through the webhook-then-email journey, and a third whose webhook touch was refused
    from moto.moto_api._internal.responses import MotoAPIResponse

    from leadflow_local.outbox import list_outbox

    world.use_journeys(WEBHOOK_JOURNEY)
    with WebhookReceiver([204]) as receiver:
        world.monkeypatch.setenv("LEADFLOW_JOURNEY_WEBHOOK_URL", receiver.url)
        for lead_id in ("L-OUT-1", "L-OUT-2"):
            world.lead(lead_id, phone="+4915123456789")
            assert world.wait_for_end(world.execution_arn(enrol(lead_id)), timeout=15)["status"] == "SUCCEEDED"
    with WebhookReceiver([400]) as refusing:
        world.monkeypatch.setenv("LEADFLOW_JOURNEY_WEBHOOK_URL", refusing.url)
        world.lead("L-OUT-REFUSED")
        assert world.wait_for_end(world.execution_arn(enrol("L-OUT-REFUSED")), timeout=15)["status"] == "SUCCEEDED"

    # When the operator lists the whole outbox (`leadflow outbox`: embedded AWS's model data, then the table)
    _, _, data = MotoAPIResponse().model_data(None, "", {})
    out = io.StringIO()
    assert list_outbox(json.loads(data), out) == 0

    # Then each webhook sent is a line with its webhook-id, the URL's host, its time and journey/touch, in
    # the order sent; the refused one is not a send; the emails are listed too, every recipient masked
    lines = out.getvalue().splitlines()
    hooks = [line.split() for line in lines if line.startswith("webhook ")]
    assert hooks == [
        ["webhook", f"{lead_id}-bridge-1-wecom-hello", "to", receiver.host, "at", history(lead_id)[0]["at"], touch]
        for lead_id, touch in (("L-OUT-1", "bridge/wecom-hello"), ("L-OUT-2", "bridge/wecom-hello"))
    ]
    assert sum(1 for line in lines if line.startswith("email ") and "***@example.org" in line) == 3
    assert lines[-1] == "3 email(s), 0 SMS in embedded AWS; 2 webhook(s) sent"
    assert "l-out-1@" not in out.getvalue() and "+4915123456789" not in out.getvalue()
