"""No signed lead is ever lost to validation, and a client-chosen submission_id never swallows a submission.

- A malformed email next to a valid phone (or the reverse) is a lead, the bad value kept as a flagged attribute.
- A signed delivery validation refuses is quarantined (durable before the 2xx, once per delivery) and
  `leadflow quarantine replay` turns it into a lead after the mapping is fixed.
- Unsigned browser forms keep answering 422 with field errors.
"""

from __future__ import annotations

import json
import os

import botocore.client
import pytest
from botocore.exceptions import ClientError

from leadflow import cli
from leadflow.config import settings
from tests.integration.test_provider_meta import graph_lead, leadgen_delivery, meta_headers
from tests.support.fake_graph import FakeGraph
from tests.support.fetch import fetch_queues
from tests.support.providers import encode, webflow_headers
from tests.support.quarantine import (
    QUARANTINE_ENTITIES,
    assert_no_lead_stored,
    assert_quarantined,
    list_quarantine,
    reasons,
)
from tests.support.signing import dev_secret

BAD_EMAIL = "ada.lovelace@@analytical"
PHONE = "+14155550123"
META = dev_secret("webhooks/meta")


def lead_of(api, reply) -> dict:
    (answer,) = reply.json.get("leads", [reply.json])
    found = api.request("GET", f"/v1/leads/{answer['lead_id']}")
    assert found.status == 200
    return found.json


def quarantine_cli(*args: str) -> int:
    return cli.main(["quarantine", *args, "--table", settings().table_name])


# ------------------------------------------------------------------ malformed email, valid phone: still a lead
def test_malformed_email_with_a_valid_phone_becomes_a_lead_with_the_email_flagged(api, capsys):
    # Given a signed delivery whose email is malformed but whose phone is valid
    reply = api.post_generic({"email": BAD_EMAIL, "phone": "(415) 555-0123", "first_name": "Ada"}, "msg_bad_email")
    # Then it becomes a lead reachable by its phone
    assert reply.status == 200
    assert reply.json["leads"][0]["status"] == "created"
    lead = lead_of(api, reply)
    assert (lead["email"], lead["phone"]) == (None, PHONE)
    # And the bad email is kept as typed, flagged for review
    assert lead["attributes"]["invalid_email"] == BAD_EMAIL
    assert lead["attributes"]["quality_flags"] == ["invalid_email"]
    # And nothing was quarantined, and the value never reached a log line
    assert list_quarantine() == []
    assert BAD_EMAIL not in capsys.readouterr().out


def test_a_browser_form_with_a_malformed_email_and_a_valid_phone_is_a_lead_too(api):
    reply = api.post_form("website", {"email": BAD_EMAIL, "phone": PHONE})
    assert reply.status == 202
    lead = lead_of(api, reply)
    assert lead["phone"] == PHONE
    assert lead["attributes"]["quality_flags"] == ["invalid_email"]


def test_a_form_with_only_a_malformed_email_is_still_422_with_the_field_error(api, aws):
    reply = api.post_form("website", {"email": BAD_EMAIL})
    assert reply.status == 422
    assert reply.json["errors"] == [{"field": "email", "message": "is not a valid email address"}]
    assert BAD_EMAIL not in reply.body
    assert aws.scan(TableName=settings().table_name, Select="COUNT")["Count"] == 0  # not quarantined either


def test_a_malformed_phone_with_a_valid_email_is_flagged_the_same_way(api):
    reply = api.post_generic({"email": "kim@orbit.dev", "phone": "12"}, "msg_bad_phone")
    lead = lead_of(api, reply)
    assert (lead["email"], lead["phone"]) == ("kim@orbit.dev", None)
    assert lead["attributes"]["phone_unverified"] == "12"
    assert lead["attributes"]["quality_flags"] == ["phone_unverified"]


# ------------------------------------------------------------------ quarantine, then replay after a mapping fix
WEBFLOW_EMAIL = "noor.haddad@cedar-cloud.ae"


def webflow_delivery() -> dict:
    """A Webflow submission whose email field has a label neither the configuration nor the heuristics know."""
    return {
        "triggerType": "form_submission",
        "payload": {
            "name": "Kontakt",
            "data": {"Name": "Noor Haddad", "Geschäftliche Adresse": "Noor.Haddad@Cedar-Cloud.ae"},
            "submittedAt": "2026-11-22T10:00:16.117Z",
            "id": "6321ca84df3949bfc6750001",
            "formId": "65429eadebe8a9f3a30f62d0",
        },
    }


def post_webflow(api, document: dict):
    body = encode(document)
    return api.request("POST", "/v1/webhooks/webflow", body, webflow_headers(body))


