"""Secrets by contract name (`webhooks/generic`, `crm/hubspot`, ...).

On AWS they come from Secrets Manager as `<LEADFLOW_SECRETS_PREFIX><name>` through Powertools parameters
(cached for five minutes, so a rotated secret is picked up without a deploy); locally, and in tests, from
the JSON file named by LEADFLOW_SECRETS_FILE (development values only). Both give the same value: a
Secrets Manager string that is a JSON object or array is parsed, as the file's JSON is.

Rotation: every secret that verifies deliveries is read with `secret_list`, which accepts one value or a
list (current first, then previous), at the top level or in the object's field (`{"app_secret": [...]}`).
"""

from __future__ import annotations

import json
import os
from typing import Any

from leadflow.config import settings
from leadflow.errors import ConfigurationError, UpstreamUnavailable

_CACHE_SECONDS = 300
# Secrets Manager errors that a retry cannot fix (a missing secret, a policy that does not grant it, ...)
_DEPLOYMENT_ERRORS = ("ResourceNotFoundException", "AccessDeniedException", "DecryptionFailure", "InvalidRequest")
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
            if any(code in str(exc) for code in _DEPLOYMENT_ERRORS):
                raise ConfigurationError(f"Secret {name} is not configured or not readable.") from exc
            # throttled, timed out, service unavailable: the caller retries (503), never a 500
            raise UpstreamUnavailable("A secret could not be read; retry shortly.") from exc
        value = _parsed(name, value)
    if value in (None, "", {}, []):
        raise ConfigurationError(f"Secret {name} is not configured.")
    return value


def _parsed(name: str, value: Any) -> Any:
    """A Secrets Manager value as the file would hold it: JSON objects and arrays parsed, strings kept."""
    if isinstance(value, bytes):
        value = value.decode("utf-8")
    if isinstance(value, str) and value.lstrip()[:1] in ("{", "["):
        try:
            return json.loads(value)
        except ValueError as exc:
            raise ConfigurationError(f"Secret {name} looks like JSON but is not valid JSON.") from exc
    return value


def secret_field(name: str, key: str) -> str:
    value = get_secret(name)
    if isinstance(value, dict):
        field = value.get(key)
        if isinstance(field, list):  # a rotation list: the current value comes first
            field = field[0] if field else None
        if field:
            return str(field)
    raise ConfigurationError(f"Secret {name} has no {key}.")


def secret_list(name: str, key: str | None = None) -> list[str]:
    """A verifying secret, or several during rotation, current first.

    Without `key`: a string, a JSON list, or `{"secrets": [...]}` / `{"secret": ...}`. With `key`: the
    object's field, a string or a list (`{"app_secret": ["new", "old"], ...}`). Never empty.
    """
    value = get_secret(name)
    if key is not None:
        if not isinstance(value, dict):
            raise ConfigurationError(f"Secret {name} has no {key}.")
        found = value.get(key)
    elif isinstance(value, dict):
        found = value.get("secrets") or value.get("secret")
    else:
        found = value
    values = found if isinstance(found, list) else [found]
    secrets = [v for v in values if isinstance(v, str) and v]
    if not secrets:
        raise ConfigurationError(f"Secret {name} has no {key or 'value'}.")
    return secrets
