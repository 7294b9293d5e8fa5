"""Operator route: GET /v1/reports/funnel (IAM) — counts, rates, medians, cost and targets from the counters."""

from leadflow.observability import logger, metrics
from leadflow.operator_api import operator_resolver
from leadflow.services import funnel

app = operator_resolver()


@app.get("/v1/reports/funnel")
def funnel_report() -> dict:
    query = app.current_event
    return funnel.funnel_report(
        query.get_query_string_value("group_by"),
        query.get_query_string_value("attribution"),
        query.get_query_string_value("from"),
        query.get_query_string_value("to"),
    )


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
def handler(event: dict, context: object) -> dict:
    return app.resolve(event, context)
