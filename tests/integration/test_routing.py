"""Routing against embedded AWS (moto): a qualified lead gets its owner (on the lead, in the timeline, in the CRM
with the owner's HubSpot id) before it is pushed; its SLA check is an EventBridge Scheduler one-time schedule;
an unanswered lead is reassigned to another owner (the timeline says why), an accepted one is left alone, and
after the last reassignment the lead is recycled to nurture."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import boto3
import pytest

from leadflow import schedules
from leadflow.services import routing
from leadflow_local.sqs_delivery import SqsDelivery
from tests.support.push import push_rig

RULES = """
owners:
  - {id: ann, name: Ann Lee, crm: {hubspot: "9001", salesforce: 005ANN}}
  - {id: bob, name: Bob Ray, crm: {hubspot: "9002"}}
  - {id: cid, name: Cid Moe, crm: {hubspot: "9003"}}
  - {id: sdr, name: SDR queue, kind: queue, crm: {hubspot: "9100"}}
teams:
  - {id: us_sales, name: US sales, members: [ann, bob, cid]}
rules:
  - name: us
    when: {country: [US]}
    assign: {team: us_sales}
  - name: default
    default: true
    assign: {queue: sdr}
sla:
  respond_within: {hours: 2}
  on_breach: reassign
  max_reassignments: MAX
