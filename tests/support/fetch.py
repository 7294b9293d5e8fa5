"""The lead fetch queue for tests: queues created from template.yaml in moto, delivered like Lambda does."""

from __future__ import annotations

from dataclasses import dataclass

import boto3

from leadflow import queues
from leadflow.config import settings
from leadflow_local.sqs_delivery import SqsDelivery
from leadflow_local.template import create_queues, load_template


@dataclass
class FetchQueues:
    sqs: object
    urls: dict[str, str]
    delivery: SqsDelivery

    @property
    def queue_url(self) -> str:
        return self.urls["LeadFetchQueue"]

    @property
    def dlq_url(self) -> str:
        return self.urls["LeadFetchDeadLetterQueue"]

    def drain(self, max_rounds: int = 50) -> int:
        return self.delivery.drain(max_rounds)

    def messages(self, url: str) -> list[dict]:
        """Every message visible on a queue (made visible again at once, so this only looks)."""
        found: dict[str, dict] = {}
        for _ in range(10):
            answer = self.sqs.receive_message(
                QueueUrl=url, MaxNumberOfMessages=10, AttributeNames=["All"], MessageAttributeNames=["All"]
            )
            batch = answer.get("Messages") or []
            if not batch:
                break
            for message in batch:
                found[message["MessageId"]] = message
        for message in found.values():
            self.sqs.change_message_visibility(
                QueueUrl=url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
            )
        return list(found.values())

    def count(self, url: str) -> int:
        attributes = self.sqs.get_queue_attributes(
            QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
        )["Attributes"]
        return int(attributes["ApproximateNumberOfMessages"]) + int(attributes["ApproximateNumberOfMessagesNotVisible"])


def fetch_queues(monkeypatch) -> FetchQueues:
    """Call inside the `aws` fixture (moto active): the template's queues and the fetch function's delivery."""
    sqs = boto3.client("sqs", region_name="us-east-1")
    urls = create_queues(sqs, load_template())
    monkeypatch.setenv("LEADFLOW_FETCH_QUEUE_URL", urls["LeadFetchQueue"])
    monkeypatch.setenv("LEADFLOW_FETCH_DLQ_URL", urls["LeadFetchDeadLetterQueue"])
    monkeypatch.setenv("LEADFLOW_FETCH_BACKOFF_SECONDS", "0")
    settings.cache_clear()
    queues.reset()
    delivery = SqsDelivery.from_template(sqs, "FetchLeadsFunction", urls, retry_delay=0)
    return FetchQueues(sqs, urls, delivery)
