"""Leads table stream → one push queue per CRM target (leadflow.services.push.route_stream_records) and one
conversion queue per ad platform (leadflow.services.conversions.route_stream_records).

The event source mapping lets only leads in a push stage through, and leads that just became `lead`. If
the queues cannot take the batch, the first record is reported failed, so the whole batch is retried in
order (bisected, bounded, then sent to the on-failure queue): a lead's pushes are never reordered.
"""

from leadflow.observability import logger, metrics
from leadflow.services.conversions import route_stream_records as route_conversions
from leadflow.services.push import route_stream_records


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
def handler(event: dict, context: object) -> dict:
    records = event.get("Records") or []
    try:
        route_stream_records(records)
        route_conversions(records)
    except Exception:
        logger.exception("CRM push or conversion routing failed; the batch will be retried")
        return {"batchItemFailures": [{"itemIdentifier": records[0]["dynamodb"]["SequenceNumber"]}]}
    return {"batchItemFailures": []}
