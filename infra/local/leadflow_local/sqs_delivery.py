"""SQS → Lambda delivery off AWS: what Lambda's SQS event source mapping does, for tests and `leadflow up`.

Messages are received with their attributes (ApproximateReceiveCount included) and handed to the real
handler as the event Lambda builds; the records the handler did not report in `batchItemFailures` are
deleted, the failed ones are made visible again after `retry_delay` seconds (tests use 0, `leadflow up`
scales the function's own backoff by its time scale; the handler's ChangeMessageVisibility is replaced by
this delay locally). Batch size and batching window come from the function's SQS event in template.yaml.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable
from typing import Any

from leadflow_local.apigw import LambdaContext, load_function
from leadflow_local.template import function_properties, load_template, sqs_event_sources

Handler = Callable[[dict, Any], dict]


def lambda_record(message: dict, queue_arn: str, region: str = "us-east-1") -> dict:
    """One received SQS message as the record Lambda puts in an SQS event."""
    attributes = {
        name: str(value)
        for name, value in (message.get("Attributes") or {}).items()
        if name
        in (
            "ApproximateReceiveCount",
            "SentTimestamp",
            "SenderId",
            "ApproximateFirstReceiveTimestamp",
            "MessageGroupId",
            "MessageDeduplicationId",
            "SequenceNumber",
        )
    }
    attributes.setdefault("ApproximateReceiveCount", "1")
    message_attributes = {
        name: {
            "stringValue": value.get("StringValue"),
            "binaryValue": value.get("BinaryValue"),
            "stringListValues": [],
            "binaryListValues": [],
            "dataType": value.get("DataType", "String"),
        }
        for name, value in (message.get("MessageAttributes") or {}).items()
    }
    body = message.get("Body", "")
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": body,
        "attributes": attributes,
        "messageAttributes": message_attributes,
        "md5OfBody": message.get("MD5OfBody") or hashlib.md5(body.encode()).hexdigest(),  # noqa: S324 - SQS's own
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": region,
    }


class SqsDelivery:
    """Deliver one queue's messages to one handler with an event source mapping's semantics."""

    def __init__(
        self,
        client: Any,
        queue_url: str,
        handler: Handler,
        *,
        batch_size: int = 10,
        batching_window: float = 0.0,
        retry_delay: float = 0.0,
        visibility_timeout: int = 30,
        function_name: str = "function",
        report_failures: bool = True,
    ) -> None:
        self.client = client
        self.queue_url = queue_url
        self.handler = handler
        self.batch_size = max(1, min(int(batch_size), 10))  # ReceiveMessage returns at most 10
        self.batching_window = batching_window
        self.retry_delay = retry_delay
        self.visibility_timeout = visibility_timeout
        self.function_name = function_name
        self.report_failures = report_failures
        self.queue_arn = client.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @classmethod
    def from_template(
        cls,
        client: Any,
        function_logical_id: str,
        queue_urls: dict[str, str],
        *,
        handler: Handler | None = None,
        template: dict | None = None,
        retry_delay: float = 0.0,
    ) -> SqsDelivery:
        """The delivery the template declares for a function (its SQS event, its code)."""
        template = template or load_template()
        for logical_id, queue_logical_id, event in sqs_event_sources(template):
            if logical_id != function_logical_id:
                continue
            if handler is None:
                code_uri = str(function_properties(template, logical_id).get("CodeUri", ""))
                module, attribute = load_function(code_uri)
                handler = getattr(module, attribute)
            return cls(
                client,
                queue_urls[queue_logical_id],
                handler,
                batch_size=int(event.get("BatchSize", 10)),
                batching_window=float(event.get("MaximumBatchingWindowInSeconds", 0)),
                retry_delay=retry_delay,
                function_name=function_logical_id,
                report_failures="ReportBatchItemFailures" in (event.get("FunctionResponseTypes") or []),
            )
        raise LookupError(f"{function_logical_id} has no SQS event in the template")

    # ------------------------------------------------------------------------------------------------
    def deliver_once(self) -> int:
        """Receive one batch and invoke the handler once; returns how many records were delivered."""
        answer = self.client.receive_message(
            QueueUrl=self.queue_url,
            MaxNumberOfMessages=self.batch_size,
            VisibilityTimeout=self.visibility_timeout,
            WaitTimeSeconds=0,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        )
        messages = answer.get("Messages") or []
        if not messages:
            return 0
        records = [lambda_record(message, self.queue_arn) for message in messages]
        try:
            result = self.handler({"Records": records}, LambdaContext(self.function_name, timeout_seconds=30.0))
            failed_ids = (
                {item["itemIdentifier"] for item in (result or {}).get("batchItemFailures", [])}
                if self.report_failures
                else set()
            )
        except Exception:  # the whole invocation failed: every record comes back
            failed_ids = {record["messageId"] for record in records}
        for record in records:
            if record["messageId"] in failed_ids:
                self.client.change_message_visibility(
                    QueueUrl=self.queue_url,
                    ReceiptHandle=record["receiptHandle"],
                    VisibilityTimeout=max(0, round(self.retry_delay)),
                )
            else:
                self.client.delete_message(QueueUrl=self.queue_url, ReceiptHandle=record["receiptHandle"])
        return len(records)

    def drain(self, max_rounds: int = 50) -> int:
        """Deliver until the queue is empty or after `max_rounds` invocations; returns records delivered."""
        delivered = 0
        for _ in range(max_rounds):
            count = self.deliver_once()
            if not count:
                break
            delivered += count
        return delivered

    # background poller (leadflow up) -----------------------------------------------------------------
    def start(self, idle_sleep: float = 0.5) -> SqsDelivery:
        def loop() -> None:
            while not self._stop.is_set():
                try:
                    delivered = self.deliver_once()
                except Exception:  # embedded AWS stopping, or a transient error: poll again
                    delivered = 0
                if not delivered:
                    self._stop.wait(max(idle_sleep, self.batching_window))

        self._thread = threading.Thread(target=loop, name=f"sqs-{self.function_name}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=5)


def wait_until(predicate: Callable[[], bool], timeout: float = 5.0, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()
