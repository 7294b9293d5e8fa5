"""The moto adaptations of leadflow_local.moto_server hold for the pinned moto (fails loudly on upgrade)."""

from __future__ import annotations

import importlib.metadata
import re
from pathlib import Path

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from leadflow_local import moto_server

PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"


def test_installed_moto_is_the_pinned_version():
    pinned = re.search(r'"moto\[[^\]]*\]==([\d.]+)"', PYPROJECT.read_text()).group(1)
    assert importlib.metadata.version("moto") == pinned, "moto changed: re-check leadflow_local/moto_server.py"


def test_moto_still_has_what_the_adapter_wraps():
    from moto.dynamodb.comparisons import get_filter_expression  # noqa: F401
    from moto.dynamodb.exceptions import MultipleTransactionsException, TransactionCanceledException  # noqa: F401
    from moto.dynamodb.models import DynamoDBBackend
    from moto.server import DomainDispatcherApplication, create_backend_app  # noqa: F401

    moto_server.install()
    assert hasattr(DynamoDBBackend.transact_write_items, "__wrapped__")


@pytest.fixture
def table():
    moto_server.install()
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        client.create_table(
            TableName="t",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
            StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
        )
        yield client


def _put(pk: str, new_only: bool = True) -> dict:
    put = {"TableName": "t", "Item": {"pk": {"S": pk}, "v": {"S": "1"}}}
    if new_only:
        put["ConditionExpression"] = "attribute_not_exists(pk)"
    return {"Put": put}


def test_transaction_with_a_failed_condition_writes_nothing_and_reports_reasons_in_order(table):
    table.put_item(TableName="t", Item={"pk": {"S": "taken"}})
    with pytest.raises(ClientError) as raised:
        table.transact_write_items(TransactItems=[_put("a"), _put("taken"), _put("b")])
    assert raised.value.response["Error"]["Code"] == "TransactionCanceledException"
    codes = [r["Code"] for r in raised.value.response["CancellationReasons"]]
    assert codes == ["None", "ConditionalCheckFailed", "None"]
    assert "Item" not in table.get_item(TableName="t", Key={"pk": {"S": "a"}})
    assert "Item" not in table.get_item(TableName="t", Key={"pk": {"S": "b"}})


def test_successful_transaction_writes_every_item_and_the_stream(table):
    table.transact_write_items(
        TransactItems=[_put("a"), _put("b", new_only=False), {"Delete": {"TableName": "t", "Key": {"pk": {"S": "zz"}}}}]
    )
    assert table.get_item(TableName="t", Key={"pk": {"S": "a"}})["Item"]["v"] == {"S": "1"}
    assert table.get_item(TableName="t", Key={"pk": {"S": "b"}})["Item"]["v"] == {"S": "1"}
    streams = boto3.client("dynamodbstreams", region_name="us-east-1")
    arn = table.describe_table(TableName="t")["Table"]["LatestStreamArn"]
    shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
    iterator = streams.get_shard_iterator(StreamArn=arn, ShardId=shard, ShardIteratorType="TRIM_HORIZON")
    records = streams.get_records(ShardIterator=iterator["ShardIterator"])["Records"]
    assert [r["eventName"] for r in records] == ["INSERT", "INSERT"]


def _add(pk: str) -> dict:
    return {
        "Update": {
            "TableName": "t",
            "Key": {"pk": {"S": pk}},
            "UpdateExpression": "ADD n :one",
            "ExpressionAttributeValues": {":one": {"N": "1"}},
        }
    }


def test_updates_apply_with_the_puts_and_not_at_all_when_a_condition_fails(table):
    # Given a marker already put (a record counted before)
    table.transact_write_items(TransactItems=[_put("marker"), _add("counter")])
    # When the same transaction comes again, and a new one
    with pytest.raises(ClientError) as raised:
        table.transact_write_items(TransactItems=[_put("marker"), _add("counter")])
    table.transact_write_items(TransactItems=[_put("marker2"), _add("counter")])
    # Then the repeated one changed nothing and the counter counts each transaction that passed once
    assert [r["Code"] for r in raised.value.response["CancellationReasons"]] == ["ConditionalCheckFailed", "None"]
    assert table.get_item(TableName="t", Key={"pk": {"S": "counter"}})["Item"]["n"] == {"N": "2"}


