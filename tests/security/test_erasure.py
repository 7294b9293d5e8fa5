"""Erasure is final and retry-safe: a fault between any two of its writes is finished by a retry, nothing of
the person is left under any key pattern, and no capture, redelivery or replay brings the person back."""

from __future__ import annotations

import json
import time

import botocore.client
import pytest
from botocore.exceptions import ClientError

from leadflow.config import settings
from tests.support.api import Api
from tests.support.providers import encode
from tests.support.signing import dev_secret, standard_webhook_headers

EMAIL, PHONE = "patrizia.erasedotti@privacy.dev", "+14155550142"
FIRST, LAST = "Patrizia", "Erasedotti"
GOOGLE_LEAD = "GA-ERASE-0001"
BYSTANDER = "bystander@keep.dev"
PII = (EMAIL, PHONE, FIRST, LAST)
WRITES = {"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"}


# --------------------------------------------------------------------------------------------- helpers
def _google_ads(lead_id: str, email: str) -> bytes:
    return encode(
        {
            "lead_id": lead_id,
            "user_column_data": [
                {"column_name": "User Email", "string_value": email, "column_id": "EMAIL"},
                {"column_name": "Full Name", "string_value": f"{FIRST} {LAST}", "column_id": "FULL_NAME"},
            ],
            "api_version": "1.0",
            "form_id": 40000000002,
            "google_key": dev_secret("webhooks/google-ads")["google_key"],
            "is_test": False,
        }
    )


def given_a_person_known_everywhere(api: Api) -> tuple[str, str]:
    """Lead A (the person: form, generic and Google Ads touches; email, phone and external id keys) and
    lead B (a bystander whose submission carried A's phone: a conflict twin on each lead)."""
    a = api.post_form("website", {"email": EMAIL, "phone": PHONE, "first_name": FIRST, "last_name": LAST}).json
    assert a["status"] == "created"
    generic = api.post_generic({"email": EMAIL, "job_title": "CFO", "last_name": LAST}, "msg-erase-generic")
    assert generic.json["leads"][0] == {"lead_id": a["lead_id"], "status": "merged"}
    google = api.request(
        "POST", "/v1/webhooks/google-ads", _google_ads(GOOGLE_LEAD, EMAIL), {"content-type": "application/json"}
    )
    assert google.json["leads"][0] == {"lead_id": a["lead_id"], "status": "merged"}
    b = api.post_form("website", {"email": BYSTANDER, "first_name": "Bea"}).json["lead_id"]
    conflict = api.post_form("website", {"email": BYSTANDER, "phone": PHONE})
    assert conflict.json == {"lead_id": b, "status": "merged"}
    assert api.request("GET", f"/v1/leads/{b}").json["identity_conflicts"][0]["lead_id"] == a["lead_id"]
    return a["lead_id"], b


def _table() -> str:
    return settings().table_name


def _all_items(client) -> list[dict]:
    # test-only inspection of the whole table (no request path ever scans)
    items, start = [], {}
    while True:
        page = client.scan(TableName=_table(), ConsistentRead=True, **start)
        items += page["Items"]
        if "LastEvaluatedKey" not in page:
            return items
        start = {"ExclusiveStartKey": page["LastEvaluatedKey"]}


def _partition(client, pk: str) -> list[dict]:
    return client.query(
        TableName=_table(),
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": pk}},
        ConsistentRead=True,
    )["Items"]


def _get(client, pk: str, sk: str) -> dict | None:
    return client.get_item(TableName=_table(), Key={"pk": {"S": pk}, "sk": {"S": sk}}, ConsistentRead=True).get("Item")


def _delivery_keys(client, lead_id: str) -> list[str]:
    return [i["delivery_key"]["S"] for i in _partition(client, f"LEAD#{lead_id}") if "delivery_key" in i]


def _wipe(client) -> None:
    for item in _all_items(client):
        client.delete_item(TableName=_table(), Key={"pk": item["pk"], "sk": item["sk"]})


