"""SQS → push leads to HubSpot (leadflow.services.push.push_records).

Retries, backoff and dead-lettering happen inside (each lead is re-queued or dead-lettered with its reason),
so every record is acknowledged; an exception (the leads table or SQS unreachable) fails the whole batch,
which SQS delivers again.
"""

from leadflow.observability import logger, metrics
from leadflow.services.push import push_records


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
def handler(event: dict, context: object) -> dict:
    push_records("hubspot", event.get("Records") or [])
    return {"batchItemFailures": []}
