"""POST /v1/forms/{form_id} (and its CORS preflight): website forms become leads."""

import uuid

from aws_lambda_powertools.metrics import MetricUnit

from leadflow.errors import LeadFlowError
from leadflow.observability import count_refusals_as, logger, metrics
from leadflow.services.capture import capture_lead
from leadflow.sources import forms
from leadflow.web import cors_headers, endpoint, preflight, request_from_event, response


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
@endpoint
def handler(event: dict, context: object) -> dict:
    request = request_from_event(event)
    form = forms.form(request.path_params.get("form_id", ""))
    count_refusals_as("form", form.form_id)  # a registry name, not input: unknown forms are 404 above
    origin = forms.check_origin(form, request)
    cors = cors_headers(origin)
    if request.method == "OPTIONS":
        return preflight(origin)
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
