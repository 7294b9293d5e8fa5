"""Webhook provider configuration: settings that are data, not code (e.g. Webflow field label → lead field).

Loaded like the form registry (sources/forms.py): locally from the JSON file named by
LEADFLOW_WEBHOOKS_FILE (default infra/local/webhooks.json), on AWS from the SSM parameter named by
LEADFLOW_WEBHOOKS_PARAMETER (cached MAX_AGE_SECONDS by Powertools, then read again). Validated by
webhooks_config.v1.json; a broken configuration is a deployment problem (500 and an alarm), never the sender's
fault; an SSM read that fails (throttled, unavailable) is 503 with Retry-After, so the provider retries.
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

from leadflow import schemas
from leadflow.config import settings
from leadflow.errors import ConfigurationError, UpstreamUnavailable

SCHEMA = "webhooks_config.v1.json"
MAX_AGE_SECONDS = 300


def _validated(document: Any) -> dict:
    errors = schemas.field_errors(SCHEMA, document)
    if errors:
        raise ConfigurationError(
            "The webhook provider configuration is invalid: " + "; ".join(f"{e.field} {e.message}" for e in errors)
        )
    return document


@lru_cache(maxsize=4)
def _from_file(path: str, mtime: float) -> dict:
    with open(path, encoding="utf-8") as handle:
        return _validated(json.load(handle))


def registry() -> dict:
    """The whole provider configuration document (`{}` when none is configured)."""
    import os

    config = settings()
    try:
        if config.webhooks_file:
            return _from_file(config.webhooks_file, os.stat(config.webhooks_file).st_mtime)
        if config.webhooks_parameter:
            from aws_lambda_powertools.utilities import parameters  # lazy: only on AWS

            try:
                document = parameters.get_parameter(
                    config.webhooks_parameter, transform="json", max_age=MAX_AGE_SECONDS
                )
            except parameters.exceptions.TransformParameterError as exc:
                raise ConfigurationError("The webhook provider configuration is not valid JSON.") from exc
            except parameters.exceptions.GetParameterError as exc:
                raise UpstreamUnavailable("The webhook provider configuration could not be read; retry.") from exc
            return _validated(document)
    except (OSError, ValueError) as exc:
        raise ConfigurationError("The webhook provider configuration could not be read.") from exc
    return {}


def provider(name: str) -> dict:
    """One provider's section (`{}` when it has none)."""
    section = registry().get(name)
    return section if isinstance(section, dict) else {}
