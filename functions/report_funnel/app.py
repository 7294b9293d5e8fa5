"""Operator route: GET /v1/reports/funnel (IAM) — counts, rates, medians, cost and targets from the counters."""

import os

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response

from leadflow.errors import LeadFlowError, NotFound
from leadflow.observability import logger, metrics
from leadflow.services import funnel
from leadflow.web import problem

# debug=False: with POWERTOOLS_DEV (leadflow up) the resolver would print every raw event
app = APIGatewayHttpResolver(strip_prefixes=[f"/{os.environ.get('LEADFLOW_STAGE', 'local')}"], debug=False)


@app.get("/v1/reports/funnel")
def funnel_report() -> dict:
    query = app.current_event
    return funnel.funnel_report(
        query.get_query_string_value("group_by"),
        query.get_query_string_value("attribution"),
        query.get_query_string_value("from"),
        query.get_query_string_value("to"),
    )


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
