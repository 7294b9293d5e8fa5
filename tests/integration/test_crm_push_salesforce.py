"""Qualified leads reach Salesforce over real HTTP (the local Salesforce-compatible endpoint), and one CRM
failing never delays the other."""

from __future__ import annotations

import time

import pytest

from leadflow_local.local_crm import LocalCrm
from leadflow_local.local_salesforce import LocalSalesforce
from tests.support.push import lead_item, push_history, push_rig, qualify

pytestmark = pytest.mark.slow
BOTH = {"targets": {"hubspot": {"enabled": True}, "salesforce": {"enabled": True}}}


@pytest.fixture
def salesforce(monkeypatch):
    server = LocalSalesforce(port=0).start()
    monkeypatch.setenv("LEADFLOW_SALESFORCE_LOGIN_URL", server.url)
    yield server
    server.stop()


@pytest.fixture
def hubspot(monkeypatch):
    server = LocalCrm(port=0).start()
    monkeypatch.setenv("LEADFLOW_HUBSPOT_API_URL", server.url)
    yield server
    server.stop()


@pytest.fixture
def rig(aws, salesforce, hubspot, monkeypatch):
    return push_rig(monkeypatch, config=BOTH)


def capture(api, email: str, **fields) -> str:
    reply = api.post_form("website", {"email": email, "first_name": "Grace", "last_name": "Hopper", **fields})
    assert reply.status in (200, 202), reply.json
    return reply.json["lead_id"]


def writes(salesforce) -> dict[str, int]:
    """Records Salesforce wrote (answered success), per external id (the lead id)."""
    counts: dict[str, int] = {}
    for request in salesforce.requests():
        if request["path"].startswith("/services/data/") and request["status"] == 200:
            for record, result in zip(request["body"]["records"], request["results"], strict=True):
                if result["success"]:
                    counts[record["LeadFlow_Id__c"]] = counts.get(record["LeadFlow_Id__c"], 0) + 1
    return counts


def test_a_qualified_lead_arrives_as_a_salesforce_lead_with_owner_and_its_id_is_written_back(api, salesforce, rig):
    lead_id = capture(api, "grace@navy.example.org", company="US Navy")
    version = qualify(lead_id, owner={"id": "005000000000001", "name": "Kim"})
    rig.settle()
    record = salesforce.record(lead_id)
    assert record is not None
    assert record["Email"] == "grace@navy.example.org" and record["LastName"] == "Hopper"
    assert record["Company"] == "US Navy" and record["OwnerId"] == "005000000000001"
    item = lead_item(lead_id)
    assert item.crm["salesforce"]["id"] == record["Id"] and int(item.crm["salesforce"]["version"]) == version
    assert writes(salesforce) == {lead_id: 1}


def test_an_expired_session_is_refreshed_mid_run(api, salesforce, rig):
    first = capture(api, "one@acme.example.org", company="Acme")
    qualify(first)
    rig.settle()
    # When Salesforce expires every session before the next push
    salesforce.expire_tokens()
    second = capture(api, "two@acme.example.org", company="Acme")
    qualify(second)
    rig.settle()
    # Then a new token was fetched once and the lead delivered, nothing dead-lettered
    assert salesforce.record(second) is not None
    assert salesforce.tokens_issued == 2
    assert [r["status"] for r in salesforce.requests() if r["path"].startswith("/services/data/")] == [200, 401, 200]
    assert rig.dead_letters("salesforce") == []


def test_locked_rows_and_the_request_limit_are_retried_and_every_lead_delivered_once(api, salesforce, rig):
    lead_ids = [capture(api, f"lock{i}@acme.example.org", company="Acme") for i in range(4)]
    for lead_id in lead_ids:
        qualify(lead_id)
    salesforce.set_faults(limit_next=1, lock_next=2, fail_next=1)
    rig.settle()
    # Then each lead was written exactly once, after the 503, the 403 and the locked rows were retried
    assert writes(salesforce) == dict.fromkeys(lead_ids, 1)
    statuses = [r["status"] for r in salesforce.requests() if r["path"].startswith("/services/data/")]
    assert 503 in statuses and 403 in statuses
    locked = [res for r in salesforce.requests() for res in r.get("results", []) if not res["success"]]
    assert [e["statusCode"] for res in locked for e in res["errors"]] == ["UNABLE_TO_LOCK_ROW"] * 2
    assert all(salesforce.record(lead_id) for lead_id in lead_ids)
    assert rig.dead_letters("salesforce") == []


