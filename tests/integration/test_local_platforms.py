"""The local platform API of `leadflow up` answers the provider modules' own fetch calls like each platform.

The fetches are LeadFlow's real clients (leadflow.sources.{meta,linkedin,tiktok}); leads are registered
through the control endpoint the demo uses. Ids are fake; tokens are the dev secrets.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest

from leadflow.sources import http, linkedin, meta, tiktok
from leadflow_local.local_platforms import LocalPlatforms
from tests.support.aws import SECRETS_FILE

RESPONSE_ID = "5d0c7a4e-1b2f-4c3d-8e9f-0a1b2c3d4e5f"
FORM_URN = "urn:li:versionedLeadGenForm:(urn:li:leadGenForm:7788990,1)"


@pytest.fixture
def platforms(monkeypatch):
    monkeypatch.setenv("LEADFLOW_SECRETS_FILE", str(SECRETS_FILE))
    server = LocalPlatforms().start()
    for name in ("LEADFLOW_META_GRAPH_URL", "LEADFLOW_LINKEDIN_API_URL", "LEADFLOW_TIKTOK_API_URL"):
        monkeypatch.setenv(name, server.url)
    linkedin._form_questions.cache_clear()
    yield server
    server.stop()
    linkedin._form_questions.cache_clear()


def register(server: LocalPlatforms, path: str, documents: dict) -> dict:
    request = urllib.request.Request(
        server.url + path, json.dumps(documents).encode(), {"content-type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=5) as answer:
        return json.loads(answer.read())


def test_registered_leads_are_fetched_by_each_provider_and_unknown_ids_fail_like_the_platform(platforms):
    # Given one lead registered per platform (and the LinkedIn form's questions)
    assert register(
        platforms, "/__leads/meta", {"900000000000123": {"field_data": [{"name": "email", "values": ["m@x.io"]}]}}
    ) == {"registered": 1}
    register(
        platforms,
        "/__forms/linkedin",
        {"7788990": {"content": {"questions": [{"questionId": 1, "predefinedField": "EMAIL"}]}}},
    )
    answer = {"questionId": 1, "answerDetails": {"textQuestionAnswer": {"answer": "l@x.io"}}}
    register(platforms, "/__leads/linkedin", {RESPONSE_ID: {"formResponse": {"answers": [answer]}}})
    register(platforms, "/__leads/tiktok", {"7301": {"lead_data": {"email": "t@x.io"}, "meta_data": {}}})
    # When LeadFlow's fetch clients read them
    (meta_lead,) = meta.fetch_many([{"id": "900000000000123"}])
    linkedin_lead = linkedin.fetch({"id": f"urn:li:leadGenFormResponse:{RESPONSE_ID}", "form": FORM_URN})
    tiktok_lead = tiktok.fetch({"id": "7301", "page_id": "1", "advertiser_id": "2"})
    # Then each is the registered person
    assert meta_lead.fields["email"] == "m@x.io"
    assert linkedin_lead.fields["email"] == "l@x.io"
    assert tiktok_lead.fields["email"] == "t@x.io"
    # And an unknown id fails as the platform fails it: permanent errors, not retried
    (missing,) = meta.fetch_many([{"id": "900000000000999"}])
    assert (missing.status, missing.code, missing.retryable) == (400, "100", False)
    with pytest.raises(http.ApiError) as linkedin_missing:
        linkedin.fetch({"id": "urn:li:leadGenFormResponse:unknown", "form": FORM_URN})
    assert (linkedin_missing.value.status, linkedin_missing.value.retryable) == (404, False)
    with pytest.raises(http.ApiError) as tiktok_missing:
        tiktok.fetch({"id": "404404"})
    assert (tiktok_missing.value.status, tiktok_missing.value.code) == (400, "40002")


def test_a_wrong_token_is_refused_as_each_platform_refuses_it(monkeypatch):
    # Given a platform API expecting other tokens than the stack's dev secrets
    monkeypatch.setenv("LEADFLOW_SECRETS_FILE", str(SECRETS_FILE))
    server = LocalPlatforms(tokens={"meta": "other", "linkedin": "other", "tiktok": "other"}).start()
    for name in ("LEADFLOW_META_GRAPH_URL", "LEADFLOW_LINKEDIN_API_URL", "LEADFLOW_TIKTOK_API_URL"):
        monkeypatch.setenv(name, server.url)
    linkedin._form_questions.cache_clear()
    try:
        server.register("meta", {"900000000000123": {}})
        server.register("linkedin", {RESPONSE_ID: {}})
        server.register("tiktok", {"7301": {}})
        # When the stack fetches with its token
        # Then Meta answers OAuthException 190, LinkedIn 401, TikTok its access-token code
        with pytest.raises(http.ApiError) as graph:
            meta.fetch_many([{"id": "900000000000123"}])
        assert (graph.value.status, graph.value.code) == (400, "190")
        with pytest.raises(http.ApiError) as li:
            linkedin.fetch({"id": f"urn:li:leadGenFormResponse:{RESPONSE_ID}"})
        assert li.value.status == 401
        with pytest.raises(http.ApiError) as tt:
            tiktok.fetch({"id": "7301"})
        assert (tt.value.status, tt.value.code) == (401, "40105")
    finally:
        server.stop()
        linkedin._form_questions.cache_clear()


def test_control_endpoint_refuses_what_it_cannot_register(platforms):
    for path, body in (("/__leads/myspace", b"{}"), ("/__leads/meta", b"[1]"), ("/__leads/meta", b"{")):
        request = urllib.request.Request(platforms.url + path, body, method="POST")
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=5)
        assert refused.value.code in (400, 404)
