"""Secrets by contract name (`webhooks/generic`, `crm/hubspot`, ...).

On AWS they come from Secrets Manager as `<LEADFLOW_SECRETS_PREFIX><name>` through Powertools parameters
(cached for five minutes, so a rotated secret is picked up without a deploy); locally, and in tests, from
the JSON file named by LEADFLOW_SECRETS_FILE (development values only).
"""

from __future__ import annotations

import json
import os
from typing import Any

from leadflow.config import settings
from leadflow.errors import ConfigurationError

_CACHE_SECONDS = 300
_file_cache: dict[str, tuple[float, dict]] = {}


def _from_file(path: str) -> dict:
    try:
        mtime = os.stat(path).st_mtime
    except OSError as exc:
        raise ConfigurationError("The secrets file is missing.") from exc
    cached = _file_cache.get(path)
    if cached and cached[0] == mtime:
        return cached[1]
    with open(path, encoding="utf-8") as handle:
        data = json.load(handle)
    _file_cache[path] = (mtime, data)
    return data


def get_secret(name: str) -> Any:
    """The secret's value: a string, or an object for JSON secrets. Raises ConfigurationError if absent."""
    config = settings()
    if config.secrets_file:
        value = _from_file(config.secrets_file).get(name)
    else:
        from aws_lambda_powertools.utilities import parameters  # lazy: boto3 import off the hot path

        try:
            value = parameters.get_secret(config.secrets_prefix + name, max_age=_CACHE_SECONDS)
        except parameters.exceptions.GetParameterError as exc:
            raise ConfigurationError(f"Secret {name} is not configured.") from exc
        if isinstance(value, bytes):
            value = value.decode("utf-8")
        if isinstance(value, str) and value.lstrip().startswith("{"):
            value = json.loads(value)
    if value in (None, "", {}):
        raise ConfigurationError(f"Secret {name} is not configured.")
    return value


def secret_field(name: str, key: str) -> str:
    value = get_secret(name)
    if isinstance(value, dict):
        field = value.get(key)
        if field:
            return str(field)
    raise ConfigurationError(f"Secret {name} has no {key}.")


def secret_list(name: str) -> list[str]:
    """A signing secret, or several during rotation (a JSON list or `{"secrets": [...]}`)."""
    value = get_secret(name)
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [str(v) for v in value if v]
    if isinstance(value, dict):
        found = value.get("secrets") or value.get("secret")
        return [str(v) for v in (found if isinstance(found, list) else [found]) if v]
    raise ConfigurationError(f"Secret {name} has an unexpected shape.")