def test_a_duplicate_is_dead_lettered_with_the_reason_while_its_neighbours_are_delivered(api, salesforce, rig):
    # Given a lead Salesforce's duplicate rule will refuse (another record already holds its email)
    neighbours = [capture(api, f"n{i}@acme.example.org", company="Acme") for i in range(2)]
    dup = capture(api, "dup@acme.example.org", company="Acme")
    for lead_id in neighbours:
        qualify(lead_id)
    qualify(dup, email="n0@acme.example.org")
    rig.settle()
    assert all(salesforce.record(lead_id) for lead_id in neighbours)
    [dead] = rig.dead_letters("salesforce")
    assert dead["lead_id"] == dup and dead["failure_reason"] == "DUPLICATES_DETECTED"
    assert [h["outcome"] for h in push_history(dup) if h["target"] == "salesforce"] == ["dead_letter"]


def test_hubspot_down_and_slow_does_not_delay_salesforce(api, salesforce, hubspot, rig):
    # Given HubSpot answering slowly (1.5 s a call) and failing its next 4 calls
    hubspot.set_faults(latency_ms=1500, fail_next=4)
    lead_ids = [capture(api, f"iso{i}@acme.example.org", company="Acme") for i in range(3)]
    # And both push functions polling their own queues, as two Lambda functions do
    deliveries = [rig.deliveries["hubspot"].start(idle_sleep=0.05), rig.deliveries["salesforce"].start(idle_sleep=0.05)]
    try:
        started = time.monotonic()
        for lead_id in lead_ids:
            qualify(lead_id)
        salesforce_done = hubspot_done = None
        while time.monotonic() - started < 40 and hubspot_done is None:
            rig.router.poll_once()
            if salesforce_done is None and all(salesforce.record(lead_id) for lead_id in lead_ids):
                salesforce_done = time.monotonic() - started
            if all(hubspot.contact(f"iso{i}@acme.example.org") for i in range(3)):
                hubspot_done = time.monotonic() - started
            time.sleep(0.02)
    finally:
        for delivery in deliveries:
            delivery.stop()
    # Then Salesforce had every lead long before HubSpot's four failing 1.5 s calls were over (behind HubSpot it
    # would have taken 6 s and more; the slack is for a loaded machine)
    assert salesforce_done is not None and salesforce_done < 4.5, salesforce_done
    # And HubSpot got them all once it recovered, each version once
    assert hubspot_done is not None and hubspot_done > salesforce_done
    assert all(int(lead_item(lead_id).crm["hubspot"]["version"]) >= 1 for lead_id in lead_ids)


def test_hubspot_down_for_60_seconds_does_not_delay_salesforce_and_every_lead_reaches_both(
    api, aws, salesforce, hubspot, monkeypatch
):
    # Given both targets (HubSpot allowed enough attempts to outlast its outage) and HubSpot down for 60 s,
    # answering 503 with Retry-After: 5
    config = {"targets": {"hubspot": {"enabled": True, "max_attempts": 20}, "salesforce": {"enabled": True}}}
    rig = push_rig(monkeypatch, config=config)
    hubspot.set_faults(down_for_s=60, retry_after_s=5)
    outage_started = time.monotonic()
    deliveries = [rig.deliveries["hubspot"].start(idle_sleep=0.05), rig.deliveries["salesforce"].start(idle_sleep=0.05)]
    qualified: dict[str, float] = {}
    in_salesforce: dict[str, float] = {}
    try:
        # When a lead qualifies every 5 s throughout the outage
        while time.monotonic() - outage_started < 100:
            now = time.monotonic()
            if now - outage_started < 57 and now - max(qualified.values(), default=0) >= 5:
                lead_id = capture(api, f"steady{len(qualified)}@acme.example.org", company="Acme")
                qualify(lead_id)
                qualified[lead_id] = time.monotonic()
            rig.router.poll_once()
            for lead_id in qualified.keys() - in_salesforce.keys():
                if salesforce.record(lead_id):
                    in_salesforce[lead_id] = time.monotonic()
            if time.monotonic() - outage_started < 59:
                assert hubspot.contacts() == []  # still down
            elif len(qualified) == len(in_salesforce) and all(
                hubspot.contact(f"steady{i}@acme.example.org") for i in range(len(qualified))
            ):
                break
            time.sleep(0.02)
    finally:
        for delivery in deliveries:
            delivery.stop()
    # Then Salesforce had every lead within seconds of its qualification, outage or not
    assert len(qualified) >= 11
    delays = [in_salesforce[lead_id] - at for lead_id, at in qualified.items()]
    assert max(delays) < 3.0, delays
    # And once HubSpot was back every lead reached it, each version written once, nothing dead-lettered
    assert all(hubspot.contact(f"steady{i}@acme.example.org") for i in range(len(qualified)))
    writes: dict[str, int] = {}
    for request in hubspot.requests():
        if request["path"].endswith("/batch/upsert") and request["status"] == 200:
            for item in request["body"]["inputs"]:
                writes[item["objectWriteTraceId"]] = writes.get(item["objectWriteTraceId"], 0) + 1
    assert sorted(writes.values()) == [1] * len(qualified)
    assert 503 in {r["status"] for r in hubspot.requests()}
    assert rig.dead_letters("hubspot") == [] and rig.dead_letters("salesforce") == []
