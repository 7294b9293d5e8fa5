"""SQS → report conversions to Tencent Ads (leadflow.services.conversions.send_conversions).

Retries, backoff and dead-lettering happen inside (each conversion is re-queued or dead-lettered with its
reason), so every record is acknowledged; an exception (the leads table or SQS unreachable) fails the whole
batch, which SQS delivers again (the conversion records keep a redelivery from sending twice).
"""

from leadflow.observability import logger, metrics
from leadflow.services.conversions import send_conversions


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
def handler(event: dict, context: object) -> dict:
    send_conversions("tencent", event.get("Records") or [])
    return {"batchItemFailures": []}
