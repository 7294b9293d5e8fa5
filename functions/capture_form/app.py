"""POST /v1/forms/{form_id} (and its CORS preflight): website forms become leads."""

import uuid

from aws_lambda_powertools.metrics import MetricUnit

from leadflow.errors import LeadFlowError
from leadflow.observability import logger, metrics
from leadflow.services.capture import capture_lead
from leadflow.sources import forms
from leadflow.web import endpoint, request_from_event, response

PREFLIGHT = {
    "access-control-allow-methods": "POST, OPTIONS",
    "access-control-allow-headers": "content-type",
    "access-control-max-age": "600",
}


def _cors(origin: str | None) -> dict[str, str]:
    return {"access-control-allow-origin": origin, "vary": "Origin"} if origin else {}


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
@endpoint
def handler(event: dict, context: object) -> dict:
    request = request_from_event(event)
    form = forms.form(request.path_params.get("form_id", ""))
    origin = forms.check_origin(form, request)
    cors = _cors(origin)
    if request.method == "OPTIONS":
        return response(204, headers={**cors, **PREFLIGHT})
    try:
        submission = forms.parse(form, request)
        if submission.lead is None:
            # Honeypot filled: a bot. Answer like a success so it learns nothing; store nothing.
            metrics.add_metric(name="SpamBlocked", unit=MetricUnit.Count, value=1)
            answer = {"lead_id": str(uuid.uuid4()), "status": "created"}
        else:
            answer = capture_lead(submission.lead)
    except LeadFlowError as error:
        error.headers = cors  # type: ignore[attr-defined] - the browser may read the problem
        raise
    if submission.redirect:
        return response(303, headers={**cors, "location": submission.redirect})
    return response(202, answer, cors)
