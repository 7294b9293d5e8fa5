"""SQS → fetch the leads that pointer-style webhooks named (meta, linkedin, tiktok) and capture them.

Partial batch responses: a record whose fetch must be retried is reported failed (SQS redelivers it after
its backoff); everything else is acknowledged. Retries, backoff and dead-lettering live in
`leadflow.services.fetch`.
"""

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response

from leadflow.observability import logger, metrics
from leadflow.services.fetch import fetch_and_capture

processor = BatchProcessor(event_type=EventType.SQS)


def record_handler(record) -> None:
    fetch_and_capture(record.raw_event)


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
def handler(event: dict, context: object) -> dict:
    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
