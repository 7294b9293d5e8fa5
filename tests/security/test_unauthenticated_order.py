"""Unauthenticated senders (hubspot-forms, website forms) cannot reorder a lead's history.

Anyone can post to these routes for any email address. The time that orders merges (last touch, profile
fields, consent) is therefore the time LeadFlow received the submission; the time the sender claims is
kept only as `attributes.claimed_submitted_at`. A consent answer from such a route is marked
`authenticated: false`, on the lead and on the submission's touch, with its source.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

import pytest

EMAIL = "order.check@orbit.dev"
HUBSPOT = "/v1/webhooks/hubspot-forms"
BROWSER = {"content-type": "application/json", "origin": "http://localhost:8080"}


def hubspot(submitted_at_ms: int, page: str, consent: bool | None = None) -> bytes:
    document: dict = {
        "submittedAt": str(submitted_at_ms),
        "fields": [{"objectTypeId": "0-1", "name": "email", "value": EMAIL}],
        "context": {"pageUri": page},
    }
    if consent is not None:
        document["legalConsentOptions"] = {"consent": {"consentToProcess": consent, "text": "I agree."}}
    return json.dumps(document).encode()


def signed(api, msg_id: str, **data):
    return api.post_generic({"email": EMAIL, **data}, msg_id)


def _ms(seconds_from_now: float) -> int:
    return int((time.time() + seconds_from_now) * 1000)


def test_a_back_dated_submission_is_placed_at_receipt(api):
    # Given a lead captured just now from a signed source
    assert signed(api, "msg_order_1", utm_source="google").status == 200
    before = datetime.now(UTC).isoformat()
    # When hubspot-forms receives a submission that claims to be from 2020, with a campaign of its own
    reply = api.request("POST", HUBSPOT, hubspot(1577836800000, "https://www.example.com/?utm_source=spoof"), BROWSER)
    assert reply.status == 200, reply.body
    # Then it is the latest touch and the last touch, stamped when it arrived
    lead = api.get_lead_by_email(EMAIL).json
    assert lead["touches"]["latest"]["source"] == "hubspot-forms"
    assert lead["touches"]["latest"]["captured_at"] >= before[:19]
    assert lead["attribution"]["last_touch"]["utm_source"] == "spoof"
    # And the claimed time is kept, only as an attribute
    assert lead["attributes"]["claimed_submitted_at"] == "2020-01-01T00:00:00.000Z"


def test_a_forward_dated_submission_cannot_hold_off_later_touches(api):
    # Given a hubspot-forms submission claiming to be from 4 minutes in the future (within clock-skew allowance)
    reply = api.request("POST", HUBSPOT, hubspot(_ms(240), "https://www.example.com/?utm_source=spoof"), BROWSER)
    assert reply.status == 200, reply.body
    # When the person then arrives from a signed source with a campaign
    assert signed(api, "msg_order_2", utm_source="newsletter").status == 200
    # Then the signed, later touch is the last touch
    lead = api.get_lead_by_email(EMAIL).json
    assert lead["attribution"]["last_touch"]["utm_source"] == "newsletter"
    assert lead["touches"]["latest"]["source"] == "generic"


def test_a_forward_dated_consent_withdrawal_cannot_outlast_a_later_grant(api):
    # Given a consent withdrawal posted to hubspot-forms, claiming a time 4 minutes ahead
    body = hubspot(_ms(240), "https://www.example.com/", consent=False)
    assert api.request("POST", HUBSPOT, body, BROWSER).status == 200
    # When the person grants consent through a signed source afterwards
    assert signed(api, "msg_order_3", consent_email=True).status == 200
    # Then the later grant stands
    assert api.get_lead_by_email(EMAIL).json["consent"]["email"]["granted"] is True


def test_a_consent_withdrawal_from_an_unauthenticated_source_says_where_it_came_from(api, aws):
    # Given a lead that granted email consent through a signed source
    assert signed(api, "msg_order_4", consent_email=True).status == 200
    # When hubspot-forms receives a withdrawal for the same address
    body = hubspot(_ms(0), "https://www.example.com/unsubscribe", consent=False)
    assert api.request("POST", HUBSPOT, body, BROWSER).status == 200
    # Then the lead's consent is withdrawn, marked as coming unauthenticated from hubspot-forms
    lead = api.get_lead_by_email(EMAIL).json
    consent = lead["consent"]["email"]
    assert (consent["granted"], consent["source"], consent["authenticated"]) == (False, "hubspot-forms", False)
    # And the submission's touch records it, with the page it was posted from
    touch = _touches(aws, lead["lead_id"])[-1]
    assert touch["source"]["S"] == "hubspot-forms"
    recorded = touch["submitted"]["M"]["consent"]["M"]["email"]["M"]
    assert recorded["granted"] == {"BOOL": False}
    assert recorded["source"] == {"S": "hubspot-forms"}
    assert recorded["authenticated"] == {"BOOL": False}
    assert touch["touch"]["M"]["landing_url"]["S"] == "https://www.example.com/unsubscribe"


@pytest.fixture
def dated_form(api, tmp_path, monkeypatch):
    """A website form whose registry entry (wrongly) lets the browser send `submitted_at`."""
    from leadflow.config import settings
    from leadflow.sources import forms

    path = tmp_path / "forms.json"
    form = {
        "fields": ["email", "submitted_at", "utm_source", "consent_email"],
        "allowed_origins": ["http://localhost:*"],
    }
    path.write_text(json.dumps({"forms": {"dated": form}}))
    monkeypatch.setenv("LEADFLOW_FORMS_FILE", str(path))
    settings.cache_clear()
    forms.registry.cache_clear()
    yield
    settings.cache_clear()
    forms.registry.cache_clear()


def test_a_website_form_cannot_date_its_submission_either(api, dated_form):
    # Given a browser form posting a submission dated 4 minutes ahead
    ahead = datetime.fromtimestamp(time.time() + 240, UTC).isoformat().replace("+00:00", "Z")
    reply = api.post_form("dated", {"email": EMAIL, "utm_source": "spoof", "submitted_at": ahead})
    assert reply.status == 202, reply.body
    # When the person arrives from a signed source afterwards
    assert signed(api, "msg_order_5", utm_source="newsletter").status == 200
    # Then the signed touch is the last touch, and the form's claim is only an attribute
    lead = api.get_lead_by_email(EMAIL).json
    assert lead["attribution"]["last_touch"]["utm_source"] == "newsletter"
    assert lead["attributes"]["claimed_submitted_at"].startswith(ahead[:16])


def _touches(aws, lead_id: str) -> list[dict]:
    from leadflow.config import settings

    answer = aws.query(
        TableName=settings().table_name,
        KeyConditionExpression="pk = :pk AND begins_with(sk, :touch)",
        ExpressionAttributeValues={":pk": {"S": f"LEAD#{lead_id}"}, ":touch": {"S": "TOUCH#"}},
        ConsistentRead=True,
    )
    return answer["Items"]


@pytest.mark.parametrize("claimed", ["9999-12-31T23:59:59-23:59", "0001-01-01T00:00:00+23:59", "²", "not a time"])
def test_a_claimed_time_at_the_edge_of_the_calendar_or_no_time_at_all_is_received_now(api, claimed):
    # Given a hubspot-forms submission whose submittedAt cannot be placed in UTC, or is no time
    document = {"submittedAt": claimed, "fields": [{"objectTypeId": "0-1", "name": "email", "value": EMAIL}]}
    # When it arrives
    reply = api.request("POST", HUBSPOT, json.dumps(document).encode(), BROWSER)
    # Then it is captured at receipt, with no claimed time kept
    assert reply.status == 200, reply.body
    assert "claimed_submitted_at" not in api.get_lead_by_email(EMAIL).json["attributes"]
