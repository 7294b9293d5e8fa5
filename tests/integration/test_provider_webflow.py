"""POST /v1/webhooks/webflow: Webflow `form_submission` deliveries (developers.webflow.com/reference/webhooks).

Field labels are mapped by the provider configuration (infra/local/webhooks.json in these tests), then by
label heuristics.
"""

from __future__ import annotations

import json
import time

from tests.support.providers import assert_nothing_stored, encode, webflow_headers

URL = "/v1/webhooks/webflow"
EMAIL = "noor.haddad@cedar-cloud.ae"


def delivery(submission_id: str = "6321ca84df3949bfc6752327") -> dict:
    """A form_submission as Webflow sends it (fake ids)."""
    return {
        "triggerType": "form_submission",
        "payload": {
            "name": "Demo request",
            "siteId": "65427cf400e02b306eaa049c",
            "data": {
                "Name": "Noor Haddad",
                "Your work email": "Noor.Haddad@Cedar-Cloud.ae",  # configured → email
                "Where do you work?": "Cedar Cloud",  # configured → company
                "Phone": "+971 4 555 0123",  # heuristic → phone
                "Budget (USD)": "25000",  # configured → attributes.budget
                "How did you hear about us?": "Podcast",  # unknown → attributes
                "utm_source": "bing",
                "utm_campaign": "mena-launch",
                "msclkid": "MsClk_Webflow_1",
            },
            "schema": [],
            "submittedAt": "2026-11-22T10:00:16.117Z",
            "id": submission_id,
            "formId": "65429eadebe8a9f3a30f62d0",
            "formElementId": "4e038d2c-6a1e-4953-7be9-a59a2b453177",
        },
    }


def post(api, document: dict, headers: dict | None = None, body: bytes | None = None):
    body = encode(document) if body is None else body
    return api.request("POST", URL, body, headers or webflow_headers(body))


def test_valid_delivery_maps_labels_by_configuration_then_heuristics(api):
    # Given a signed Webflow form submission
    # When it is delivered
    reply = post(api, delivery())
    # Then it is acknowledged with the lead it created
    assert reply.status == 200
    assert reply.json["received"] == 1
    assert reply.json["leads"][0]["status"] == "created"
    lead = api.get_lead_by_email(EMAIL).json
    # And configured labels went where the configuration says
    assert lead["company"] == "Cedar Cloud"
    assert lead["attributes"]["budget"] == "25000"
    # And the others by heuristics, or kept as attributes
    assert (lead["first_name"], lead["last_name"]) == ("Noor", "Haddad")
    assert lead["phone"] == "+97145550123"
    assert lead["attributes"]["how_did_you_hear_about_us"] == "Podcast"
    assert lead["attributes"]["webflow_form_name"] == "Demo request"
    # And the utm fields and click id are the touch's attribution
    first = lead["attribution"]["first_touch"]
    assert first["source"] == "webflow"
    assert (first["utm_source"], first["utm_campaign"]) == ("bing", "mena-launch")
    assert first["msclkid"] == "MsClk_Webflow_1"
    assert first["captured_at"] == "2026-11-22T10:00:16.117Z"


def test_configuration_is_read_from_the_file_the_environment_names(api, monkeypatch, tmp_path):
    # Given a provider configuration that maps "How did you hear about us?" to a lead attribute of our choice
    config = tmp_path / "webhooks.json"
    fields = {"Your work email": "email", "How did you hear about us?": "attributes.channel"}
    config.write_text(json.dumps({"webflow": {"fields": fields}}))
    monkeypatch.setenv("LEADFLOW_WEBHOOKS_FILE", str(config))
    from leadflow.config import settings

    settings.cache_clear()
    # When a submission arrives
    assert post(api, delivery()).status == 200
    # Then the label went where that configuration says (and the default file's labels fell back to heuristics)
    lead = api.get_lead_by_email("noor.haddad@cedar-cloud.ae").json
    assert lead["attributes"]["channel"] == "Podcast"
    assert lead["attributes"]["where_do_you_work"] == "Cedar Cloud"


def test_redelivery_of_the_same_submission_changes_nothing(api):
    first = post(api, delivery())
    again = post(api, delivery())  # Webflow's retry: same payload.id, fresh timestamp and signature
    assert again.status == 200
    assert again.json == first.json
    assert api.get_lead_by_email(EMAIL).json["touches"]["count"] == 1


def test_tampered_body_is_401_and_stores_nothing(api, aws):
    body = encode(delivery())
    reply = api.request("POST", URL, body.replace(b"Cedar Cloud", b"Evil Corp"), webflow_headers(body))
    assert reply.status == 401
    assert reply.headers["content-type"] == "application/problem+json"
    assert_nothing_stored(api, aws, EMAIL)


def test_wrong_secret_is_401_and_stores_nothing(api, aws):
    body = encode(delivery())
    assert post(api, delivery(), webflow_headers(body, "not-the-webflow-secret"), body).status == 401
    assert_nothing_stored(api, aws, EMAIL)


def test_missing_signature_or_timestamp_header_is_401_and_stores_nothing(api, aws):
    body = encode(delivery())
    headers = webflow_headers(body)
    for missing in ("x-webflow-signature", "x-webflow-timestamp"):
        partial = {k: v for k, v in headers.items() if k != missing}
        assert api.request("POST", URL, body, partial).status == 401, missing
    assert_nothing_stored(api, aws, EMAIL)


def test_stale_or_future_timestamp_is_401_and_stores_nothing(api, aws):
    body = encode(delivery())
    now_ms = int(time.time() * 1000)
    for skew_ms in (-6 * 60 * 1000, 6 * 60 * 1000):
        assert post(api, delivery(), webflow_headers(body, timestamp_ms=now_ms + skew_ms), body).status == 401
    assert_nothing_stored(api, aws, EMAIL)


def test_timestamp_in_seconds_is_not_accepted_as_milliseconds(api, aws):
    # A seconds value read as milliseconds is 1970: outside the window, whatever the signature
    body = encode(delivery())
    assert post(api, delivery(), webflow_headers(body, timestamp_ms=int(time.time())), body).status == 401
    assert_nothing_stored(api, aws, EMAIL)
