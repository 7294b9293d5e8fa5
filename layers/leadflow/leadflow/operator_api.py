"""The operator routes' Powertools resolver (IAM-signed: leads, timeline, stage, accept, reports), answering
LeadFlow errors as problem+json exactly like the capture routes' `leadflow.web.endpoint` does.

Kept out of `leadflow.web` so the capture functions never import Powertools' event handler (cold start)."""

from __future__ import annotations

import os

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response

from leadflow.errors import LeadFlowError, NotFound
from leadflow.observability import logger
from leadflow.web import problem


def _as_response(result: dict) -> Response:
    return Response(
        status_code=result["statusCode"],
        content_type=result["headers"]["content-type"],
        body=result["body"],
        headers=result["headers"],
    )


def operator_resolver() -> APIGatewayHttpResolver:
    """A resolver for the stage's routes: LeadFlowError → its problem; anything else → an opaque 500 (logged);
    an unknown route → 404 problem."""
    # debug=False: with POWERTOOLS_DEV (leadflow up) the resolver would print every raw event, emails included
    app = APIGatewayHttpResolver(strip_prefixes=[f"/{os.environ.get('LEADFLOW_STAGE', 'local')}"], debug=False)

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

    return app
