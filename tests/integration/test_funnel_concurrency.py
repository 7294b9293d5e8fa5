"""Funnel counters stay exact when stream batches are processed at once and records are delivered again.

Against embedded AWS (moto's server over HTTP, like test_concurrency.py), so the counter transactions of
different threads really interleave. Each thread plays one Lambda instance: it takes batches and counts
their records one by one, as the JourneyRouterFunction does; every batch is delivered twice, by two
instances at the same time (a retried batch racing its first delivery), and shards overlap.
"""

from __future__ import annotations

import random
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord

from leadflow.config import settings
from leadflow.services import funnel
from tests.integration.test_concurrency import server_aws  # noqa: F401 - the fixture
from tests.support.api import Api
from tests.support.funnel import Traffic, stream_records

INSTANCES = 8
BATCH = 5


def _count(batch: list[dict]) -> int:
    counted = 0
    for raw in batch:
        record = DynamoDBRecord(raw)
        counted += funnel.count_stage_change(record.event_id, record.dynamodb.new_image, record.dynamodb.old_image)
    return counted


@pytest.mark.slow
def test_concurrent_and_redelivered_batches_count_every_record_once(server_aws):  # noqa: F811
    # Given traffic sent by the test (its own count of every stage entry) and the stream's records
    traffic = Traffic(Api(), leads=20, seed=11).run()
    records = stream_records(settings().table_name, endpoint_url=server_aws[0].meta.endpoint_url)
    batches = [records[i : i + BATCH] for i in range(0, len(records), BATCH)]
    deliveries = batches + batches  # every batch twice
    random.Random(3).shuffle(deliveries)

    # When 8 instances process them at the same time
    with ThreadPoolExecutor(INSTANCES) as pool:
        counted = sum(pool.map(_count, deliveries))

    # Then every change was counted exactly once (the second delivery of each record found its marker)
    first = (traffic.today - timedelta(days=1)).date().isoformat()
    last = (traffic.today + timedelta(days=5)).date().isoformat()
    report = funnel.funnel_report("utm_campaign", "last", first, last)
    expected = traffic.expected("last.utm_campaign", first, last)
    got = {row["group"]: Counter({s: n for s, n in row["counts"].items() if n}) for row in report["rows"]}
    assert got == {group: +counts for group, counts in expected.items()}
    assert counted == traffic.changes
    assert sum(report["totals"]["counts"].values()) == len(traffic.entries)
