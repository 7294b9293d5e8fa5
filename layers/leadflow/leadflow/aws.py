"""The process's one botocore session: every AWS client of LeadFlow is made from it.

A botocore session loads and caches the service models, endpoint rules and partitions it reads from
botocore's data files; building a second session (pynamodb gives every model class its own Connection
and session, boto3 builds its default session) loads them again: 30-100 ms of a cold start each. So the
DynamoDB store (leadflow.store.models) and the SQS queues (leadflow.queues) take their clients from this
session, and `boto3_session()` wraps the same session for code that wants boto3 (Powertools parameters).
Clients are made under a lock: botocore's client creation is not thread-safe on one session.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    import boto3
    import botocore.session

_lock = threading.RLock()
_session: botocore.session.Session | None = None


def botocore_session() -> botocore.session.Session:
    global _session
    if _session is None:
        with _lock:
            if _session is None:
                from botocore.session import get_session

                _session = get_session()
    return _session


def create_client(service: str, **kwargs: Any) -> Any:
    """A botocore client of the shared session (endpoint overrides such as AWS_ENDPOINT_URL_SQS apply)."""
    with _lock:
        return botocore_session().create_client(service, **kwargs)


def boto3_session() -> boto3.Session:
    """A boto3 Session over the shared botocore session (for libraries that take one)."""
    import boto3

    return boto3.Session(botocore_session=botocore_session())


def client_lock() -> threading.RLock:
    return _lock


class LazyClient:
    """The process's one client of `service`, made from the shared session on first use with LeadFlow's
    timeouts (connect 2 s, read 5 s, 3 standard retries); `reset()` forgets it (tests, `leadflow up` pointing
    at a new embedded AWS). Call it to get the client: `queues.client()`."""

    def __init__(self, service: str) -> None:
        self.service = service
        self._client: Any = None

    def __call__(self) -> Any:
        if self._client is None:
            with _lock:
                if self._client is None:
                    from botocore.config import Config

                    from leadflow.config import settings

                    self._client = create_client(
                        self.service,
                        region_name=settings().aws_region,
                        config=Config(
                            connect_timeout=2, read_timeout=5, retries={"max_attempts": 3, "mode": "standard"}
                        ),
                    )
        return self._client

    def reset(self) -> None:
        with _lock:
            self._client = None
