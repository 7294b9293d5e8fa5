"""Routing queue → owners: assign each MQL the CRM push router sent here (leadflow.services.routing).

A message that fails (the store or the configuration unavailable) is reported failed and comes back; after
the queue's maxReceiveCount it goes to the routing dead-letter queue (alarmed)."""

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response

from leadflow.observability import logger, metrics
from leadflow.services.routing import route_messages

processor = BatchProcessor(event_type=EventType.SQS)


def _record(record) -> None:
    route_messages([record.body])


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
def handler(event: dict, context: object) -> dict:
    return process_partial_response(event=event, record_handler=_record, processor=processor, context=context)