def assert_nothing_of_the_person_is_left(client, api: Api, lead_id: str, bystander: str, deliveries: list[str]):
    # the lead's partition (lead, touches, conflicts)
    assert _partition(client, f"LEAD#{lead_id}") == []
    # every identity key pattern
    for key in (f"EMAIL#{EMAIL}", f"PHONE#{PHONE}", f"EXT#google-ads#{GOOGLE_LEAD}"):
        assert _get(client, key, "IDENTITY") is None, key
    # delivery records: only PII-free tombstones, until the delivery's TTL
    for key in deliveries:
        tombstone = _get(client, key, "DELIVERY")
        assert tombstone is not None and tombstone["entity"]["S"] == "tombstone", key
        assert set(tombstone) == {"pk", "sk", "entity", "created_at", "expires_at"}
        assert int(tombstone["expires_at"]["N"]) > time.time()
    # the conflict twin on the bystander's lead
    assert [i["sk"]["S"] for i in _partition(client, f"LEAD#{bystander}") if i["sk"]["S"].startswith("CONFLICT#")] == []
    kept = api.request("GET", f"/v1/leads/{bystander}").json
    assert kept["email"] == BYSTANDER and "identity_conflicts" not in kept
    # and no item anywhere carries the person's email, phone, name or lead id
    dump = json.dumps(_all_items(client))
    for value in (*PII, lead_id):
        assert value not in dump, value
    # while operators see the erasure as done
    assert api.request("GET", f"/v1/leads/{lead_id}").status == 404
    assert api.get_lead_by_email(EMAIL).status == 404
    assert api.request("DELETE", f"/v1/leads/{lead_id}").status == 404


class FailingAfter:
    """Lets `allowed` single-item writes reach DynamoDB, then fails every write (a BatchWriteItem is sent one
    request at a time, so the fault can fall between any two of its deletes)."""

    def __init__(self, allowed: int | None) -> None:
        self.allowed = allowed
        self.done = 0
        self.original = botocore.client.BaseClient._make_api_call

    def __call__(self, client, operation: str, params: dict):
        if client.meta.service_model.service_name != "dynamodb" or operation not in WRITES:
            return self.original(client, operation, params)
        if operation != "BatchWriteItem":
            self._step(operation)
            return self.original(client, operation, params)
        for table, requests in params["RequestItems"].items():
            for request in requests:
                self._step(operation)
                self.original(client, operation, {"RequestItems": {table: [request]}})
        return {"UnprocessedItems": {}}

    def _step(self, operation: str) -> None:
        if self.allowed is not None and self.done >= self.allowed:
            raise ClientError({"Error": {"Code": "InternalServerError", "Message": "injected fault"}}, operation)
        self.done += 1


def erase_with(monkeypatch, api: Api, lead_id: str, fault: FailingAfter):
    with monkeypatch.context() as patched:
        # a function (not the instance) so that it binds to each client as the method it replaces
        patched.setattr(botocore.client.BaseClient, "_make_api_call", lambda c, op, params: fault(c, op, params))
        return api.request("DELETE", f"/v1/leads/{lead_id}")


# --------------------------------------------------------------------------------------------- tests
@pytest.mark.slow
def test_erasure_failing_between_any_two_writes_is_finished_by_a_retry(api, aws, monkeypatch):
    # Given how many writes one erasure of a person known everywhere makes
    lead_id, bystander = given_a_person_known_everywhere(api)
    counting = FailingAfter(None)
    assert erase_with(monkeypatch, api, lead_id, counting).status == 204
    writes = counting.done
    assert writes >= 10  # at least one per item: 3 deliveries, 3 identity items, twin, 3 touches, conflict, lead
    _wipe(aws)

    for allowed in range(writes):
        lead_id, bystander = given_a_person_known_everywhere(api)
        deliveries = _delivery_keys(aws, lead_id)
        assert len(deliveries) == 3  # form, generic, Google Ads
        # When DynamoDB fails after `allowed` of the erasure's writes
        failed = erase_with(monkeypatch, api, lead_id, FailingAfter(allowed))
        # Then the operator is told to retry, and a started erasure already hides the lead
        assert failed.status == 503, allowed
        if allowed:
            assert api.request("GET", f"/v1/leads/{lead_id}").status == 404
            assert api.get_lead_by_email(EMAIL).status == 404
        # When the operator retries
        retried = api.request("DELETE", f"/v1/leads/{lead_id}")
        # Then the erasure completes, and nothing of the person is left under any key
        assert retried.status == 204, allowed
        assert_nothing_of_the_person_is_left(aws, api, lead_id, bystander, deliveries)
        _wipe(aws)