def test_a_refused_update_expression_undoes_the_writes_before_it(table):
    table.put_item(TableName="t", Item={"pk": {"S": "b"}, "n": {"S": "text"}})
    with pytest.raises(ClientError):
        table.transact_write_items(TransactItems=[_put("a"), _add("b")])  # ADD to a string: refused by moto
    assert "Item" not in table.get_item(TableName="t", Key={"pk": {"S": "a"}})
    assert table.get_item(TableName="t", Key={"pk": {"S": "b"}})["Item"]["n"] == {"S": "text"}


def test_two_actions_on_one_item_are_rejected(table):
    with pytest.raises(ClientError) as raised:
        table.transact_write_items(TransactItems=[_put("a"), _put("a", new_only=False)])
    assert raised.value.response["Error"]["Code"] == "ValidationException"
    assert "Item" not in table.get_item(TableName="t", Key={"pk": {"S": "a"}})


# --- 3. Step Functions: Lambda tasks in process, scaled waits, unnamed executions ----------------------


def _params(function) -> list[str]:
    import inspect

    return list(inspect.signature(getattr(function, "__wrapped__", function)).parameters)


def test_moto_still_has_the_step_functions_code_the_adapter_replaces():
    # Every import path, name and signature install_stepfunctions() relies on; a moto upgrade that moves or
    # reshapes one of them must fail here, not silently run Lambda tasks through Docker or sleep for real.
    from moto.core.config import default_user_config
    from moto.stepfunctions.parser.asl.component.state.exec.state_task import lambda_eval_utils
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_lambda import (
        StateTaskServiceLambda,
    )
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.state_task_lambda import StateTaskLambda
    from moto.stepfunctions.parser.asl.component.state.wait.wait_function import (
        seconds,
        seconds_path,
        timestamp,
        wait_function,
    )
    from moto.stepfunctions.parser.asl.eval.environment import Environment
    from moto.stepfunctions.parser.models import StepFunctionsParserBackend
    from moto.stepfunctions.responses import get_backend

    assert "stepfunctions" in default_user_config and "execute_state_machine" in default_user_config["stepfunctions"]
    assert "execute_state_machine" in get_backend.__code__.co_consts  # the server's config switch
    # Both Lambda task shapes go through execute_lambda_function_integration → _invoke_lambda_function.
    assert _params(lambda_eval_utils._invoke_lambda_function) == ["parameters", "region", "state_credentials"]
    assert "_invoke_lambda_function" in lambda_eval_utils.execute_lambda_function_integration.__code__.co_names
    assert "execute_lambda_function_integration" in StateTaskLambda._eval_execution.__code__.co_names
    assert "execute_lambda_function_integration" in StateTaskServiceLambda._eval_service_task.__code__.co_names
    assert "FunctionError" in lambda_eval_utils.execute_lambda_function_integration.__code__.co_consts
    # Every wait function waits through WaitFunction._wait_interval(env, wait_seconds), none on its own.
    base = wait_function.WaitFunction
    assert _params(base._wait_interval) == ["self", "env", "wait_seconds"]
    assert "_wait_interval" in base._eval_body.__code__.co_names
    for kind in (seconds.Seconds, seconds.SecondsJSONata, seconds_path.SecondsPath, timestamp.Timestamp):
        assert kind._wait_interval is base._wait_interval and kind._eval_body is base._eval_body, kind
    assert timestamp.TimestampPath._get_wait_seconds is timestamp.Timestamp._get_wait_seconds
    assert "is_running" in dir(Environment) and "program_state_event" in Environment.__init__.__code__.co_names
    assert _params(StepFunctionsParserBackend.start_execution)[:3] == ["self", "state_machine_arn", "name"]
    from moto.stepfunctions.parser.backend.execution_worker import ExecutionWorker

    # Each execution's program comes from _get_evaluation_entrypoint(self), read from the definition text.
    assert _params(ExecutionWorker._get_evaluation_entrypoint) == ["self"]
    assert "_get_evaluation_entrypoint" in ExecutionWorker._execution_logic.__code__.co_names
    from moto.stepfunctions.parser.asl.component import eval_component

    assert eval_component.LOG.name.startswith("moto.stepfunctions.parser.")  # the logger the adapter silences

    moto_server.install_stepfunctions()
    for patched in (
        lambda_eval_utils._invoke_lambda_function,
        base._wait_interval,
        timestamp.Timestamp._get_wait_seconds,
        StepFunctionsParserBackend.start_execution,
        ExecutionWorker._get_evaluation_entrypoint,
    ):
        assert hasattr(patched, "__wrapped__"), patched


