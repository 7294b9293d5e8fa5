"""Journeys run locally: moto executes the ASL, Lambda tasks call the real handlers in process, waits scale.

No journey exists in template.yaml yet, so a test-only template fragment declares one state machine
(tests/events/journey_test.asl.json, with DefinitionSubstitutions) and two recording functions in
tests/support/journey_functions. Everything is read back through the normal boto3 Step Functions API.
"""

from __future__ import annotations

import json
import time
import urllib.request

import boto3
import pytest
import yaml
from moto import mock_aws

from leadflow_local.journeys import local_functions, render_definition, start_journeys, state_machines
from leadflow_local.moto_server import EmbeddedAws
from leadflow_local.template import CloudFormationLoader
from tests.support.journey_probe import PROBE

FRAGMENT = """
Globals:
  Function:
    Runtime: python3.12
    Timeout: 10
    MemorySize: 256
Resources:
  ComputeNextTouchFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: tests/support/journey_functions/
      Handler: app.compute_next_touch
  SendTouchFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: tests/support/journey_functions/
      Handler: app.send_touch
  TestJourney:
    Type: AWS::Serverless::StateMachine
    Properties:
      Name: test-journey
      DefinitionUri: tests/events/journey_test.asl.json
      DefinitionSubstitutions:
        ComputeNextTouchFunctionArn: !GetAtt ComputeNextTouchFunction.Arn
        SendTouchFunctionArn: !GetAtt SendTouchFunction.Arn
"""
DAY = 86400.0
SFN_EXECUTES = {"stepfunctions": {"execute_state_machine": True}}


def _template() -> dict:
    return yaml.load(FRAGMENT, Loader=CloudFormationLoader)  # noqa: S506 - a SafeLoader subclass


def _run(client, arn: str, payload: dict, timeout: float = 5.0) -> tuple[dict, float]:
    started = time.monotonic()
    execution = client.start_execution(stateMachineArn=arn, name=f"lead-{time.time_ns()}", input=json.dumps(payload))
    while True:
        described = client.describe_execution(executionArn=execution["executionArn"])
        if described["status"] != "RUNNING" or time.monotonic() - started > timeout:
            return described, time.monotonic() - started
        time.sleep(0.01)


def _history(client, execution_arn: str) -> list[dict]:
    return client.get_execution_history(executionArn=execution_arn)["events"]


def _entered(events: list[dict]) -> list[str]:
    return [e["stateEnteredEventDetails"]["name"] for e in events if "stateEnteredEventDetails" in e]


def _wait_seconds(events: list[dict]) -> float:
    entered = next(e["timestamp"] for e in events if e["type"] == "WaitStateEntered")
    exited = next(e["timestamp"] for e in events if e["type"] == "WaitStateExited")
    return (exited - entered).total_seconds()


@pytest.fixture
def sfn():
    PROBE.reset()
    with mock_aws(config=SFN_EXECUTES):
        yield boto3.client("stepfunctions", region_name="us-east-1")


def test_definition_substitutions_become_local_function_arns():
    # Given the test template's state machine
    template = _template()
    spec = state_machines(template)["TestJourney"]

    # When its definition is rendered
    definition = json.loads(render_definition(spec, template))

    # Then every ${…} is a local function ARN that maps back to the function's code
    states = definition["States"]
    compute_arn = states["ComputeNextTouch"]["Parameters"]["FunctionName"]
    assert compute_arn == "arn:aws:lambda:us-east-1:123456789012:function:ComputeNextTouchFunction"
    assert states["SendTouch"]["Resource"] == "arn:aws:lambda:us-east-1:123456789012:function:SendTouchFunction"
    function = local_functions(template)["ComputeNextTouchFunction"]
    assert (function.code_uri, function.handler, function.arn) == (
        "tests/support/journey_functions/",
        "app.compute_next_touch",
        compute_arn,
    )


def test_an_unresolvable_substitution_is_refused_by_name():
    # Given a substitution that names a resource the template does not have
    template = _template()
    template["Resources"]["TestJourney"]["Properties"]["DefinitionSubstitutions"]["SendTouchFunctionArn"] = {
        "Fn::GetAtt": ["MissingFunction", "Arn"]
    }

    # When / Then rendering fails with the key and the reference, not a definition with ${…} left in it
    with pytest.raises(ValueError, match="SendTouchFunctionArn.*MissingFunction"):
        render_definition(state_machines(template)["TestJourney"], template)


