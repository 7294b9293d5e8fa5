"""POST/GET /v1/webhooks/linkedin: LinkedIn Lead Sync (validation challenge, X-LI-Signature, fetched lead).

Deliveries follow learn.microsoft.com/en-us/linkedin/shared/api-guide/webhook-validation and
learn.microsoft.com/en-us/linkedin/marketing/lead-sync/leadsync; ids and secrets are fake.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.fake_api import start_fake_api
from tests.support.fetch import fetch_queues
from tests.support.quarantine import assert_quarantined, reasons
from tests.support.signing import dev_secret

CLIENT_SECRET = dev_secret("webhooks/linkedin")["client_secret"]
ACCESS_TOKEN = dev_secret("webhooks/linkedin")["access_token"]
RESPONSE_URN = "urn:li:leadGenFormResponse:3afb1f0b-6a46-4b0c-9a2b-6d2f2c1a9e01"
NOTIFICATION = {
    "type": "LEAD_ACTION",
    "leadGenFormResponse": RESPONSE_URN,
    "owner": {"sponsoredAccount": "urn:li:sponsoredAccount:508420123"},
    "associatedEntity": {"sponsoredCreative": "urn:li:sponsoredCreative:771230"},
    "leadGenForm": "urn:li:versionedLeadGenForm:(urn:li:leadGenForm:4466221,1)",
    "leadType": "SPONSORED",
    "leadAction": "CREATED",
    "occurredAt": 1763805600000,
}
FORM = {
    "id": 4466221,
    "content": {
        "questions": [
            {"questionId": 11, "name": "firstName", "predefinedField": "FIRST_NAME"},
            {"questionId": 12, "name": "lastName", "predefinedField": "LAST_NAME"},
            {"questionId": 13, "name": "email", "predefinedField": "EMAIL"},
            {"questionId": 14, "name": "phoneNumber", "predefinedField": "PHONE_NUMBER"},
            {"questionId": 15, "name": "company", "predefinedField": "COMPANY_NAME"},
            {"questionId": 16, "name": "title", "predefinedField": "JOB_TITLE"},
            {"questionId": 17, "name": "country", "predefinedField": "COUNTRY"},
            {"questionId": 18, "name": "Budget range"},
        ]
    },
}


def _text(question_id: int, answer: str) -> dict:
    return {"questionId": question_id, "answerDetails": {"textQuestionAnswer": {"answer": answer}}}


FORM_RESPONSE = {
    "id": "3afb1f0b-6a46-4b0c-9a2b-6d2f2c1a9e01",
    "owner": {"sponsoredAccount": "urn:li:sponsoredAccount:508420123"},
    "submitter": "urn:li:person:AbC123xyz",
    "leadType": "SPONSORED",
    "versionedLeadGenFormUrn": "urn:li:versionedLeadGenForm:(urn:li:leadGenForm:4466221,1)",
    "leadMetadata": {"sponsoredLeadMetadata": {"campaign": "urn:li:sponsoredCampaign:3344556"}},
    "associatedEntity": {"associatedCreative": "urn:li:sponsoredCreative:771230"},
    "submittedAt": 1763805590000,
    "testLead": False,
    "formResponse": {
        "answers": [
            _text(11, "Ada"),
            _text(12, "Lovelace"),
            _text(13, "Ada@Analytical-Engines.co.uk"),
            _text(14, "+44 20 7946 0958"),
            _text(15, "Analytical Engines"),
            _text(16, "CTO"),
            _text(17, "United Kingdom"),
            {"questionId": 18, "answerDetails": {"multipleChoiceAnswer": {"options": ["50k-100k"]}}},
        ],
        "consentResponses": [{"consentId": 901, "accepted": True}],
    },
}
RESPONSE_PATH = "/rest/leadFormResponses/3afb1f0b-6a46-4b0c-9a2b-6d2f2c1a9e01"
FORM_PATH = "/rest/leadForms/4466221"


def li_signature(body: bytes, secret: str = CLIENT_SECRET) -> str:
    """LinkedIn: hex(HMAC-SHA256(key=clientSecret, msg="hmacsha256=" + raw body))."""
    return hmac.new(secret.encode(), b"hmacsha256=" + body, hashlib.sha256).hexdigest()


def _post(api, document: dict | None = None, *, body: bytes | None = None, headers: dict | None = None):
    raw = body if body is not None else json.dumps(document or NOTIFICATION).encode()
    sent = {"content-type": "application/json", "x-li-signature": li_signature(raw)} if headers is None else headers
    return api.request("POST", "/v1/webhooks/linkedin", raw, sent)


@pytest.fixture
def linkedin(aws, monkeypatch):
    """The fetch queue from the template, and a scripted LinkedIn API on 127.0.0.1."""
    from leadflow.sources import linkedin as module

    platform, server = start_fake_api()
    monkeypatch.setenv("LEADFLOW_LINKEDIN_API_URL", platform.url)
    module._form_questions.cache_clear()
    platform.answer(RESPONSE_PATH, (200, FORM_RESPONSE))
    platform.answer(FORM_PATH, (200, FORM))
    yield platform, fetch_queues(monkeypatch)
    server.shutdown()
    module._form_questions.cache_clear()


def test_validation_challenge_is_answered_with_the_hmac_of_the_code(api):
    # Given LinkedIn's validation GET with a challenge code
    code = "890e4665-4dfe-4ab1-b689-d6a1b1bba8e4"
    # When it arrives
    started = time.monotonic()
    reply = api.request("GET", f"/v1/webhooks/linkedin?challengeCode={code}")
    # Then it is answered at once, 200 JSON, with the hex HMAC-SHA256 of the code keyed by the client secret
    assert time.monotonic() - started < 3.0  # no outbound call; slack for a loaded machine
    assert reply.status == 200
    assert reply.headers["content-type"] == "application/json"
    expected = hmac.new(CLIENT_SECRET.encode(), code.encode(), hashlib.sha256).hexdigest()
    assert reply.json == {"challengeCode": code, "challengeResponse": expected}


def test_validation_without_a_challenge_code_is_400(api):
    assert api.request("GET", "/v1/webhooks/linkedin").status == 400


def test_created_lead_is_acknowledged_then_fetched_with_fields_and_attribution(api, linkedin):
    platform, queues = linkedin
    # Given a correctly signed LEAD_ACTION CREATED notification
    # When it is delivered
    reply = _post(api)
    # Then it is acknowledged at once, before anything is fetched
    assert reply.status == 200
    assert reply.json == {"received": 1}
    assert platform.calls == []
    assert api.get_lead_by_email("ada@analytical-engines.co.uk").status == 404
    # When the fetch queue is drained against the LinkedIn API
    queues.drain()
    # Then the form response was fetched with the access token and LinkedIn's versioned API headers
    (call,) = platform.calls_to(RESPONSE_PATH)
    assert call.headers["authorization"] == f"Bearer {ACCESS_TOKEN}"
    assert call.headers["x-restli-protocol-version"] == "2.0.0"
    assert call.headers["linkedin-version"].isdigit()
    # And the lead exists with the mapped answers, custom question and ad context
    lead = api.get_lead_by_email("ada@analytical-engines.co.uk").json
    assert (lead["first_name"], lead["last_name"]) == ("Ada", "Lovelace")
    assert lead["phone"] == "+442079460958"
    assert (lead["company"], lead["job_title"], lead["country"]) == ("Analytical Engines", "CTO", "GB")
    assert lead["attributes"]["budget_range"] == "50k-100k"
    assert lead["attributes"]["linkedin_campaign"] == "urn:li:sponsoredCampaign:3344556"
    assert lead["attributes"]["linkedin_creative"] == "urn:li:sponsoredCreative:771230"
    assert lead["attributes"]["linkedin_form"] == FORM_RESPONSE["versionedLeadGenFormUrn"]
    assert lead["attributes"]["linkedin_consent_901"] is True
    assert lead["attribution"]["first_touch"]["source"] == "linkedin"
    assert lead["touches"]["count"] == 1
    assert queues.count(queues.dlq_url) == 0


def test_redelivered_notification_creates_nothing_new(api, linkedin):
    platform, queues = linkedin
    # Given a notification already delivered and fetched
    assert _post(api).status == 200
    queues.drain()
    lead = api.get_lead_by_email("ada@analytical-engines.co.uk").json
    # When LinkedIn delivers it again (it says it may)
    assert _post(api).json == {"received": 1}
    queues.drain()
    # Then the lead is unchanged: one touch, same version
    again = api.get_lead_by_email("ada@analytical-engines.co.uk").json
    assert again["lead_id"] == lead["lead_id"]
    assert (again["touches"]["count"], again["version"]) == (1, lead["version"])


def test_deleted_action_is_acknowledged_and_creates_nothing(api, linkedin, aws):
    platform, queues = linkedin
    # Given a DELETED lead action
    reply = _post(api, {**NOTIFICATION, "leadAction": "DELETED"})
    # Then it is acknowledged, nothing is queued or fetched
    assert reply.status == 200 and reply.json == {"received": 0}
    assert queues.count(queues.queue_url) == 0
    queues.drain()
    assert platform.calls == []


def _assert_nothing_stored_or_queued(api, aws, queues):
    from leadflow.config import settings

    assert aws.scan(TableName=settings().table_name, Select="COUNT")["Count"] == 0
    assert queues.count(queues.queue_url) == 0


def test_bad_signature_is_401_and_nothing_is_stored_or_queued(api, aws, linkedin):
    platform, queues = linkedin
    body = json.dumps(NOTIFICATION).encode()
    good = {"content-type": "application/json", "x-li-signature": li_signature(body)}
    # Given signed notifications spoiled in each way a forger would
    cases = {
        "tampered body": (body.replace(b"CREATED", b"CREATED ", 1), good),
        "wrong secret": (body, {**good, "x-li-signature": li_signature(body, "not-the-client-secret")}),
        "missing header": (body, {"content-type": "application/json"}),
        "no hmacsha256= prefix signed": (
            body,
            {**good, "x-li-signature": hmac.new(CLIENT_SECRET.encode(), body, hashlib.sha256).hexdigest()},
        ),
    }
    for case, (sent_body, headers) in cases.items():
        # When they are delivered
        reply = _post(api, body=sent_body, headers=headers)
        # Then each is refused with a problem document
        assert reply.status == 401, case
        assert reply.headers["content-type"] == "application/problem+json", case
    # And nothing was stored or queued
    _assert_nothing_stored_or_queued(api, aws, queues)


def test_signed_but_invalid_notification_is_quarantined_with_field_paths(api, linkedin):
    platform, queues = linkedin
    reply = _post(api, {**NOTIFICATION, "leadAction": "UPDATED"})
    assert list(reasons(assert_quarantined(reply, "linkedin"))) == ["leadAction"]
    assert queues.count(queues.queue_url) == 0


# ------------------------------------------------------------------------------------------ properties
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(changes=st.dictionaries(st.sampled_from(sorted(NOTIFICATION)), JSON_VALUES, max_size=4))
def test_any_signed_notification_gets_an_answer_below_500(api, linkedin, changes):
    # Given a correctly signed notification with any of its fields replaced by any JSON value
    reply = _post(api, {**NOTIFICATION, **changes})
    # Then the answer is a 2xx or a 4xx problem, never a 5xx
    assert reply.status < 500, reply.body
    assert reply.status == 200 or reply.headers["content-type"] == "application/problem+json"


@settings(max_examples=150, deadline=None)
@given(
    answers=st.lists(
        st.fixed_dictionaries(
            {"questionId": st.sampled_from([11, 12, 13, 14, 17, 18, 99]) | JSON_VALUES, "answerDetails": JSON_VALUES}
        ),
        max_size=6,
    ),
    extra=st.dictionaries(st.sampled_from(["leadMetadata", "owner", "associatedEntity", "submittedAt"]), JSON_VALUES),
)
def test_any_form_response_maps_to_a_lead_or_a_validation_error(answers, extra):
    from leadflow.errors import ValidationFailed
    from leadflow.sources.linkedin import lead_from_response

    # Given any form response shape the API could answer
    document = {**FORM_RESPONSE, **extra, "formResponse": {"answers": answers}}
    questions = {str(q["questionId"]): q.get("predefinedField") or q["name"] for q in FORM["content"]["questions"]}
    pointer = {"id": RESPONSE_URN}
    # Then mapping gives a lead input keyed by the response URN, or a validation error (dead-lettered)
    try:
        inp = lead_from_response(document, questions, pointer)
    except ValidationFailed:
        return
    assert inp.external_ids == [("linkedin", RESPONSE_URN)]
