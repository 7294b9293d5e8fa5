"""Read ``template.yaml`` for the local runtime and the tests.

This is the one place that interprets the SAM template off AWS, so the table key schema, the stream
and the HTTP routes are declared once (in the template) and the local stack follows them.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

__all__ = [
    "CloudFormationLoader",
    "StreamMapping",
    "create_queues",
    "create_tables",
    "default_template_path",
    "dynamodb_tables",
    "function_properties",
    "http_routes",
    "load_template",
    "sqs_event_sources",
    "sqs_queues",
    "stream_mappings",
    "table_ttl_attribute",
]

Template = dict[str, Any]
Route = tuple[str, str, str, str, str | None]

_FN_TAGS = (
    "Base64", "Equals", "FindInMap", "GetAtt", "GetAZs", "If", "ImportValue",
    "Join", "Not", "And", "Or", "Select", "Split", "Sub",
)  # fmt: skip


class CloudFormationLoader(yaml.SafeLoader):
    """A SafeLoader that reads CloudFormation short forms (``!Ref x`` → ``{"Ref": "x"}``)."""


def _construct(node: yaml.Node, loader: yaml.SafeLoader) -> Any:
    if isinstance(node, yaml.ScalarNode):
        return loader.construct_scalar(node)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node, deep=True)
    return loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]


def _tag(key: str, split_dotted: bool = False) -> Callable[[yaml.SafeLoader, yaml.Node], dict[str, Any]]:
    def construct(loader: yaml.SafeLoader, node: yaml.Node) -> dict[str, Any]:
        value = _construct(node, loader)
        if split_dotted and isinstance(value, str):
            # `!GetAtt Table.Arn` is the short form of `Fn::GetAtt: [Table, Arn]`.
            value = value.split(".", 1)
        return {key: value}

    return construct


CloudFormationLoader.add_constructor("!Ref", _tag("Ref"))
CloudFormationLoader.add_constructor("!Condition", _tag("Condition"))
for _name in _FN_TAGS:
    CloudFormationLoader.add_constructor(f"!{_name}", _tag(f"Fn::{_name}", split_dotted=_name == "GetAtt"))


def default_template_path() -> Path:
    """``$LEADFLOW_TEMPLATE`` if set, else the repository's ``template.yaml``."""
    override = os.environ.get("LEADFLOW_TEMPLATE")
    if override:
        return Path(override)
    return Path(__file__).resolve().parents[3] / "template.yaml"


def load_template(path: str | Path | None = None) -> Template:
    """Parse a CloudFormation/SAM template into plain dicts and lists (intrinsics as long forms)."""
    source = Path(path) if path is not None else default_template_path()
    with source.open(encoding="utf-8") as handle:
        document = yaml.load(handle, Loader=CloudFormationLoader)  # noqa: S506 - a SafeLoader subclass
    if not isinstance(document, dict) or "Resources" not in document:
        raise ValueError(f"{source} is not a CloudFormation template (no Resources)")
    return document


def _resources(template: Template, resource_type: str) -> dict[str, dict[str, Any]]:
    return {
        logical_id: resource
        for logical_id, resource in template.get("Resources", {}).items()
        if resource.get("Type") == resource_type
    }


def dynamodb_tables(template: Template) -> dict[str, dict[str, Any]]:
    """Logical id → keyword arguments for ``dynamodb.create_table`` (local names: the logical id).

    Only what DynamoDB needs to behave like the deployed table is kept: keys, indexes and the stream.
    Billing is always on demand locally; encryption, PITR and deletion protection do not apply.
    """
    tables: dict[str, dict[str, Any]] = {}
    for logical_id, resource in _resources(template, "AWS::DynamoDB::Table").items():
        props = resource.get("Properties", {})
        name = props.get("TableName")
        kwargs: dict[str, Any] = {
            "TableName": name if isinstance(name, str) else logical_id,
            "AttributeDefinitions": [dict(a) for a in props["AttributeDefinitions"]],
            "KeySchema": [dict(k) for k in props["KeySchema"]],
            "BillingMode": "PAY_PER_REQUEST",
        }
        for index_kind in ("GlobalSecondaryIndexes", "LocalSecondaryIndexes"):
            indexes = props.get(index_kind)
            if indexes:
                kwargs[index_kind] = [
                    {
                        "IndexName": index["IndexName"],
                        "KeySchema": [dict(k) for k in index["KeySchema"]],
                        "Projection": dict(index.get("Projection") or {"ProjectionType": "ALL"}),
                    }
                    for index in indexes
                ]
        stream = props.get("StreamSpecification")
        if stream:
            kwargs["StreamSpecification"] = {
                "StreamEnabled": True,
                "StreamViewType": stream["StreamViewType"],
            }
        tables[logical_id] = kwargs
    return tables


def table_ttl_attribute(template: Template, logical_id: str) -> str | None:
    """The attribute holding the expiry epoch of a table, or None when TTL is off."""
    props = template["Resources"][logical_id].get("Properties", {})
    ttl = props.get("TimeToLiveSpecification") or {}
    return ttl.get("AttributeName") if ttl.get("Enabled", False) is True else None


