"""Meta Lead Ads: subscription check, signed leadgen deliveries acknowledged at once, leads fetched from a
(fake) Graph API through the fetch queue. Deliveries follow developers.facebook.com's leadgen webhook format."""

from __future__ import annotations

import hashlib
import hmac
import json
from urllib.parse import urlencode

import pytest

from tests.support.fake_graph import FakeGraph
from tests.support.fetch import fetch_queues
from tests.support.quarantine import assert_quarantined, reasons
from tests.support.signing import dev_secret

META = dev_secret("webhooks/meta")
PAGE_ID = "100000000000001"


def leadgen_delivery(*leadgen_ids: str, extra_changes: list | None = None) -> bytes:
    changes = [
        {
            "field": "leadgen",
            "value": {
                "leadgen_id": leadgen_id,
                "form_id": "200000000000002",
                "page_id": PAGE_ID,
                "ad_id": "300000000000003",
                "adgroup_id": "400000000000004",
                "created_time": 1795300000,
            },
        }
        for leadgen_id in leadgen_ids
    ]
    entry = {"id": PAGE_ID, "time": 1795300001, "changes": changes + (extra_changes or [])}
    return json.dumps({"object": "page", "entry": [entry]}).encode()


def meta_headers(body: bytes, secret: str | None = None) -> dict[str, str]:
    key = (secret or META["app_secret"]).encode()
    return {
        "content-type": "application/json",
        "x-hub-signature-256": "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest(),
    }


def graph_lead(email: str, **extra) -> dict:
    return {
        "created_time": "2026-11-22T10:00:00+0000",
        "ad_id": "300000000000003",
        "adset_id": "400000000000004",
        "campaign_id": "500000000000005",
        "form_id": "200000000000002",
        "is_organic": False,
        "platform": "fb",
        "field_data": [
            {"name": "email", "values": [email]},
            {"name": "full_name", "values": ["Ada Lovelace"]},
            {"name": "phone_number", "values": ["+14155550123"]},
            {"name": "company_name", "values": ["Analytical Engines Ltd"]},
            {"name": "job_title", "values": ["Head of Computing"]},
            {"name": "country", "values": ["GB"]},
            {"name": "city", "values": ["London"]},
            {"name": "what_is_your_budget?", "values": ["10k-50k"]},
        ],
        **extra,
    }


@pytest.fixture
def graph(monkeypatch):
    fake = FakeGraph(access_token=META["access_token"])
    monkeypatch.setenv("LEADFLOW_META_GRAPH_URL", fake.url)
    yield fake
    fake.stop()


@pytest.fixture
def fetch(aws, monkeypatch):
    return fetch_queues(monkeypatch)


def post_meta(api, body: bytes, headers: dict | None = None):
    return api.request("POST", "/v1/webhooks/meta", body, headers if headers is not None else meta_headers(body))


def test_subscription_check_echoes_exactly_the_challenge(api):
    # Given Meta's subscription check with the configured verify token
    query = {"hub.mode": "subscribe", "hub.verify_token": META["verify_token"], "hub.challenge": "1158201444"}
    # When it calls the endpoint
    reply = api.request("GET", "/v1/webhooks/meta?" + urlencode(query))
    # Then the answer is the challenge itself, as plain text
    assert reply.status == 200
    assert reply.body == "1158201444"
    assert reply.headers["content-type"].startswith("text/plain")


@pytest.mark.parametrize(
    "query",
    [
        {"hub.mode": "subscribe", "hub.verify_token": "not-the-token", "hub.challenge": "42"},
        {"hub.mode": "unsubscribe", "hub.verify_token": META["verify_token"], "hub.challenge": "42"},
        {"hub.mode": "subscribe", "hub.challenge": "42"},
    ],
)
def test_subscription_check_with_a_wrong_token_is_refused(api, query):
    # Given a subscription check that does not carry our verify token (or is not a subscribe)
    # When it calls the endpoint
    reply = api.request("GET", "/v1/webhooks/meta?" + urlencode(query))
    # Then it is refused and the challenge is not echoed
    assert reply.status == 403
    assert "42" not in reply.body


