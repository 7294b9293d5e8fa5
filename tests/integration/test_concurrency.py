"""Race-freedom: duplicates submitted at the same moment never make two leads for one person.

Runs against embedded AWS (moto's server over HTTP), so the handlers' DynamoDB calls really interleave
between threads, as concurrent Lambda invocations' calls do against DynamoDB.
"""

from __future__ import annotations

import random
import threading
from concurrent.futures import ThreadPoolExecutor

import boto3
import pytest

from leadflow_local.moto_server import EmbeddedAws
from leadflow_local.template import create_tables, load_template
from tests.support.api import Api
from tests.support.aws import configure

THREADS = 16
EMAILS = [f"racer{i:02d}@speedway.dev" for i in range(20)]


@pytest.fixture
def server_aws(monkeypatch):
    with EmbeddedAws() as aws:
        client = boto3.client("dynamodb", endpoint_url=aws.endpoint, region_name="us-east-1")
        names = create_tables(client, load_template())
        configure(monkeypatch, names["LeadsTable"], endpoint=aws.endpoint)
        yield client, names["LeadsTable"]
    configure(monkeypatch, "LeadsTable")


def _count(client, table: str, entity: str) -> list[dict]:
    # test-only inspection of the whole table (no request path ever scans)
    items, start = [], {}
    while True:
        page = client.scan(TableName=table, **start)
        items += [i for i in page["Items"] if i.get("entity", {}).get("S") == entity]
        if "LastEvaluatedKey" not in page:
            return items
        start = {"ExclusiveStartKey": page["LastEvaluatedKey"]}


@pytest.mark.slow
def test_16_threads_x_20_emails_submitting_duplicates_at_once_make_exactly_20_leads(server_aws):
    client, table = server_aws
    api = Api()
    barrier = threading.Barrier(THREADS)

    def submit_all(thread: int) -> list[tuple[str, int, str]]:
        order = EMAILS[:]
        random.Random(thread).shuffle(order)
        barrier.wait()
        results = []
        for email in order:
            # Different bodies per thread: every submission is a new touch, so dedupe is by identity.
            if thread % 2:
                reply = api.post_form("website", {"email": email.upper(), "message": f"from thread {thread}"})
                results.append((email, reply.status, (reply.json or {}).get("lead_id")))
            else:
                reply = api.post_generic({"email": email, "job_title": f"T{thread}"}, f"msg-{thread}-{email}")
                lead = (reply.json or {}).get("leads", [{}])[0]
                results.append((email, reply.status, lead.get("lead_id")))
        return results

    # When 16 threads submit the same 20 people at the same moment
    with ThreadPoolExecutor(THREADS) as pool:
        results = [r for batch in pool.map(submit_all, range(THREADS)) for r in batch]

    # Then every submission was accepted and answered with the one lead of its person
    assert all(status in (200, 202) for _, status, _ in results), {s for _, s, _ in results}
    lead_of = {}
    for email, _, lead_id in results:
        lead_of.setdefault(email, set()).add(lead_id)
    assert all(len(ids) == 1 for ids in lead_of.values()), "a person got two lead ids"
    # And the table holds exactly 20 leads, 20 email identities, and every submission as a touch
    leads = _count(client, table, "lead")
    assert len(leads) == 20
    assert len(_count(client, table, "identity")) == 20
    assert sum(int(lead["touch_count"]["N"]) for lead in leads) == THREADS * len(EMAILS)
    assert len(_count(client, table, "touch")) == THREADS * len(EMAILS)
