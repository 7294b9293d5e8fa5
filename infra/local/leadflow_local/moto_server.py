"""Embedded AWS for the local runtime and the tests: moto's server, and the only place LeadFlow adapts moto.

moto is pinned (pyproject's `local` extra); tests/unit/test_moto_adapter.py fails loudly if an upgrade
changes what the two adaptations below rely on:

1. Serialised requests. moto applies a DynamoDB TransactWriteItems action by action and restores a copy
   on failure; with the server's threads that is neither atomic nor isolated, and a restore can undo
   another thread's committed write. Real DynamoDB makes each request atomic, so the server runs one
   request at a time through moto (clients still interleave *between* calls, where application races live).
2. Transactions without a whole-table copy. moto deep-copies every table a transaction touches (its stream
   included) before applying it, which makes each transaction O(table size): a local stack slows down as
   leads accumulate. `install()` swaps in an equivalent that checks every condition first and writes only
   when all pass (DynamoDB's all-or-nothing), Update actions included (the funnel counters' ADDs).
3. Step Functions journeys (section at the end, `install_stepfunctions`). moto runs Amazon States Language
   in its executing backend (config `{"stepfunctions": {"execute_state_machine": True}}`: `mock_aws(config=...)`
   in process, `enable_stepfunctions_execution(endpoint)` for the server), but invokes Lambda tasks through
   its own Lambda service, which needs Docker, and really sleeps through Wait states. Both Lambda task
   shapes (`arn:aws:states:::lambda:invoke` and a plain function ARN) reach one function,
   `lambda_eval_utils._invoke_lambda_function`; it is replaced by a call to an in-process invoker. Waits
   (Seconds, SecondsPath, Timestamp, TimestampPath) go through `WaitFunction._wait_interval`, replaced by a
   sleep of `seconds / time_scale` real seconds; `Timestamp._get_wait_seconds` is corrected to measure
   from UTC (moto subtracts the naive local clock from a UTC timestamp), and
   `StepFunctionsParserBackend.start_execution` names an unnamed execution with a UUID as AWS does (moto's
   executing backend would name it "None", so a second unnamed execution fails with ExecutionAlreadyExists).
   moto's ERROR log of each failed state (failure details, possibly lead data) is silenced. moto parses a
   definition with its ANTLR grammar again for every execution (~12 ms for the journey, more than a touch's
   handler); `ExecutionWorker._get_evaluation_entrypoint` parses each definition text once and hands every
   execution its own deep copy (~1 ms; the parsed tree keeps its per-run state in the execution's
   environment, and a copy shares nothing with a concurrent run anyway).
"""

from __future__ import annotations

import copy
import functools
import threading
from collections.abc import Callable, Iterable
from typing import Any

from moto.server import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

_installed = False


def install() -> None:
    """Patch moto's DynamoDB transactions (idempotent; in-process mocks and the server share it)."""
    global _installed
    if _installed:
        return
    from moto.dynamodb.models import DynamoDBBackend

    original = DynamoDBBackend.transact_write_items

    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
        if any(len(item) != 1 for item in transact_items) or len(transact_items) > 100:
            return original(self, transact_items)
        _check_then_write(self, transact_items)

    transact_write_items.__wrapped__ = original  # type: ignore[attr-defined]
    DynamoDBBackend.transact_write_items = transact_write_items
    _installed = True


