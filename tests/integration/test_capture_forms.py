"""POST/OPTIONS /v1/forms/{form_id}: website forms (fetch JSON and plain HTML)."""

from __future__ import annotations

import json
from urllib.parse import urlencode

ORIGIN = {"origin": "http://localhost:8080"}
FIELDS = {
    "email": "Ada@Analytical-Engines.co.uk",
    "phone": "020 7946 0958",
    "country": "UK",
    "first_name": "Ada",
    "last_name": "Lovelace",
    "company": "Analytical Engines",
    "company_size": "11-50",
    "message": "Please call me",
    "consent_email": "on",
    "page_url": "http://localhost:8080/demo?utm_source=google&utm_medium=cpc&utm_campaign=brand&gclid=Cj0KCQ_AbC",
    "referrer": "https://www.google.com/",
    "_fbp": "fb.1.1700000000000.1234567890",
    "_hp": "",
}


def test_json_form_creates_lead_with_fields_consent_and_attribution(api):
    # Given the shipped `website` form and a browser on a loopback origin
    reply = api.post_form("website", FIELDS, headers=ORIGIN)
    # Then it is accepted, with CORS for that origin
    assert reply.status == 202
    assert reply.json["status"] == "created"
    assert reply.headers["access-control-allow-origin"] == "http://localhost:8080"
    lead = api.request("GET", f"/v1/leads/{reply.json['lead_id']}").json
    assert lead["email"] == "ada@analytical-engines.co.uk"
    assert lead["phone"] == "+442079460958"  # national number read with the lead's country
    assert lead["country"] == "GB"
    assert lead["attributes"] == {"company_size": "11-50", "message": "Please call me"}
    assert lead["consent"]["email"]["granted"] is True
    assert lead["consent"]["email"]["source"] == "form:website"
    touch = lead["attribution"]["first_touch"]
    assert touch["source"] == "form:website"
    assert (touch["utm_source"], touch["utm_medium"], touch["utm_campaign"]) == ("google", "cpc", "brand")
    assert touch["gclid"] == "Cj0KCQ_AbC"
    assert touch["fbp"] == "fb.1.1700000000000.1234567890"
    assert touch["referrer"] == "https://www.google.com/"
    assert lead["attribution"]["last_touch"] == touch


def test_plain_html_form_redirects_with_303(api):
    fields = dict(FIELDS, _redirect="https://www.example.com/thanks")
    reply = api.post_form("website", fields, as_json=False)
    assert reply.status == 303
    assert reply.headers["location"] == "https://www.example.com/thanks"
    assert api.get_lead_by_email("ada@analytical-engines.co.uk").status == 200


def test_redirect_to_a_host_the_form_does_not_allow_is_403_and_stores_nothing(api):
    fields = dict(FIELDS, _redirect="https://evil.example.net/phish")
    reply = api.post_form("website", fields, as_json=False)
    assert reply.status == 403
    assert api.get_lead_by_email("ada@analytical-engines.co.uk").status == 404


def test_cors_preflight_for_allowed_and_refused_origins(api):
    ok = api.request("OPTIONS", "/v1/forms/website", headers={**ORIGIN, "access-control-request-method": "POST"})
    assert ok.status == 204
    assert ok.headers["access-control-allow-origin"] == "http://localhost:8080"
    assert "POST" in ok.headers["access-control-allow-methods"]
    refused = api.request("OPTIONS", "/v1/forms/website", headers={"origin": "https://attacker.example"})
    assert refused.status == 403


def test_post_from_a_foreign_origin_is_403_and_stores_nothing(api):
    reply = api.post_form("website", FIELDS, headers={"origin": "https://attacker.example"})
    assert reply.status == 403
    assert api.get_lead_by_email("ada@analytical-engines.co.uk").status == 404


def test_server_side_post_without_origin_is_accepted(api):
    assert api.post_form("website", FIELDS).status == 202


def test_honeypot_hit_is_answered_as_success_and_stores_nothing(api, aws):
    reply = api.post_form("website", dict(FIELDS, _hp="http://spam.biz"), headers=ORIGIN)
    assert reply.status == 202
    assert reply.json["status"] == "created"
    assert api.request("GET", f"/v1/leads/{reply.json['lead_id']}").status == 404
    assert api.get_lead_by_email("ada@analytical-engines.co.uk").status == 404


def test_unknown_form_is_404(api):
    assert api.post_form("nope", FIELDS).status == 404


def test_unsupported_media_type_is_415(api):
    reply = api.request("POST", "/v1/forms/website", "<lead/>", {"content-type": "application/xml"})
    assert reply.status == 415


def test_schema_violation_names_the_submitted_field(api):
    reply = api.post_form("website", {"email": "a@b.io", "first_name": "x" * 300, "message": ["not", "text"]})
    assert reply.status == 422
    fields = {e["field"] for e in reply.json["errors"]}
    assert fields == {"first_name", "message"}


def test_invalid_email_is_422(api):
    reply = api.post_form("website", {"email": "not-an-address"})
    assert reply.status == 422
    assert reply.json["errors"] == [{"field": "email", "message": "is not a valid email address"}]


def test_invalid_phone_with_an_email_keeps_the_lead_and_the_phone_as_typed(api):
    reply = api.post_form("website", {"email": "kim@orbit.dev", "phone": "12"})
    assert reply.status == 202
    lead = api.get_lead_by_email("kim@orbit.dev").json
    assert lead["phone"] is None
    assert lead["attributes"]["phone_unverified"] == "12"


def test_invalid_phone_alone_is_422(api):
    reply = api.post_form("website", {"phone": "12"})
    assert reply.status == 422
    assert reply.json["errors"][0]["field"] == "phone"


def test_junk_addresses_are_stored_as_disqualified_with_the_reason(api):
    for email, reason in (
        ("someone@mailinator.com", "disposable_email"),
        ("info@acme-widgets.com", "role_email"),
        ("test@acme-widgets.com", "test_email"),
    ):
        reply = api.post_form("website", {"email": email})
        assert reply.status == 202
        lead = api.get_lead_by_email(email).json
        assert lead["lifecycle_stage"] == "disqualified"
        assert reason in lead["disqualified_reasons"]


def test_double_submit_of_the_same_body_is_one_touch(api):
    first = api.post_form("website", FIELDS)
    second = api.post_form("website", FIELDS)
    assert first.json == second.json
    assert api.get_lead_by_email("ada@analytical-engines.co.uk").json["touches"]["count"] == 1


def test_urlencoded_repeated_fields_and_unknown_fields(api):
    body = urlencode(
        [
            ("email", "lin@tidal.dev"),
            ("message", "a"),
            ("message", "b"),
            ("utm_source", "x"),
            ("not_declared", "dropped"),
        ]
    )
    reply = api.request("POST", "/v1/forms/website", body, {"content-type": "application/x-www-form-urlencoded"})
    assert reply.status == 202
    lead = api.get_lead_by_email("lin@tidal.dev").json
    assert lead["attributes"]["message"] == "a, b"
    assert "not_declared" not in json.dumps(lead)