@pytest.fixture
def webhooks_file(tmp_path, monkeypatch):
    path = tmp_path / "webhooks.json"
    path.write_text(json.dumps({"webflow": {"fields": {}}}))
    monkeypatch.setenv("LEADFLOW_WEBHOOKS_FILE", str(path))
    settings.cache_clear()
    return path


def test_quarantine_then_replay_after_the_mapping_is_fixed(api, aws, webhooks_file, capsys):
    # Given a signed Webflow delivery whose email label is not mapped (so: no email, no phone)
    reply = post_webflow(api, webflow_delivery())
    # Then it is acknowledged, so Webflow does not retry it, and kept in the quarantine with the reason
    item = assert_quarantined(reply, "webflow")
    assert item["reason"] == [{"field": "email", "message": "email or phone is required to identify the lead"}]
    assert_no_lead_stored(aws)
    # And a replay before the fix leaves it there with the (same) reason
    assert quarantine_cli("replay", "--all") == 0
    (still,) = list_quarantine()
    assert (still["quarantine_id"], still["replays"]) == (item["quarantine_id"], 1)
    assert api.get_lead_by_email(WEBFLOW_EMAIL).status == 404

    # When the operator maps the label and replays the quarantine
    webhooks_file.write_text(json.dumps({"webflow": {"fields": {"Geschäftliche Adresse": "email"}}}))
    assert quarantine_cli("replay", "--id", item["quarantine_id"]) == 0
    # Then the delivery is a lead and the quarantine is empty
    lead = api.get_lead_by_email(WEBFLOW_EMAIL)
    assert lead.status == 200
    assert lead.json["first_name"] == "Noor"
    assert lead.json["attribution"]["first_touch"]["source"] == "webflow"
    assert list_quarantine() == []
    assert {i["entity"]["S"] for i in aws.scan(TableName=settings().table_name)["Items"]} >= {"lead", "touch"}
    assert "quarantine" not in {i["entity"]["S"] for i in aws.scan(TableName=settings().table_name)["Items"]}
    # And Webflow's retry of the same delivery is answered with the same lead, not quarantined again
    again = post_webflow(api, webflow_delivery())
    assert again.json["leads"] == [{"lead_id": lead.json["lead_id"], "status": "created"}]
    assert list_quarantine() == []
    # And no log line or CLI output carried the person's data
    out = capsys.readouterr().out
    for value in ("Noor", "Haddad", "cedar-cloud", "Cedar-Cloud"):
        assert value not in out


@pytest.mark.parametrize(
    ("bad", "refused"),
    [
        ({"email": "grace@navy.io", "favourite_colour": "teal"}, {"data.favourite_colour": "is not a known field"}),
        ({"first_name": "Anonymous"}, {"email": "email or phone is required to identify the lead"}),
    ],
    ids=["schema", "business rule"],
)
def test_a_repeated_delivery_is_quarantined_once(api, aws, bad, refused):
    # Given a signed delivery validation refuses, delivered three times (each retry signed anew)
    replies = [api.post_generic(bad, "msg_repeat") for _ in range(3)]
    # Then every attempt is acknowledged, and the quarantine holds it once
    assert [(r.status, r.json["quarantined"]) for r in replies] == [(200, 1)] * 3
    (item,) = list_quarantine()
    assert reasons(item) == refused
    assert_no_lead_stored(aws)


def test_nothing_is_acknowledged_until_the_quarantine_is_durable(api, aws, monkeypatch):
    # Given the table refuses writes
    original = botocore.client.BaseClient._make_api_call

    def failing(self, operation_name, api_params):
        if operation_name == "TransactWriteItems":
            raise ClientError({"Error": {"Code": "InternalServerError", "Message": "down"}}, operation_name)
        return original(self, operation_name, api_params)

    monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", failing)
    bad = {"email": "grace@navy-labs.io", "favourite_colour": "teal"}
    # When a signed delivery validation refuses arrives
    reply = api.post_generic(bad, "msg_durable")
    # Then the provider is told to retry (503 Retry-After), and nothing was kept
    assert reply.status == 503
    assert reply.headers["retry-after"]
    monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", original)
    assert aws.scan(TableName=settings().table_name, Select="COUNT")["Count"] == 0
    # And its retry, once the table is back, is quarantined and acknowledged
    assert api.post_generic(bad, "msg_durable").json["quarantined"] == 1
    assert len(list_quarantine()) == 1


