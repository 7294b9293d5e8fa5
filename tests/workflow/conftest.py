"""Journeys end to end: the real ASL from template.yaml, executed by moto, tasks run by the real handlers,
DynamoDB, SES and SNS embedded, and journey time scaled (a journey day passes in a few milliseconds)."""

from __future__ import annotations

import itertools
import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from leadflow import channels
from leadflow.config import settings
from leadflow.services import journeys
from leadflow.store import models
from leadflow.store.models import LEAD_SK, LeadItem, lead_pk
from leadflow_local.journeys import SteppedClock, start_journeys
from leadflow_local.moto_server import install as install_moto_adapter
from leadflow_local.template import create_tables, load_template
from tests.support.aws import configure

MONDAY_10_UTC = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
DAYS_PER_SECOND = 40.0
SENDER = "nurture@example.com"


@dataclass
class JourneyWorld:
    sfn: object
    arn: str
    clock: SteppedClock
    tmp: Path
    monkeypatch: pytest.MonkeyPatch
    table: str = ""
    failure_queue: str = ""

    def use_journeys(self, yaml_text: str) -> None:
        path = self.tmp / "journeys.yaml"
        path.write_text(yaml_text, encoding="utf-8")
        self.monkeypatch.setenv("LEADFLOW_JOURNEYS_FILE", str(path))

    @staticmethod
    def _new_lead(lead_id: str, **fields) -> LeadItem:
        values = {
            "lead_id": lead_id,
            "email": f"{lead_id.lower()}@example.org",
            "consent": {"email": True},
            "lifecycle_stage": "lead",
            "created_at": "2026-03-02T10:00:00Z",
            "updated_at": "2026-03-02T10:00:00Z",
        }
        values.update(fields)
        return LeadItem(lead_pk(lead_id), LEAD_SK, entity="lead", **values)

    def lead(self, lead_id: str, **fields) -> str:
        self._new_lead(lead_id, **fields).save()
        return lead_id

    def leads(self, lead_ids: list[str], **fields) -> list[str]:
        """Many new leads like `lead` (version 1, as its first save gives them), 25 per BatchWriteItem."""
        with LeadItem.batch_write() as batch:
            for lead_id in lead_ids:
                batch.save(self._new_lead(lead_id, version=1, **fields))
        return lead_ids

    def update(self, lead_id: str, **fields) -> None:
        """Change the lead as another part of the system would (versioned; re-read on a concurrent write)."""
        from pynamodb.exceptions import UpdateError

        for _ in range(20):
            item = LeadItem.get(lead_pk(lead_id), LEAD_SK, consistent_read=True)
            try:
                item.update(actions=[getattr(LeadItem, k).set(v) for k, v in fields.items()])
                return
            except UpdateError:
                time.sleep(0.005)
        raise AssertionError("the lead kept changing")

    def wait_for_end(self, execution_arn: str, timeout: float = 5.0) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            described = self.sfn.describe_execution(executionArn=execution_arn)
            if described["status"] != "RUNNING" or time.monotonic() > deadline:
                return described
            time.sleep(0.01)

    def wait_for_all(self, names: list[str], timeout: float) -> dict[str, str]:
        """Wait until none of these executions runs (one listing of the running ones per look, not one
        DescribeExecution per execution), then their statuses by name."""
        pages = self.sfn.get_paginator("list_executions")
        wanted, deadline = set(names), time.monotonic() + timeout
        while time.monotonic() < deadline:
            running = {
                e["name"]
                for page in pages.paginate(stateMachineArn=self.arn, statusFilter="RUNNING")
                for e in page["executions"]
            }
            if not wanted & running:
                break
            time.sleep(0.1)
        listed = pages.paginate(stateMachineArn=self.arn)
        statuses = {e["name"]: e["status"] for page in listed for e in page["executions"]}
        return {name: statuses.get(name, "NOT_STARTED") for name in names}

    def execution_arn(self, name: str) -> str:
        return self.arn.replace(":stateMachine:", ":execution:") + ":" + name

    def states_entered(self, execution_arn: str) -> list[str]:
        events = self.sfn.get_execution_history(executionArn=execution_arn, maxResults=1000)["events"]
        return [e["stateEnteredEventDetails"]["name"] for e in events if "stateEnteredEventDetails" in e]

    def stream(self):
        """The JourneyRouterFunction's event source mapping on the leads table stream, as Lambda runs it."""
        from leadflow_local.stream_delivery import StreamDelivery
        from leadflow_local.template import stream_mappings

        ticks = itertools.count()
        (mapping,) = [m for m in stream_mappings(load_template()) if m.function_id == "JourneyRouterFunction"]
        table = boto3.client("dynamodb", region_name="us-east-1").describe_table(TableName=self.table)["Table"]
        return StreamDelivery(
            mapping,
            streams=boto3.client("dynamodbstreams", region_name="us-east-1"),
            stream_arn=table["LatestStreamArn"],
            sqs=boto3.client("sqs", region_name="us-east-1"),
            on_failure_url=self.failure_queue,
            sleep=lambda seconds: None,
            clock=lambda: time.time() + 2 * next(ticks),  # every look is past the batching window
        )

    def output(self, described: dict) -> dict:
        return json.loads(described.get("output") or "{}")


@pytest.fixture
def world(monkeypatch, tmp_path):
    install_moto_adapter()
    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_DYNAMODB", "LEADFLOW_JOURNEYS_FILE"):
        monkeypatch.delenv(name, raising=False)  # in-process moto, whatever an earlier test pointed at
    channels._client.cache_clear()  # clients made for another endpoint by an earlier test
    clock = SteppedClock(MONDAY_10_UTC)
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        template = load_template()
        names = create_tables(boto3.client("dynamodb", region_name="us-east-1"), template)
        configure(monkeypatch, names["LeadsTable"])
        boto3.client("ses", region_name="us-east-1").verify_email_identity(EmailAddress=SENDER)
        sfn = boto3.client("stepfunctions", region_name="us-east-1")
        arns = start_journeys(sfn, template, time_scale=DAYS_PER_SECOND * 86400, tables=names, clock=clock)
        monkeypatch.setenv("LEADFLOW_JOURNEY_STATE_MACHINE_ARN", arns["JourneyStateMachine"])
        journeys.set_clock(clock)
        try:
            queue = boto3.client("sqs", region_name="us-east-1").create_queue(QueueName="journey-router-failures")
            yield JourneyWorld(
                sfn, arns["JourneyStateMachine"], clock, tmp_path, monkeypatch, names["LeadsTable"], queue["QueueUrl"]
            )
        finally:
            journeys.set_clock(lambda: datetime.now(UTC))
            channels._client.cache_clear()
            settings.cache_clear()
            models.bind()