def test_a_capture_during_a_stuck_erasure_makes_a_new_lead_that_the_retry_leaves_alone(api, aws, monkeypatch):
    # Given an erasure that stopped right after marking the lead
    old = api.post_form("website", {"email": EMAIL, "phone": PHONE, "first_name": FIRST}).json["lead_id"]
    assert erase_with(monkeypatch, api, old, FailingAfter(1)).status == 503
    # When the person submits again
    reply = api.post_generic({"email": EMAIL, "phone": PHONE}, "msg-after-stuck-erasure")
    # Then a new lead holds the person's keys (the erasing lead is never merged into)
    new = reply.json["leads"][0]
    assert new["status"] == "created" and new["lead_id"] != old
    # And finishing the old erasure leaves the new lead whole
    assert api.request("DELETE", f"/v1/leads/{old}").status == 204
    lead = api.get_lead_by_email(EMAIL).json
    assert lead["lead_id"] == new["lead_id"] and lead["phone"] == PHONE and lead["touches"]["count"] == 1
    assert _get(aws, f"PHONE#{PHONE}", "IDENTITY")["lead_id"]["S"] == new["lead_id"]
    assert _partition(aws, f"LEAD#{old}") == []


def test_a_dangling_identity_item_is_repaired_and_the_submission_captured(api, aws):
    # Given an identity item naming a lead that no longer exists (left by an erasure that failed half-way)
    gone = api.post_form("website", {"email": EMAIL}).json["lead_id"]
    aws.delete_item(TableName=_table(), Key={"pk": {"S": f"LEAD#{gone}"}, "sk": {"S": "LEAD"}})
    # When the person submits again
    reply = api.post_form("website", {"email": EMAIL, "first_name": FIRST})
    # Then it is captured as a new lead (not retried into a 503), and the identity item names it
    assert reply.status == 202
    assert reply.json["status"] == "created" and reply.json["lead_id"] != gone
    assert api.get_lead_by_email(EMAIL).json["lead_id"] == reply.json["lead_id"]
    assert _get(aws, f"EMAIL#{EMAIL}", "IDENTITY")["lead_id"]["S"] == reply.json["lead_id"]


def test_a_dangling_key_next_to_a_live_one_is_claimed_not_recorded_as_a_conflict(api, aws):
    # Given a live lead holding an email, and a phone whose identity item names a lead that no longer exists
    live = api.post_form("website", {"email": BYSTANDER}).json["lead_id"]
    gone = api.post_form("website", {"phone": PHONE}).json["lead_id"]
    aws.delete_item(TableName=_table(), Key={"pk": {"S": f"LEAD#{gone}"}, "sk": {"S": "LEAD"}})
    # When a submission carries both
    reply = api.post_generic({"email": BYSTANDER, "phone": PHONE}, "msg-dangling-phone")
    # Then it merges into the live lead, which now owns the phone: no conflict with a lead that is gone
    assert reply.status == 200 and reply.json["leads"][0] == {"lead_id": live, "status": "merged"}
    lead = api.request("GET", f"/v1/leads/{live}").json
    assert lead["phone"] == PHONE and "identity_conflicts" not in lead
    assert _get(aws, f"PHONE#{PHONE}", "IDENTITY")["lead_id"]["S"] == live


