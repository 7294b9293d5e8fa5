"""Journey channels: email through SES v2, SMS through SNS, a signed Standard Webhooks POST.

Each `send_*` returns the provider's message id. Recipients never reach logs; the caller records a masked
recipient. Clients come from the process's one botocore session (locally, embedded AWS through the
AWS_ENDPOINT_URL_* variables).
"""

from __future__ import annotations

import base64
import json
import time
from functools import cache
from typing import Any

from botocore.config import Config

from leadflow import aws
from leadflow.config import settings

_CONFIG = Config(connect_timeout=2, read_timeout=5, retries={"max_attempts": 3, "mode": "standard"})


@cache
def _client(service: str) -> Any:
    return aws.create_client(service, region_name=settings().aws_region, config=_CONFIG)


def send_email(
    *, to: str, sender: str, subject: str, body: str, configuration_set: str | None, unsubscribe_url: str | None
) -> str:
    """One SES v2 email; `List-Unsubscribe` (+ one-click, RFC 8058) when an unsubscribe URL is configured."""
    content: dict[str, Any] = {"Subject": {"Data": subject}, "Body": {"Text": {"Data": body}}}
    if unsubscribe_url:
        content["Headers"] = [
            {"Name": "List-Unsubscribe", "Value": f"<{unsubscribe_url}>"},
            {"Name": "List-Unsubscribe-Post", "Value": "List-Unsubscribe=One-Click"},
        ]
    request: dict[str, Any] = {
        "FromEmailAddress": sender,
        "Destination": {"ToAddresses": [to]},
        "Content": {"Simple": content},
    }
    if configuration_set:
        request["ConfigurationSetName"] = configuration_set
    return str(_client("sesv2").send_email(**request)["MessageId"])


def send_sms(*, to: str, body: str) -> str:
    """One transactional-free (promotional) SMS through SNS."""
    response = _client("sns").publish(
        PhoneNumber=to,
        Message=body,
        MessageAttributes={"AWS.SNS.SMS.SMSType": {"DataType": "String", "StringValue": "Promotional"}},
    )
    return str(response["MessageId"])


class ChannelUnavailable(Exception):
    """The channel did not take the touch this time (timeout, 408/429/5xx): the state machine retries the
    task (Retry on this error name), and nothing was sent."""


class ChannelRefused(Exception):
    """The channel refused the touch for good (another 4xx, a redirect): nothing was sent; not retried."""

    def __init__(self, status: int) -> None:
        self.status = status
        super().__init__(f"HTTP {status}")


WEBHOOK_SECRET = "journeys/webhook"
WEBHOOK_URL_VARIABLE = "LEADFLOW_JOURNEY_WEBHOOK_URL"
WEBHOOK_TIMEOUT = 5.0  # seconds; RunJourneyFunction's Timeout (20 s) leaves room for the store writes


def webhook_url(configured: str | None) -> str:
    """The journeys' webhook endpoint: `LEADFLOW_JOURNEY_WEBHOOK_URL` if set, else the configuration's."""
    import os

    url = os.environ.get(WEBHOOK_URL_VARIABLE) or configured
    if not url:
        from leadflow.errors import ConfigurationError

        raise ConfigurationError("A webhook touch needs webhook.url (or LEADFLOW_JOURNEY_WEBHOOK_URL).")
    return url


def send_webhook(*, url: str, message_id: str, event: dict[str, Any], timeout: float = WEBHOOK_TIMEOUT) -> str:
    """One Standard Webhooks signed POST of `event`; `message_id` is the `webhook-id`, the same on every retry
    of the touch, so the receiver can drop a duplicate. Signed with every key of the `journeys/webhook` secret
    (current first, while rotating). Returns the webhook id; raises ChannelUnavailable or ChannelRefused."""
    from leadflow.crm.webhook import sign  # the one Standard Webhooks signer of outbound webhooks
    from leadflow.http import ApiError, request
    from leadflow.secrets import secret_list

    keys = [base64.b64decode(value.removeprefix("whsec_")) for value in secret_list(WEBHOOK_SECRET)]
    body = json.dumps(event, separators=(",", ":"), sort_keys=True).encode()
    timestamp = int(time.time())
    headers = {
        "Content-Type": "application/json",
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(keys, message_id, timestamp, body),
    }
    try:
        answer = request("journey-webhook", "POST", url, data=body, headers=headers, timeout=timeout)
    except ApiError as exc:
        raise ChannelUnavailable("The journey webhook did not answer.") from exc
    if answer.ok:
        return message_id
    if answer.status in (408, 425, 429) or answer.status >= 500:
        raise ChannelUnavailable(f"The journey webhook answered HTTP {answer.status}.")
    raise ChannelRefused(answer.status)
