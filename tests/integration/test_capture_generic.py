"""POST /v1/webhooks/generic: Standard Webhooks signed lead events."""

from __future__ import annotations

import json
import time

from tests.support.quarantine import assert_no_lead_stored, assert_quarantined, reasons
from tests.support.signing import dev_secret, standard_webhook_headers

LEAD = {
    "email": "  Grace.Hopper@Navy-Labs.io ",
    "phone": "(415) 555-2671",
    "first_name": " Grace ",
    "last_name": "Hopper",
    "company": "Navy Labs",
    "job_title": "Rear Admiral",
    "company_size": "1,000+",
    "industry": "Defense",
    "country": "United States",
    "utm_source": "newsletter",
    "utm_medium": "email",
    "utm_campaign": "cobol-launch",
    "gclid": "EAIaIQobChMI-Case_Sensitive",
    "page_url": "https://www.navy-labs.io/pricing?utm_content=hero&fbclid=IwAR_MixedCase",
    "referrer": "https://news.example.org/",
    "consent_email": True,
    "attributes": {"budget": "50k", "timeline": "Q1"},
}


def test_valid_delivery_creates_the_lead_with_fields_and_attribution(api):
    # Given a correctly signed lead.submitted event
    # When it is delivered
    reply = api.post_generic(LEAD, "msg_001")
    # Then it is acknowledged with the lead it created
    assert reply.status == 200
    assert reply.json["received"] == 1
    lead_id = reply.json["leads"][0]["lead_id"]
    assert reply.json["leads"][0]["status"] == "created"
    # And the lead reads back normalised, with its attribution
    lead = api.request("GET", f"/v1/leads/{lead_id}").json
    assert lead["email"] == "grace.hopper@navy-labs.io"
    assert lead["phone"] == "+14155552671"
    assert (lead["first_name"], lead["last_name"]) == ("Grace", "Hopper")
    assert lead["country"] == "US"
    assert lead["attributes"]["company_size"] == "1001-5000"
    assert lead["attributes"]["budget"] == "50k"
    assert lead["lifecycle_stage"] == "lead"
    assert lead["consent"]["email"]["granted"] is True
    first = lead["attribution"]["first_touch"]
    assert first["source"] == "generic"
    assert first["utm_campaign"] == "cobol-launch"
    assert first["utm_content"] == "hero"  # from the landing URL's query string
    assert first["gclid"] == "EAIaIQobChMI-Case_Sensitive"  # never re-cased
    assert first["fbclid"] == "IwAR_MixedCase"
    assert first["fbc"].startswith("fb.1.") and first["fbc"].endswith(".IwAR_MixedCase")
    assert first["landing_url"].startswith("https://www.navy-labs.io/pricing")
    assert lead["attribution"]["click_ids"]["gclid"]["value"] == "EAIaIQobChMI-Case_Sensitive"
    assert lead["attribution"]["click_ids"]["gclid"]["captured_at"] == first["captured_at"]
    assert lead["touches"]["count"] == 1


def _lead_count_by_email(api, email: str) -> int:
    return 1 if api.get_lead_by_email(email).status == 200 else 0


def test_redelivery_five_times_is_one_lead_and_one_touch(api):
    # Given one event
    answers = [api.post_generic(LEAD, "msg_redelivered") for _ in range(5)]
    # Then every delivery got the same answer
    assert all(a.status == 200 for a in answers)
    assert len({json.dumps(a.json, sort_keys=True) for a in answers}) == 1
    assert answers[0].json["leads"][0]["status"] == "created"
    # And there is one lead with one touch
    lead = api.get_lead_by_email("grace.hopper@navy-labs.io").json
    assert lead["touches"]["count"] == 1
    assert lead["version"] == 1


def _assert_nothing_stored(api, aws):
    assert api.get_lead_by_email("grace.hopper@navy-labs.io").status == 404
    # not even a delivery or identity record
    from leadflow.config import settings

    assert aws.scan(TableName=settings().table_name, Select="COUNT")["Count"] == 0


