"""Click monitoring use case: an announced ad click is stored once, for leads that arrive with its id."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from aws_lambda_powertools.metrics import MetricUnit

from leadflow.domain.attribution import iso
from leadflow.observability import logger, metrics
from leadflow.store import clicks as store

CLICK_TTL_DAYS = 90  # attribution window kept for announced clicks (items expire by DynamoDB TTL)


def record_click(click: dict, now: datetime | None = None) -> bool:
    """Store the click (one conditional PutItem); a redelivery changes nothing. True when it was new."""
    now = now or datetime.now(UTC)
    expires_at = int((now + timedelta(days=CLICK_TTL_DAYS)).timestamp())
    new = store.put_click(click, created_at=iso(now), expires_at=expires_at)
    metrics.add_metric(name="AdClickRecorded" if new else "AdClickRepeated", unit=MetricUnit.Count, value=1)
    logger.info("ad click announced", extra={"platform": click["platform"], "new": new})
    return new
