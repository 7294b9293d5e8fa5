"""POST /v1/webhooks/hubspot-forms: HubSpot Forms v3 submissions, judged by the form registry entry `hubspot-forms`."""

from __future__ import annotations

from tests.support.providers import assert_nothing_stored, encode

URL = "/v1/webhooks/hubspot-forms"
EMAIL = "mei.tanaka@sakura-robotics.jp"
BROWSER = {"content-type": "application/json", "origin": "http://localhost:8080"}


def submission(**context) -> dict:
    """A body as HubSpot's forms embed posts it to /submissions/v3/integration/submit/{portalId}/{formGuid}."""
    return {
        "submittedAt": "1795312800000",
        "fields": [
            {"objectTypeId": "0-1", "name": "email", "value": "Mei.Tanaka@Sakura-Robotics.jp"},
            {"objectTypeId": "0-1", "name": "firstname", "value": "Mei"},
            {"objectTypeId": "0-1", "name": "lastname", "value": "Tanaka"},
            {"objectTypeId": "0-1", "name": "jobtitle", "value": "CTO"},
            {"objectTypeId": "0-2", "name": "name", "value": "Sakura Robotics"},
            {"objectTypeId": "0-1", "name": "hs_persona", "value": "persona_1"},
            {"objectTypeId": "0-1", "name": "favourite_colour", "value": "teal"},  # not declared: not stored
        ],
        "context": {
            "hutk": "ab12cd34ef56ab12cd34ef56ab12cd34",
            "pageUri": "https://www.example.com/demo?utm_source=google&utm_medium=cpc&gclid=Cj0_HubSpot",
            "pageName": "Book a demo",
            "ipAddress": "203.0.113.7",
            **context,
        },
        "legalConsentOptions": {
            "consent": {
                "consentToProcess": True,
                "text": "I agree to allow Example Company to store and process my personal data.",
                "communications": [
                    {
                        "value": True,
                        "subscriptionTypeId": 999,
                        "text": "I agree to receive marketing communications from Example Company.",
                    }
                ],
            }
        },
    }


def post(api, document: dict, headers: dict | None = None):
    return api.request("POST", URL, encode(document), headers or BROWSER)


def test_submission_from_an_allowed_origin_creates_the_lead(api):
    # Given a HubSpot front end on an allowed origin
    # When it submits the form
    reply = post(api, submission())
    # Then it gets HubSpot's inline message next to LeadFlow's answer, with CORS for its origin
    assert reply.status == 200
    assert reply.json["inlineMessage"] == "Thanks for submitting the form."
    assert reply.json["received"] == 1
    assert reply.json["leads"][0]["status"] == "created"
    assert reply.headers["access-control-allow-origin"] == "http://localhost:8080"
    # And the lead has the declared fields, mapped by the registry entry
    lead = api.get_lead_by_email(EMAIL).json
    assert (lead["first_name"], lead["last_name"], lead["job_title"]) == ("Mei", "Tanaka", "CTO")
    assert lead["company"] == "Sakura Robotics"  # the company object's name (0-2)
    assert lead["attributes"]["hs_persona"] == "persona_1"
    assert "favourite_colour" not in lead["attributes"]
    assert lead["attributes"]["hubspotutk"] == "ab12cd34ef56ab12cd34ef56ab12cd34"
    assert lead["attributes"]["hubspot_page_name"] == "Book a demo"
    assert "203.0.113.7" not in str(lead)  # the visitor's IP is not kept
    # And consent to process plus a ticked communication is email consent
    assert lead["consent"]["email"]["granted"] is True
    # And the page URI is the landing URL, whose query string gives the attribution
    first = lead["attribution"]["first_touch"]
    assert first["source"] == "hubspot-forms"
    assert first["landing_url"].startswith("https://www.example.com/demo")
    assert (first["utm_source"], first["utm_medium"], first["gclid"]) == ("google", "cpc", "Cj0_HubSpot")


def test_unticked_communications_are_no_email_consent(api):
    document = submission()
    document["legalConsentOptions"]["consent"]["communications"][0]["value"] = False
    assert post(api, document).status == 200
    assert api.get_lead_by_email(EMAIL).json["consent"]["email"]["granted"] is False


def test_server_side_post_without_origin_is_judged_by_the_other_rules(api):
    reply = post(api, submission(), {"content-type": "application/json"})
    assert reply.status == 200
    assert "access-control-allow-origin" not in reply.headers


def test_double_submit_is_one_touch(api):
    # Given the same submission twice (a double click): same fingerprint within the hour
    first = post(api, submission())
    again = post(api, submission())
    # Then the same answer, and one touch
    assert again.status == 200
    assert again.json == first.json
    assert api.get_lead_by_email(EMAIL).json["touches"]["count"] == 1


def test_foreign_origin_is_403_and_stores_nothing(api, aws):
    reply = post(api, submission(), {"content-type": "application/json", "origin": "https://phishing.example.net"})
    assert reply.status == 403
    assert reply.headers["content-type"] == "application/problem+json"
    assert_nothing_stored(api, aws, EMAIL)


def test_honeypot_is_answered_as_success_and_stores_nothing(api, aws):
    document = submission()
    document["fields"].append({"objectTypeId": "0-1", "name": "_hp", "value": "http://spam.example"})
    reply = post(api, document)
    assert reply.status == 200
    assert reply.json["inlineMessage"] == "Thanks for submitting the form."
    assert_nothing_stored(api, aws, EMAIL)


def test_submission_without_email_or_phone_is_422(api, aws):
    document = submission()
    document["fields"] = [f for f in document["fields"] if f["name"] != "email"]
    assert post(api, document).status == 422
    assert_nothing_stored(api, aws, EMAIL)


def test_invalid_field_is_422_with_the_field_path(api, aws):
    document = submission()
    document["fields"][1]["value"] = "x" * 300
    reply = post(api, document)
    assert reply.status == 422
    assert {"field": "fields.1", "message": "must be at most 128 characters"} in reply.json["errors"]
    assert_nothing_stored(api, aws, EMAIL)


def test_cors_preflight_is_answered_for_allowed_origins_only(api):
    # Given a HubSpot front end about to post JSON cross-origin
    allowed = api.request(
        "OPTIONS",
        "/v1/webhooks/hubspot-forms",
        headers={"origin": "http://localhost:8080", "access-control-request-method": "POST"},
    )
    # Then the browser is told it may, for that origin only
    assert allowed.status == 204
    assert allowed.headers["access-control-allow-origin"] == "http://localhost:8080"
    assert "POST" in allowed.headers["access-control-allow-methods"]
    # And a foreign origin is refused; providers that browsers never post to have no preflight
    assert (
        api.request("OPTIONS", "/v1/webhooks/hubspot-forms", headers={"origin": "https://evil.example"}).status == 403
    )
    assert api.request("OPTIONS", "/v1/webhooks/typeform", headers={"origin": "http://localhost:8080"}).status == 405