"""
GROUP = "RoutingScheduleGroup"
SLA_ARN = "arn:aws:lambda:us-east-1:123456789012:function:RoutingSla"


@pytest.fixture
def scheduler(aws, monkeypatch, tmp_path):
    def use(max_reassignments: int = 2):
        rules = tmp_path / "rules.yaml"
        rules.write_text(RULES.replace("MAX", str(max_reassignments)), encoding="utf-8")
        monkeypatch.setenv("LEADFLOW_ROUTING_FILE", str(rules))

    use()
    client = boto3.client("scheduler", region_name="us-east-1")
    client.create_schedule_group(Name=GROUP)
    monkeypatch.setenv("LEADFLOW_ROUTING_SCHEDULE_GROUP", GROUP)
    monkeypatch.setenv("LEADFLOW_ROUTING_SLA_FUNCTION_ARN", SLA_ARN)
    monkeypatch.setenv("LEADFLOW_ROUTING_SCHEDULER_ROLE_ARN", "arn:aws:iam::123456789012:role/RoutingScheduler")
    schedules.reset()
    client.use = use
    yield client
    schedules.reset()


def capture(api, email: str, country: str = "US") -> str:
    reply = api.post_form("website", {"email": email, "company": "Initech", "country": country})
    assert reply.status == 202, reply.json
    return reply.json["lead_id"]


def qualify(api, lead_id: str) -> None:
    reply = api.request("POST", f"/v1/leads/{lead_id}/stage", json.dumps({"stage": "mql", "reason": "hot"}))
    assert reply.status == 200, reply.json


def owner_entries(api, lead_id: str) -> list[dict]:
    items = api.request("GET", f"/v1/leads/{lead_id}/timeline?limit=100").json["items"]
    return [item["detail"] for item in items if item["kind"] == "owner"]


def test_a_qualified_lead_gets_an_owner_a_timeline_entry_and_an_sla_check(api, scheduler):
    # Given a US lead an operator moved to mql
    lead_id = capture(api, "ada@initech.example.org")
    qualify(api, lead_id)
    # When the routing function takes it
    before = datetime.now(UTC)
    assert routing.route_messages([json.dumps({"leads": [{"lead_id": lead_id}]})]) == 1
    # Then the lead JSON names its owner, team, rule and time
    owner = api.request("GET", f"/v1/leads/{lead_id}").json["owner"]
    assert (owner["id"], owner["name"], owner["team"], owner["rule"]) == ("ann", "Ann Lee", "us_sales", "us")
    assigned = datetime.fromisoformat(owner["assigned_at"].replace("Z", "+00:00"))
    assert before - timedelta(seconds=1) <= assigned <= datetime.now(UTC)
    # And the timeline says so
    assert [(e["owner"], e["rule"], e["reason"]) for e in owner_entries(api, lead_id)] == [("ann", "us", "qualified")]
    # And its SLA check is scheduled two hours later, naming only the lead and the assignment
    schedule = scheduler.get_schedule(Name=f"sla-{lead_id}-1", GroupName=GROUP)
    due = (assigned + timedelta(hours=2)).replace(microsecond=0, tzinfo=None).isoformat()
    assert schedule["ScheduleExpression"] == f"at({due})"
    assert schedule["ActionAfterCompletion"] == "DELETE"
    assert json.loads(schedule["Target"]["Input"]) == {"lead_id": lead_id, "assignment": 1}
    assert schedule["Target"]["Arn"] == SLA_ARN
    # And routing it again (a redelivered message) changes nothing
    assert routing.route_messages([json.dumps({"leads": [{"lead_id": lead_id}]})]) == 0
    assert len(owner_entries(api, lead_id)) == 1


def test_an_unanswered_lead_is_reassigned_to_another_owner_and_the_timeline_says_why(api, scheduler):
    lead_id = capture(api, "bea@initech.example.org")
    qualify(api, lead_id)
    first = routing.assign_lead(lead_id)
    # When its SLA check runs and nobody accepted it
    assert routing.check_sla(lead_id, 1) == "reassigned"
    # Then another owner has it, and the timeline names the owner who let it lapse
    owner = api.request("GET", f"/v1/leads/{lead_id}").json["owner"]
    assert owner["id"] != first["id"] and owner["previous"] == [first["id"]]
    latest = owner_entries(api, lead_id)[0]
    assert latest["owner"] == owner["id"] and latest["previous_owner"] == first["id"]
    assert latest["reason"] == f"reassigned: no response from {first['id']} within 2 hours"
    # And the next check is scheduled; the first one, fired again, finds it superseded
    assert scheduler.get_schedule(Name=f"sla-{lead_id}-2", GroupName=GROUP)
    assert routing.check_sla(lead_id, 1) == "superseded"


def test_an_accepted_lead_or_one_the_crm_moved_on_is_left_alone(api, scheduler):
    accepted, moved = capture(api, "cy@initech.example.org"), capture(api, "di@initech.example.org")
    for lead_id in (accepted, moved):
        qualify(api, lead_id)
        routing.assign_lead(lead_id)
    # Given the owner accepted one (leadflow leads accept) and the CRM moved the other to sql
    reply = api.request("POST", f"/v1/leads/{accepted}/accept")
    assert reply.status == 200 and reply.json["owner"]["accepted_at"]
    stage = api.request("POST", f"/v1/leads/{moved}/stage", json.dumps({"stage": "sql", "reason": "CRM: SQL"}))
    assert stage.status == 200
    # When their SLA checks run
    # Then nothing changes: the same owner, no reassignment
    for lead_id in (accepted, moved):
        owner_before = api.request("GET", f"/v1/leads/{lead_id}").json["owner"]["id"]
        assert routing.check_sla(lead_id, 1) == "accepted"
        assert api.request("GET", f"/v1/leads/{lead_id}").json["owner"]["id"] == owner_before
    assert any(e.get("accepted") for e in owner_entries(api, accepted))


def test_accepting_a_lead_without_owner_is_refused(api, scheduler):
    lead_id = capture(api, "eli@initech.example.org")
    reply = api.request("POST", f"/v1/leads/{lead_id}/accept")
    assert reply.status == 409 and "no owner" in reply.json["detail"]


def test_after_the_last_reassignment_the_lead_is_recycled_to_nurture(api, scheduler):
    scheduler.use(max_reassignments=1)
    lead_id = capture(api, "fay@initech.example.org")
    qualify(api, lead_id)
    routing.assign_lead(lead_id)
    assert routing.check_sla(lead_id, 1) == "reassigned"
    # When the second owner does not answer either
    assert routing.check_sla(lead_id, 2) == "recycled"
    # Then the lead is recycled, and the stage change says why
    lead = api.request("GET", f"/v1/leads/{lead_id}").json
    assert lead["lifecycle_stage"] == "recycled"
    items = api.request("GET", f"/v1/leads/{lead_id}/timeline?limit=100").json["items"]
    stage = next(i["detail"] for i in items if i["kind"] == "stage")
    assert stage["to"] == "recycled" and "after 1 reassignments" in stage["reason"]


def test_the_push_router_routes_an_unowned_mql_first_and_pushes_it_with_its_owner(api, scheduler, monkeypatch):
    # Given the CRM push rig with the routing queue, and the routing function draining it
    from leadflow_local.local_crm import LocalCrm

    crm = LocalCrm(port=0).start()
    monkeypatch.setenv("LEADFLOW_HUBSPOT_API_URL", crm.url)
    try:
        rig = push_rig(monkeypatch)
        monkeypatch.setenv("LEADFLOW_ROUTING_QUEUE_URL", rig.urls["RoutingQueue"])
        route = SqsDelivery.from_template(rig.sqs, "RouteLeadsFunction", rig.urls, retry_delay=0)
        lead_id = capture(api, "gus@initech.example.org")
        qualify(api, lead_id)
        # When the stream is delivered: the router routes, the owner comes back on the stream, then pushes
        rig.router.poll_once()
        assert rig.pending(rig.queue("hubspot")) == 0  # not pushed without its owner
        assert route.drain() == 1
        rig.settle()
        # Then the contact is in HubSpot once, with the owner's HubSpot owner id
        contact = crm.contact("gus@initech.example.org")
        assert contact is not None and contact["properties"]["hubspot_owner_id"] == "9001"
        upserts = [r for r in crm.requests() if r["path"].endswith("/batch/upsert")]
        assert len(upserts) == 1
    finally:
        crm.stop()


def test_the_crm_mappings_carry_the_owners_id_in_each_crm():
    from leadflow.crm.config import map_lead, parse

    config = parse({"targets": {"salesforce": {"enabled": True}}})
    owner = {"id": "bob", "name": "Bob Ray", "crm": {"hubspot": "9002"}}
    lead = {"lead_id": "x", "email": "a@b.co", "lifecycle_stage": "mql", "owner": owner}
    assert map_lead(lead, config.targets["hubspot"], first_push=True)["hubspot_owner_id"] == "9002"
    # An owner without a Salesforce user id leaves OwnerId out: Salesforce keeps its own assignment
    assert "OwnerId" not in map_lead(lead, config.targets["salesforce"], first_push=True)
    owner["crm"]["salesforce"] = "005BOB"
    assert map_lead(lead, config.targets["salesforce"], first_push=True)["OwnerId"] == "005BOB"


def test_the_routing_functions_call_only_what_the_template_grants_them(api, scheduler, monkeypatch):
    import botocore.client

    from leadflow_local.apigw import LambdaContext, load_function
    from leadflow_local.template import load_template
    from tests.integration.test_grants_cover_calls import Recorder, _assert_granted

    scheduler.use(max_reassignments=1)
    template = load_template()
    recorder = Recorder()
    original = botocore.client.BaseClient._make_api_call

    def recording(client, operation_name, api_params):
        recorder.record(client.meta.service_model.service_name, operation_name, api_params)
        return original(client, operation_name, api_params)

    monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", recording)
    route, _ = load_function("functions/route_leads/")
    sla, _ = load_function("functions/check_routing_sla/")
    lead_id = capture(api, "hal@initech.example.org")
    qualify(api, lead_id)
    # When the routing function assigns the lead from its queue
    record = {"messageId": "m1", "body": json.dumps({"leads": [{"lead_id": lead_id}]}), "eventSource": "aws:sqs"}
    with recorder.calls() as routed:
        assert route.handler({"Records": [record]}, LambdaContext("route_leads")) == {"batchItemFailures": []}
    # And the SLA function reassigns it, then recycles it
    with recorder.calls() as checked:
        for n, outcome in ((1, "reassigned"), (2, "recycled")):
            assert sla.handler({"lead_id": lead_id, "assignment": n}, LambdaContext("RoutingSla")) == {
                "outcome": outcome
            }
    # Then every DynamoDB action each called is granted to it
    _assert_granted(template, "RouteLeadsFunction", routed)
    _assert_granted(template, "RoutingSlaFunction", checked)


def test_when_nobody_is_available_the_lead_says_so_and_is_not_held_back(api, scheduler, tmp_path, monkeypatch):
    rules = tmp_path / "away.yaml"
    rules.write_text(
        "owners:\n  - {id: ann, name: Ann, away: true}\n"
        "rules:\n  - name: default\n    default: true\n    assign: {owner: ann}\n",
        encoding="utf-8",
    )
    monkeypatch.setenv("LEADFLOW_ROUTING_FILE", str(rules))
    lead_id = capture(api, "ivy@initech.example.org")
    qualify(api, lead_id)
    assert routing.assign_lead(lead_id) is None
    lead = api.request("GET", f"/v1/leads/{lead_id}").json
    assert "owner" not in lead  # no owner in the lead JSON
    from leadflow.domain.ownership import needs_owner
    from leadflow.store import leads as lead_store

    assert not needs_owner(lead_store.get_lead(lead_id))  # so the push router pushes it
    [entry] = owner_entries(api, lead_id)
    assert entry["reason"] == "nobody available: default rule, but owner ann is away"
