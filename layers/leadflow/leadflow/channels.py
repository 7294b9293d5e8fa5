"""Journey channels: email through SES v2, SMS through SNS, a signed Standard Webhooks POST.

Each `send_*` returns the provider's message id. Recipients never reach logs; the caller records a masked
recipient. Clients come from the process's one botocore session (locally, embedded AWS through the
AWS_ENDPOINT_URL_* variables).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
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


def webhook_headers(secret: str, payload: bytes, message_id: str | None = None, now: float | None = None) -> dict:
    """Standard Webhooks signature headers: HMAC-SHA256 over `id.timestamp.body` with the base64 secret."""
    message_id = message_id or f"msg_{uuid.uuid4().hex}"
    timestamp = str(int(now if now is not None else time.time()))
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = hmac.new(key, f"{message_id}.{timestamp}.".encode() + payload, hashlib.sha256).digest()
    return {
        "webhook-id": message_id,
        "webhook-timestamp": timestamp,
        "webhook-signature": "v1," + base64.b64encode(signed).decode(),
        "content-type": "application/json",
    }


def webhook_body(event: dict[str, Any]) -> bytes:
    return json.dumps(event, separators=(",", ":"), sort_keys=True).encode()
