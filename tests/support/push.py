"""CRM push for tests: the template's router stream mapping and push queues in moto, delivered like Lambda.

`PushRig.settle()` alternates stream delivery to the router and SQS delivery to each push function until
every push queue is empty (delayed retries included), so a test sees what a deployed stack converges to.
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass, field
from typing import Any

import boto3

from leadflow import queues
from leadflow.config import settings
from leadflow.crm.config import crm_config
from leadflow.services import push
from leadflow.store.models import LEAD_SK, HistoryItem, LeadItem, lead_pk
from leadflow_local.sqs_delivery import SqsDelivery
from leadflow_local.stream_delivery import StreamDelivery
from leadflow_local.template import create_queues, load_template, stream_mappings

FUNCTIONS = {"hubspot": "HubSpotPushFunction", "salesforce": "SalesforcePushFunction", "webhook": "WebhookPushFunction"}
QUEUES = {"hubspot": "HubSpotPush", "salesforce": "SalesforcePush", "webhook": "WebhookPush"}


@dataclass
class PushRig:
    sqs: Any
    urls: dict[str, str]
    router: StreamDelivery
    deliveries: dict[str, SqsDelivery] = field(default_factory=dict)

    def queue(self, target: str) -> str:
        return self.urls[f"{QUEUES[target]}Queue"]

    def dlq(self, target: str) -> str:
        return self.urls[f"{QUEUES[target]}DeadLetterQueue"]

    def pending(self, url: str) -> int:
        names = [
            "ApproximateNumberOfMessages",
            "ApproximateNumberOfMessagesNotVisible",
            "ApproximateNumberOfMessagesDelayed",
        ]
        attributes = self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=names)["Attributes"]
        return sum(int(attributes.get(name, 0)) for name in names)

    def settle(self, timeout: float = 20.0, targets: tuple[str, ...] | None = None) -> None:
        deadline = time.monotonic() + timeout
        targets = targets or tuple(self.deliveries)
        while True:
            self.router.poll_once()
            for target in targets:
                self.deliveries[target].drain()
            if self.router_idle() and all(self.pending(self.queue(t)) == 0 for t in targets):
                self.router.poll_once()  # the write-backs' own stream records (must queue nothing)
                if self.router_idle() and all(self.pending(self.queue(t)) == 0 for t in targets):
                    return
            if time.monotonic() > deadline:
                raise AssertionError(f"pushes still pending after {timeout} s")
            time.sleep(0.05)

    def router_idle(self) -> bool:
        """No stream record waits for the router (its batching window holds records up to a second)."""
        return not any(shard.pending for shard in self.router._shards.values())

    def dead_letters(self, target: str) -> list[dict]:
        found: dict[str, dict] = {}
        for _ in range(10):
            batch = (
                self.sqs.receive_message(
                    QueueUrl=self.dlq(target), MaxNumberOfMessages=10, MessageAttributeNames=["All"]
                ).get("Messages")
                or []
            )
            if not batch:
                break
            found.update({m["MessageId"]: m for m in batch})
        for message in found.values():
            self.sqs.change_message_visibility(
                QueueUrl=self.dlq(target), ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
            )
        return [
            {**json.loads(m["Body"]), **{k: v["StringValue"] for k, v in m["MessageAttributes"].items()}}
            for m in found.values()
        ]


def push_rig(monkeypatch, *, config: dict | None = None, env: dict[str, str] | None = None) -> PushRig:
    """Call inside the `aws` fixture (moto active). `config` is the CRM configuration (LEADFLOW_CRM_CONFIG)."""
    template = load_template()
    sqs = boto3.client("sqs", region_name="us-east-1")
    urls = create_queues(sqs, template)
    for target, prefix in QUEUES.items():
        monkeypatch.setenv(push.QUEUE_ENV[target], urls[f"{prefix}Queue"])
        monkeypatch.setenv(push.DLQ_ENV[target], urls[f"{prefix}DeadLetterQueue"])
    monkeypatch.setenv("LEADFLOW_PUSH_BACKOFF_SECONDS", "0")
    monkeypatch.setenv("LEADFLOW_HUBSPOT_RATE_LIMIT_WAIT", "0")
    monkeypatch.setenv("LEADFLOW_SALESFORCE_LIMIT_WAIT", "0")
    monkeypatch.setenv("LEADFLOW_CRM_CONFIG", json.dumps(config or {}))
    for name, value in (env or {}).items():
        monkeypatch.setenv(name, value)
    settings.cache_clear()
    crm_config.cache_clear()
    queues.reset()
    push.reset()
    [mapping] = [m for m in stream_mappings(template) if m.function_id == "CrmPushRouterFunction"]
    mapping = dataclasses.replace(mapping, batching_window=0)  # the template's 1 s window only slows tests
    dynamodb = boto3.client("dynamodb", region_name="us-east-1")
    arn = dynamodb.describe_table(TableName=settings().table_name)["Table"]["LatestStreamArn"]
    router = StreamDelivery(
        mapping,
        streams=boto3.client("dynamodbstreams", region_name="us-east-1"),
        stream_arn=arn,
        sqs=sqs,
        on_failure_url=urls["CrmPushRouterFailureQueue"],
        sleep=lambda seconds: None,
    )
    rig = PushRig(sqs, urls, router)
    for target, function in FUNCTIONS.items():
        rig.deliveries[target] = SqsDelivery.from_template(sqs, function, urls, template=template, retry_delay=0)
    return rig


def qualify(lead_id: str, stage: str = "mql", **changes: Any) -> int:
    """Set the lead's stage (what scoring does) and any other fields; returns the new version."""
    item = LeadItem.get(lead_pk(lead_id), LEAD_SK, consistent_read=True)
    item.lifecycle_stage = stage
    for name, value in changes.items():
        setattr(item, name, value)
    item.save()
    return int(item.version)


def lead_item(lead_id: str) -> LeadItem:
    return LeadItem.get(lead_pk(lead_id), LEAD_SK, consistent_read=True)


def push_history(lead_id: str) -> list[dict]:
    entries = HistoryItem.query(lead_pk(lead_id), HistoryItem.sk.startswith("HIST#"))
    return [e.detail.as_dict() for e in entries if e.kind == "push"]