def test_quarantine_list_shows_ids_sources_and_reasons_without_personal_data(api, capsys):
    # Given a quarantined delivery full of personal data
    bad = {"email": "grace@navy-labs.io", "phone": "+14155550188", "first_name": "Grace", "favourite_colour": "teal"}
    api.post_generic(bad, "msg_pii")
    capsys.readouterr()
    # When the operator lists the quarantine
    assert quarantine_cli("list") == 0
    out = capsys.readouterr().out
    # Then it shows the id, the source and the refused field, and none of the person's data
    (item,) = list_quarantine()
    assert item["quarantine_id"] in out and "generic" in out and "data.favourite_colour" in out
    for value in ("grace", "Grace", "navy-labs", "5550188", "teal"):
        assert value not in out


def test_a_quarantined_person_is_found_by_their_identity_keys_for_erasure(api):
    # Given a quarantined delivery whose email and phone are valid (an attribute broke it)
    body = {"email": "Grace@Navy-Labs.io", "phone": "+14155550188", "attributes": {"score": 1e300}}
    api.post_generic(body, "msg_erasable")
    (item,) = list_quarantine()
    # Then its normalised keys lead to it, and removing it by them leaves nothing behind
    from leadflow.store import quarantine as store  # noqa: PLC0415 - the feature under test

    assert set(store.quarantined_for_keys(["EMAIL#grace@navy-labs.io", "PHONE#+14155550188"])) == {
        item["quarantine_id"]
    }
    assert store.erase_for_keys(["EMAIL#grace@navy-labs.io"]) == 1
    assert list_quarantine() == []
    assert store.quarantined_for_keys(["EMAIL#grace@navy-labs.io", "PHONE#+14155550188"]) == {}


def test_erasing_the_persons_lead_removes_their_quarantined_deliveries(api, aws):
    # Given a quarantined delivery of a person who also has a lead (a later, valid delivery)
    api.post_generic({"email": "Grace@Navy-Labs.io", "attributes": {"score": 1e300}}, "msg_broken")
    assert len(list_quarantine()) == 1
    lead_id = api.post_generic({"email": "grace@navy-labs.io", "first_name": "Grace"}, "msg_ok").json["leads"][0][
        "lead_id"
    ]
    # When the operator erases the lead
    assert api.request("DELETE", f"/v1/leads/{lead_id}").status == 204
    # Then the quarantined delivery (which holds the person's data) is gone too, with its erasure index
    assert list_quarantine() == []
    items = aws.scan(TableName=settings().table_name)["Items"]
    assert not [i for i in items if i["entity"]["S"] in QUARANTINE_ENTITIES]
    assert "navy-labs" not in json.dumps(items).lower()


def test_unsigned_hubspot_forms_keep_answering_422(api, aws):
    body = json.dumps({"fields": [{"name": "email", "value": BAD_EMAIL}]}).encode()
    reply = api.request("POST", "/v1/webhooks/hubspot-forms", body, {"content-type": "application/json"})
    assert reply.status == 422
    assert aws.scan(TableName=settings().table_name, Select="COUNT")["Count"] == 0


# ------------------------------------------------------------------ pointer providers: the fetched lead
@pytest.fixture
def graph(monkeypatch):
    fake = FakeGraph(access_token=META["access_token"])
    monkeypatch.setenv("LEADFLOW_META_GRAPH_URL", fake.url)
    yield fake
    fake.stop()


def test_a_fetched_lead_validation_refuses_is_quarantined_as_its_pointer_and_replayed(api, aws, graph, monkeypatch):
    fetch = fetch_queues(monkeypatch)
    # Given Meta names a lead whose form collected neither a usable email nor a phone
    nameless = graph_lead("x", field_data=[{"name": "full_name", "values": ["Ada Lovelace"]}])
    graph.add_lead("900000000000077", nameless)
    body = leadgen_delivery("900000000000077")
    assert api.request("POST", "/v1/webhooks/meta", body, meta_headers(body)).status == 200
    # When the fetch function reads it
    fetch.drain()
    # Then it is quarantined (the pointer, no personal data), not dead-lettered
    (item,) = list_quarantine()
    assert (item["source"], item["kind"]) == ("meta", "pointer")
    assert list(reasons(item)) == ["email"]
    assert fetch.count(fetch.dlq_url) == 0
    # When the lead is readable with an email and the operator replays the quarantine
    graph.add_lead("900000000000077", graph_lead("ada@analytical.engines"))
    assert cli.main(["quarantine", "replay", "--all", "--queue-url", fetch.queue_url]) == 0
    fetch.drain()
    # Then it is a lead and the quarantine is empty
    assert api.get_lead_by_email("ada@analytical.engines").status == 200
    assert list_quarantine() == []


