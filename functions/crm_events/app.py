"""POST /v1/crm/{crm}/events: CRM outcomes (HubSpot webhooks v3, generic Standard Webhooks) move their leads."""

from leadflow.observability import count_refusals_as, logger, metrics
from leadflow.services.crm_feedback import receive
from leadflow.web import endpoint, request_from_event, response


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
@endpoint
def handler(event: dict, context: object) -> dict:
    request = request_from_event(event)
    # HubSpot signs the URL it called: the domain API Gateway served (never the Host header) rebuilds it.
    request.extra["domain_name"] = (event.get("requestContext") or {}).get("domainName")
    crm = request.path_params.get("crm", "")
    if crm in ("hubspot", "generic"):
        count_refusals_as("crm", crm)
    return response(200, receive(crm, request))
