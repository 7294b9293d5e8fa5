"""The one Logger, Metrics and Tracer of LeadFlow.

Logs carry ids and outcomes, never PII: use `mask_email` / `mask_phone` if a value must be hinted at.
The Tracer is created lazily: importing the X-Ray SDK costs more than the rest of a capture cold start,
so functions opt in with `tracer()` only where a trace of their own is worth it; API Gateway and Lambda
active tracing still record every invocation.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
from typing import TYPE_CHECKING

from aws_lambda_powertools import Logger, Metrics

if TYPE_CHECKING:  # pragma: no cover
    from aws_lambda_powertools import Tracer

logger = Logger(service="leadflow")
metrics = Metrics(namespace="LeadFlow", service="leadflow")


@lru_cache(maxsize=1)
def tracer() -> Tracer:
    from aws_lambda_powertools import Tracer

    return Tracer(service="leadflow")


def fingerprint(value: str) -> str:
    """A short, stable, non-reversible tag for correlating log lines about one person without PII."""
    return hashlib.sha256(value.encode("utf-8")).hexdigest()[:12]


def mask_email(email: str | None) -> str | None:
    if not email or "@" not in email:
        return None
    domain = email.rsplit("@", 1)[1]
    return f"***@{domain}"


def mask_phone(phone: str | None) -> str | None:
    if not phone:
        return None
    return f"***{phone[-2:]}"