def test_a_redelivery_after_erasure_is_acknowledged_and_recreates_nothing(api, aws):
    # Given a lead captured from one signed delivery, then erased
    body = json.dumps(
        {"type": "lead.submitted", "timestamp": "2026-11-22T10:00:00Z", "data": {"email": EMAIL, "first_name": FIRST}}
    ).encode()
    headers = standard_webhook_headers(body, dev_secret("webhooks/generic"), "msg-replayed")
    lead_id = api.request("POST", "/v1/webhooks/generic", body, headers).json["leads"][0]["lead_id"]
    assert api.request("DELETE", f"/v1/leads/{lead_id}").status == 204
    # When the provider delivers the very same request again
    replay = api.request("POST", "/v1/webhooks/generic", body, headers)
    # Then it is acknowledged (so the provider stops) as erased, and nothing of the person is stored
    assert replay.status == 200
    assert replay.json == {"received": 1, "leads": [{"lead_id": None, "status": "erased"}]}
    assert api.get_lead_by_email(EMAIL).status == 404
    assert not any(v in json.dumps(_all_items(aws)) for v in (EMAIL, FIRST, lead_id))
    # And a new submission by the same person is a new lead
    again = api.post_generic({"email": EMAIL}, "msg-new-submission").json["leads"][0]
    assert again["status"] == "created" and again["lead_id"] != lead_id


def test_a_typeform_redelivery_after_erasure_recreates_nothing(api, aws):
    from tests.integration.test_provider_typeform import EMAIL as TYPEFORM_EMAIL
    from tests.integration.test_provider_typeform import delivery
    from tests.support.providers import typeform_headers

    # Given a Typeform response (no timestamp in the scheme: replayable at any time) captured, then erased
    body = encode(delivery("erase0token0000000000000000000001"))
    first = api.request("POST", "/v1/webhooks/typeform", body, typeform_headers(body))
    lead_id = first.json["leads"][0]["lead_id"]
    assert api.request("DELETE", f"/v1/leads/{lead_id}").status == 204
    # When the same signed delivery is sent again
    replay = api.request("POST", "/v1/webhooks/typeform", body, typeform_headers(body))
    # Then it is acknowledged as erased and the person is not re-created
    assert replay.status == 200 and replay.json["leads"] == [{"lead_id": None, "status": "erased"}]
    assert api.get_lead_by_email(TYPEFORM_EMAIL).status == 404
    assert TYPEFORM_EMAIL not in json.dumps(_all_items(aws)).lower()
    # And the person's next response (a new token) is a new lead
    body = encode(delivery("erase0token0000000000000000000002"))
    again = api.request("POST", "/v1/webhooks/typeform", body, typeform_headers(body)).json["leads"][0]
    assert again["status"] == "created" and again["lead_id"] != lead_id


# --------------------------------------------------------------------------------------------- pointers
@pytest.fixture
def graph(monkeypatch):
    from tests.support.fake_graph import FakeGraph

    fake = FakeGraph(access_token=dev_secret("webhooks/meta")["access_token"])
    monkeypatch.setenv("LEADFLOW_META_GRAPH_URL", fake.url)
    yield fake
    fake.stop()


