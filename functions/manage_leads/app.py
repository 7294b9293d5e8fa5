"""Operator routes: GET /v1/leads/{lead_id}, GET /v1/leads?email=, DELETE /v1/leads/{lead_id},
GET /v1/leads/{lead_id}/timeline, POST /v1/leads/{lead_id}/stage, POST /v1/leads/{lead_id}/accept (IAM)."""

import json

from aws_lambda_powertools.event_handler import Response

from leadflow.errors import FieldError, MalformedBody, ValidationFailed
from leadflow.observability import logger, metrics
from leadflow.operator_api import operator_resolver
from leadflow.services import leads, timeline

app = operator_resolver()


@app.get("/v1/leads/<lead_id>")
def get_lead(lead_id: str) -> dict:
    return leads.get_lead(lead_id)


@app.get("/v1/leads")
def find_lead() -> dict:
    return leads.find_lead_by_email(app.current_event.get_query_string_value("email"))


@app.get("/v1/leads/<lead_id>/timeline")
def lead_timeline(lead_id: str) -> dict:
    query = app.current_event
    return timeline.lead_timeline(
        lead_id, query.get_query_string_value("cursor"), query.get_query_string_value("limit")
    )


@app.delete("/v1/leads/<lead_id>")
def erase_lead(lead_id: str) -> Response:
    leads.erase_lead(lead_id)
    return Response(status_code=204)


@app.post("/v1/leads/<lead_id>/stage")
def set_stage(lead_id: str) -> dict:
    """Body `{"stage": "sql", "reason": "…"}`: the lead JSON after the move; 409 when the funnel forbids it."""
    try:
        body = json.loads(app.current_event.decoded_body or "")
    except (ValueError, UnicodeDecodeError, TypeError) as exc:
        raise MalformedBody("The body is not valid JSON.") from exc
    if not isinstance(body, dict):
        raise MalformedBody("The body must be a JSON object.")
    stage, reason = body.get("stage"), body.get("reason")
    if not isinstance(stage, str) or not isinstance(reason, str):
        raise ValidationFailed([FieldError("stage" if not isinstance(stage, str) else "reason", "is required (text)")])
    return leads.set_stage(lead_id, stage, reason, source="operator")


@app.post("/v1/leads/<lead_id>/accept")
def accept_lead(lead_id: str) -> dict:
    """The owner accepts the lead (its response-time SLA is met): the lead JSON; 409 when it has no owner."""
    from leadflow.services import routing

    return routing.accept_lead(lead_id)


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
def handler(event: dict, context: object) -> dict:
    return app.resolve(event, context)
