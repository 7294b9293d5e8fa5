"""POST /v1/webhooks/typeform: Typeform `form_response` deliveries (developers.typeform.com/webhooks)."""

from __future__ import annotations

import copy

from tests.support.providers import assert_nothing_stored, encode, typeform_headers
from tests.support.quarantine import assert_no_lead_stored, assert_quarantined, reasons

URL = "/v1/webhooks/typeform"
EMAIL = "lin.chen@orbit-analytics.io"


def delivery(token: str = "a3a12ec67a1365927098a606107fac15") -> dict:
    """A form_response as Typeform sends it (example-payload shape; fake ids)."""
    return {
        "event_id": "01HX3F5K9V2Q8R7T6Y5W4E3D2C",
        "event_type": "form_response",
        "form_response": {
            "form_id": "lT4Z3j",
            "token": token,
            "landed_at": "2026-11-22T09:58:10Z",
            "submitted_at": "2026-11-22T10:00:02Z",
            "hidden": {
                "utm_source": "linkedin",
                "utm_medium": "paid_social",
                "utm_campaign": "q4-demo",
                "li_fat_id": "li-Fat-ID_123",
                "partner": "acme-resellers",
            },
            "definition": {"id": "lT4Z3j", "title": "Book a demo", "fields": []},
            "answers": [
                {
                    "type": "text",
                    "text": "Lin",
                    "field": {"id": "f1", "ref": "first_name", "type": "short_text"},
                },
                {
                    "type": "text",
                    "text": "Chen",
                    "field": {"id": "f2", "ref": "last_name", "type": "short_text"},
                },
                {
                    "type": "email",
                    "email": "Lin.Chen@Orbit-Analytics.io",
                    "field": {"id": "f3", "ref": "work_email_question", "type": "email"},
                },
                {
                    "type": "phone_number",
                    "phone_number": "+16505550123",
                    "field": {"id": "f4", "ref": "phone", "type": "phone_number"},
                },
                {
                    "type": "text",
                    "text": "Orbit Analytics",
                    "field": {"id": "f5", "ref": "company", "type": "short_text"},
                },
                {
                    "type": "text",
                    "text": "Head of Growth",
                    "field": {"id": "f6", "ref": "job_title", "type": "short_text"},
                },
                {
                    "type": "choice",
                    "choice": {"label": "51-200"},
                    "field": {"id": "f7", "ref": "company_size", "type": "multiple_choice"},
                },
                {
                    "type": "choices",
                    "choices": {"labels": ["Attribution", "CRM sync"]},
                    "field": {"id": "f8", "ref": "interests", "type": "multiple_choice"},
                },
                {
                    "type": "number",
                    "number": 12,
                    "field": {"id": "f9", "ref": "seats", "type": "number"},
                },
                {
                    "type": "boolean",
                    "boolean": True,
                    "field": {"id": "f10", "ref": "consent_email", "type": "legal"},
                },
                {
                    "type": "text",
                    "text": "We need first-touch attribution.",
                    "field": {"id": "f11", "ref": "message", "type": "long_text"},
                },
            ],
        },
    }


def post(api, document: dict, headers: dict | None = None, body: bytes | None = None):
    body = encode(document) if body is None else body
    return api.request("POST", URL, body, headers or typeform_headers(body))


def test_valid_delivery_creates_the_lead_with_fields_consent_and_attribution(api):
    # Given a correctly signed Typeform response
    # When it is delivered
    reply = post(api, delivery())
    # Then it is acknowledged with the lead it created
    assert reply.status == 200
    assert reply.json["received"] == 1
    assert reply.json["leads"][0]["status"] == "created"
    # And the lead has the mapped answers
    lead = api.get_lead_by_email(EMAIL).json
    assert lead["lead_id"] == reply.json["leads"][0]["lead_id"]
    assert (lead["first_name"], lead["last_name"]) == ("Lin", "Chen")
    assert lead["phone"] == "+16505550123"
    assert (lead["company"], lead["job_title"]) == ("Orbit Analytics", "Head of Growth")
    assert lead["attributes"]["company_size"] == "51-200"
    assert lead["attributes"]["interests"] == ["Attribution", "CRM sync"]
    assert lead["attributes"]["seats"] == 12
    assert lead["attributes"]["message"] == "We need first-touch attribution."
    assert lead["attributes"]["partner"] == "acme-resellers"  # a hidden field that is not tracking
    # And the legal answer with ref consent_email is email consent
    assert lead["consent"]["email"]["granted"] is True
    assert lead["consent"]["email"]["source"] == "typeform"
    # And the hidden fields are the touch's attribution
    first = lead["attribution"]["first_touch"]
    assert first["source"] == "typeform"
    assert (first["utm_source"], first["utm_campaign"]) == ("linkedin", "q4-demo")
    assert first["li_fat_id"] == "li-Fat-ID_123"
    assert first["captured_at"] == "2026-11-22T10:00:02.000Z"  # Typeform's submitted_at


def test_redelivery_of_the_same_response_changes_nothing(api):
    # Given a response that was delivered once
    first = post(api, delivery())
    # When Typeform delivers it again (a retry)
    again = post(api, delivery())
    # Then the same answer comes back and the lead still has one touch
    assert again.status == 200
    assert again.json == first.json
    assert api.get_lead_by_email(EMAIL).json["touches"]["count"] == 1


def test_tampered_body_is_401_and_stores_nothing(api, aws):
    body = encode(delivery())
    headers = typeform_headers(body)
    reply = api.request("POST", URL, body.replace(b"Orbit Analytics", b"Evil Corp"), headers)
    assert reply.status == 401
    assert reply.headers["content-type"] == "application/problem+json"
    assert_nothing_stored(api, aws, EMAIL)


def test_wrong_secret_is_401_and_stores_nothing(api, aws):
    body = encode(delivery())
    assert post(api, delivery(), typeform_headers(body, "not-the-typeform-secret"), body).status == 401
    assert_nothing_stored(api, aws, EMAIL)


def test_missing_or_malformed_signature_header_is_401_and_stores_nothing(api, aws):
    body = encode(delivery())
    signature = typeform_headers(body)["typeform-signature"]
    for headers in (
        {"content-type": "application/json"},
        {"content-type": "application/json", "typeform-signature": signature.removeprefix("sha256=")},
        {"content-type": "application/json", "typeform-signature": "sha1=" + signature.removeprefix("sha256=")},
    ):
        assert api.request("POST", URL, body, headers).status == 401
    assert_nothing_stored(api, aws, EMAIL)


def test_answers_that_fail_validation_are_quarantined_with_typeform_paths(api, aws):
    # Given a signed response whose first-name answer is far too long
    document = delivery()
    document["form_response"]["answers"][0]["text"] = "x" * 500
    reply = post(api, document)
    # Then it is acknowledged and quarantined with the answer's path, and no lead is stored
    item = assert_quarantined(reply, "typeform")
    assert reasons(item)["form_response.answers.0"] == "must be at most 128 characters"
    assert_no_lead_stored(aws)


def test_response_without_email_or_phone_is_quarantined(api, aws):
    document = copy.deepcopy(delivery())
    document["form_response"]["answers"] = document["form_response"]["answers"][:2]
    assert list(reasons(assert_quarantined(post(api, document), "typeform"))) == ["email"]
    assert_no_lead_stored(aws)
