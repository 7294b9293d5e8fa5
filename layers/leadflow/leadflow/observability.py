"""The one Logger, Metrics and Tracer of LeadFlow.

Logs carry ids and outcomes, never PII: use `mask_email` / `mask_phone` if a value must be hinted at.
The Tracer is created lazily: importing the X-Ray SDK costs more than the rest of a capture cold start,
so functions opt in with `tracer()` only where a trace of their own is worth it; API Gateway and Lambda
active tracing still record every invocation.

Refusals are counted: a capture handler names the route kind and provider once it has resolved them
(`count_refusals_as`), and `leadflow.web.endpoint` emits one `Refused` datapoint (dimensions FunctionName,
Route, Provider, Status) for each 401/403/422 it answers. template.yaml alarms on a sustained count, so a
rotated secret or a changed payload that breaks every delivery of a provider alerts someone.
"""

from __future__ import annotations

import hashlib
import os
from contextvars import ContextVar
from functools import lru_cache
from typing import TYPE_CHECKING

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit, single_metric
from aws_lambda_powertools.metrics.functions import is_metrics_disabled

if TYPE_CHECKING:  # pragma: no cover
    from aws_lambda_powertools import Tracer

logger = Logger(service="leadflow")
metrics = Metrics(namespace="LeadFlow", service="leadflow")

REFUSAL_STATUSES = frozenset({401, 403, 422})
_refusal_scope: ContextVar[tuple[str, str] | None] = ContextVar("refusal_scope", default=None)


def count_refusals_as(route: str, provider: str) -> None:
    """Count this request's refusals under `route` (form, webhook, callback) and `provider`.

    Call it only with a name the code resolved (a registered provider or form), never raw input, so the
    metric's dimensions stay few and carry no PII.
    """
    _refusal_scope.set((route, provider))


def record_refusal(status: int) -> None:
    """One `Refused` datapoint for a 401/403/422 of a request whose provider is known (else nothing)."""
    scope = _refusal_scope.get()
    if scope is None or status not in REFUSAL_STATUSES or is_metrics_disabled():
        return  # single_metric prints even when metrics are disabled (`leadflow up`), so check here
    route, provider = scope
    with single_metric(name="Refused", unit=MetricUnit.Count, value=1, namespace=metrics.namespace) as metric:
        # FunctionName keeps each stack's alarms to its own refusals (dev and prod may share an account)
        metric.add_dimension(name="FunctionName", value=os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "local"))
        metric.add_dimension(name="Route", value=route)
        metric.add_dimension(name="Provider", value=provider)
        metric.add_dimension(name="Status", value=str(status))


def end_request() -> None:
    _refusal_scope.set(None)


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