def create_tables(client: Any, template: Template, prefix: str = "") -> dict[str, str]:
    """Create every table of the template with a DynamoDB client; logical id → actual table name."""
    names: dict[str, str] = {}
    for logical_id, kwargs in dynamodb_tables(template).items():
        table_name = f"{prefix}{kwargs['TableName']}"
        client.create_table(**{**kwargs, "TableName": table_name})
        client.get_waiter("table_exists").wait(TableName=table_name, WaiterConfig={"Delay": 1})
        ttl_attribute = table_ttl_attribute(template, logical_id)
        if ttl_attribute:
            client.update_time_to_live(
                TableName=table_name,
                TimeToLiveSpecification={"Enabled": True, "AttributeName": ttl_attribute},
            )
        names[logical_id] = table_name
    return names


_QUEUE_ATTRIBUTES = ("VisibilityTimeout", "MessageRetentionPeriod", "DelaySeconds", "ReceiveMessageWaitTimeSeconds")


def sqs_queues(template: Template) -> dict[str, dict[str, Any]]:
    """Logical id → ``{"attributes": {...}, "dead_letter": logical id or None, "max_receive_count": n}``.

    Queues are named by their logical id locally; encryption does not apply to embedded AWS.
    """
    queues: dict[str, dict[str, Any]] = {}
    for logical_id, resource in _resources(template, "AWS::SQS::Queue").items():
        props = resource.get("Properties", {})
        redrive = props.get("RedrivePolicy") or {}
        target = redrive.get("deadLetterTargetArn")
        queues[logical_id] = {
            "attributes": {name: str(props[name]) for name in _QUEUE_ATTRIBUTES if name in props},
            "dead_letter": target["Fn::GetAtt"][0] if isinstance(target, dict) and "Fn::GetAtt" in target else None,
            "max_receive_count": int(redrive.get("maxReceiveCount", 0)) or None,
        }
    return queues


def create_queues(client: Any, template: Template, prefix: str = "") -> dict[str, str]:
    """Create every SQS queue of the template (dead-letter targets first); logical id → queue URL."""
    queues = sqs_queues(template)
    urls: dict[str, str] = {}
    ordered = sorted(queues, key=lambda logical_id: queues[logical_id]["dead_letter"] is not None)
    for logical_id in ordered:
        spec = queues[logical_id]
        attributes = dict(spec["attributes"])
        if spec["dead_letter"] in urls:
            target_arn = client.get_queue_attributes(QueueUrl=urls[spec["dead_letter"]], AttributeNames=["QueueArn"])[
                "Attributes"
            ]["QueueArn"]
            attributes["RedrivePolicy"] = json.dumps(
                {"deadLetterTargetArn": target_arn, "maxReceiveCount": spec["max_receive_count"] or 5}
            )
        urls[logical_id] = client.create_queue(QueueName=f"{prefix}{logical_id}", Attributes=attributes)["QueueUrl"]
    return urls


def sqs_event_sources(template: Template) -> list[tuple[str, str, dict[str, Any]]]:
    """Every SQS event of a function as ``(function logical id, queue logical id, event properties)``."""
    found = []
    for logical_id in _resources(template, "AWS::Serverless::Function"):
        props = function_properties(template, logical_id)
        for event in (props.get("Events") or {}).values():
            if event.get("Type") != "SQS":
                continue
            event_props = dict(event.get("Properties") or {})
            queue = event_props.get("Queue")
            if isinstance(queue, dict) and "Fn::GetAtt" in queue:
                found.append((logical_id, queue["Fn::GetAtt"][0], event_props))
    return found


def function_properties(template: Template, logical_id: str) -> dict[str, Any]:
    """A function's properties with ``Globals.Function`` merged under them (the function wins).

    Environment variables merge key by key, as SAM does; other properties are replaced whole.
    """
    defaults = dict(template.get("Globals", {}).get("Function", {}))
    own = template["Resources"][logical_id].get("Properties", {})
    merged = {**defaults, **own}
    variables = {
        **defaults.get("Environment", {}).get("Variables", {}),
        **own.get("Environment", {}).get("Variables", {}),
    }
    if variables:
        merged["Environment"] = {"Variables": variables}
    return merged


def _default_authorizer(template: Template, api: Any) -> str | None:
    """The DefaultAuthorizer of the HttpApi an event points at (or of Globals.HttpApi)."""
    auth = dict(template.get("Globals", {}).get("HttpApi", {}).get("Auth") or {})
    if isinstance(api, dict) and "Ref" in api:
        resource = template.get("Resources", {}).get(api["Ref"], {})
        auth.update(resource.get("Properties", {}).get("Auth") or {})
    return auth.get("DefaultAuthorizer")


