"""POST /v1/crm/{hubspot,generic}/events: CRM outcomes move leads, reasons trigger their configured next action.

Through the real handler (API Gateway payload-2.0 events) against moto in-process, with the shipped
configuration (infra/crm_feedback/default.yaml) and journeys (infra/journeys/default.yaml).
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta

import boto3
import pytest

from leadflow.services import crm_feedback
from tests.support.signing import dev_secret, hubspot_v3_headers, standard_webhook_headers

URL = "https://crm-hooks.example.com/v1/crm/hubspot/events"
HOT = {"email": "ada@analytical-engines.io", "job_title": "CTO", "company_size": "200", "industry": "software"}


@pytest.fixture(autouse=True)
def _target_url(monkeypatch):
    monkeypatch.setenv("LEADFLOW_HUBSPOT_WEBHOOK_URL", URL)


@pytest.fixture(autouse=True)
def _real_journey_time():
    """Journey time is real time here (a local runtime started earlier in the process may have scaled it)."""
    from leadflow.services import journeys

    journeys.set_clock(lambda: datetime.now(UTC))
    yield
    journeys.set_clock(lambda: datetime.now(UTC))


def _ms(offset_minutes: float = 0) -> int:
    return int((datetime.now(UTC) + timedelta(minutes=offset_minutes)).timestamp() * 1000)


def _event(object_id, prop, value, *, event_id=1, minutes=0.0, kind="contact.propertyChange") -> dict:
    return {
        "eventId": event_id,
        "subscriptionId": 7,
        "portalId": 62515,
        "appId": 54321,
        "occurredAt": _ms(minutes),
        "subscriptionType": kind,
        "attemptNumber": 0,
        "objectId": int(object_id),
        "changeSource": "CRM",
        "propertyName": prop,
        "propertyValue": value,
    }


def _association(deal, contact, *, event_id=50, minutes=0.0) -> dict:
    return {
        "eventId": event_id,
        "portalId": 62515,
        "occurredAt": _ms(minutes),
        "subscriptionType": "deal.associationChange",
        "associationType": "DEAL_TO_CONTACT",
        "fromObjectId": int(deal),
        "toObjectId": int(contact),
        "associationRemoved": False,
    }


def post_hubspot(api, events, *, uri=URL, method="POST", timestamp_ms=None, secret=None, tamper=None):
    body = json.dumps(events).encode()
    secret = secret or dev_secret("crm/hubspot")["client_secret"]
    headers = hubspot_v3_headers(method, uri, body, secret, timestamp_ms)
    return api.request("POST", "/v1/crm/hubspot/events", tamper or body, headers)


def post_generic(api, data: dict, msg_id: str):
    body = json.dumps({"type": "crm.outcome", "timestamp": int(time.time()), "data": data}).encode()
    return api.request(
        "POST", "/v1/crm/generic/events", body, standard_webhook_headers(body, dev_secret("crm/generic"), msg_id)
    )


def _lead(api, lead_id: str) -> dict:
    reply = api.request("GET", f"/v1/leads/{lead_id}")
    assert reply.status == 200, reply.body
    return reply.json


def _timeline(api, lead_id: str, kind: str) -> list[dict]:
    items = api.request("GET", f"/v1/leads/{lead_id}/timeline?limit=100").json["items"]
    return [i for i in items if i["kind"] == kind]


def _stage(aws, lead_id: str) -> str:
    item = aws.get_item(TableName="LeadsTable", Key={"pk": {"S": f"LEAD#{lead_id}"}, "sk": {"S": "LEAD"}})["Item"]
    return item["lifecycle_stage"]["S"]


def _raw_lead(aws, lead_id: str) -> dict:
    return aws.get_item(TableName="LeadsTable", Key={"pk": {"S": f"LEAD#{lead_id}"}, "sk": {"S": "LEAD"}})["Item"]


@pytest.fixture
def pushed(api, aws):
    """A lead the push wrote back as HubSpot contact 1001 (crm.hubspot.id and its link)."""
    lead_id = api.post_form("website", HOT).json["lead_id"]
    crm_feedback.on_record_linked("hubspot", "1001", lead_id, "2026-11-29T10:00:00.000Z")
    return lead_id


# ---------------------------------------------------------------------------------------- each event kind
def test_hubspot_lifecycle_stage_sql_moves_the_lead_to_sql(api, aws, pushed):
    # When HubSpot reports the contact's lifecycle stage as sales-qualified
    reply = post_hubspot(api, [_event(1001, "lifecyclestage", "salesqualifiedlead")])
    # Then the delivery is acknowledged with the event applied to the lead, and the lead is an SQL
    assert reply.status == 200, reply.body
    assert reply.json["results"] == [{"index": 0, "status": "applied", "lead_id": pushed}]
    assert _lead(api, pushed)["lifecycle_stage"] == "sql"
    # And the timeline shows the stage move from the CRM and the CRM entry
    stages = _timeline(api, pushed, "stage")
    assert stages[0]["detail"]["to"] == "sql" and stages[0]["detail"]["source"] == "crm:hubspot"
    crm = _timeline(api, pushed, "crm")[0]["detail"]
    assert crm["outcome"] == "sql" and crm["said"] == "lifecyclestage=salesqualifiedlead"


def test_deal_stages_move_the_deals_contact_to_opportunity_then_customer_with_value(api, aws, pushed):
    # Given deal 9001 associated with contact 1001
    assert post_hubspot(api, [_association(9001, 1001, minutes=-5)]).status == 200
    # When the deal is qualified, gets an amount, then is won (one batch, HubSpot's order)
    events = [
        _event(9001, "dealstage", "qualifiedtobuy", event_id=2, minutes=-4, kind="deal.propertyChange"),
        _event(9001, "amount", "12500", event_id=3, minutes=-3, kind="deal.propertyChange"),
        _event(9001, "dealstage", "closedwon", event_id=4, minutes=-2, kind="deal.propertyChange"),
    ]
    reply = post_hubspot(api, events)
    # Then each is applied to the lead, which is a customer with the deal's value on the timeline
    assert [r["status"] for r in reply.json["results"]] == ["applied"] * 3
    assert _lead(api, pushed)["lifecycle_stage"] == "customer"
    won = next(e["detail"] for e in _timeline(api, pushed, "crm") if e["detail"].get("outcome") == "won")
    assert won["value"] == 12500 and won["object"] == "deal:9001"
    assert {s["detail"]["to"] for s in _timeline(api, pushed, "stage")} == {"customer", "opportunity"}


def test_lead_status_unqualified_disqualifies(api, aws, pushed):
    reply = post_hubspot(api, [_event(1001, "hs_lead_status", "UNQUALIFIED")])
    assert reply.json["results"][0]["status"] == "applied"
    assert _lead(api, pushed)["lifecycle_stage"] == "disqualified"


def test_generic_event_by_record_id_and_by_email(api, aws):
    # Given a lead pushed to Salesforce as 00Q1 and another lead only known by email
    first = api.post_form("website", HOT).json["lead_id"]
    crm_feedback.on_record_linked("salesforce", "00Q1", first, "2026-11-29T10:00:00.000Z")
    second = api.post_form("website", {"email": "lin@b-corp.io"}).json["lead_id"]
    now = datetime.now(UTC).isoformat()
    # When a Salesforce Flow reports an opportunity by record id, and another CRM a won deal by email
    one = post_generic(
        api, {"crm": "salesforce", "record_id": "00Q1", "outcome": "opportunity", "occurred_at": now}, "m1"
    )
    two = post_generic(
        api,
        {
            "crm": "pipedrive",
            "email": "LIN@b-corp.io",
            "outcome": "won",
            "value": 990.5,
            "currency": "EUR",
            "occurred_at": now,
        },
        "m2",
    )
    # Then both leads move
    assert one.status == 200 and one.json["results"][0] == {"index": 0, "status": "applied", "lead_id": first}
    assert two.json["results"][0]["lead_id"] == second
    assert _lead(api, first)["lifecycle_stage"] == "opportunity"
    assert _lead(api, second)["lifecycle_stage"] == "customer"


# ------------------------------------------------------------------------------ never backwards, idempotent
def test_out_of_order_and_duplicate_events_never_move_a_lead_backwards(api, aws, pushed):
    # Given the deal was won (newest event)
    post_hubspot(api, [_association(9002, 1001, minutes=-30)])
    won = _event(9002, "dealstage", "closedwon", event_id=10, minutes=-1, kind="deal.propertyChange")
    post_hubspot(api, [won])
    assert _stage(aws, pushed) == "customer"
    version = _raw_lead(aws, pushed)["version"]
    # When an older SQL change arrives late, an older "lost" too, and the won event is redelivered
    late = [
        _event(1001, "lifecyclestage", "salesqualifiedlead", event_id=8, minutes=-10),
        _event(9002, "dealstage", "closedlost", event_id=9, minutes=-5, kind="deal.propertyChange"),
    ]
    reply = post_hubspot(api, late)
    again = post_hubspot(api, [{**won, "attemptNumber": 1}])
    # Then nothing moves: the late ones are stale, the redelivery a duplicate; the lead is unchanged
    assert [r["status"] for r in reply.json["results"]] == ["stale", "stale"]
    assert again.json["results"][0]["status"] == "duplicate"
    assert _stage(aws, pushed) == "customer"
    assert _raw_lead(aws, pushed)["version"] == version


def test_a_newer_sql_after_recycling_reopens_through_lead(api, aws, pushed):
    # Given the CRM recycled the lead (lost, no reason yet)
    post_hubspot(api, [_event(1001, "lifecyclestage", "other", event_id=1, minutes=-10)])
    assert _stage(aws, pushed) == "recycled"
    # When a newer SQL comes / Then the lead goes recycled → lead → sql, as the funnel requires
    post_hubspot(api, [_event(1001, "lifecyclestage", "salesqualifiedlead", event_id=2, minutes=-1)])
    assert _stage(aws, pushed) == "sql"
    moves = {(s["detail"]["from"], s["detail"]["to"]) for s in _timeline(api, pushed, "stage")}
    assert {("recycled", "lead"), ("lead", "sql")} <= moves  # one transaction: both at the same time


@pytest.mark.parametrize(
    "change",
    [
        {"timestamp_ms": -6},  # stale signature time (minutes from now, computed when the test runs)
        {"timestamp_ms": +6},  # from the future
        {"uri": "https://attacker.example.net/v1/crm/hubspot/events"},  # signed for another URL
        {"method": "GET"},  # signed for another method
        {"secret": "not-the-client-secret"},
        {"tamper": b"[]"},  # body changed after signing
    ],
    ids=["stale", "future", "wrong-uri", "wrong-method", "wrong-secret", "tampered-body"],
)
def test_badly_signed_deliveries_are_refused_and_move_nothing(api, aws, pushed, change):
    events = [_event(1001, "lifecyclestage", "salesqualifiedlead")]
    if "timestamp_ms" in change:
        change = {"timestamp_ms": _ms(change["timestamp_ms"])}
    reply = post_hubspot(api, events, **change)
    assert reply.status == 401
    assert reply.headers["content-type"] == "application/problem+json"
    assert _stage(aws, pushed) == "lead"


def test_without_a_configured_url_the_domain_api_gateway_served_is_signed(api, aws, pushed, monkeypatch):
    # Given no configured target URL: the URI is https:// + requestContext.domainName + the raw path
    monkeypatch.delenv("LEADFLOW_HUBSPOT_WEBHOOK_URL")
    body = json.dumps([_event(1001, "lifecyclestage", "salesqualifiedlead")]).encode()
    good = hubspot_v3_headers(
        "POST", "https://hooks.example.org/v1/crm/hubspot/events", body, dev_secret("crm/hubspot")["client_secret"]
    )
    # When signed for the domain the request arrived on / Then accepted; for another domain / refused
    other = {**good, "host": "evil.example.net"}
    assert api.request("POST", "/v1/crm/hubspot/events", body, other).status == 401
    assert api.request("POST", "/v1/crm/hubspot/events", body, {**good, "host": "hooks.example.org"}).status == 200


def test_generic_route_refuses_a_bad_signature(api, aws, pushed):
    body = json.dumps({"type": "crm.outcome", "data": {}}).encode()
    headers = standard_webhook_headers(body, "whsec_" + "QUJD" * 8, "m9")
    assert api.request("POST", "/v1/crm/generic/events", body, headers).status == 401


# ---------------------------------------------------------------------------------------- reasons → actions
def _journey(aws, lead_id: str) -> dict:
    raw = _raw_lead(aws, lead_id)["journey"]["M"]
    return {k: next(iter(v.values())) for k, v in raw.items()}


@pytest.mark.parametrize(
    ("reason", "rule", "stage", "journey", "days", "suppressed"),
    [
        ("Buying next year", "buying-next-year", "recycled", "default", 90, False),
        ("No need now", "no-need-now", "recycled", "winback", 30, False),
        ("Lost to competitor", "lost-to-competitor", "recycled", "winback", 180, True),
        ("Bad data", "bad-data", "disqualified", None, None, False),
    ],
)
def test_each_reason_triggers_its_configured_next_action(
    api, aws, pushed, reason, rule, stage, journey, days, suppressed
):
    # Given deal 9100 of contact 1001
    post_hubspot(api, [_association(9100, 1001, minutes=-5)])
    # When the deal is lost with its reason (HubSpot sends the reason as its own property change)
    events = [
        _event(9100, "closed_lost_reason", reason, event_id=21, minutes=-2, kind="deal.propertyChange"),
        _event(9100, "dealstage", "closedlost", event_id=22, minutes=-1, kind="deal.propertyChange"),
    ]
    reply = post_hubspot(api, events)
    assert [r["status"] for r in reply.json["results"]] == ["applied", "applied"]
    # Then the lead is in the rule's stage, and the action is on the timeline naming its rule
    lead = _lead(api, pushed)
    assert lead["lifecycle_stage"] == stage
    actions = [e["detail"] for e in _timeline(api, pushed, "crm") if e["detail"].get("outcome") == "action"]
    assert [a["rule"] for a in actions] == [rule]
    if journey:
        # And the journey is scheduled as the lead's next enrolment, to start `days` later (journey time)
        scheduled = _journey(aws, pushed)
        assert scheduled["name"] == journey and scheduled["status"] == "scheduled"
        start = datetime.fromisoformat(scheduled["next_step_at"].replace("Z", "+00:00"))
        assert abs((start - datetime.now(UTC)) - timedelta(days=days)) < timedelta(minutes=5)
        assert actions[0]["journey"] == journey
    else:
        assert "journey" not in _raw_lead(aws, pushed) or _journey(aws, pushed).get("status") != "scheduled"
    if suppressed:
        until = datetime.fromisoformat(lead["suppressed"]["until"].replace("Z", "+00:00"))
        assert abs((until - datetime.now(UTC)) - timedelta(days=180)) < timedelta(minutes=5)
        assert lead["suppressed"]["reason"] == "crm:lost-to-competitor"


def test_a_reason_after_the_lost_outcome_still_triggers_its_action(api, aws, pushed):
    # Given the contact was lost with no reason (default: recycled, nothing scheduled)
    post_hubspot(api, [_event(1001, "lifecyclestage", "other", event_id=31, minutes=-3)])
    assert _stage(aws, pushed) == "recycled"
    # When the reason comes afterwards
    post_hubspot(api, [_event(1001, "leadflow_lost_reason", "no need now", event_id=32, minutes=-1)])
    # Then its rule acts: the win-back journey is scheduled
    assert _journey(aws, pushed)["name"] == "winback"
    rules = [e["detail"].get("rule") for e in _timeline(api, pushed, "crm") if e["detail"].get("outcome") == "action"]
    assert rules == ["no-need-now", "default-lost"]


# ---------------------------------------------------------------------------------------- unknown record
def test_an_event_for_an_unknown_contact_is_kept_and_applied_when_the_push_links_it(api, aws, monkeypatch):
    # Given a lead not pushed yet, and a retry queue
    lead_id = api.post_form("website", HOT).json["lead_id"]
    sqs = __import__("boto3").client("sqs", region_name="us-east-1")
    url = sqs.create_queue(QueueName="crm-feedback-retry")["QueueUrl"]
    monkeypatch.setenv("LEADFLOW_CRM_FEEDBACK_QUEUE_URL", url)
    # When HubSpot reports contact 2002 as SQL before LeadFlow knows it is that lead
    sql = _event(2002, "lifecyclestage", "salesqualifiedlead", event_id=41, minutes=-1)
    reply = post_hubspot(api, [sql])
    # Then it is acknowledged as kept, and nothing moves yet; a redelivery is kept once
    assert reply.json["results"][0]["status"] == "pending"
    assert post_hubspot(api, [sql]).json["results"][0]["status"] == "pending"
    assert _stage(aws, lead_id) == "lead"
    # When the push writes contact 2002 back for the lead, and the retry function takes the queued message
    assert crm_feedback.on_record_linked("hubspot", "2002", lead_id, "2026-11-29T10:00:00.000Z") is True
    messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    crm_feedback.retry_messages([{"body": m["Body"]} for m in messages])
    # Then the kept event is applied once: the lead is an SQL, and nothing is left waiting
    assert _stage(aws, lead_id) == "sql"
    left = aws.query(
        TableName="LeadsTable",
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": "CRMPENDING#hubspot#record#2002"}},
    )["Items"]
    assert left == []
    assert post_hubspot(api, [sql]).json["results"][0]["status"] == "duplicate"


def test_erasing_a_lead_removes_its_crm_link(api, aws, monkeypatch):
    # Given a lead the push wrote back as HubSpot contact 4004 (crm.hubspot on the lead and its link item)
    # (erasure queues the contact's deletion in HubSpot on the target's push queue)
    from leadflow.store import push as push_store

    sqs = boto3.client("sqs", region_name="us-east-1")
    monkeypatch.setenv("LEADFLOW_HUBSPOT_QUEUE_URL", sqs.create_queue(QueueName="hubspot-push")["QueueUrl"])

    lead_id = api.post_form("website", {"email": "eve@erased.example.org"}).json["lead_id"]
    push_store.record_push(lead_id, "hubspot", crm_id="4004", version=1, synced_at="2026-11-29T10:00:00.000Z")
    crm_feedback.on_record_linked("hubspot", "4004", lead_id, "2026-11-29T10:00:00.000Z")
    link = {"pk": {"S": "CRMID#hubspot#4004"}, "sk": {"S": "IDENTITY"}}
    assert aws.get_item(TableName="LeadsTable", Key=link).get("Item", {}).get("lead_id") == {"S": lead_id}
    # When the person is erased
    assert api.request("DELETE", f"/v1/leads/{lead_id}").status == 204
    # Then the link is gone, and a later HubSpot event for the contact names nobody (kept, not applied)
    assert "Item" not in aws.get_item(TableName="LeadsTable", Key=link)
    reply = post_hubspot(api, [_event(4004, "lifecyclestage", "salesqualifiedlead", event_id=77)])
    assert reply.json["results"][0]["status"] == "pending"


def test_after_the_reasons_journey_ends_a_recycled_lead_is_not_re_enrolled_again_and_again(api, aws):
    from leadflow.services import journeys
    from leadflow.store.journeys import update_journey

    # Given a lead with email consent (eligible for the default journey), pushed as contact 1001
    pushed = api.post_form("website", {**HOT, "consent_email": True}).json["lead_id"]
    crm_feedback.on_record_linked("hubspot", "1001", pushed, "2026-11-29T10:00:00.000Z")
    assert journeys.eligible_journey(_lead(api, pushed) | {"lifecycle_stage": "recycled"}) is not None
    # And recycled for "no need now", its win-back journey then run to its end
    post_hubspot(api, [_event(1001, "leadflow_lost_reason", "no need now", event_id=61, minutes=-2)])
    post_hubspot(api, [_event(1001, "lifecyclestage", "other", event_id=62, minutes=-1)])
    assert _journey(aws, pushed)["name"] == "winback"
    update_journey(pushed, lambda lead: {**lead["journey"], "status": "completed"})
    # When the journey router sees the lead again / Then it starts no other journey for the same recycling
    assert journeys.enrol(pushed) is None
    assert _journey(aws, pushed)["name"] == "winback"


def test_a_broken_configuration_is_answered_503_so_the_crm_retries(api, aws, pushed, monkeypatch, tmp_path):
    # Given a configuration with a mistake on line 4
    broken = tmp_path / "feedback.yaml"
    broken.write_text("reasons:\n  - id: a\n    match: [x]\n    action: {after_days: -3, journey: default}\n")
    monkeypatch.setenv("LEADFLOW_CRM_FEEDBACK_FILE", str(broken))
    # When HubSpot delivers / Then 503 with Retry-After, and the lead has not moved
    reply = post_hubspot(api, [_event(1001, "lifecyclestage", "salesqualifiedlead")])
    assert reply.status == 503 and reply.headers["retry-after"]
    assert _stage(aws, pushed) == "lead"


def test_a_deal_won_before_its_association_and_its_contacts_link_is_applied_once_both_arrive(api, aws, monkeypatch):
    import boto3

    sqs = boto3.client("sqs", region_name="us-east-1")
    url = sqs.create_queue(QueueName="crm-feedback-retry-deal")["QueueUrl"]
    monkeypatch.setenv("LEADFLOW_CRM_FEEDBACK_QUEUE_URL", url)

    def retry_queued() -> None:
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
        crm_feedback.retry_messages([{"body": m["Body"]} for m in messages])
        for m in messages:
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])

    lead_id = api.post_form("website", HOT).json["lead_id"]
    # Given HubSpot reports deal 9500 won before saying whose it is
    won = _event(9500, "dealstage", "closedwon", event_id=91, minutes=-3, kind="deal.propertyChange")
    assert post_hubspot(api, [won]).json["results"][0]["status"] == "pending"
    # When the association to contact 5005 arrives (the contact not linked to a lead yet), then the push links it
    assert post_hubspot(api, [_association(9500, 5005, event_id=92, minutes=-2)]).status == 200
    retry_queued()
    assert _stage(aws, lead_id) == "lead"
    crm_feedback.on_record_linked("hubspot", "5005", lead_id, "2026-11-29T10:00:00.000Z")
    retry_queued()
    # Then the won deal makes the lead a customer, once; nothing waits any more
    assert _stage(aws, lead_id) == "customer"
    for pk in ("CRMPENDING#hubspot#deal#9500", "CRMPENDING#hubspot#record#5005"):
        assert crm_feedback.store.pending_events(pk) == []
    assert post_hubspot(api, [won]).json["results"][0]["status"] == "duplicate"
