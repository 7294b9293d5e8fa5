"""The journey state machine's task: `Touch` (send, defer or end) and `AwaitEvent` (park on a task token)."""

from __future__ import annotations

from typing import Any

from leadflow.observability import logger
from leadflow.services import journeys


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: object) -> dict[str, Any]:
    action, state = event["action"], event["state"]
    if action == "await_event":
        journeys.park_for_event(state, event["token"])
        return {"parked": True}
    return journeys.touch(state)