def test_signed_delivery_is_acknowledged_at_once_and_the_lead_fetched_from_the_queue(api, graph, fetch):
    # Given a lead waiting in the Graph API and Meta's signed leadgen delivery naming it
    graph.add_lead("900000000000001", graph_lead("ada@example.com"))
    body = leadgen_delivery("900000000000001", extra_changes=[{"field": "feed", "value": {"item": "status"}}])
    # When Meta delivers it
    reply = post_meta(api, body)
    # Then it is acknowledged before anything is fetched, and queued (the feed change is ignored)
    assert reply.status == 200
    assert reply.json == {"received": 1}
    assert graph.requests == []
    assert api.get_lead_by_email("ada@example.com").status == 404
    # When the fetch function drains the queue
    fetch.drain()
    # Then the lead exists with its answers, the ad/campaign/form ids and a meta touch
    found = api.get_lead_by_email("ada@example.com")
    assert found.status == 200
    lead = found.json
    assert (lead["first_name"], lead["last_name"]) == ("Ada", "Lovelace")
    assert lead["phone"] == "+14155550123"
    assert lead["company"] == "Analytical Engines Ltd"
    assert lead["job_title"] == "Head of Computing"
    assert lead["country"] == "GB"
    attributes = lead["attributes"]
    assert attributes["city"] == "London"
    assert attributes["what_is_your_budget?"] == "10k-50k"
    assert attributes["meta_ad_id"] == "300000000000003"
    assert attributes["meta_adset_id"] == "400000000000004"
    assert attributes["meta_campaign_id"] == "500000000000005"
    assert attributes["meta_form_id"] == "200000000000002"
    assert attributes["meta_page_id"] == PAGE_ID
    first_touch = lead["attribution"]["first_touch"]
    assert first_touch["source"] == "meta"
    assert "utm_source" not in first_touch  # not invented
    assert first_touch["captured_at"].startswith("2026-11-22T10:00:00")
    # and the Graph API was asked with the Page token, in one batch request
    assert [call["access_token"] for call in graph.requests] == [META["access_token"]]
    assert fetch.count(fetch.queue_url) == 0


def test_one_delivery_naming_several_leads_is_fetched_in_one_batch_request(api, graph, fetch):
    # Given three leads named by one delivery
    for n in range(3):
        graph.add_lead(f"90000000000001{n}", graph_lead(f"person{n}@example.com"))
    body = leadgen_delivery(*(f"90000000000001{n}" for n in range(3)))
    # When it is delivered and the queue drained
    assert post_meta(api, body).json == {"received": 3}
    fetch.drain()
    # Then all three leads exist, read with one Graph API batch call
    for n in range(3):
        assert api.get_lead_by_email(f"person{n}@example.com").status == 200
    assert len(graph.requests) == 1
    assert len(graph.requests[0]["operations"]) == 3


@pytest.mark.parametrize("case", ["tampered", "wrong-secret", "missing-header", "not-sha256"])
def test_unsigned_or_tampered_deliveries_are_refused_and_nothing_is_queued(api, graph, fetch, case):
    # Given a delivery that is not signed with our app secret over these exact bytes
    graph.add_lead("900000000000002", graph_lead("eve@example.com"))
    body = leadgen_delivery("900000000000002")
    headers = meta_headers(body)
    if case == "tampered":
        body = body.replace(b"900000000000002", b"900000000000003")
    elif case == "wrong-secret":
        headers = meta_headers(body, secret="not-the-app-secret")
    elif case == "missing-header":
        headers = {"content-type": "application/json"}
    else:
        headers["x-hub-signature-256"] = headers["x-hub-signature-256"].replace("sha256=", "sha1=")
    # When it is posted
    reply = post_meta(api, body, headers)
    # Then it is refused, nothing is queued, nothing fetched or stored
    assert reply.status == 401
    assert reply.headers["content-type"] == "application/problem+json"
    assert fetch.count(fetch.queue_url) == 0
    fetch.drain()
    assert graph.requests == []
    assert api.get_lead_by_email("eve@example.com").status == 404


def test_a_delivery_that_is_not_a_page_leadgen_body_is_quarantined_with_field_paths(api, fetch):
    # Given a signed body whose leadgen id is not a Graph id
    body = json.dumps(
        {
            "object": "page",
            "entry": [{"id": PAGE_ID, "changes": [{"field": "leadgen", "value": {"leadgen_id": "../me"}}]}],
        }
    ).encode()
    # When it is posted
    reply = post_meta(api, body)
    # Then it is acknowledged and quarantined with the field path, and nothing is queued
    item = assert_quarantined(reply, "meta")
    assert any(field.startswith("entry.0.changes.0.value.leadgen_id") for field in reasons(item))
    assert fetch.count(fetch.queue_url) == 0


def test_redelivery_of_the_same_leadgen_id_gives_one_lead_and_one_touch(api, graph, fetch):
    # Given a lead already delivered and captured
    graph.add_lead("900000000000004", graph_lead("grace@example.com"))
    body = leadgen_delivery("900000000000004")
    assert post_meta(api, body).status == 200
    fetch.drain()
    # When Meta delivers the same leadgen id again (its retry), in the same and in a new delivery
    assert post_meta(api, body).status == 200
    assert post_meta(api, leadgen_delivery("900000000000004", "900000000000004")).json == {"received": 1}
    fetch.drain()
    # Then there is still one lead with one touch
    lead = api.get_lead_by_email("grace@example.com").json
    assert lead["touches"]["count"] == 1
    assert fetch.count(fetch.dlq_url) == 0
