"""`leadflow up` delivers the leads table's stream to the template's stream functions (real HTTP in, stream out).

The shipped template has no stream function yet (CRM push lands in a later wave), so this test runs the
stack from template.yaml plus one test-only recording function subscribed to the leads stream exactly as a
stream consumer will be (filter on lead items, partial batch failures).
"""

from __future__ import annotations

import json
import time
import urllib.request

import pytest

from leadflow_local.template import load_template
from tests.support.local_stack import running_stack
from tests.support.signing import dev_secret, standard_webhook_headers
from tests.support.stream_probe import PROBE

PROBE_FUNCTION = {
    "Type": "AWS::Serverless::Function",
    "Properties": {
        "CodeUri": "tests/support/stream_functions/",
        "Handler": "app.handler",
        "Events": {
            "LeadChanges": {
                "Type": "DynamoDB",
                "Properties": {
                    "Stream": {"Fn::GetAtt": ["LeadsTable", "StreamArn"]},
                    "StartingPosition": "TRIM_HORIZON",
                    "BatchSize": 10,
                    "FilterCriteria": {"Filters": [{"Pattern": '{"dynamodb":{"NewImage":{"entity":{"S":["lead"]}}}}'}]},
                    "FunctionResponseTypes": ["ReportBatchItemFailures"],
                },
            }
        },
    },
}


@pytest.fixture
def stack_with_stream_function(tmp_path):
    template = load_template()
    template["Resources"]["StreamProbeFunction"] = PROBE_FUNCTION
    path = tmp_path / "template.json"
    path.write_text(json.dumps(template))
    PROBE.reset()
    yield from running_stack(env={"LEADFLOW_TEMPLATE": str(path)}, quiet=True)


@pytest.mark.slow
def test_signed_webhook_reaches_the_stream_function_as_a_dynamodb_stream_event(stack_with_stream_function):
    # Given the local stack with a stream function on the leads table
    url = stack_with_stream_function.url
    # When a signed generic webhook is posted over real HTTP
    body = json.dumps({"type": "lead.submitted", "data": {"email": "stream@orbit.dev"}}).encode()
    headers = standard_webhook_headers(body, dev_secret("webhooks/generic"), "msg_stream_e2e")
    request = urllib.request.Request(url + "/v1/webhooks/generic", data=body, headers=headers, method="POST")
    with urllib.request.urlopen(request, timeout=30) as response:
        lead_id = json.loads(response.read())["leads"][0]["lead_id"]
    # Then the stream function is invoked with the lead's INSERT, as Lambda would deliver it
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not PROBE.invocations:
        time.sleep(0.1)
    assert PROBE.invocations, "the stream function was never invoked"
    records = [r for invocation in PROBE.invocations for r in invocation.event["Records"]]
    # only lead items pass the filter: no identity, touch or delivery items
    assert {r["dynamodb"]["NewImage"]["entity"]["S"] for r in records} == {"lead"}
    record = records[0]
    assert record["eventName"] == "INSERT"
    assert record["eventSource"] == "aws:dynamodb"
    import boto3

    dynamodb = boto3.client("dynamodb", endpoint_url=stack_with_stream_function.aws.endpoint, region_name="us-east-1")
    table = stack_with_stream_function.tables["LeadsTable"]
    assert record["eventSourceARN"] == dynamodb.describe_table(TableName=table)["Table"]["LatestStreamArn"]
    assert record["dynamodb"]["Keys"] == {"pk": {"S": f"LEAD#{lead_id}"}, "sk": {"S": "LEAD"}}
    assert record["dynamodb"]["NewImage"]["email"] == {"S": "stream@orbit.dev"}
    assert record["dynamodb"]["StreamViewType"] == "NEW_AND_OLD_IMAGES"
    assert "SequenceNumber" in record["dynamodb"]
