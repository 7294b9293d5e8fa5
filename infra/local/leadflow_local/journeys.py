"""Journeys locally: the template's state machines, executed by moto, with Lambda tasks run in process.

Every ``AWS::Serverless::StateMachine`` of a template is created in embedded AWS from its ASL file
(``DefinitionUri``, or an inline ``Definition``) with its ``DefinitionSubstitutions`` applied: each
``${Name}`` in the definition text is replaced by the resolved value, as CloudFormation does. A function's
``!GetAtt Fn.Arn`` resolves to a local ARN (``arn:aws:lambda:us-east-1:123456789012:function:<name>``) that
`LambdaRouter` maps back to the function's CodeUri/Handler; tables, queues, parameters and pseudo parameters
resolve to their local names, URLs and ARNs. Anything else is refused by name rather than left as ``${…}``.

moto executes the definitions (its executing backend); the adaptations that make Lambda tasks call the real
handlers and scale Wait states by the time scale live in `leadflow_local.moto_server` (section 3).
Handlers see the real clock: a Wait of two journey days passes in two real seconds at the default scale.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from leadflow_local.apigw import LambdaContext, load_function
from leadflow_local.moto_server import DEFAULT_TIME_SCALE, enable_stepfunctions_execution, install_stepfunctions
from leadflow_local.template import default_template_path, function_properties

__all__ = [
    "ACCOUNT",
    "REGION",
    "LambdaRouter",
    "LocalFunction",
    "ScaledClock",
    "SteppedClock",
    "StateMachineSpec",
    "local_functions",
    "provision_state_machines",
    "render_definition",
    "start_journeys",
    "state_machines",
]

ACCOUNT = "123456789012"  # moto's default account, as in the Lambda context of the other local deliveries
REGION = "us-east-1"
Template = dict[str, Any]
Handler = Callable[[Any, Any], Any]


@dataclass(frozen=True)
class LocalFunction:
    """An ``AWS::Serverless::Function`` as the local runtime invokes it."""

    logical_id: str
    name: str
    code_uri: str
    handler: str
    timeout: float
    memory: int

    @property
    def arn(self) -> str:
        return f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{self.name}"


@dataclass(frozen=True)
class StateMachineSpec:
    """An ``AWS::Serverless::StateMachine``: where its definition is and what gets substituted into it."""

    logical_id: str
    name: str
    definition_uri: str | None
    definition: dict[str, Any] | None
    substitutions: dict[str, Any]
    type: str = "STANDARD"


def _resources(template: Template, resource_type: str) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in template.get("Resources", {}).items() if v.get("Type") == resource_type}


def local_functions(template: Template) -> dict[str, LocalFunction]:
    """Every function of the template by local name (``FunctionName`` if literal, else the logical id)."""
    functions: dict[str, LocalFunction] = {}
    for logical_id in _resources(template, "AWS::Serverless::Function"):
        props = function_properties(template, logical_id)
        name = props.get("FunctionName")
        fn = LocalFunction(
            logical_id=logical_id,
            name=name if isinstance(name, str) else logical_id,
            code_uri=str(props.get("CodeUri", "")),
            handler=str(props.get("Handler", "app.handler")),
            timeout=float(props.get("Timeout", 3)),
            memory=int(props.get("MemorySize", 128)),
        )
        functions[fn.name] = fn
    return functions


def state_machines(template: Template) -> dict[str, StateMachineSpec]:
    """Every ``AWS::Serverless::StateMachine`` by logical id (local name: ``Name`` if literal, else the id)."""
    specs: dict[str, StateMachineSpec] = {}
    for logical_id, resource in _resources(template, "AWS::Serverless::StateMachine").items():
        props = resource.get("Properties", {})
        uri = props.get("DefinitionUri")
        if uri is not None and not isinstance(uri, str):
            raise ValueError(f"{logical_id}: only a local DefinitionUri path is supported locally, not {uri!r}")
        if uri is None and not isinstance(props.get("Definition"), dict):
            raise ValueError(f"{logical_id}: a state machine needs DefinitionUri or Definition")
        name = props.get("Name")
        specs[logical_id] = StateMachineSpec(
            logical_id=logical_id,
            name=name if isinstance(name, str) else logical_id,
            definition_uri=uri,
            definition=props.get("Definition"),
            substitutions=dict(props.get("DefinitionSubstitutions") or {}),
            type=str(props.get("Type", "STANDARD")).upper(),
        )
    return specs


class _Resolver:
    """CloudFormation intrinsics → local values (names, URLs, ARNs) for the resources embedded AWS has."""

    def __init__(self, template: Template, tables: dict[str, str], queues: dict[str, str]) -> None:
        self.template = template
        self.resources = template.get("Resources", {})
        self.tables = tables
        self.queues = queues
        self.functions = {fn.logical_id: fn for fn in local_functions(template).values()}
        self.machines = state_machines(template)

    def _table(self, logical_id: str) -> str:
        if logical_id in self.tables:
            return self.tables[logical_id]
        name = self.resources[logical_id].get("Properties", {}).get("TableName")
        return name if isinstance(name, str) else logical_id

    def _queue_name(self, logical_id: str) -> str:
        url = self.queues.get(logical_id)
        return url.rsplit("/", 1)[-1] if url else logical_id

    def _machine_arn(self, logical_id: str) -> str:
        return f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:{self.machines[logical_id].name}"

    def ref(self, name: str) -> str:
        pseudo = {
            "AWS::Region": REGION,
            "AWS::AccountId": ACCOUNT,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::StackName": "leadflow-local",
        }
        if name in pseudo:
            return pseudo[name]
        parameter = self.template.get("Parameters", {}).get(name)
        if parameter is not None and "Default" in parameter:
            return str(parameter["Default"])
        kind = self.resources.get(name, {}).get("Type")
        if kind == "AWS::Serverless::Function":
            return self.functions[name].name
        if kind == "AWS::DynamoDB::Table":
            return self._table(name)
        if kind == "AWS::SQS::Queue" and name in self.queues:
            return self.queues[name]
        if kind == "AWS::Serverless::StateMachine":
            return self._machine_arn(name)
        raise ValueError(f"!Ref {name} has no local value ({kind or 'not a resource or parameter'})")

    def get_att(self, logical_id: str, attribute: str) -> str:
        kind = self.resources.get(logical_id, {}).get("Type")
        if kind == "AWS::Serverless::Function" and attribute == "Arn":
            return self.functions[logical_id].arn
        if kind == "AWS::DynamoDB::Table" and attribute == "Arn":
            return f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{self._table(logical_id)}"
        if kind == "AWS::SQS::Queue":
            if attribute == "Arn":
                return f"arn:aws:sqs:{REGION}:{ACCOUNT}:{self._queue_name(logical_id)}"
            if attribute == "QueueName":
                return self._queue_name(logical_id)
            if attribute == "QueueUrl" and logical_id in self.queues:
                return self.queues[logical_id]
        if kind == "AWS::Serverless::StateMachine":
            if attribute == "Arn":
                return self._machine_arn(logical_id)
            if attribute == "Name":
                return self.machines[logical_id].name
        raise ValueError(f"!GetAtt {logical_id}.{attribute} has no local value ({kind or 'not a resource'})")

    def sub(self, text: str) -> str:
        def one(match: re.Match[str]) -> str:
            token = match.group(1)
            if token.startswith("!"):  # ${!Literal} is a literal ${Literal}
                return "${" + token[1:] + "}"
            if "." in token and not token.startswith("AWS::"):
                logical_id, attribute = token.split(".", 1)
                return self.get_att(logical_id, attribute)
            return self.ref(token)

        return re.sub(r"\$\{([^}]+)\}", one, text)

    def value(self, value: Any) -> str:
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return str(value)
        if isinstance(value, dict) and len(value) == 1:
            ((kind, arg),) = value.items()
            if kind == "Ref" and isinstance(arg, str):
                return self.ref(arg)
            if kind == "Fn::GetAtt":
                parts = arg.split(".", 1) if isinstance(arg, str) else list(arg)
                if len(parts) == 2:
                    return self.get_att(str(parts[0]), str(parts[1]))
            if kind == "Fn::Sub" and isinstance(arg, str):
                return self.sub(arg)
        raise ValueError(f"no local value for {value!r}")


def render_definition(
    spec: StateMachineSpec,
    template: Template,
    *,
    tables: dict[str, str] | None = None,
    queues: dict[str, str] | None = None,
    base: str | Path | None = None,
) -> str:
    """The definition text with every ``${Name}`` of ``DefinitionSubstitutions`` replaced (valid JSON)."""
    if spec.definition_uri is not None:
        root = Path(base) if base is not None else default_template_path().parent
        text = (root / spec.definition_uri).read_text(encoding="utf-8")
    else:
        text = json.dumps(spec.definition)
    resolver = _Resolver(template, tables or {}, queues or {})
    for key, raw in spec.substitutions.items():
        try:
            value = resolver.value(raw)
        except (KeyError, ValueError) as error:
            raise ValueError(f"{spec.logical_id}: DefinitionSubstitutions {key}: {error}") from error
        text = text.replace("${" + key + "}", value)
    json.loads(text)  # a substitution that breaks the JSON fails here, not at execution time
    return text


class LambdaRouter:
    """The in-process invoker moto's Lambda tasks are routed to: local function ARN or name → real handler."""

    def __init__(self, functions: dict[str, LocalFunction], handlers: dict[str, Handler] | None = None) -> None:
        self.functions = functions
        self._handlers: dict[str, Handler] = dict(handlers or {})
        self._lock = threading.Lock()

    @staticmethod
    def function_name(function: str) -> str:
        """A FunctionName as Lambda accepts it (name, name:qualifier, partial or full ARN) → the bare name."""
        parts = function.split(":")
        if function.startswith("arn:"):
            return parts[6]  # arn:aws:lambda:<region>:<account>:function:<name>[:<qualifier>]
        if len(parts) >= 3 and parts[1] == "function":
            return parts[2]  # <account>:function:<name>[:<qualifier>]
        return parts[0]

    def handler(self, name: str) -> Handler:
        with self._lock:
            if name not in self._handlers:
                fn = self.functions.get(name)
                if fn is None:
                    raise LookupError(f"Function not found: {name} (not an AWS::Serverless::Function of the template)")
                module, attribute = load_function(fn.code_uri, fn.handler)
                self._handlers[name] = getattr(module, attribute)
            return self._handlers[name]

    def __call__(self, function: str, event: Any) -> Any:
        name = self.function_name(function)
        handler = self.handler(name)
        fn = self.functions.get(name)
        context = LambdaContext(
            function_name=name,
            memory_limit_in_mb=fn.memory if fn else 128,
            timeout_seconds=fn.timeout if fn else 3.0,
        )
        return handler(event, context)