def _check_then_write(backend: Any, transact_items: list[dict[str, Any]]) -> None:
    from moto.dynamodb.comparisons import get_filter_expression
    from moto.dynamodb.exceptions import MultipleTransactionsException, TransactionCanceledException

    seen: set[tuple[str, str]] = set()
    errors: list[tuple[str | None, str | None, Any]] = []
    plan: list[tuple[str, str, dict[str, Any], dict[str, Any]]] = []
    for item in transact_items:
        op_type, op = next(iter(item.items()))
        table_name = op["TableName"]
        if op_type == "Put":
            table = backend.get_table(table_name)
            attrs = op["Item"]
            key = {table.hash_key_attr: attrs[table.hash_key_attr]}
            if table.range_key_attr is not None:
                key[table.range_key_attr] = attrs[table.range_key_attr]
        else:
            key = op["Key"]
        identity = (str(table_name), str(dict(sorted(key.items()))))
        if identity in seen:
            raise MultipleTransactionsException()
        seen.add(identity)
        condition = op.get("ConditionExpression")
        if condition is not None:
            current = backend.get_item(table_name, key)
            check = get_filter_expression(
                condition, op.get("ExpressionAttributeNames"), op.get("ExpressionAttributeValues")
            )
            if not check.expr(current):
                old = (
                    current.to_json()["Attributes"]
                    if current and op.get("ReturnValuesOnConditionCheckFailure") == "ALL_OLD"
                    else None
                )
                errors.append(("ConditionalCheckFailed", "The conditional request failed", old))
                continue
        errors.append((None, None, None))
        plan.append((op_type, table_name, key, op))
    if any(code is not None for code, _, _ in errors):
        raise TransactionCanceledException(errors)
    # Only the items of the transaction are kept for an undo (moto's own copies every table first): an update
    # expression moto refuses after the checks (a programming error, not a race) leaves nothing half-written.
    before = [(table_name, key, copy.deepcopy(backend.get_item(table_name, key))) for _, table_name, key, _ in plan]
    try:
        for op_type, table_name, key, op in plan:
            if op_type == "Put":
                backend.put_item(table_name, op["Item"])
            elif op_type == "Delete":
                backend.delete_item(table_name, key)
            elif op_type == "Update":
                backend.update_item(
                    table_name,
                    key,
                    op["UpdateExpression"],
                    op.get("ExpressionAttributeNames") or {},
                    op.get("ExpressionAttributeValues") or {},
                )
    except Exception:
        for table_name, key, item in before:
            if item is None:
                backend.delete_item(table_name, key)
            else:
                backend.put_item(table_name, item.to_json()["Attributes"])
        raise


class SerialisedApp:
    """WSGI middleware: one request at a time through moto's backends (the body is read inside the lock)."""

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self._app = app
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        with self._lock:
            return list(self._app(environ, start_response))


class _QuietHandler(WSGIRequestHandler):
    def log_request(self, *args: Any, **kwargs: Any) -> None:  # moto's access log is noise here
        pass


