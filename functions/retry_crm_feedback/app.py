"""SQS → apply the CRM events that waited for their record's link (the push wrote its id back, or a deal's
contact became known). A failure is reported for its record only (SQS redelivers it; then the DLQ)."""

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response

from leadflow.observability import logger, metrics
from leadflow.services.crm_feedback import retry_messages

processor = BatchProcessor(event_type=EventType.SQS)


def record_handler(record) -> None:
    retry_messages([record.raw_event])


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
def handler(event: dict, context: object) -> dict:
    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