# ------------------------------------------------------------------ a client-chosen submission_id
def test_two_people_with_the_same_submission_id_are_two_leads(api):
    # Given a cached page that sends every visitor the same submission_id
    first = api.post_form("website", {"email": "ana@one.dev", "submission_id": "cached-123"})
    second = api.post_form("website", {"email": "ben@two.dev", "submission_id": "cached-123"})
    # Then each person gets a lead of their own, answered with its own id
    assert (first.status, second.status) == (202, 202)
    assert first.json["lead_id"] != second.json["lead_id"]
    assert api.get_lead_by_email("ana@one.dev").json["lead_id"] == first.json["lead_id"]
    assert api.get_lead_by_email("ben@two.dev").json["lead_id"] == second.json["lead_id"]


def test_a_double_submit_of_the_same_content_is_still_one_submission(api):
    fields = {"email": "ana@one.dev", "message": "Call me", "submission_id": "sub-42"}
    first = api.post_form("website", fields)
    second = api.post_form("website", fields)
    assert second.json == first.json
    assert api.get_lead_by_email("ana@one.dev").json["touches"]["count"] == 1


# ------------------------------------------------------------------ on AWS: `--stack` finds what the functions use
def test_replay_with_stack_uses_the_stacks_table_and_provider_configuration(api, aws, monkeypatch, capsys):
    import boto3

    # Given a quarantined Webflow delivery whose email label is not mapped and whose phone is a UK number
    # (not a valid number in the default region US)
    document = webflow_delivery()
    document["payload"]["data"]["Phone"] = "020 7946 0018"
    assert post_webflow(api, document).json["quarantined"] == 1
    # And a stack for the UK whose outputs name the table and whose provider configuration now maps the label
    fixed = {"webflow": {"fields": {"Geschäftliche Adresse": "email"}}}
    template = {
        "Parameters": {"DefaultPhoneRegion": {"Type": "String", "Default": "GB"}},
        "Resources": {
            "WebhooksConfigParameter": {
                "Type": "AWS::SSM::Parameter",
                "Properties": {"Name": "/leadflow/test/webhooks", "Type": "String", "Value": json.dumps(fixed)},
            }
        },
        "Outputs": {"LeadsTableName": {"Value": settings().table_name}},
    }
    boto3.client("cloudformation", region_name="us-east-1").create_stack(
        StackName="leadflow-test", TemplateBody=json.dumps(template)
    )
    current = {"LEADFLOW_WEBHOOKS_PARAMETER": "", "LEADFLOW_DEFAULT_PHONE_REGION": "US"}
    for name, default in current.items():
        monkeypatch.setenv(name, os.environ.get(name) or default)  # the CLI sets them for its process: undo after
    # When the operator replays the quarantine against the stack
    assert cli.main(["quarantine", "replay", "--all", "--stack", "leadflow-test"]) == 0
    # Then the delivery is a lead, mapped with the stack's configuration and read in the stack's phone region
    lead = api.get_lead_by_email(WEBFLOW_EMAIL)
    assert lead.status == 200
    assert lead.json["phone"] == "+442079460018"
    assert list_quarantine() == []


def test_a_body_that_carries_its_credential_is_quarantined_without_it(api, aws, capsys):
    from leadflow.store import quarantine as store  # noqa: PLC0415 - the feature under test
    from tests.integration.test_provider_google_ads import delivery

    # Given a Google Ads lead (authenticated by the google_key in its body) with a column value too long
    document = delivery()
    document["user_column_data"][0]["string_value"] = "x" * 300
    body = encode(document)
    # When Google delivers it twice
    replies = [api.request("POST", "/v1/webhooks/google-ads", body, {"content-type": "application/json"})]
    replies.append(api.request("POST", "/v1/webhooks/google-ads", body, {"content-type": "application/json"}))
    assert [(r.status, r.json["quarantined"]) for r in replies] == [(200, 1), (200, 1)]
    # Then it is quarantined once, counted once, and the stored body no longer holds the key
    (item,) = list_quarantine()
    record = store.get(item["quarantine_id"])
    assert dev_secret("webhooks/google-ads")["google_key"] not in record.body.decode()
    assert json.loads(record.body)["lead_id"] == document["lead_id"]
    assert capsys.readouterr().out.count('"Quarantined":[1.0]') == 1
    # And a replay (before any fix) reads it back and keeps it with the same reason
    assert quarantine_cli("replay", "--all") == 0
    (still,) = list_quarantine()
    assert (still["replays"], reasons(still)) == (1, reasons(item))
    assert_no_lead_stored(aws)
