"""Environment read once into typed settings.

Every knob is an environment variable so the same code runs on AWS (set by template.yaml), under
`leadflow up` and in tests. `settings()` is cached; tests call `settings.cache_clear()` after changing
the environment.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

MAX_BODY_BYTES = 256 * 1024  # contract: 413 above 256 KiB
SIGNATURE_TOLERANCE_SECONDS = 300  # Standard Webhooks / Webflow / TikTok: 5 minutes


@dataclass(frozen=True)
class Settings:
    table_name: str
    # the funnel counters and spend (FunnelTable on AWS: no stream, so counter writes never reach the leads
    # stream's readers); unset, they live in the leads table (tests that build one table)
    funnel_table_name: str
    stage: str
    aws_region: str
    dynamodb_endpoint: str | None
    secrets_file: str | None
    secrets_prefix: str
    forms_file: str | None
    forms_parameter: str | None
    webhooks_file: str | None
    webhooks_parameter: str | None
    default_phone_region: str
    max_body_bytes: int
    signature_tolerance: int
    delivery_ttl_days: int
    quarantine_ttl_days: int
    fetch_queue_url: str | None
    fetch_dlq_url: str | None
    fetch_max_attempts: int
    fetch_backoff_seconds: int
    anonymous_event_days: int = 30
    event_max_age_days: int = 365


def _repo_file(relative: str) -> str | None:
    """A development file of the repository (only exists in a checkout, never in the layer)."""
    candidate = Path(__file__).resolve().parents[3] / relative
    return str(candidate) if candidate.exists() else None


@lru_cache(maxsize=1)
def settings() -> Settings:
    env = os.environ
    on_lambda = "AWS_LAMBDA_FUNCTION_NAME" in env and "LEADFLOW_LOCAL" not in env
    # Locally (and in tests) secrets and forms come from development files; on AWS from Secrets Manager / SSM.
    secrets_file = env.get("LEADFLOW_SECRETS_FILE") or (None if on_lambda else _repo_file("infra/local/secrets.json"))
    forms_parameter = env.get("LEADFLOW_FORMS_PARAMETER") or None
    forms_file = env.get("LEADFLOW_FORMS_FILE") or (
        None if (on_lambda or forms_parameter) else _repo_file("infra/local/forms.json")
    )
    # Provider configuration (e.g. Webflow field labels → lead fields): a file locally, SSM on AWS.
    webhooks_parameter = env.get("LEADFLOW_WEBHOOKS_PARAMETER") or None
    webhooks_file = env.get("LEADFLOW_WEBHOOKS_FILE") or (
        None if (on_lambda or webhooks_parameter) else _repo_file("infra/local/webhooks.json")
    )
    return Settings(
        table_name=env.get("LEADFLOW_TABLE_NAME", "LeadsTable"),
        funnel_table_name=env.get("LEADFLOW_FUNNEL_TABLE_NAME") or env.get("LEADFLOW_TABLE_NAME", "LeadsTable"),
        stage=env.get("LEADFLOW_STAGE", "local"),
        aws_region=env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1",
        dynamodb_endpoint=env.get("AWS_ENDPOINT_URL_DYNAMODB") or env.get("AWS_ENDPOINT_URL") or None,
        secrets_file=secrets_file,
        secrets_prefix=env.get("LEADFLOW_SECRETS_PREFIX", ""),
        forms_file=forms_file,
        forms_parameter=forms_parameter,
        webhooks_file=webhooks_file,
        webhooks_parameter=webhooks_parameter,
        default_phone_region=env.get("LEADFLOW_DEFAULT_PHONE_REGION", "US").upper(),
        max_body_bytes=int(env.get("LEADFLOW_MAX_BODY_BYTES", MAX_BODY_BYTES)),
        signature_tolerance=int(env.get("LEADFLOW_SIGNATURE_TOLERANCE", SIGNATURE_TOLERANCE_SECONDS)),
        delivery_ttl_days=int(env.get("LEADFLOW_DELIVERY_TTL_DAYS", "90")),
        # Signed deliveries that validation refused are kept this long for `leadflow quarantine replay`.
        quarantine_ttl_days=max(1, int(env.get("LEADFLOW_QUARANTINE_TTL_DAYS", "30"))),
        # Lead fetches of pointer-style providers (meta, linkedin, tiktok): SQS queue and dead-letter queue.
        fetch_queue_url=env.get("LEADFLOW_FETCH_QUEUE_URL") or None,
        fetch_dlq_url=env.get("LEADFLOW_FETCH_DLQ_URL") or None,
        fetch_max_attempts=max(1, int(env.get("LEADFLOW_FETCH_MAX_ATTEMPTS", "4"))),
        fetch_backoff_seconds=max(0, int(env.get("LEADFLOW_FETCH_BACKOFF_SECONDS", "30"))),
        # POST /v1/events: events of an unknown email wait this long for its lead; older events are refused.
        anonymous_event_days=max(1, int(env.get("LEADFLOW_ANONYMOUS_EVENT_DAYS", "30"))),
        event_max_age_days=max(1, int(env.get("LEADFLOW_EVENT_MAX_AGE_DAYS", "365"))),
    )
