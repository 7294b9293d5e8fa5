"""Shared fixtures: offline AWS (moto in-process), tables built from template.yaml, and API helpers."""

from __future__ import annotations

import os

# moto traps (see DEVELOPERS.md): set before anything imports boto3/botocore.
os.environ.setdefault("TZ", "UTC")
os.environ["AWS_ACCOUNT_ID_ENDPOINT_MODE"] = "disabled"
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "LeadFlow")
os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")
os.environ.setdefault("POWERTOOLS_DEV", "false")
os.environ.pop("AWS_ENDPOINT_URL", None)
os.environ.pop("AWS_ENDPOINT_URL_DYNAMODB", None)

import pytest  # noqa: E402

from tests.support.api import Api  # noqa: E402
from tests.support.aws import local_aws  # noqa: E402


@pytest.fixture
def aws(monkeypatch):
    """moto in-process with the template's tables; yields the boto3 DynamoDB client."""
    with local_aws(monkeypatch) as client:
        yield client


@pytest.fixture
def api(aws):
    """Call the real handlers with API Gateway payload-2.0 events."""
    return Api()