def test_a_dlq_replay_or_redelivery_of_an_erased_pointer_fetches_and_recreates_nothing(api, aws, graph, monkeypatch):
    from leadflow import cli
    from tests.integration.test_provider_meta import graph_lead, leadgen_delivery, meta_headers
    from tests.support.fetch import fetch_queues

    fetch = fetch_queues(monkeypatch)

    def deliver(*leadgen_ids: str) -> None:
        body = leadgen_delivery(*leadgen_ids)
        assert api.request("POST", "/v1/webhooks/meta", body, meta_headers(body)).status == 200
        fetch.drain()

    # Given a Meta lead fetched and captured, whose duplicate notification's fetch failed into the DLQ
    graph.add_lead("920000000000001", graph_lead(EMAIL), script=[200, 403])
    deliver("920000000000001")
    lead_id = api.get_lead_by_email(EMAIL).json["lead_id"]
    deliver("920000000000001")
    assert fetch.count(fetch.dlq_url) == 1
    # and the lead is erased
    assert api.request("DELETE", f"/v1/leads/{lead_id}").status == 204
    fetched = graph.fetches_of("920000000000001")

    # When the platform recovers and the operator replays the DLQ, and Meta notifies once more
    graph.script["920000000000001"] = [200]
    assert cli.main(["dlq", "replay", "--all", "--dlq-url", fetch.dlq_url, "--queue-url", fetch.queue_url]) == 0
    fetch.drain()
    deliver("920000000000001")
    # Then the erased lead is not fetched again and not re-created, and nothing waits in a queue
    assert graph.fetches_of("920000000000001") == fetched
    assert api.get_lead_by_email(EMAIL).status == 404
    assert fetch.count(fetch.dlq_url) == 0 and fetch.count(fetch.queue_url) == 0
    assert EMAIL not in json.dumps(_all_items(aws))

    # And a new lead form submission by the same person is a new lead
    graph.add_lead("920000000000002", graph_lead(EMAIL))
    deliver("920000000000002")
    again = api.get_lead_by_email(EMAIL)
    assert again.status == 200 and again.json["lead_id"] != lead_id


def test_conflict_twins_written_before_they_carried_the_other_lead_are_erased_too(api, aws):
    # Given a conflict recorded in the earlier layout (one CONFLICT#<key> item per lead, no other lead id)
    lead_id, bystander = given_a_person_known_everywhere(api)
    for pk, other in ((f"LEAD#{lead_id}", bystander), (f"LEAD#{bystander}", lead_id)):
        [twin] = [i for i in _partition(aws, pk) if i["sk"]["S"].startswith("CONFLICT#")]
        aws.delete_item(TableName=_table(), Key={"pk": twin["pk"], "sk": twin["sk"]})
        aws.put_item(TableName=_table(), Item={**twin, "sk": {"S": f"CONFLICT#PHONE#{PHONE}"}})
        assert twin["other_lead_id"]["S"] == other
    # When the person's lead is erased
    assert api.request("DELETE", f"/v1/leads/{lead_id}").status == 204
    # Then the bystander's twin is gone as well, and nothing of the person is left
    assert_nothing_of_the_person_is_left(aws, api, lead_id, bystander, [])


def test_a_capture_that_read_the_lead_just_before_its_erasure_started_does_not_write_into_it(api, aws, monkeypatch):
    from leadflow.store import leads as store

    # Given a lead, and an erasure that starts (and stops after its mark) right after a capture read the lead
    old = api.post_form("website", {"email": EMAIL, "phone": PHONE}).json["lead_id"]
    read_lead = store.get_lead
    started: list[int] = []

    def read_then_erasure_starts(lead_id: str) -> dict | None:
        lead = read_lead(lead_id)
        if lead_id == old and not started:
            started.append(erase_with(monkeypatch, api, old, FailingAfter(1)).status)
        return lead

    monkeypatch.setattr(store, "get_lead", read_then_erasure_starts)
    # When that capture writes
    reply = api.post_generic({"email": EMAIL, "phone": PHONE, "first_name": FIRST}, "msg-read-before-erasure")
    reply = reply.json["leads"][0]
    # Then its transaction refused the erasing lead, and the submission became a new lead
    assert started == [503]
    assert reply["status"] == "created" and reply["lead_id"] != old
    old_touches = [i for i in _partition(aws, f"LEAD#{old}") if i["sk"]["S"].startswith("TOUCH#")]
    assert len(old_touches) == 1
    # And once the erasure is finished, the new lead holds the person, whole
    monkeypatch.setattr(store, "get_lead", read_lead)
    assert api.request("DELETE", f"/v1/leads/{old}").status == 204
    lead = api.get_lead_by_email(EMAIL).json
    assert lead["lead_id"] == reply["lead_id"] and lead["first_name"] == FIRST and lead["phone"] == PHONE
