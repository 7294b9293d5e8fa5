"""EventBridge Scheduler → the response-time SLA check of one assignment (leadflow.services.routing.check_sla).

The schedule's input is `{"lead_id", "assignment"}`. An error is raised so the Scheduler retries it (its retry
policy, then its dead-letter queue, alarmed)."""

import os

from leadflow.observability import logger, metrics
from leadflow.services.routing import check_sla


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
def handler(event: dict, context: object) -> dict:
    # The next SLA check (after a reassignment) targets this function: its ARN is the invocation's own.
    os.environ.setdefault("LEADFLOW_ROUTING_SLA_FUNCTION_ARN", str(getattr(context, "invoked_function_arn", "")))
    outcome = check_sla(str(event["lead_id"]), int(event["assignment"]))
    logger.info("SLA checked", extra={"lead_id": event["lead_id"], "outcome": outcome})
    return {"outcome": outcome}
