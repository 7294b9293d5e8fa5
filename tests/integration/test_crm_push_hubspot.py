"""Qualified leads reach HubSpot over real HTTP (the local HubSpot-compatible CRM), exactly once per version.

The router runs on the leads table's stream with the template's event source mapping (filter, partial
failures); each target's push function drains its queue like Lambda. Retries are re-queued with backoff
(0 s base here, so tests are fast; a 429 without Retry-After waits 1 s).
"""

from __future__ import annotations

import pytest

from leadflow import cli
from leadflow_local.local_crm import LocalCrm
from tests.support.push import lead_item, push_history, push_rig, qualify

pytestmark = pytest.mark.slow


@pytest.fixture
def crm(monkeypatch):
    server = LocalCrm(port=0).start()
    monkeypatch.setenv("LEADFLOW_HUBSPOT_API_URL", server.url)
    yield server
    server.stop()


@pytest.fixture
def rig(aws, crm, monkeypatch):
    return push_rig(monkeypatch)


def capture(api, email: str, **fields) -> str:
    reply = api.post_form("website", {"email": email, "first_name": "Ada", **fields})
    assert reply.status in (200, 202), reply.json
    return reply.json["lead_id"]


def upserts(crm) -> list[dict]:
    return [r for r in crm.requests() if r["path"].endswith("/batch/upsert")]


def writes_per_version(crm) -> dict[str, int]:
    counts: dict[str, int] = {}
    for request in upserts(crm):
        if request["status"] in (200, 207):
            for item in request["body"]["inputs"]:
                counts[item["objectWriteTraceId"]] = counts.get(item["objectWriteTraceId"], 0) + 1
    return counts


def test_a_qualified_lead_arrives_with_mapped_fields_and_owner_and_its_id_is_written_back(api, crm, rig):
    # Given a captured lead that scoring made an MQL, routed to an owner
    lead_id = capture(api, "Ada.Buyer@Example.com", company="Initech", job_title="CTO")
    version = qualify(lead_id, owner={"id": "4711", "name": "Sam", "team": "emea", "rule": "r1"})
    # When the stream and the HubSpot queue are delivered
    rig.settle()
    # Then the contact exists with the mapped properties and the owner
    contact = crm.contact("ada.buyer@example.com")
    assert contact is not None
    props = contact["properties"]
    assert props["firstname"] == "Ada" and props["company"] == "Initech" and props["jobtitle"] == "CTO"
    assert props["lifecyclestage"] == "marketingqualifiedlead"
    assert props["hubspot_owner_id"] == "4711"
    assert props["leadflow_id"] == lead_id
    # And the lead carries the CRM id and the version pushed, visible in the lead JSON
    item = lead_item(lead_id)
    assert item.crm["hubspot"]["id"] == contact["id"]
    assert int(item.crm["hubspot"]["version"]) == version
    assert api.request("GET", f"/v1/leads/{lead_id}").json["crm"]["hubspot"]["id"] == contact["id"]
    # And the write-back did not push again: one write, and a "pushed" timeline entry
    assert writes_per_version(crm) == {f"{lead_id}#{version}": 1}
    assert [h["outcome"] for h in push_history(lead_id)] == ["pushed"]


def test_a_lead_that_is_not_qualified_is_not_pushed(api, crm, rig):
    # Given a captured lead still at stage "lead"
    capture(api, "cold@example.com")
    # When everything is delivered / Then HubSpot got nothing
    rig.settle()
    assert upserts(crm) == []


def test_a_change_of_a_mapped_field_pushes_the_new_version_and_an_unmapped_one_does_not(api, crm, rig):
    lead_id = capture(api, "change@example.com")
    qualify(lead_id)
    rig.settle()
    # When an unmapped field changes (a journey state), nothing is pushed
    qualify(lead_id, journey={"name": "nurture", "status": "running"})
    rig.settle()
    assert len(upserts(crm)) == 1
    # When the owner changes, the new version is pushed with the new owner
    version = qualify(lead_id, owner={"id": "99", "name": "Kim"})
    rig.settle()
    assert crm.contact("change@example.com")["properties"]["hubspot_owner_id"] == "99"
    assert writes_per_version(crm)[f"{lead_id}#{version}"] == 1
    assert len(upserts(crm)) == 2


