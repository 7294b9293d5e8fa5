"""SQS access for the lead fetch queue and its dead-letter queue: the only module that talks to SQS.

The client is created lazily (capture of direct providers never loads the SQS model) and once per
process, from the shared botocore session (leadflow.aws); `reset()` drops it (tests that start a fresh moto).
"""

from __future__ import annotations

import json

from leadflow import aws
from leadflow.config import settings
from leadflow.errors import ConfigurationError, StoreUnavailable

MAX_BATCH = 10  # SendMessageBatch takes at most 10 entries


# The shared botocore session (no boto3 import, no second session); AWS_ENDPOINT_URL(_SQS) is honoured by
# botocore itself (embedded AWS under `leadflow up`).
client = aws.LazyClient("sqs")
reset = client.reset


def fetch_queue_url() -> str:
    url = settings().fetch_queue_url
    if not url:
        raise ConfigurationError("LEADFLOW_FETCH_QUEUE_URL is not set.")
    return url


def dead_letter_queue_url() -> str:
    url = settings().fetch_dlq_url
    if not url:
        raise ConfigurationError("LEADFLOW_FETCH_DLQ_URL is not set.")
    return url


def string_attributes(values: dict[str, str]) -> dict[str, dict[str, str]]:
    return {name: {"DataType": "String", "StringValue": value} for name, value in values.items() if value}


def send_batch(queue_url: str, messages: list[tuple[dict, dict[str, str]]]) -> None:
    """Send (body, string attributes) pairs, ≤10 per call; returns only when SQS holds every one of them.

    Entries SQS refuses are resent once; what still fails raises StoreUnavailable (503: the provider retries).
    """
    sqs = client()
    for start in range(0, len(messages), MAX_BATCH):
        pending = {
            str(index): {
                "Id": str(index),
                "MessageBody": json.dumps(body, separators=(",", ":")),
                "MessageAttributes": string_attributes(attributes),
            }
            for index, (body, attributes) in enumerate(messages[start : start + MAX_BATCH])
        }
        for _round in range(2):
            try:
                answer = sqs.send_message_batch(QueueUrl=queue_url, Entries=list(pending.values()))
            except Exception as exc:  # botocore ClientError / EndpointConnectionError
                raise StoreUnavailable("The delivery could not be queued; retry shortly.") from exc
            pending = {failed["Id"]: pending[failed["Id"]] for failed in answer.get("Failed", [])}
            if not pending:
                break
        if pending:
            raise StoreUnavailable("The delivery could not be queued; retry shortly.")


def send(queue_url: str, body: dict, attributes: dict[str, str]) -> None:
    client().send_message(
        QueueUrl=queue_url,
        MessageBody=json.dumps(body, separators=(",", ":")),
        MessageAttributes=string_attributes(attributes),
    )


def delay_redelivery(queue_url: str, receipt_handle: str, seconds: int) -> bool:
    """Make a received message visible again only after `seconds` (backoff); False if SQS refused."""
    try:
        client().change_message_visibility(
            QueueUrl=queue_url, ReceiptHandle=receipt_handle, VisibilityTimeout=max(0, min(seconds, 43200))
        )
    except Exception:  # the queue's own visibility timeout still brings the message back
        return False
    return True


def send_delayed(queue_url: str, body: dict, attributes: dict[str, str], delay_seconds: int) -> None:
    """One message that becomes visible after `delay_seconds` (≤ 900, SQS's maximum): a backed-off retry."""
    try:
        client().send_message(
            QueueUrl=queue_url,
            MessageBody=json.dumps(body, separators=(",", ":")),
            MessageAttributes=string_attributes(attributes),
            DelaySeconds=max(0, min(int(delay_seconds), 900)),
        )
    except Exception as exc:  # botocore ClientError / EndpointConnectionError: the batch is retried whole
        raise StoreUnavailable("The retry could not be queued; retry shortly.") from exc
