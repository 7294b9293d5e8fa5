"""Journey channels: the SES v2 request (configuration set, List-Unsubscribe) and the Standard Webhooks POST
(signed by the code base's one outbound signer, checked here by the inbound verifier, against a local receiver)."""

from __future__ import annotations

import base64
import json
import time

import pytest

from leadflow import channels
from leadflow.config import settings
from leadflow.crm.webhook import sign
from leadflow.sources.base import verify_standard_webhook
from tests.support.aws import SECRETS_FILE
from tests.support.signing import dev_secret
from tests.support.webhook_receiver import WebhookReceiver


class _Recorder:
    def __init__(self) -> None:
        self.calls: list[dict] = []

    def send_email(self, **request):
        self.calls.append(request)
        return {"MessageId": "m-1"}


def test_an_email_carries_the_configuration_set_and_one_click_unsubscribe(monkeypatch):
    # Given an SES v2 client that records its requests
    recorder = _Recorder()
    monkeypatch.setattr(channels, "_client", lambda service: recorder)

    # When a nurture email is sent
    message_id = channels.send_email(
        to="ann@example.org",
        sender="nurture@example.com",
        subject="Hello",
        body="Hi",
        configuration_set="leadflow-nurture",
        unsubscribe_url="https://example.com/u",
    )

    # Then SES gets the configuration set (bounce/complaint events) and RFC 8058 one-click unsubscribe headers
    (request,) = recorder.calls
    assert message_id == "m-1"
    assert request["ConfigurationSetName"] == "leadflow-nurture"
    assert request["Destination"] == {"ToAddresses": ["ann@example.org"]}
    assert request["Content"]["Simple"]["Headers"] == [
        {"Name": "List-Unsubscribe", "Value": "<https://example.com/u>"},
        {"Name": "List-Unsubscribe-Post", "Value": "List-Unsubscribe=One-Click"},
    ]


def test_webhook_signature_matches_the_standard_webhooks_test_vector():
    # Given the specification's example secret, message id, timestamp and body
    key = base64.b64decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
    # When the code base's outbound signer (journey touches and CRM pushes alike) signs them
    signature = sign([key], "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, b'{"test": 2432232314}')
    # Then the signature is the specification's
    assert signature == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


@pytest.fixture
def dev_secrets(monkeypatch):
    monkeypatch.setenv("LEADFLOW_SECRETS_FILE", str(SECRETS_FILE))
    settings.cache_clear()
    yield
    settings.cache_clear()


EVENT = {"type": "journey.touch", "timestamp": "2026-03-02T10:00:00Z", "data": {"touch_id": "L1-default-1-welcome"}}


def test_a_webhook_touch_is_a_signed_post_the_receiver_can_verify(dev_secrets):
    # Given a receiver that answers 204
    with WebhookReceiver([204]) as receiver:
        # When a touch is sent to it
        message_id = channels.send_webhook(url=receiver.url, message_id="L1-default-1-welcome", event=EVENT)

    # Then it got one JSON POST whose Standard Webhooks signature verifies with the journeys/webhook secret
    (request,) = receiver.received
    assert message_id == "L1-default-1-welcome"
    assert request.headers["content-type"] == "application/json"
    assert json.loads(request.body) == EVENT
    secret = dev_secret("journeys/webhook")["secret"]
    assert verify_standard_webhook(request.headers, request.body, [secret], time.time(), 300) == message_id


def test_every_key_signs_while_the_secret_rotates(dev_secrets, monkeypatch, tmp_path):
    # Given the journeys/webhook secret holding a new and an old key (rotation)
    secrets = json.loads(SECRETS_FILE.read_text())
    new, old = "whsec_" + base64.b64encode(b"n" * 32).decode(), "whsec_" + base64.b64encode(b"o" * 32).decode()
    secrets["journeys/webhook"] = {"secret": [new, old]}
    (tmp_path / "secrets.json").write_text(json.dumps(secrets))
    monkeypatch.setenv("LEADFLOW_SECRETS_FILE", str(tmp_path / "secrets.json"))
    settings.cache_clear()

    with WebhookReceiver([200]) as receiver:
        channels.send_webhook(url=receiver.url, message_id="m-rotate", event=EVENT)

    # Then a receiver that knows only one of them (not yet updated, or already) verifies the touch
    (request,) = receiver.received
    for secret in (new, old):
        assert verify_standard_webhook(request.headers, request.body, [secret], time.time(), 300) == "m-rotate"


@pytest.mark.parametrize(
    ("status", "error"),
    [(503, channels.ChannelUnavailable), (429, channels.ChannelUnavailable), (400, channels.ChannelRefused),
     (302, channels.ChannelRefused)],
)  # fmt: skip
def test_a_webhook_answer_that_is_not_2xx_says_whether_to_retry(dev_secrets, status, error):
    # Given a receiver that answers `status` (a redirect is never followed)
    # When a touch is sent, Then it fails as retryable (5xx, 429) or refused for good (other 4xx, 3xx)
    with WebhookReceiver([status]) as receiver, pytest.raises(error):
        channels.send_webhook(url=receiver.url, message_id="m-1", event=EVENT)
    assert len(receiver.received) == 1


def test_a_receiver_that_does_not_answer_in_time_is_retryable(dev_secrets):
    # Given a receiver that takes 3 s to answer
    with WebhookReceiver([204], delay=3.0) as receiver:
        started = time.monotonic()
        # When a touch is sent with a 0.3 s timeout
        with pytest.raises(channels.ChannelUnavailable):
            channels.send_webhook(url=receiver.url, message_id="m-slow", event=EVENT, timeout=0.3)
        # Then the sender gives up at its timeout, not the receiver's pace
        assert time.monotonic() - started < 2.5  # the receiver answers at 3 s