def test_a_redelivered_message_never_writes_the_same_version_twice(api, crm, rig):
    lead_id = capture(api, "twice@example.com")
    version = qualify(lead_id)
    rig.settle()
    # When the same push message arrives again (SQS at-least-once, or an operator replay)
    from leadflow import queues

    queues.send_batch(
        rig.queue("hubspot"), [({"target": "hubspot", "leads": [{"lead_id": lead_id, "version": version}]}, {})]
    )
    rig.settle()
    # Then HubSpot saw one write of that version
    assert writes_per_version(crm) == {f"{lead_id}#{version}": 1}


def test_a_429_storm_and_a_5xx_outage_are_ridden_out_with_every_lead_delivered_once(api, crm, rig):
    # Given twelve qualified leads and a CRM that answers every 2nd call 429 and fails the next 3 calls with 503
    lead_ids = [capture(api, f"storm{i}@example.com") for i in range(12)]
    versions = {lead_id: qualify(lead_id) for lead_id in lead_ids}
    crm.set_faults(status_429_every=2, fail_next=3)
    # When everything is delivered
    rig.settle(timeout=60)
    # Then every lead is in HubSpot, each version written exactly once, nothing dead-lettered
    assert all(crm.contact(f"storm{i}@example.com") for i in range(12))
    assert writes_per_version(crm) == {f"{lead_id}#{v}": 1 for lead_id, v in versions.items()}
    statuses = [r["status"] for r in upserts(crm)]
    assert 429 in statuses and 503 in statuses
    assert rig.dead_letters("hubspot") == []
    outcomes = [h["outcome"] for h in push_history(lead_ids[0])]
    assert outcomes[-1] == "pushed" and "retry" in outcomes


def test_an_invalid_record_is_dead_lettered_while_its_batch_neighbours_are_delivered_then_replayed(
    api, crm, rig, capsys
):
    # Given three MQLs in one batch, one of whose email HubSpot refuses (set directly: capture normalises)
    good = [capture(api, f"good{i}@example.com") for i in range(2)]
    bad = capture(api, "bad@example.com")
    for lead_id in good:
        qualify(lead_id)
    qualify(bad, email="bad@@example")
    # When delivered
    rig.settle()
    # Then the neighbours are in HubSpot and the bad one is in the DLQ with the reason, tried once
    assert crm.contact("good0@example.com") and crm.contact("good1@example.com")
    [dead] = rig.dead_letters("hubspot")
    assert dead["lead_id"] == bad and "INVALID_EMAIL" in dead["failure_reason"]
    assert "bad@@example" not in dead["failure_reason"]
    assert [h["outcome"] for h in push_history(bad)] == ["dead_letter"]
    # And `leadflow dlq list --target hubspot` shows it without PII
    assert cli.main(["dlq", "list", "--target", "hubspot", "--dlq-url", rig.dlq("hubspot")]) == 0
    listed = capsys.readouterr().out
    assert bad in listed and "INVALID_EMAIL" in listed and "@" not in listed.replace("INVALID_EMAIL", "")

    # When the data is fixed and the operator replays the lead (an email change is pushed by the router
    # as well: whichever comes first writes the version, the other finds it done)
    item = lead_item(bad)
    item.email = "fixed@example.com"
    item.save()
    assert cli.main(["dlq", "replay", "--target", "hubspot", "--lead", bad,
                     "--dlq-url", rig.dlq("hubspot"), "--queue-url", rig.queue("hubspot")]) == 0  # fmt: skip
    rig.settle()
    # Then it is delivered, once for its current version, and the DLQ is empty
    assert crm.contact("fixed@example.com") is not None
    assert rig.dead_letters("hubspot") == []
    assert writes_per_version(crm)[f"{bad}#{int(lead_item(bad).version)}"] == 1
