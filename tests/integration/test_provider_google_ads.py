"""POST /v1/webhooks/google-ads: Google Ads lead form webhook (developers.google.com/google-ads/webhook/docs)."""

from __future__ import annotations

from tests.support.providers import assert_nothing_stored, encode
from tests.support.quarantine import assert_no_lead_stored, assert_quarantined, reasons
from tests.support.signing import dev_secret

URL = "/v1/webhooks/google-ads"
EMAIL = "kwame.mensah@baobab-freight.com"
HEADERS = {"content-type": "application/json"}


def delivery(lead_id: str = "TeSter-123-ABCDEFGHIJKLMNOPQRSTUVWXYZ-abcdefghijklmnopqrstuvwxyz", **extra) -> dict:
    """A WebhookLead as Google sends it (fake ids; the key is the development secret)."""
    return {
        "lead_id": lead_id,
        "user_column_data": [
            {"column_name": "Full Name", "string_value": "Kwame Mensah", "column_id": "FULL_NAME"},
            {"column_name": "User Email", "string_value": "Kwame.Mensah@Baobab-Freight.com", "column_id": "EMAIL"},
            {"column_name": "Work email", "string_value": "kwame@work.example", "column_id": "WORK_EMAIL"},
            {"column_name": "User Phone", "string_value": "+233 30 255 5123", "column_id": "PHONE_NUMBER"},
            {"column_name": "Company Name", "string_value": "Baobab Freight", "column_id": "COMPANY_NAME"},
            {"column_name": "Job Title", "string_value": "Logistics Director", "column_id": "JOB_TITLE"},
            {"column_name": "Country", "string_value": "Ghana", "column_id": "COUNTRY"},
            {"column_name": "City", "string_value": "Accra", "column_id": "CITY"},
            {"column_name": "Fleet size?", "string_value": "40 trucks", "column_id": "FLEET_SIZE_QUESTION"},
        ],
        "api_version": "1.0",
        "form_id": 40000000002,
        "campaign_id": 20000000001,
        "adgroup_id": 30000000003,
        "creative_id": 50000000004,
        "google_key": dev_secret("webhooks/google-ads")["google_key"],
        "is_test": False,
        "gcl_id": "EAIaIQobChMI_GoogleAds-Lead",
        "lead_stage": "SUBMITTED",
        "lead_submit_time": "2026-11-22T10:00:05Z",
        **extra,
    }


def post(api, document: dict):
    return api.request("POST", URL, encode(document), HEADERS)


def test_valid_lead_is_stored_with_columns_gclid_and_campaign_ids(api):
    # Given a lead from a Google Ads lead form with the configured key
    # When Google delivers it
    reply = post(api, delivery())
    # Then it is acknowledged (200) with the lead it created
    assert reply.status == 200
    assert reply.json["received"] == 1
    assert reply.json["leads"][0]["status"] == "created"
    lead = api.get_lead_by_email(EMAIL).json
    # And the columns are mapped by column_id
    assert (lead["first_name"], lead["last_name"]) == ("Kwame", "Mensah")
    assert lead["phone"] == "+233302555123"
    assert (lead["company"], lead["job_title"], lead["country"]) == ("Baobab Freight", "Logistics Director", "GH")
    assert lead["attributes"]["work_email"] == "kwame@work.example"  # EMAIL was given: WORK_EMAIL kept aside
    assert lead["attributes"]["city"] == "Accra"
    assert lead["attributes"]["fleet_size_question"] == "40 trucks"
    # And the campaign, ad group, creative and form ids are kept exactly (int64, as strings)
    assert lead["attributes"]["google_ads_campaign_id"] == "20000000001"
    assert lead["attributes"]["google_ads_adgroup_id"] == "30000000003"
    assert lead["attributes"]["google_ads_creative_id"] == "50000000004"
    assert lead["attributes"]["google_ads_form_id"] == "40000000002"
    # And the click id is the touch's gclid
    first = lead["attribution"]["first_touch"]
    assert first["source"] == "google-ads"
    assert first["gclid"] == "EAIaIQobChMI_GoogleAds-Lead"
    assert first["captured_at"] == "2026-11-22T10:00:05.000Z"
    assert "is_test" not in lead


def test_test_lead_is_answered_200_and_marked_as_test(api):
    # Given the "Send test data" button of the Google Ads lead form
    reply = post(api, delivery(lead_id="TeSter-test-lead-1", is_test=True))
    # Then Google sees success, and the lead is marked as a test lead
    assert reply.status == 200
    assert api.get_lead_by_email(EMAIL).json["is_test"] is True


def test_work_email_fills_email_when_no_email_column(api):
    document = delivery()
    document["user_column_data"] = [c for c in document["user_column_data"] if c["column_id"] != "EMAIL"]
    assert post(api, document).status == 200
    assert api.get_lead_by_email("kwame@work.example").status == 200


def test_resent_lead_changes_nothing(api):
    first = post(api, delivery())
    again = post(api, delivery())
    assert again.status == 200
    assert again.json == first.json
    assert api.get_lead_by_email(EMAIL).json["touches"]["count"] == 1


def test_same_lead_id_with_another_email_is_still_the_same_delivery(api):
    # Google's lead_id is the identity of the lead: a resend is never a second lead
    first = post(api, delivery())
    document = delivery()
    document["user_column_data"][1]["string_value"] = "other@baobab-freight.com"
    assert post(api, document).json == first.json
    assert api.get_lead_by_email("other@baobab-freight.com").status == 404


def test_wrong_key_is_401_and_stores_nothing(api, aws):
    reply = post(api, delivery(google_key="not-the-key"))
    assert reply.status == 401
    assert reply.headers["content-type"] == "application/problem+json"
    assert_nothing_stored(api, aws, EMAIL)


def test_missing_key_is_401_and_stores_nothing(api, aws):
    document = delivery()
    del document["google_key"]
    assert post(api, document).status == 401
    assert post(api, delivery(google_key=None)).status == 401
    assert_nothing_stored(api, aws, EMAIL)


def test_tampered_key_in_a_valid_looking_lead_is_401(api, aws):
    # the key is the only authentication: a changed key with everything else intact is refused
    key = dev_secret("webhooks/google-ads")["google_key"]
    assert post(api, delivery(google_key=key + "x")).status == 401
    assert post(api, delivery(google_key=key[:-1])).status == 401
    assert_nothing_stored(api, aws, EMAIL)


def test_malformed_json_is_400_before_the_key_is_checked(api, aws):
    reply = api.request("POST", URL, b'{"lead_id": "x", "google_key": ', HEADERS)
    assert reply.status == 400
    assert_nothing_stored(api, aws, EMAIL)


def test_invalid_column_value_is_quarantined_with_the_column_path(api, aws):
    document = delivery()
    document["user_column_data"][0]["string_value"] = "x" * 300
    reply = post(api, document)
    item = assert_quarantined(reply, "google-ads")
    assert reasons(item)["user_column_data.0"] == "must be at most 256 characters"
    assert_no_lead_stored(aws)
