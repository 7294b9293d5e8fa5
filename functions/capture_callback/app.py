"""GET /v1/callbacks/{platform}: ad click monitoring (Baidu, Tencent) announces clicks for later attribution."""

from leadflow.observability import count_refusals_as, logger, metrics
from leadflow.services.clicks import record_click
from leadflow.sources import callback_source
from leadflow.web import endpoint, request_from_event, response


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
@endpoint
def handler(event: dict, context: object) -> dict:
    request = request_from_event(event)
    # Baidu's sign covers the URL as called: the API's domain is the fallback when no Host header came.
    request.extra["domain_name"] = (event.get("requestContext") or {}).get("domainName")
    source = callback_source(request.path_params.get("platform", ""))
    count_refusals_as("callback", source.NAME)
    verified = source.verify(request)
    record_click(source.parse(request, verified))
    return response(200, source.ACK)
