"""POST /v1/events: engagement events (Standard Webhooks, secret `events`) score and qualify their leads."""

import time

from leadflow.config import settings
from leadflow.errors import UnsupportedMediaType
from leadflow.observability import count_refusals_as, logger, metrics
from leadflow.secrets import secret_list
from leadflow.services.events import record_delivery
from leadflow.sources.base import verify_standard_webhook
from leadflow.web import endpoint, json_body, request_from_event, response

SECRET = "events"


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
@endpoint
def handler(event: dict, context: object) -> dict:
    request = request_from_event(event)
    count_refusals_as("events", "events")
    if request.media_type != "application/json":
        raise UnsupportedMediaType("Send application/json.")
    webhook_id = verify_standard_webhook(
        request.headers, request.body, secret_list(SECRET), time.time(), settings().signature_tolerance
    )
    return response(202, record_delivery(webhook_id, json_body(request)))
