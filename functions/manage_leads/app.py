"""Operator routes: GET /v1/leads/{lead_id}, GET /v1/leads?email=, DELETE /v1/leads/{lead_id},
GET /v1/leads/{lead_id}/timeline, POST /v1/leads/{lead_id}/stage, POST /v1/leads/{lead_id}/accept (IAM)."""

import json
import os

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response

from leadflow.errors import FieldError, LeadFlowError, MalformedBody, NotFound, ValidationFailed
from leadflow.observability import logger, metrics
from leadflow.services import leads, timeline
from leadflow.web import problem

# debug=False: with POWERTOOLS_DEV (leadflow up) the resolver would print every raw event, emails included
app = APIGatewayHttpResolver(strip_prefixes=[f"/{os.environ.get('LEADFLOW_STAGE', 'local')}"], debug=False)


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


def _as_response(result: dict) -> Response:
    return Response(
        status_code=result["statusCode"],
        content_type=result["headers"]["content-type"],
        body=result["body"],
        headers=result["headers"],
    )


@app.exception_handler(LeadFlowError)
def handle_error(error: LeadFlowError) -> Response:
    logger.info("request refused", extra={"kind": error.kind, "status": error.status})
    return _as_response(problem(error))


@app.exception_handler(Exception)
def handle_unexpected(_error: Exception) -> Response:
    logger.exception("unexpected failure")
    return _as_response(problem(LeadFlowError("The request could not be processed.")))


@app.not_found
def not_found(_error: Exception) -> Response:
    return _as_response(problem(NotFound("No such route.")))


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
def handler(event: dict, context: object) -> dict:
    return app.resolve(event, context)
