"""POST /v1/webhooks/{provider}: provider deliveries become leads (GET: subscription checks; OPTIONS: CORS)."""

from leadflow.errors import MethodNotAllowed, UnsupportedMediaType
from leadflow.observability import count_refusals_as, logger, metrics
from leadflow.services.capture import capture_lead
from leadflow.services.quarantine import accept_signed_delivery
from leadflow.sources import webhook_source
from leadflow.web import endpoint, request_from_event, response


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
@endpoint
def handler(event: dict, context: object) -> dict:
    request = request_from_event(event)
    source = webhook_source(request.path_params.get("provider", ""))
    count_refusals_as("webhook", source.NAME)
    if request.method == "OPTIONS":
        if not hasattr(source, "preflight"):
            raise MethodNotAllowed("This provider is not posted to from browsers.")
        return source.preflight(request)
    if request.method == "GET":
        if not hasattr(source, "handshake"):
            raise MethodNotAllowed("This provider has no subscription check.")
        return source.handshake(request)
    if request.media_type != "application/json":
        raise UnsupportedMediaType("Send application/json.")
    verified = source.verify(request)
    if getattr(source, "SIGNED", True):
        # Signed: what validation refuses is quarantined, durable before this 2xx (the provider never retries it).
        return response(200, accept_signed_delivery(source, request, verified))
    answers = [capture_lead(lead) for lead in source.parse(request, verified)]  # unsigned: 422 tells the sender
    if hasattr(source, "respond"):  # a provider whose senders expect more in the answer (hubspot-forms)
        return source.respond(request, verified, answers)
    return response(200, {"received": len(answers), "leads": answers})