def test_moto_still_measures_timestamp_waits_from_the_naive_local_clock():
    # The adapter adds (local - UTC) to moto's answer; if moto measures from UTC itself, drop the correction.
    import inspect

    from moto.stepfunctions.parser.asl.component.state.wait.wait_function.timestamp import Timestamp

    moto_server.install_stepfunctions()
    assert "datetime.datetime.now()" in inspect.getsource(Timestamp._get_wait_seconds.__wrapped__)


_ARN = "arn:aws:lambda:us-east-1:123456789012:function:probe"
_MACHINE = {
    "StartAt": "Plain",
    "States": {
        "Plain": {"Type": "Task", "Resource": _ARN, "ResultPath": "$.plain", "Next": "Seconds"},
        "Seconds": {"Type": "Wait", "Seconds": 86400, "Next": "SecondsPath"},
        "SecondsPath": {"Type": "Wait", "SecondsPath": "$.wait", "Next": "TimestampPath"},
        "TimestampPath": {"Type": "Wait", "TimestampPath": "$.at", "Next": "Integration"},
        "Integration": {
            "Type": "Task",
            "Resource": "arn:aws:states:::lambda:invoke",
            "Parameters": {"FunctionName": "probe", "Payload.$": "$"},
            "OutputPath": "$.Payload",
            "End": True,
        },
    },
}


def test_lambda_tasks_call_the_invoker_and_waits_are_scaled():
    import json
    import time
    from datetime import UTC, datetime, timedelta

    calls = []

    def invoke(function, event):
        calls.append((function, event))
        if event.get("fail"):
            raise KeyError("missing")
        return {"n": len(calls)}

    # Three waits of a journey day each at 40 days per second: ~0.075 s in all, not three days.
    moto_server.install_stepfunctions(40 * 86400, invoke)
    at = (datetime.now(UTC) + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        sfn = boto3.client("stepfunctions", region_name="us-east-1")
        arn = sfn.create_state_machine(
            name="adapter", definition=json.dumps(_MACHINE), roleArn="arn:aws:iam::123456789012:role/r"
        )["stateMachineArn"]
        results = []
        for payload in ({"wait": 86400, "at": at}, {"wait": 0, "at": at, "fail": True}):
            started = time.monotonic()
            execution = sfn.start_execution(stateMachineArn=arn, input=json.dumps(payload))  # unnamed, twice
            while (described := sfn.describe_execution(executionArn=execution["executionArn"]))["status"] == "RUNNING":
                assert time.monotonic() - started < 30, "a Wait slept in real time (a journey day, not ~25 ms)"
                time.sleep(0.01)
            results.append((described, time.monotonic() - started))
        moto_server.install_stepfunctions(moto_server.DEFAULT_TIME_SCALE)

    (ok, ok_elapsed), (failed, _) = results
    assert ok["status"] == "SUCCEEDED", ok.get("cause")
    assert json.loads(ok["output"]) == {"n": 2}
    assert 0.06 <= ok_elapsed < 30  # scaled: three journey days took ~0.075 s (unscaled, 3 days); slack for load
    assert calls[0] == (_ARN, {"wait": 86400, "at": at})
    assert calls[1] == ("probe", {"wait": 86400, "at": at, "plain": {"n": 1}})
    assert failed["status"] == "FAILED" and failed["error"] == "KeyError"
    assert json.loads(failed["cause"])["errorMessage"] == "'missing'"


def test_each_execution_runs_its_own_copy_of_a_definition_parsed_once():
    # Given the adapter and a definition already parsed for one execution
    import json
    from types import SimpleNamespace

    from moto.stepfunctions.parser.backend.execution_worker import ExecutionWorker

    moto_server.install_stepfunctions()
    definition = json.dumps(_MACHINE)
    worker = SimpleNamespace(
        _evaluation_details=SimpleNamespace(state_machine_details=SimpleNamespace(definition=definition))
    )
    first = ExecutionWorker._get_evaluation_entrypoint(worker)
    parsed = moto_server._parsed_program.cache_info()

    # When a second execution of the same definition starts
    second = ExecutionWorker._get_evaluation_entrypoint(worker)

    # Then it was not parsed again, and the two runs share no component (no state leaks between runs)
    assert moto_server._parsed_program.cache_info().hits == parsed.hits + 1
    assert moto_server._parsed_program.cache_info().misses == parsed.misses
    assert first is not second and first.states is not second.states
    assert list(first.states.states) == list(second.states.states) == list(_MACHINE["States"])
    assert all(first.states.states[n] is not second.states.states[n] for n in _MACHINE["States"])
    # And it is the program moto's own parse gives
    assert first.start_at.start_at_name == second.start_at.start_at_name == "Plain"
