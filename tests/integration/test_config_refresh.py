"""On AWS the form registry and the webhook provider configuration live in SSM parameters: a change reaches
warm functions within their max age (no copy kept for the life of the process), and an SSM read that fails
answers 503 with Retry-After (the sender retries), never a 500.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import boto3
import pytest
from aws_lambda_powertools.utilities import parameters

from leadflow.config import settings
from leadflow.sources import forms, provider_config
from tests.support.providers import encode, webflow_headers

FORMS_PARAMETER = "/leadflow/dev/forms"
WEBHOOKS_PARAMETER = "/leadflow/dev/webhooks"
MAX_AGE_SECONDS = 300  # the documented bound: a configuration change is live within five minutes
WEBSITE = {"fields": ["email", "message"], "allowed_origins": ["https://www.example.com"]}


class Clock:
    """Powertools' parameter cache reads `datetime.now()`; this moves that clock forward."""

    def __init__(self) -> None:
        self.offset = timedelta()

    def advance(self, seconds: float) -> None:
        self.offset += timedelta(seconds=seconds)

    def datetime(self):
        clock = self

        class Shifted(datetime):
            @classmethod
            def now(cls, tz=None):  # noqa: ANN001 - datetime's own signature
                return datetime.now(tz) + clock.offset

        return Shifted


def _reset_parameter_caches() -> None:
    parameters.clear_caches()
    parameters.base.DEFAULT_PROVIDERS.clear()  # their boto3 clients may predate this mock


@pytest.fixture
def on_aws(aws, monkeypatch):
    """The capture functions as deployed: registry and provider configuration read from SSM (moto)."""
    ssm = boto3.client("ssm", region_name="us-east-1")
    ssm.put_parameter(Name=FORMS_PARAMETER, Type="String", Value=json.dumps({"forms": {"website": WEBSITE}}))
    ssm.put_parameter(Name=WEBHOOKS_PARAMETER, Type="String", Value=json.dumps({"webflow": {"fields": {}}}))
    monkeypatch.delenv("LEADFLOW_FORMS_FILE", raising=False)
    monkeypatch.delenv("LEADFLOW_WEBHOOKS_FILE", raising=False)
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "CaptureFormFunction")
    monkeypatch.setenv("LEADFLOW_FORMS_PARAMETER", FORMS_PARAMETER)
    monkeypatch.setenv("LEADFLOW_WEBHOOKS_PARAMETER", WEBHOOKS_PARAMETER)
    clock = Clock()
    monkeypatch.setattr(parameters.base, "datetime", clock.datetime())
    settings.cache_clear()
    forms.registry.cache_clear()
    _reset_parameter_caches()
    yield ssm, clock
    settings.cache_clear()
    forms.registry.cache_clear()
    _reset_parameter_caches()


def _newsletter(api):
    return api.post_form("newsletter", {"email": "reader@example.org"})


def test_a_form_added_to_the_registry_is_served_once_the_max_age_has_passed(api, on_aws):
    ssm, clock = on_aws
    # Given a warm capture function that has answered from the registry (which has no newsletter form)
    assert _newsletter(api).status == 404

    # When an operator adds the newsletter form to the SSM parameter
    registry = {"forms": {"website": WEBSITE, "newsletter": {"fields": ["email"]}}}
    ssm.put_parameter(Name=FORMS_PARAMETER, Type="String", Value=json.dumps(registry), Overwrite=True)
    # and the registry's max age passes
    clock.advance(MAX_AGE_SECONDS + 1)

    # Then the same process accepts submissions to it
    reply = _newsletter(api)
    assert reply.status == 202, reply.body
    assert reply.json["status"] == "created"


def test_a_form_removed_from_the_registry_stops_accepting_within_the_max_age(api, on_aws):
    ssm, clock = on_aws
    # Given the website form accepts submissions
    assert api.post_form("website", {"email": "first@example.org"}).status == 202

    # When it is removed from the registry and the max age passes
    ssm.put_parameter(Name=FORMS_PARAMETER, Type="String", Value='{"forms": {}}', Overwrite=True)
    clock.advance(MAX_AGE_SECONDS + 1)

    # Then it is no longer served
    assert api.post_form("website", {"email": "second@example.org"}).status == 404


def test_a_registry_that_cannot_be_read_answers_503_with_retry_after(api, on_aws):
    ssm, clock = on_aws
    # Given the registry was read once
    assert api.post_form("website", {"email": "first@example.org"}).status == 202

    # When SSM stops answering for it after the max age
    ssm.delete_parameter(Name=FORMS_PARAMETER)
    clock.advance(MAX_AGE_SECONDS + 1)
    reply = api.post_form("website", {"email": "second@example.org"})

    # Then the browser is told to retry, not that the service is broken
    assert reply.status == 503, reply.body
    assert reply.headers["retry-after"].isdigit()
    assert reply.headers["content-type"] == "application/problem+json"


def _webflow_delivery(label: str) -> bytes:
    return encode(
        {
            "triggerType": "form_submission",
            "payload": {
                "name": "Demo request",
                "siteId": "65427cf400e02b306eaa049c",
                "data": {label: "cfg.refresh@example.org", "Company name": "Refresh Ltd"},
                "submittedAt": "2026-11-22T10:00:16.117Z",
                "id": f"sub-{len(label)}",
                "formId": "65429eadebe8a9f3a30f62d0",
            },
        }
    )


def test_webhook_provider_configuration_is_reread_after_its_max_age(api, on_aws):
    ssm, clock = on_aws
    # Given the provider configuration maps no Webflow labels yet
    assert provider_config.provider("webflow") == {"fields": {}}

    # When an operator maps the label "Company name" to company and the max age passes
    config = {"webflow": {"fields": {"Company name": "attributes.org_name"}}}
    ssm.put_parameter(Name=WEBHOOKS_PARAMETER, Type="String", Value=json.dumps(config), Overwrite=True)
    clock.advance(MAX_AGE_SECONDS + 1)

    # Then the running function reads the new mapping
    assert provider_config.provider("webflow") == config["webflow"]


def test_webhook_provider_configuration_that_cannot_be_read_answers_503_with_retry_after(api, on_aws):
    ssm, clock = on_aws
    # Given SSM no longer answers for the provider configuration
    ssm.delete_parameter(Name=WEBHOOKS_PARAMETER)
    clock.advance(MAX_AGE_SECONDS + 1)

    # When a signed Webflow delivery arrives
    body = _webflow_delivery("Email")
    reply = api.request("POST", "/v1/webhooks/webflow", body, webflow_headers(body))

    # Then Webflow is told to retry later, not that the service is broken
    assert reply.status == 503, reply.body
    assert reply.headers["retry-after"].isdigit()