class EmbeddedAws:
    """moto's server on 127.0.0.1:<port> in a background thread; `endpoint` is its URL."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        install()
        app = SerialisedApp(DomainDispatcherApplication(create_backend_app))
        self._server: BaseWSGIServer = make_server(host, port, app, threaded=True, request_handler=_QuietHandler)
        self._thread = threading.Thread(target=self._server.serve_forever, name="embedded-aws", daemon=True)

    @property
    def endpoint(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def client(self, service: str):
        """A boto3 client for this embedded AWS (local dummy credentials, us-east-1)."""
        import boto3

        return boto3.client(
            service,
            endpoint_url=self.endpoint,
            region_name="us-east-1",
            aws_access_key_id="local",
            aws_secret_access_key="local",
        )

    def start(self) -> EmbeddedAws:
        self._thread.start()
        # moto's backends are process-global: start every embedded AWS empty
        import urllib.request

        reset = urllib.request.Request(self.endpoint + "/moto-api/reset", method="POST")  # noqa: S310 - loopback
        urllib.request.urlopen(reset, timeout=10).close()  # noqa: S310
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> EmbeddedAws:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


# ------------------------------------------------------------------------------------------------------
# 3. Step Functions: Lambda tasks call the real handlers in process, Wait states are scaled
# ------------------------------------------------------------------------------------------------------

# invoke(function name or ARN, event) -> the handler's return value; raising means an unhandled error.
LambdaInvoker = Callable[[str, Any], Any]

DEFAULT_TIME_SCALE = 86400.0  # one day of journey time per real second
_sfn: dict[str, Any] = {"installed": False, "time_scale": DEFAULT_TIME_SCALE, "invoke": None, "clock": None}


def install_stepfunctions(
    time_scale: float = DEFAULT_TIME_SCALE, invoke: LambdaInvoker | None = None, clock: Callable[[], Any] | None = None
) -> None:
    """Route moto's Lambda tasks to `invoke` and scale its Wait states by `time_scale` (journey s per real s).

    `clock` (an aware datetime of journey time, advancing `time_scale` times real time) makes a Wait's
    TimestampPath count from journey time, as the handlers that computed it do; task-token timeouts
    (TimeoutSeconds/TimeoutSecondsPath of `.waitForTaskToken`) are scaled too. Patches once; later calls
    only change the time scale, the invoker and the clock (process-wide, like moto's backends).
    """
    if time_scale <= 0:
        raise ValueError(f"time_scale must be positive, not {time_scale!r}")
    _sfn["time_scale"] = float(time_scale)
    if invoke is not None:
        _sfn["invoke"] = invoke
    _sfn["clock"] = clock
    if _sfn["installed"]:
        return
    import logging

    # moto logs every failed state at ERROR with its failure details (which may carry lead data): failures
    # are read through the Step Functions API (describe_execution, get_execution_history) instead.
    logging.getLogger("moto.stepfunctions.parser").setLevel(logging.CRITICAL)
    from moto.stepfunctions.parser.asl.component.state.exec.state_task import lambda_eval_utils
    from moto.stepfunctions.parser.asl.component.state.wait.wait_function.timestamp import Timestamp
    from moto.stepfunctions.parser.asl.component.state.wait.wait_function.wait_function import WaitFunction
    from moto.stepfunctions.parser.asl.eval.callback.callback import CallbackEndpoint
    from moto.stepfunctions.parser.backend.execution_worker import ExecutionWorker
    from moto.stepfunctions.parser.models import StepFunctionsParserBackend

    original_invoke = lambda_eval_utils._invoke_lambda_function
    original_wait = WaitFunction._wait_interval
    original_timestamp = Timestamp._get_wait_seconds
    original_start = StepFunctionsParserBackend.start_execution
    original_entrypoint = ExecutionWorker._get_evaluation_entrypoint

    def _get_evaluation_entrypoint(self: Any) -> Any:
        return copy.deepcopy(_parsed_program(self._evaluation_details.state_machine_details.definition))

    def _invoke_lambda_function(parameters: dict, region: str, state_credentials: Any) -> dict[str, Any]:
        return _invoke_in_process(parameters)

    def _wait_interval(self: Any, env: Any, wait_seconds: int) -> None:
        _scaled_wait(env, wait_seconds)

    def _get_wait_seconds(self: Any, env: Any) -> int:
        from datetime import UTC, datetime

        clock = _sfn["clock"]
        if clock is not None:  # journey time: the timestamp was computed from the same scaled clock
            import math

            self.string.eval(env=env)
            text = env.stack.pop()
            target = self._from_timestamp_string(timestamp=text)
            if target is not None:
                now = clock().astimezone(UTC).replace(tzinfo=None)
                if hasattr(clock, "advance_to"):  # a stepped clock moves to the target when the wait ends
                    _pending_targets[id(env)] = target.replace(tzinfo=UTC)
                return max(0, math.ceil((target - now).total_seconds()))
            env.stack.append(text)  # let moto fail the state as it would
            return original_timestamp(self, env)
        local_minus_utc = datetime.now() - datetime.now(UTC).replace(tzinfo=None)
        return int(original_timestamp(self, env) + round(local_minus_utc.total_seconds()))

    def start_execution(self: Any, state_machine_arn: str, name: str | None = None, *args: Any, **kwargs: Any) -> Any:
        import uuid

        return original_start(self, state_machine_arn, name or str(uuid.uuid4()), *args, **kwargs)

    original_callback_wait = CallbackEndpoint.wait

    def callback_wait(self: Any, timeout: float | None = None) -> Any:
        from datetime import timedelta

        clock = _sfn["clock"]
        started = clock() if clock is not None else None
        outcome = original_callback_wait(self, None if timeout is None else timeout / _sfn["time_scale"])
        if outcome is None and timeout is not None and hasattr(clock, "advance_to"):
            clock.advance_to(started + timedelta(seconds=timeout))  # the token timed out in journey time
        return outcome

    callback_wait.__wrapped__ = original_callback_wait  # type: ignore[attr-defined]
    _get_evaluation_entrypoint.__wrapped__ = original_entrypoint  # type: ignore[attr-defined]
    ExecutionWorker._get_evaluation_entrypoint = _get_evaluation_entrypoint
    CallbackEndpoint.wait = callback_wait
    start_execution.__wrapped__ = original_start  # type: ignore[attr-defined]
    StepFunctionsParserBackend.start_execution = start_execution
    _invoke_lambda_function.__wrapped__ = original_invoke  # type: ignore[attr-defined]
    _wait_interval.__wrapped__ = original_wait  # type: ignore[attr-defined]
    _get_wait_seconds.__wrapped__ = original_timestamp  # type: ignore[attr-defined]
    lambda_eval_utils._invoke_lambda_function = _invoke_lambda_function
    WaitFunction._wait_interval = _wait_interval
    Timestamp._get_wait_seconds = _get_wait_seconds
    _sfn["installed"] = True


@functools.lru_cache(maxsize=32)
def _parsed_program(definition: str) -> Any:
    """A definition's parsed program, never evaluated itself: the template each execution copies."""
    from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser

    return AmazonStateLanguageParser.parse(definition)[0]


def _invoke_in_process(parameters: dict[str, Any]) -> dict[str, Any]:
    """What moto's Lambda client would return for `lambda.invoke(**parameters)`, from the in-process invoker.

    An exception becomes FunctionError "Unhandled" with the Python runtime's error payload, so moto fails
    the task with `errorType` as the error name and the payload as the cause, as Step Functions does.
    """
    import json
    import traceback

    invoke: LambdaInvoker | None = _sfn["invoke"]
    function = str(parameters["FunctionName"])
    if invoke is None:
        raise RuntimeError("install_stepfunctions(invoke=...) was not given an invoker for Lambda tasks")
    raw = parameters.get("Payload")
    if isinstance(raw, (bytes, bytearray)):
        raw = raw.decode("utf-8")
    event = json.loads(raw) if isinstance(raw, str) and raw else (raw if raw is not None else {})
    try:
        result = invoke(function, event)
    except Exception as error:  # noqa: BLE001 - a handler's failure is the task's result, as on Lambda
        return _function_error(type(error).__name__, str(error), traceback.format_tb(error.__traceback__)[-5:])
    try:
        payload: Any = json.loads(json.dumps(result))
    except (TypeError, ValueError) as error:  # the Python runtime cannot serialise the return value
        return _function_error("Runtime.MarshalError", f"Unable to marshal response: {error}", [])
    return {"StatusCode": 200, "Payload": payload, "ExecutedVersion": "$LATEST"}


def _function_error(error_type: str, message: str, stack: list[str]) -> dict[str, Any]:
    payload = {"errorMessage": message, "errorType": error_type, "requestId": "", "stackTrace": stack}
    return {"StatusCode": 200, "FunctionError": "Unhandled", "Payload": payload, "ExecutedVersion": "$LATEST"}


_pending_targets: dict[int, Any] = {}  # execution env → the journey time its current Wait ends at


def _scaled_wait(env: Any, wait_seconds: float) -> None:
    """Sleep `wait_seconds / time_scale` real seconds, returning early when the execution stops."""
    import time

    target = _pending_targets.pop(id(env), None)
    deadline = time.monotonic() + max(0.0, float(wait_seconds)) / _sfn["time_scale"]
    remaining = deadline - time.monotonic()
    while remaining > 0 and env.is_running():
        env.program_state_event.wait(remaining)  # set on stop/failure of the execution
        remaining = deadline - time.monotonic()
    clock = _sfn["clock"]
    if target is not None and env.is_running() and hasattr(clock, "advance_to"):
        clock.advance_to(target)


def enable_stepfunctions_execution(endpoint: str) -> None:
    """Ask a moto server to execute state machines (POST /moto-api/config), as mock_aws(config=...) does.

    Service-integration tasks (e.g. ``arn:aws:states:::dynamodb:putItem``) call back into the server at
    ``http://localhost:$MOTO_PORT`` (moto's `boto_client_for`), so MOTO_PORT is set to this server's port.
    """
    import json
    import os
    import urllib.request
    from urllib.parse import urlsplit

    port = urlsplit(endpoint).port
    if port is not None:
        os.environ["MOTO_PORT"] = str(port)

    body = json.dumps({"stepfunctions": {"execute_state_machine": True}}).encode()
    request = urllib.request.Request(  # noqa: S310 - the embedded server on loopback
        endpoint + "/moto-api/config", data=body, method="POST", headers={"Content-Type": "application/json"}
    )
    urllib.request.urlopen(request, timeout=10).close()  # noqa: S310
