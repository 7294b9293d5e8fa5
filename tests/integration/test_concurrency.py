"""Race-freedom: duplicates submitted at the same moment never make two leads for one person.

Runs against embedded AWS (moto's server over HTTP), so the handlers' DynamoDB calls really interleave
between threads, as concurrent Lambda invocations' calls do against DynamoDB. The race runs twice: with the
project's transaction adapter (leadflow_local.moto_server.install), and once, smaller, with moto's own
TransactWriteItems, so the adapter is checked against an implementation it did not write. Both keep the
server's one-request-at-a-time lock: DynamoDB makes each request atomic, and moto's own transaction code (a
copy of the table, restored on failure) is only atomic when no other request runs inside it.
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


@pytest.fixture
def unpatched_server_aws(monkeypatch):
    """Embedded AWS whose DynamoDB runs moto's own TransactWriteItems (the project's adapter removed)."""
    from moto.dynamodb.models import DynamoDBBackend

    with EmbeddedAws() as aws:  # installs the adapter if nothing has yet; undone just below for this test
        patched = DynamoDBBackend.transact_write_items
        monkeypatch.setattr(DynamoDBBackend, "transact_write_items", patched.__wrapped__)
        assert DynamoDBBackend.transact_write_items.__module__ == "moto.dynamodb.models"
        assert not hasattr(DynamoDBBackend.transact_write_items, "__wrapped__")
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
    _race(client, table, THREADS, EMAILS)


@pytest.mark.slow
def test_the_same_race_against_motos_own_transactions_makes_exactly_one_lead_per_person(unpatched_server_aws):
    # Given DynamoDB transactions as moto implements them (not the project's adapter)
    client, table = unpatched_server_aws
    # When 6 threads submit the same 6 people at the same moment / Then the same outcome as above
    _race(client, table, 6, EMAILS[:6])


def _race(client, table: str, threads: int, emails: list[str]) -> None:
    api = Api()
    barrier = threading.Barrier(threads)

    def submit_all(thread: int) -> list[tuple[str, int, str]]:
        order = emails[:]
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

    # When `threads` threads submit the same people at the same moment
    with ThreadPoolExecutor(threads) as pool:
        results = [r for batch in pool.map(submit_all, range(threads)) for r in batch]

    # Then every submission was accepted and answered with the one lead of its person
    assert all(status in (200, 202) for _, status, _ in results), {s for _, s, _ in results}
    lead_of = {}
    for email, _, lead_id in results:
        lead_of.setdefault(email, set()).add(lead_id)
    assert all(len(ids) == 1 for ids in lead_of.values()), "a person got two lead ids"
    # And the table holds exactly one lead and one email identity per person, and every submission as a touch
    leads = _count(client, table, "lead")
    assert len(leads) == len(emails)
    assert len(_count(client, table, "identity")) == len(emails)
    assert sum(int(lead["touch_count"]["N"]) for lead in leads) == threads * len(emails)
    assert len(_count(client, table, "touch")) == threads * len(emails)
