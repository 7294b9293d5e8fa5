"""Scoring is exact under concurrency: events and captures of one lead at once never lose or double points.

Against embedded AWS (moto's server over HTTP, like test_concurrency.py), so the handlers' DynamoDB calls
really interleave between threads. The model is the shipped default with one uncapped, undecayed behaviour
rule (3 points per email click), so the expected behaviour score is simply 3 × the events accepted.
"""

from __future__ import annotations

import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
import yaml

from leadflow.config import settings
from leadflow.scoring_model import DEFAULT_MODEL_FILE
from tests.integration.test_concurrency import server_aws  # noqa: F401 - the fixture
from tests.support.api import Api

THREADS = 10
EVENTS_PER_THREAD = 5  # 50 events
MERGES = 5  # and 5 form submissions of the same person (each rescoring the lead) at the same time
POINTS = 3


@pytest.fixture
def flat_model(tmp_path, monkeypatch):
    doc = yaml.safe_load(DEFAULT_MODEL_FILE.read_text())
    doc["behaviour"] = {"rules": [{"id": "click", "event": "email_click", "points": POINTS}]}
    path = tmp_path / "flat.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True))
    monkeypatch.setenv("LEADFLOW_SCORING_MODEL_FILE", str(path))
    settings.cache_clear()
    yield
    monkeypatch.delenv("LEADFLOW_SCORING_MODEL_FILE")
    settings.cache_clear()


def _until_accepted(send) -> dict:
    """A Standard Webhooks sender retries a 503 (contention, Retry-After) after a pause; a 2xx is final.
    (15 writers on one item on a loaded 2-core machine: a request may lose its retries and answer 503.)"""
    deadline = time.monotonic() + 120
    while True:
        reply = send()
        if reply.status != 503:
            assert reply.status in (200, 202), reply.body
            return reply.json
        assert time.monotonic() < deadline, "still 503 after two minutes of retries"
        time.sleep(random.uniform(0.2, 1.0))  # noqa: S311 - jitter, not crypto


@pytest.mark.slow
def test_50_concurrent_events_and_captures_of_one_lead_count_every_point_once(server_aws, flat_model):  # noqa: F811
    client, table = server_aws
    api = Api()
    lead_id = api.post_form("website", {"email": "race@hot.io", "job_title": "CTO"}).json["lead_id"]
    barrier = threading.Barrier(THREADS + MERGES)
    base = datetime.now(UTC) - timedelta(minutes=1)

    def send_events(thread: int) -> list[dict]:
        barrier.wait()
        results = []
        for n in range(EVENTS_PER_THREAD):
            at = (base + timedelta(milliseconds=thread * 100 + n)).isoformat()
            body = {"type": "email_click", "lead_id": lead_id, "occurred_at": at}
            results += _until_accepted(lambda b=body, i=f"msg-{thread}-{n}": api.post_events(b, i))["results"]
        return results

    def capture(n: int) -> list[dict]:
        barrier.wait()
        _until_accepted(lambda: api.post_form("website", {"email": "race@hot.io", "message": f"again {n}"}))
        return []

    # When 10 threads send 50 events for the lead while 5 threads submit its form again, all at once
    with ThreadPoolExecutor(THREADS + MERGES) as pool:
        futures = [pool.submit(send_events, t) for t in range(THREADS)]
        futures += [pool.submit(capture, n) for n in range(MERGES)]
        results = [r for f in futures for r in f.result()]

    # Then every event was accepted once, and the behaviour score is exactly the sum of their points
    assert [r["status"] for r in results] == ["accepted"] * (THREADS * EVENTS_PER_THREAD)
    lead = api.request("GET", f"/v1/leads/{lead_id}").json
    assert lead["score"]["behaviour"] == POINTS * THREADS * EVENTS_PER_THREAD
    assert lead["touches"]["count"] == 1 + MERGES  # no capture was lost either
    events = client.query(
        TableName=table,
        KeyConditionExpression="pk = :pk AND begins_with(sk, :e)",
        ExpressionAttributeValues={":pk": {"S": f"LEAD#{lead_id}"}, ":e": {"S": "EVENT#"}},
        ConsistentRead=True,
    )["Items"]
    assert len(events) == THREADS * EVENTS_PER_THREAD

    # And 5 redeliveries of one of those deliveries change nothing
    body = {"type": "email_click", "lead_id": lead_id, "occurred_at": base.isoformat()}
    again = [api.post_events(body, "msg-0-0").json["results"][0]["status"] for _ in range(5)]
    assert again == ["accepted"] * 5
    assert api.request("GET", f"/v1/leads/{lead_id}").json["score"]["behaviour"] == POINTS * 50
