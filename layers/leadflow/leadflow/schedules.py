"""EventBridge Scheduler for response-time SLAs: the only module that talks to it.

One one-time schedule per assignment (`at(...)`, deleted by the Scheduler after it fires), named by the lead
and the assignment number, so creating it again (a redelivered routing message) is a no-op and a later
assignment never collides with an earlier one. The target is the SLA function (LEADFLOW_ROUTING_SLA_FUNCTION_ARN)
invoked by the Scheduler's role (LEADFLOW_ROUTING_SCHEDULER_ROLE_ARN) with `{"lead_id", "assignment"}` only:
no personal data leaves the table. Without those settings (tests of other parts) nothing is scheduled.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from typing import Any

from leadflow import aws
from leadflow.errors import UpstreamUnavailable

# The shared botocore session (no boto3 import, no second session); AWS_ENDPOINT_URL(_SCHEDULER) is honoured by
# botocore itself (embedded AWS under `leadflow up`).
client = aws.LazyClient("scheduler")
reset = client.reset


def group() -> str | None:
    return os.environ.get("LEADFLOW_ROUTING_SCHEDULE_GROUP") or None


def schedule_name(lead_id: str, assignment: int) -> str:
    return f"sla-{lead_id}-{assignment}"


def enabled() -> bool:
    return bool(
        group()
        and os.environ.get("LEADFLOW_ROUTING_SLA_FUNCTION_ARN")
        and os.environ.get("LEADFLOW_ROUTING_SCHEDULER_ROLE_ARN")
    )


def create_sla_check(lead_id: str, assignment: int, due: datetime) -> bool:
    """Schedule the SLA check of this assignment at `due`; False when scheduling is not configured."""
    if not enabled():
        return False
    from botocore.exceptions import BotoCoreError, ClientError

    target: dict[str, Any] = {
        "Arn": os.environ["LEADFLOW_ROUTING_SLA_FUNCTION_ARN"],
        "RoleArn": os.environ["LEADFLOW_ROUTING_SCHEDULER_ROLE_ARN"],
        "Input": json.dumps({"lead_id": lead_id, "assignment": assignment}),
        "RetryPolicy": {"MaximumRetryAttempts": 10, "MaximumEventAgeInSeconds": 86400},
    }
    if os.environ.get("LEADFLOW_ROUTING_SLA_DLQ_ARN"):
        target["DeadLetterConfig"] = {"Arn": os.environ["LEADFLOW_ROUTING_SLA_DLQ_ARN"]}
    at = due.astimezone(UTC).replace(microsecond=0, tzinfo=None).isoformat()
    try:
        client().create_schedule(
            Name=schedule_name(lead_id, assignment),
            GroupName=group(),
            ScheduleExpression=f"at({at})",
            ScheduleExpressionTimezone="UTC",
            FlexibleTimeWindow={"Mode": "OFF"},
            ActionAfterCompletion="DELETE",
            Target=target,
        )
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") == "ConflictException":
            return True  # this assignment's check exists already (a redelivered message)
        raise UpstreamUnavailable("The SLA check could not be scheduled; retry shortly.") from error
    except BotoCoreError as error:
        raise UpstreamUnavailable("The SLA check could not be scheduled; retry shortly.") from error
    return True