def provision_state_machines(
    client: Any,
    template: Template,
    *,
    tables: dict[str, str] | None = None,
    queues: dict[str, str] | None = None,
    base: str | Path | None = None,
) -> dict[str, str]:
    """Create every state machine of the template with a Step Functions client; logical id → ARN."""
    arns: dict[str, str] = {}
    for logical_id, spec in state_machines(template).items():
        definition = render_definition(spec, template, tables=tables, queues=queues, base=base)
        arns[logical_id] = client.create_state_machine(
            name=spec.name,
            definition=definition,
            roleArn=f"arn:aws:iam::{ACCOUNT}:role/{spec.name}-local",
            type=spec.type,
        )["stateMachineArn"]
    return arns


class ScaledClock:
    """Journey time: starts at `start` and runs `scale` times faster than the real clock (thread-safe)."""

    def __init__(self, start: Any, scale: float) -> None:
        import time

        self.start, self.scale, self._t0 = start, float(scale), time.monotonic()

    def __call__(self) -> Any:
        import time
        from datetime import timedelta

        return self.start + timedelta(seconds=(time.monotonic() - self._t0) * self.scale)


class SteppedClock:
    """Journey time for tests: stands still while handlers run and jumps to a Wait's end when it ends.

    So a touch's time is exact (handler run time costs no journey time). Several executions share it:
    it only moves forward, to the latest Wait end reached."""

    def __init__(self, start: Any) -> None:
        self._now = start
        self._lock = threading.Lock()

    def __call__(self) -> Any:
        with self._lock:
            return self._now

    def advance_to(self, moment: Any) -> None:
        with self._lock:
            self._now = max(self._now, moment)


def start_journeys(
    client: Any,
    template: Template,
    *,
    time_scale: float = DEFAULT_TIME_SCALE,
    tables: dict[str, str] | None = None,
    queues: dict[str, str] | None = None,
    endpoint: str | None = None,
    base: str | Path | None = None,
    handlers: dict[str, Handler] | None = None,
    clock: Callable[[], Any] | None = None,
) -> dict[str, str]:
    """Route Lambda tasks to the template's handlers, scale waits, and create the state machines.

    ``endpoint``: the moto server to switch to executing state machines (in process, pass
    ``mock_aws(config={"stepfunctions": {"execute_state_machine": True}})`` instead). ``handlers`` overrides
    a function's handler by local name. ``clock`` (a `ScaledClock`): journey time for the Wait states (the
    handlers must use the same clock). Nothing happens when the template declares no state machine.
    """
    if not state_machines(template):
        return {}
    install_stepfunctions(time_scale, LambdaRouter(local_functions(template), handlers), clock)
    if endpoint is not None:
        enable_stepfunctions_execution(endpoint)
    return provision_state_machines(client, template, tables=tables, queues=queues, base=base)