@pytest.mark.parametrize(
    ("touch_after_hours", "time_scale", "expected_wait"),
    [
        (1, DAY, 1 / 24),  # the default scale: one hour of journey time is ~0.04 s
        (48, 10 * DAY, 0.2),  # two journey days at ten days per second
    ],
)
def test_journey_runs_the_real_handlers_in_process_and_scales_the_wait(
    sfn, touch_after_hours, time_scale, expected_wait
):
    # Given the test journey provisioned from the template fragment
    arns = start_journeys(sfn, _template(), time_scale=time_scale)

    # When a lead enters it
    described, elapsed = _run(sfn, arns["TestJourney"], {"lead_id": "L1", "touch_after_hours": touch_after_hours})

    # Then it succeeds quickly, with the output of the last step
    assert described["status"] == "SUCCEEDED", described.get("cause")
    assert elapsed < 10  # scaled (unscaled: hours or days of journey time); slack for load
    output = json.loads(described["output"])
    assert output["lead_id"] == "L1"
    assert output["touch"] == {"sent": True, "step": "welcome"}

    # And both handlers ran in this process with the state's input and a Lambda context
    assert [c.function for c in PROBE.calls] == ["compute_next_touch", "send_touch"]
    compute, send = PROBE.calls
    assert compute.event == {"lead_id": "L1", "touch_after_hours": touch_after_hours}
    assert send.event == {
        "lead_id": "L1",
        "touch_after_hours": touch_after_hours,
        "next_touch_at": output["next_touch_at"],
    }
    assert (compute.context_function_name, send.context_function_name) == (
        "ComputeNextTouchFunction",
        "SendTouchFunction",
    )
    assert compute.context_request_id and compute.context_request_id != send.context_request_id
    assert 0 < compute.remaining_ms <= 10_000

    # And the history shows every state, and the wait took journey time / time scale
    events = _history(sfn, described["executionArn"])
    assert _entered(events) == ["ComputeNextTouch", "WaitForNextTouch", "StillNurturing", "SendTouch", "Done"]
    assert expected_wait - 0.05 <= _wait_seconds(events) <= expected_wait + 0.5


def test_choice_skips_the_touch_for_an_unsubscribed_lead(sfn):
    # Given the test journey
    arns = start_journeys(sfn, _template())

    # When an unsubscribed lead enters it
    described, _ = _run(sfn, arns["TestJourney"], {"lead_id": "L2", "touch_after_hours": 1, "unsubscribed": True})

    # Then it succeeds without the touch
    assert described["status"] == "SUCCEEDED", described.get("cause")
    assert [c.function for c in PROBE.calls] == ["compute_next_touch"]
    assert "SendTouch" not in _entered(_history(sfn, described["executionArn"]))


def test_a_failing_task_fails_the_execution_with_the_handlers_error(sfn):
    # Given the test journey
    arns = start_journeys(sfn, _template())

    # When the touch handler raises
    described, _ = _run(sfn, arns["TestJourney"], {"lead_id": "L3", "touch_after_hours": 1, "fail_touch": True})

    # Then the execution is FAILED with the exception type as the error and its message in the cause
    assert described["status"] == "FAILED"
    assert described["error"] == "TouchRefusedError"
    cause = json.loads(described["cause"])
    assert (cause["errorType"], cause["errorMessage"]) == ("TouchRefusedError", "the touch was refused")
    events = _history(sfn, described["executionArn"])
    failed = [e for e in events if e["type"] == "LambdaFunctionFailed"]
    assert failed and failed[0]["lambdaFunctionFailedEventDetails"]["error"] == "TouchRefusedError"
    assert events[-1]["type"] == "ExecutionFailed"


def test_journeys_run_on_the_embedded_server_too(monkeypatch):
    # Given embedded AWS (moto's server) switched to executing state machines through /moto-api/config
    PROBE.reset()
    monkeypatch.setenv("MOTO_PORT", "5000")  # start_journeys points it at the server; restored afterwards
    with EmbeddedAws() as aws:
        client = boto3.client(
            "stepfunctions",
            endpoint_url=aws.endpoint,
            region_name="us-east-1",
            aws_access_key_id="local",
            aws_secret_access_key="local",
        )
        try:
            arns = start_journeys(client, _template(), endpoint=aws.endpoint)

            # When a lead enters the journey
            described, elapsed = _run(client, arns["TestJourney"], {"lead_id": "L4", "touch_after_hours": 1})
        finally:
            _stop_executing(aws.endpoint)

    # Then it succeeds over HTTP as in process, the handlers running in this process
    assert described["status"] == "SUCCEEDED", described.get("cause")
    assert elapsed < 10  # scaled (unscaled: hours or days of journey time); slack for load
    assert [c.function for c in PROBE.calls] == ["compute_next_touch", "send_touch"]


def test_a_template_without_state_machines_provisions_nothing():
    # Given a template with functions only / When journeys start / Then nothing is created or patched in
    template = _template()
    del template["Resources"]["TestJourney"]
    assert start_journeys(object(), template) == {}


def _stop_executing(endpoint: str) -> None:
    """moto's config is process-wide: leave the server's Step Functions as other tests expect them."""
    body = json.dumps({"stepfunctions": {"execute_state_machine": False}}).encode()
    request = urllib.request.Request(endpoint + "/moto-api/config", data=body, method="POST")  # noqa: S310
    urllib.request.urlopen(request, timeout=5).close()  # noqa: S310
