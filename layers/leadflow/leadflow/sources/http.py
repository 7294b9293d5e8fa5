"""Moved to `leadflow.http` (one outbound HTTP client for the whole package); kept so old imports work."""

from leadflow.http import (  # noqa: F401
    BASE_URLS,
    DEFAULT_TIMEOUT,
    MAX_RESPONSE_BYTES,
    RETRYABLE_STATUSES,
    ApiError,
    Response,
    base_url,
    request,
    request_json,
    retry_after_seconds,
)
