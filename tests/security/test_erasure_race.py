"""Erasure racing captures of the same person: the end state is the erased person, or one complete new lead,
never orphans (identity items naming no lead, touches or conflicts in a partition without its lead).

Runs against embedded AWS (moto's server over HTTP), so the handlers' DynamoDB calls really interleave
between threads, as concurrent Lambda invocations' calls do against DynamoDB.
"""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import boto3
import pytest

from leadflow_local.moto_server import EmbeddedAws
from leadflow_local.template import create_tables, load_template
from tests.support.api import Api
from tests.support.aws import configure

CAPTURERS = 8
SUBMISSIONS = 3  # per capturing thread, so captures fall before, during and after the erasure
PROVIDER_TRIES = 5
ERASE_AFTER = (0.0, 0.3, 1.5)  # seconds after the captures start: the erasure meets them early, amid, late


@pytest.fixture
def server_aws(monkeypatch):
    with EmbeddedAws() as aws:
        client = boto3.client("dynamodb", endpoint_url=aws.endpoint, region_name="us-east-1")
        names = create_tables(client, load_template())
        configure(monkeypatch, names["LeadsTable"], endpoint=aws.endpoint)
        yield client, names["LeadsTable"]
    configure(monkeypatch, "LeadsTable")


def _items(client, table: str) -> list[dict]:
    # test-only inspection of the whole table (no request path ever scans)
    items, start = [], {}
    while True:
        page = client.scan(TableName=table, ConsistentRead=True, **start)
        items += page["Items"]
        if "LastEvaluatedKey" not in page:
            return items
        start = {"ExclusiveStartKey": page["LastEvaluatedKey"]}


def _s(item: dict, name: str) -> str | None:
    return item.get(name, {}).get("S")


def assert_no_orphans(items: list[dict]) -> None:
    leads = {_s(i, "pk") for i in items if _s(i, "sk") == "LEAD"}
    for item in items:
        pk, sk, entity = _s(item, "pk"), _s(item, "sk"), _s(item, "entity")
        if pk.startswith("LEAD#") and sk != "LEAD":
            assert pk in leads, f"{entity} item in the partition of a lead that is gone"
        if entity == "identity":
            assert f"LEAD#{_s(item, 'lead_id')}" in leads, "identity item naming a lead that is gone"
        if entity == "conflict":
            assert f"LEAD#{_s(item, 'other_lead_id')}" in leads, "conflict twin naming a lead that is gone"
    assert not any("erasing" in i for i in items if _s(i, "sk") == "LEAD"), "an erasure left unfinished"


@pytest.mark.slow
@pytest.mark.parametrize("round_", range(len(ERASE_AFTER)))
def test_erasure_racing_8_captures_of_the_person_leaves_the_erased_state_or_one_complete_new_lead(server_aws, round_):
    client, table = server_aws
    api = Api()
    email, phone = f"racing{round_}@erasure.dev", f"+1415555017{round_}"
    # Given the person's lead
    old = api.post_form("website", {"email": email, "phone": phone, "first_name": "Rae"}).json["lead_id"]
    barrier = threading.Barrier(CAPTURERS + 1)

    def capture(thread: int) -> list[tuple[int, dict]]:
        barrier.wait()
        replies = []
        for n in range(SUBMISSIONS):
            for _ in range(PROVIDER_TRIES):  # a 503 (contention: nothing stored) is retried, as providers do
                reply = api.post_generic(
                    {"email": email, "phone": phone, "job_title": f"T{thread}"}, f"m-{round_}-{thread}-{n}"
                )
                if reply.status != 503:
                    break
                time.sleep(0.2)
            replies.append((reply.status, (reply.json or {}).get("leads", [{}])[0]))
        return replies

    def erase() -> int:
        barrier.wait()
        time.sleep(ERASE_AFTER[round_])
        return api.request("DELETE", f"/v1/leads/{old}").status

    # When the operator erases it while 8 threads submit the same person
    with ThreadPoolExecutor(CAPTURERS + 1) as pool:
        erasure = pool.submit(erase)
        replies = [r for batch in pool.map(capture, range(CAPTURERS)) for r in batch]
    assert erasure.result() == 204

    # Then every submission was accepted, and the erased lead is gone without a trace
    assert all(status == 200 for status, _ in replies), {status for status, _ in replies}
    items = _items(client, table)
    assert old not in json.dumps(items)
    assert_no_orphans(items)
    # and the person is held by at most one lead, which is complete: its keys, and a touch per answer it gave
    holders = [i for i in items if _s(i, "sk") == "LEAD" and _s(i, "email") == email]
    answered = {answer["lead_id"] for _, answer in replies} - {old}
    assert len(holders) <= 1 and len(answered) == len(holders)
    if holders:
        new = _s(holders[0], "lead_id")
        assert answered == {new}
        identities = {_s(i, "pk"): _s(i, "lead_id") for i in items if _s(i, "entity") == "identity"}
        assert identities == {f"EMAIL#{email}": new, f"PHONE#{phone}": new}
        touches = [i for i in items if _s(i, "pk") == f"LEAD#{new}" and _s(i, "entity") == "touch"]
        given = sum(1 for _, answer in replies if answer["lead_id"] == new)
        assert len(touches) == int(holders[0]["touch_count"]["N"]) == given
        assert api.get_lead_by_email(email).json["lead_id"] == new
    else:
        assert not any(i for i in items if _s(i, "entity") == "identity")
        assert email not in json.dumps(items) and phone not in json.dumps(items)
        assert api.get_lead_by_email(email).status == 404
