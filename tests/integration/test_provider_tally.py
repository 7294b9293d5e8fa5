"""POST /v1/webhooks/tally: Tally `FORM_RESPONSE` deliveries (tally.so/help/webhooks)."""

from __future__ import annotations

import json

from tests.support.providers import assert_nothing_stored, encode, tally_headers
from tests.support.quarantine import assert_no_lead_stored, assert_quarantined, reasons

URL = "/v1/webhooks/tally"
EMAIL = "sofia.ramos@kestrel-labs.es"


def delivery(response_id: str = "2wgx4n") -> dict:
    """A FORM_RESPONSE event as Tally sends it (fake ids)."""
    return {
        "eventId": "a4cb511e-d513-4fa5-baee-b815d718dfd1",
        "eventType": "FORM_RESPONSE",
        "createdAt": "2026-11-22T10:00:21.889Z",
        "data": {
            "responseId": response_id,
            "submissionId": response_id,
            "respondentId": "dwQKYm",
            "formId": "VwbNEw",
            "formName": "Contact sales",
            "createdAt": "2026-11-22T10:00:20.000Z",
            "fields": [
                {"key": "question_3E1pAq", "label": "First name", "type": "INPUT_TEXT", "value": "Sofía"},
                {"key": "question_w4Q8Wd", "label": "Last name", "type": "INPUT_TEXT", "value": "Ramos"},
                {
                    "key": "question_3jZaa4",
                    "label": "Work email",
                    "type": "INPUT_EMAIL",
                    "value": "Sofia.Ramos@Kestrel-Labs.es",
                },
                {"key": "question_mOd4Yd", "label": "Phone", "type": "INPUT_PHONE_NUMBER", "value": "+34 612 34 56 78"},
                {"key": "question_nPBVYE", "label": "Company", "type": "INPUT_TEXT", "value": "Kestrel Labs"},
                {
                    "key": "question_wA6E7Y",
                    "label": "Team size",
                    "type": "MULTIPLE_CHOICE",
                    "value": ["opt-2"],
                    "options": [{"id": "opt-1", "text": "1-10"}, {"id": "opt-2", "text": "11-50"}],
                },
                {
                    "key": "question_3xJ0bP",
                    "label": "What are you interested in?",
                    "type": "CHECKBOXES",
                    "value": ["c-1", "c-3"],
                    "options": [
                        {"id": "c-1", "text": "Lead routing"},
                        {"id": "c-2", "text": "Scoring"},
                        {"id": "c-3", "text": "Attribution"},
                    ],
                },
                {
                    "key": "question_mV6aYr",
                    "label": "Marketing consent",
                    "type": "CHECKBOXES",
                    "value": ["y-1"],
                    "options": [{"id": "y-1", "text": "Yes, email me product news"}],
                },
                {
                    "key": "question_hidden",
                    "label": "Hidden fields",
                    "type": "HIDDEN_FIELDS",
                    "value": {
                        "utm_source": "google",
                        "utm_medium": "cpc",
                        "gclid": "Cj0KCQ-Tally_Gclid",
                        "ref": "blog",
                    },
                },
            ],
        },
    }


def post(api, document: dict, headers: dict | None = None, body: bytes | None = None):
    body = encode(document) if body is None else body
    return api.request("POST", URL, body, headers or tally_headers(body))


def test_valid_delivery_creates_the_lead_with_fields_consent_and_attribution(api):
    # Given a signed Tally response
    # When it is delivered
    reply = post(api, delivery())
    # Then it is acknowledged with the lead it created
    assert reply.status == 200
    assert reply.json["received"] == 1
    assert reply.json["leads"][0]["status"] == "created"
    # And labels became lead fields, option ids became option texts
    lead = api.get_lead_by_email(EMAIL).json
    assert (lead["first_name"], lead["last_name"]) == ("Sofía", "Ramos")
    assert lead["phone"] == "+34612345678"
    assert lead["company"] == "Kestrel Labs"
    assert lead["attributes"]["company_size"] == "11-50"
    assert lead["attributes"]["what_are_you_interested_in"] == ["Lead routing", "Attribution"]
    assert lead["attributes"]["ref"] == "blog"
    # And the ticked consent checkbox is email consent
    assert lead["consent"]["email"]["granted"] is True
    # And the hidden fields are the touch's attribution
    first = lead["attribution"]["first_touch"]
    assert first["source"] == "tally"
    assert (first["utm_source"], first["utm_medium"]) == ("google", "cpc")
    assert first["gclid"] == "Cj0KCQ-Tally_Gclid"
    assert first["captured_at"] == "2026-11-22T10:00:20.000Z"


def test_one_hidden_field_per_entry_is_also_tracking(api):
    # Given hidden fields sent one per entry (label = the hidden field's name)
    document = delivery()
    document["data"]["fields"][-1:] = [
        {"key": "h1", "label": "utm_campaign", "type": "HIDDEN_FIELDS", "value": "spring-launch"},
        {"key": "h2", "label": "fbclid", "type": "HIDDEN_FIELDS", "value": "IwAR_Tally"},
    ]
    assert post(api, document).status == 200
    first = api.get_lead_by_email(EMAIL).json["attribution"]["first_touch"]
    assert first["utm_campaign"] == "spring-launch"
    assert first["fbclid"] == "IwAR_Tally"


def test_body_signed_as_compact_json_but_reformatted_in_transit_is_accepted(api):
    # Given Tally's signature over JSON.stringify(payload) and a body re-indented on the way
    compact = json.dumps(delivery(), separators=(",", ":"), ensure_ascii=False).encode()
    pretty = json.dumps(delivery(), indent=2, ensure_ascii=False).encode()
    # Then it is the same signed content
    assert api.request("POST", URL, pretty, tally_headers(compact)).status == 200


def test_redelivery_of_the_same_response_changes_nothing(api):
    first = post(api, delivery())
    again = post(api, delivery())
    assert again.status == 200
    assert again.json == first.json
    assert api.get_lead_by_email(EMAIL).json["touches"]["count"] == 1


def test_tampered_body_is_401_and_stores_nothing(api, aws):
    body = encode(delivery())
    reply = api.request("POST", URL, body.replace(b"Kestrel Labs", b"Evil Corp"), tally_headers(body))
    assert reply.status == 401
    assert reply.headers["content-type"] == "application/problem+json"
    assert_nothing_stored(api, aws, EMAIL)


def test_wrong_secret_is_401_and_stores_nothing(api, aws):
    body = encode(delivery())
    assert post(api, delivery(), tally_headers(body, "not-the-tally-secret"), body).status == 401
    assert_nothing_stored(api, aws, EMAIL)


def test_missing_signature_header_is_401_and_stores_nothing(api, aws):
    assert post(api, delivery(), {"content-type": "application/json"}).status == 401
    assert_nothing_stored(api, aws, EMAIL)


def test_not_a_form_response_is_quarantined(api, aws):
    document = delivery()
    document["eventType"] = "FORM_DELETED"
    reply = post(api, document)
    assert list(reasons(assert_quarantined(reply, "tally"))) == ["eventType"]
    assert_no_lead_stored(aws)
