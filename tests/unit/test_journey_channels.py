"""Journey channels: the SES v2 request (configuration set, List-Unsubscribe) and Standard Webhooks signing."""

from __future__ import annotations

from leadflow import channels


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
    headers = channels.webhook_headers(
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", b'{"test": 2432232314}', "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330
    )
    # Then the headers are the specification's
    assert headers["webhook-id"] == "msg_p5jXN8AQM9LWM0D4loKWxJek"
    assert headers["webhook-timestamp"] == "1614265330"
    assert headers["webhook-signature"] == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
