"""A second `leadflow up` stack in the same process (tests, a restarted runtime) talks to its own embedded AWS:
no AWS client made for an earlier stack's endpoint outlives it."""

from __future__ import annotations

import os

import pytest

from leadflow_local.runtime import LocalRuntime

pytestmark = pytest.mark.slow


def test_the_journeys_step_functions_and_ses_clients_follow_the_new_stack(monkeypatch):
    from leadflow import channels
    from leadflow.config import settings
    from leadflow.services import journeys
    from leadflow.store import models

    saved = dict(os.environ)
    # Given a client made for an earlier stack's endpoint (e.g. its journey router started a journey)
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    settings.cache_clear()
    channels._client.cache_clear()
    assert journeys._sfn().meta.endpoint_url == "http://127.0.0.1:9"
    # When a new stack starts in the same process
    runtime = LocalRuntime(port=0, crm_port=0, platforms_port=0, salesforce_port=0, quiet=True).start()
    try:
        # Then the journeys' Step Functions client and the SES client reach the new stack's embedded AWS
        assert journeys._sfn().meta.endpoint_url == runtime.aws.endpoint
        assert channels._client("sesv2").meta.endpoint_url == runtime.aws.endpoint
    finally:
        runtime.stop()
        os.environ.clear()
        os.environ.update(saved)
        settings.cache_clear()
        channels._client.cache_clear()
        models.bind()