def _signed(msg_id="msg_sig", timestamp=None, secret=None):
    body = json.dumps({"type": "lead.submitted", "data": LEAD}).encode()
    return body, standard_webhook_headers(body, secret or dev_secret("webhooks/generic"), msg_id, timestamp)


def test_tampered_body_is_401_and_stores_nothing(api, aws):
    body, headers = _signed()
    tampered = body.replace(b"Navy Labs", b"Evil Corp")
    reply = api.request("POST", "/v1/webhooks/generic", tampered, headers)
    assert reply.status == 401
    assert reply.headers["content-type"] == "application/problem+json"
    _assert_nothing_stored(api, aws)


def test_wrong_secret_is_401_and_stores_nothing(api, aws):
    body, headers = _signed(secret="whsec_" + "d3Jvbmcgc2VjcmV0IHdyb25nIHNlY3JldCE=")
    assert api.request("POST", "/v1/webhooks/generic", body, headers).status == 401
    _assert_nothing_stored(api, aws)


def test_missing_signature_header_is_401_and_stores_nothing(api, aws):
    body, headers = _signed()
    for missing in ("webhook-signature", "webhook-id", "webhook-timestamp"):
        partial = {k: v for k, v in headers.items() if k != missing}
        reply = api.request("POST", "/v1/webhooks/generic", body, partial)
        assert reply.status == 401, missing
    _assert_nothing_stored(api, aws)


def test_stale_or_future_timestamp_is_401_and_stores_nothing(api, aws):
    for skew in (-600, 600):
        body, headers = _signed(timestamp=int(time.time()) + skew)
        assert api.request("POST", "/v1/webhooks/generic", body, headers).status == 401
    _assert_nothing_stored(api, aws)


def test_malformed_json_is_400(api, aws):
    body = b'{"type": "lead.submitted", "data": {'
    headers = standard_webhook_headers(body, dev_secret("webhooks/generic"), "msg_bad")
    reply = api.request("POST", "/v1/webhooks/generic", body, headers)
    assert reply.status == 400
    assert reply.json["title"] == "Malformed body"
    _assert_nothing_stored(api, aws)


def test_unsupported_media_type_is_415(api, aws):
    body, headers = _signed()
    reply = api.request("POST", "/v1/webhooks/generic", body, {**headers, "content-type": "text/xml"})
    assert reply.status == 415
    _assert_nothing_stored(api, aws)


def test_oversize_body_is_413(api, aws):
    big = dict(LEAD, attributes={"notes": "x" * 4000})
    body = json.dumps({"type": "lead.submitted", "data": big, "pad": "y" * (256 * 1024)}).encode()
    headers = standard_webhook_headers(body, dev_secret("webhooks/generic"), "msg_big")
    assert api.request("POST", "/v1/webhooks/generic", body, headers).status == 413
    _assert_nothing_stored(api, aws)


def test_schema_violation_is_quarantined_with_field_paths(api, aws):
    # Given a signed delivery the schema refuses
    bad = {"email": 42, "first_name": "x" * 500, "favourite_colour": "teal"}
    reply = api.post_generic(bad, "msg_422")
    # Then it is acknowledged (the sender must not retry it) and quarantined with the field paths
    fields = reasons(assert_quarantined(reply, "generic"))
    assert fields["data.email"] == "must be of type string"
    assert fields["data.first_name"] == "must be at most 128 characters"
    assert fields["data.favourite_colour"] == "is not a known field"
    assert "teal" not in json.dumps(fields)
    assert_no_lead_stored(aws)


def test_neither_email_nor_phone_is_quarantined(api, aws):
    reply = api.post_generic({"first_name": "Anonymous"}, "msg_anon")
    item = assert_quarantined(reply, "generic")
    assert item["reason"] == [{"field": "email", "message": "email or phone is required to identify the lead"}]
    assert_no_lead_stored(aws)


def test_unknown_provider_is_404(api):
    reply = api.request("POST", "/v1/webhooks/nobody", b"{}", {"content-type": "application/json"})
    assert reply.status == 404
