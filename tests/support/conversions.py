"""Conversions out for tests: the template's CrmPushRouterFunction stream mapping (its real filters), the
four conversion queues and functions in moto, delivered like Lambda, and the local platform server (real
HTTP) as every ad platform. `ConversionRig.settle()` runs router and drains until every queue is empty."""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3

from leadflow import queues
from leadflow.config import settings
from leadflow.services import conversions
from leadflow.store.models import HistoryItem, lead_pk
from leadflow_local.local_platforms import LocalPlatforms
from leadflow_local.runtime import CONVERSION_QUEUES
from leadflow_local.sqs_delivery import SqsDelivery
from leadflow_local.stream_delivery import StreamDelivery
from leadflow_local.template import create_queues, load_template, stream_mappings

CONFIG = """
platforms:
  google-ads:
    enabled: true
    max_attempts: 4
    stages:
      sql: {conversion_action_id: "555"}
      customer: {conversion_action_id: "556", value: 1200, currency: EUR}
  meta:
    enabled: true
    max_attempts: 4
    crm_name: LeadFlowTest
    stages:
      lead: {event_name: Lead}
      sql: {event_name: SalesQualifiedLead}
  baidu:
    enabled: true
    max_attempts: 4
    stages:
      lead: {new_type: 3}
      sql: {new_type: 27}
  tencent:
    enabled: true
    max_attempts: 4
    stages:
      lead: {action_type: RESERVATION}
      customer: {action_type: PURCHASE, value: 99.5}
"""


@dataclass
class ConversionRig:
    sqs: Any
    urls: dict[str, str]
    router: StreamDelivery
    platforms: LocalPlatforms
    deliveries: dict[str, SqsDelivery] = field(default_factory=dict)

    @property
    def ads(self):
        return self.platforms.ads

    def queue(self, platform: str) -> str:
        return self.urls[f"{CONVERSION_QUEUES[platform]}Queue"]

    def dlq(self, platform: str) -> str:
        return self.urls[f"{CONVERSION_QUEUES[platform]}DeadLetterQueue"]

    def pending(self, url: str) -> int:
        names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible",
                 "ApproximateNumberOfMessagesDelayed"]  # fmt: skip
        attributes = self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=names)["Attributes"]
        return sum(int(attributes.get(name, 0)) for name in names)

    def settle(self, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            self.router.poll_once()
            for delivery in self.deliveries.values():
                delivery.drain()
            idle = not any(shard.pending for shard in self.router._shards.values())
            if idle and all(self.pending(self.queue(p)) == 0 for p in CONVERSION_QUEUES):
                self.router.poll_once()
                if all(self.pending(self.queue(p)) == 0 for p in CONVERSION_QUEUES):
                    return
            if time.monotonic() > deadline:
                raise AssertionError(f"conversions still pending after {timeout} s")
            time.sleep(0.05)

    def dead_letters(self, platform: str) -> list[dict]:
        found: dict[str, dict] = {}
        for _ in range(5):
            batch = self.sqs.receive_message(QueueUrl=self.dlq(platform), MaxNumberOfMessages=10,
                                             MessageAttributeNames=["All"]).get("Messages") or []  # fmt: skip
            if not batch:
                break
            found.update({m["MessageId"]: m for m in batch})
        for message in found.values():
            self.sqs.change_message_visibility(QueueUrl=self.dlq(platform), ReceiptHandle=message["ReceiptHandle"],
                                               VisibilityTimeout=0)  # fmt: skip
        return [{**json.loads(m["Body"]), **{k: v["StringValue"] for k, v in m["MessageAttributes"].items()}}
                for m in found.values()]  # fmt: skip


def conversion_rig(monkeypatch, tmp_path: Path, config: str = CONFIG) -> ConversionRig:
    """Call inside the `aws` fixture (moto active); stop `rig.platforms` at the end."""
    template = load_template()
    sqs = boto3.client("sqs", region_name="us-east-1")
    urls = create_queues(sqs, template)
    for platform, prefix in CONVERSION_QUEUES.items():
        monkeypatch.setenv(conversions.QUEUE_ENV[platform], urls[f"{prefix}Queue"])
        monkeypatch.setenv(conversions.DLQ_ENV[platform], urls[f"{prefix}DeadLetterQueue"])
    path = tmp_path / "conversions.yaml"
    path.write_text(config)
    monkeypatch.setenv("LEADFLOW_CONVERSIONS_FILE", str(path))
    monkeypatch.setenv("LEADFLOW_PUSH_BACKOFF_SECONDS", "0")
    platforms = LocalPlatforms("127.0.0.1", 0).start()
    for name in ("LEADFLOW_GOOGLE_ADS_API_URL", "LEADFLOW_GOOGLE_OAUTH_URL", "LEADFLOW_META_GRAPH_URL",
                 "LEADFLOW_BAIDU_OCPC_URL", "LEADFLOW_TENCENT_ADS_URL"):  # fmt: skip
        monkeypatch.setenv(name, platforms.url)
    settings.cache_clear()
    queues.reset()
    conversions.reset()
    [mapping] = [m for m in stream_mappings(template) if m.function_id == "CrmPushRouterFunction"]
    mapping = dataclasses.replace(mapping, batching_window=0)
    dynamodb = boto3.client("dynamodb", region_name="us-east-1")
    arn = dynamodb.describe_table(TableName=settings().table_name)["Table"]["LatestStreamArn"]
    router = StreamDelivery(mapping, streams=boto3.client("dynamodbstreams", region_name="us-east-1"),
                            stream_arn=arn, sqs=sqs, on_failure_url=urls["CrmPushRouterFailureQueue"],
                            sleep=lambda seconds: None)  # fmt: skip
    rig = ConversionRig(sqs, urls, router, platforms)
    for platform, prefix in CONVERSION_QUEUES.items():
        rig.deliveries[platform] = SqsDelivery.from_template(sqs, f"{prefix}Function", urls, template=template,
                                                             retry_delay=0)  # fmt: skip
    return rig


def conversion_history(lead_id: str) -> list[dict]:
    entries = HistoryItem.query(lead_pk(lead_id), HistoryItem.sk.startswith("HIST#"))
    return [e.detail.as_dict() for e in entries if e.kind == "conversion"]
