"""Leads table stream → journeys: enrol an eligible lead, stop a running journey at once when the lead exits.

The same records feed the funnel counters (leadflow.services.funnel): the stream has only two readers."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response

from leadflow.observability import logger
from leadflow.services import funnel, journeys

if TYPE_CHECKING:  # the records the processor hands over; its own import already loads the class
    from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord

processor = BatchProcessor(event_type=EventType.DynamoDBStreams)


def record_handler(record: DynamoDBRecord) -> None:
    image = record.dynamodb.new_image if record.dynamodb else None
    if not image or image.get("entity") != "lead":
        return
    funnel.count_stage_change(record.event_id, image, record.dynamodb.old_image)  # once per record (marker)
    outcome = journeys.on_lead_change(image)
    if outcome:
        logger.info("journey routed", extra={"lead_id": image.get("lead_id"), "outcome": outcome})


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: object) -> dict[str, Any]:
    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