def http_routes(template: Template) -> list[Route]:
    """Every HttpApi event as ``(method, path, function logical id, CodeUri, authorizer or None)``.

    Methods are upper case (``ANY`` stays ``ANY``); the order is the template's. A route without its
    own ``Auth.Authorizer`` takes its API's ``DefaultAuthorizer``; ``NONE`` means no authorizer.
    """
    routes: list[Route] = []
    for logical_id in _resources(template, "AWS::Serverless::Function"):
        props = function_properties(template, logical_id)
        for event in (props.get("Events") or {}).values():
            if event.get("Type") != "HttpApi":
                continue
            event_props = event.get("Properties") or {}
            authorizer = (event_props.get("Auth") or {}).get("Authorizer") or _default_authorizer(
                template, event_props.get("ApiId")
            )
            routes.append(
                (
                    str(event_props.get("Method", "ANY")).upper(),
                    str(event_props.get("Path", "$default")),
                    logical_id,
                    str(props.get("CodeUri", "")),
                    str(authorizer) if authorizer and authorizer != "NONE" else None,
                )
            )
    return routes


@dataclass(frozen=True)
class StreamMapping:
    """One ``Type: DynamoDB`` event of a function: the event source mapping Lambda would create for it."""

    function_id: str
    function_name: str
    code_uri: str
    handler: str
    timeout: float
    table: str  # logical id of the table whose stream is read
    starting_position: str = "LATEST"
    batch_size: int = 100
    batching_window: float = 0.0
    filters: tuple[dict[str, Any], ...] = ()
    report_batch_item_failures: bool = False
    bisect_on_error: bool = False
    max_retry_attempts: int = -1
    max_record_age: int = -1
    on_failure: str | None = None  # logical id (or name) of the SQS queue for discarded batches
    parallelization_factor: int = 1
    tumbling_window: int = 0
    enabled: bool = True


def _logical_target(value: Any, attribute: str) -> str | None:
    """``!GetAtt X.<attribute>`` (either long form) → X; a literal ARN → its last segment."""
    if isinstance(value, dict) and "Fn::GetAtt" in value:
        target = value["Fn::GetAtt"]
        parts = target.split(".", 1) if isinstance(target, str) else list(target)
        if len(parts) == 2 and parts[1] == attribute:
            return str(parts[0])
        return None
    if isinstance(value, str) and value:
        return value.rsplit(":", 1)[-1]  # arn:aws:sqs:<region>:<account>:<queue name>
    return None


def _filter_pattern(pattern: Any) -> dict[str, Any]:
    parsed = json.loads(pattern) if isinstance(pattern, str) else pattern
    if not isinstance(parsed, dict):
        raise ValueError(f"FilterCriteria pattern is not a JSON object: {pattern!r}")
    return parsed


def stream_mappings(template: Template) -> list[StreamMapping]:
    """Every ``Type: DynamoDB`` event of every function, with Globals merged and Lambda's defaults applied."""
    mappings: list[StreamMapping] = []
    for logical_id in _resources(template, "AWS::Serverless::Function"):
        props = function_properties(template, logical_id)
        for event in (props.get("Events") or {}).values():
            if event.get("Type") != "DynamoDB":
                continue
            ev = event.get("Properties") or {}
            stream = ev.get("Stream")
            if isinstance(stream, dict) and "Fn::GetAtt" in stream:
                table = _logical_target(stream, "StreamArn")
            else:  # a literal stream ARN: arn:aws:dynamodb:region:account:table/<name>/stream/<label>
                table = str(stream).split(":table/", 1)[-1].split("/", 1)[0] if stream else None
            if not table:
                raise ValueError(f"{logical_id}: DynamoDB event without a readable Stream ({stream!r})")
            destination = ((ev.get("DestinationConfig") or {}).get("OnFailure") or {}).get("Destination")
            name = props.get("FunctionName")
            mappings.append(
                StreamMapping(
                    function_id=logical_id,
                    function_name=name if isinstance(name, str) else logical_id,
                    code_uri=str(props.get("CodeUri", "")),
                    handler=str(props.get("Handler", "app.handler")),
                    timeout=float(props.get("Timeout", 3)),
                    table=table,
                    starting_position=str(ev.get("StartingPosition", "LATEST")),
                    batch_size=int(ev.get("BatchSize", 100)),
                    batching_window=float(ev.get("MaximumBatchingWindowInSeconds", 0)),
                    filters=tuple(
                        _filter_pattern(f["Pattern"]) for f in (ev.get("FilterCriteria") or {}).get("Filters") or []
                    ),
                    report_batch_item_failures="ReportBatchItemFailures" in (ev.get("FunctionResponseTypes") or []),
                    bisect_on_error=bool(ev.get("BisectBatchOnFunctionError", False)),
                    max_retry_attempts=int(ev.get("MaximumRetryAttempts", -1)),
                    max_record_age=int(ev.get("MaximumRecordAgeInSeconds", -1)),
                    on_failure=_logical_target(destination, "Arn") if destination else None,
                    parallelization_factor=int(ev.get("ParallelizationFactor", 1)),
                    tumbling_window=int(ev.get("TumblingWindowInSeconds", 0)),
                    enabled=bool(ev.get("Enabled", True)),
                )
            )
    return mappings
