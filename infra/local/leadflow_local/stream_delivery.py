"""DynamoDB stream → stream function delivery off AWS, with Lambda's event-source-mapping semantics.

moto's own stream→Lambda mappings ignore filters, batching and failures, so `leadflow up` and the tests
read each table's stream through the dynamodbstreams API and invoke the stream functions themselves,
as Lambda's poller for a ``Type: DynamoDB`` event would (settings from template.yaml, read by
`leadflow_local.template.stream_mappings`).

Honoured, per mapping:

- **Order**: each shard is read in sequence-number order and one invocation at a time per function
  (a lock per function, shared by every mapping that targets it). StartingPosition TRIM_HORIZON / LATEST.
- **Event shape**: ``{"Records": [{eventID, eventName, eventVersion "1.1", eventSource "aws:dynamodb",
  awsRegion, dynamodb: {ApproximateCreationDateTime (epoch seconds, rounded down), Keys, NewImage,
  OldImage, SequenceNumber, SizeBytes, StreamViewType}, eventSourceARN}]}``; binary attributes base64.
- **FilterCriteria**: patterns are OR-ed and matched against each record exactly as it appears in the
  event (so ``{"dynamodb": {"NewImage": {"entity": {"S": ["lead"]}}}}``). Records no filter matches are
  skipped for good (checkpointed, never delivered). Supported rule subset (Lambda's / EventBridge's
  pattern syntax): exact values (strings, numbers, booleans, ``null``, ``""``), ``prefix``, ``suffix``,
  ``equals-ignore-case``, ``anything-but`` (a value, a list, or ``{"prefix": …}``), ``exists`` (true/false),
  ``numeric`` (``=``, ``<``, ``<=``, ``>``, ``>=``, ranges), nested keys, and arrays in the record (a rule
  matches if any element matches). ``numeric`` compares JSON numbers only: a DynamoDB ``N`` value is a
  string in the record, so match it as a string. Unsupported operators raise at start-up (never ignored).
- **BatchSize** and **MaximumBatchingWindowInSeconds**: matching records are gathered until the batch is
  full or the window since the first waiting record has passed.
- **Failures**: a handler exception fails the whole batch; with ReportBatchItemFailures a returned
  ``batchItemFailures`` list checkpoints the records before the lowest reported sequence number and
  retries from it (an empty/unknown ``itemIdentifier`` fails the whole batch, as on Lambda). Without
  ReportBatchItemFailures the response is ignored (Lambda does the same).
- **BisectBatchOnFunctionError**: a failing batch (of more than one record) is split in halves and each
  half retried, first half first; splitting does not consume the retry quota. A partial failure with
  bisect on splits at the reported record instead (the records before it are done).
- **MaximumRetryAttempts** (-1 = infinite) counts retries per record; **MaximumRecordAgeInSeconds**
  (-1 = infinite) is checked before every invocation. When either is exhausted the batch is discarded:
  an invocation record in Lambda's shape (``requestContext`` {requestId, functionArn, condition
  RetryAttemptsExhausted | RecordAgeExceeded, approximateInvokeCount}, ``responseContext``, ``version``,
  ``timestamp``, ``DDBStreamBatchInfo`` {shardId, startSequenceNumber, endSequenceNumber,
  approximateArrivalOfFirstRecord, approximateArrivalOfLastRecord, batchSize, streamArn}) goes to the
  OnFailure SQS queue, and delivery moves on to the following records. ``approximateInvokeCount`` is
  the number of invocations that carried the discarded records (0 when records expired before any);
  ``responseContext`` is left out when there was no invocation.

Ignored (documented differences from AWS): ParallelizationFactor (always one batch in flight per shard,
which keeps per-key order, the guarantee consumers may rely on), TumblingWindowInSeconds (no state is
passed between invocations), SNS/S3 on-failure destinations, the 6 MB payload limit, the function
timeout (the handler runs to completion in process), and stream retention (records never expire on their
own locally: with both limits at -1 a poison record blocks its shard, as it would on AWS for 24 hours).
Retries back off 0.5 s doubling to 5 s; the clock and the sleep are injectable so tests run instantly.
"""

from __future__ import annotations

import base64
import json
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from leadflow_local.apigw import LambdaContext, load_function
from leadflow_local.template import StreamMapping, load_template, stream_mappings

__all__ = ["StreamDelivery", "lambda_record", "matches_filters", "matches_pattern", "start_stream_delivery"]

Handler = Callable[[dict, Any], Any]
ACCOUNT = "123456789012"
_MISSING = object()
_function_locks: dict[str, threading.Lock] = {}
_locks_guard = threading.Lock()


def _function_lock(function_id: str) -> threading.Lock:
    with _locks_guard:
        return _function_locks.setdefault(function_id, threading.Lock())


# --- the record as Lambda builds it ------------------------------------------------------------------


def _lambda_json(value: Any) -> Any:
    """boto3's parsed attribute values back to the wire JSON Lambda passes on (bytes → base64)."""
    if isinstance(value, bytes | bytearray):
        return base64.b64encode(bytes(value)).decode()
    if isinstance(value, dict):
        return {k: _lambda_json(v) for k, v in value.items()}
    if isinstance(value, list | set | tuple):
        return [_lambda_json(v) for v in value]
    return value


def _epoch(value: Any) -> float:
    if isinstance(value, datetime):
        return value.timestamp()
    return float(value)


def lambda_record(raw: dict, stream_arn: str, region: str = "us-east-1") -> dict:
    """One dynamodbstreams ``GetRecords`` record as the record Lambda puts in a DynamoDB stream event."""
    source = raw["dynamodb"]
    dynamodb: dict[str, Any] = {
        # Lambda sends epoch seconds, rounded down to the second (DynamoDB Streams' own precision).
        "ApproximateCreationDateTime": float(int(_epoch(source["ApproximateCreationDateTime"]))),
        "Keys": _lambda_json(source.get("Keys", {})),
    }
    for image in ("NewImage", "OldImage"):
        if image in source:
            dynamodb[image] = _lambda_json(source[image])
    dynamodb["SequenceNumber"] = source["SequenceNumber"]
    dynamodb["SizeBytes"] = source.get("SizeBytes", 0)
    dynamodb["StreamViewType"] = source.get("StreamViewType")
    record = {
        "eventID": raw["eventID"],
        "eventName": raw["eventName"],
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": raw.get("awsRegion", region),
        "dynamodb": dynamodb,
        "eventSourceARN": stream_arn,
    }
    if "userIdentity" in raw:  # TTL deletions
        record["userIdentity"] = _lambda_json(raw["userIdentity"])
    return record


# --- event filtering ---------------------------------------------------------------------------------

_NUMERIC_OPS: dict[str, Callable[[float, float], bool]] = {
    "=": lambda a, b: a == b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
}
_OPERATORS = {"prefix", "suffix", "equals-ignore-case", "anything-but", "exists", "numeric"}


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _equal(rule: Any, value: Any) -> bool:
    if _is_number(rule) and _is_number(value):
        return float(rule) == float(value)
    return type(rule) is type(value) and rule == value


def _match_operator(rule: dict, value: Any) -> bool:
    """One operator object (``{"prefix": "x"}`` …) against one present, scalar value."""
    ((name, arg),) = rule.items()
    if name == "prefix":
        return isinstance(value, str) and value.startswith(arg)
    if name == "suffix":
        return isinstance(value, str) and value.endswith(arg)
    if name == "equals-ignore-case":
        return isinstance(value, str) and value.casefold() == str(arg).casefold()
    if name == "numeric":
        if not _is_number(value):
            return False
        pairs = list(zip(arg[::2], arg[1::2], strict=True))
        return all(_NUMERIC_OPS[op](float(value), float(bound)) for op, bound in pairs)
    if name == "anything-but":
        if isinstance(arg, dict):
            return not _match_operator(arg, value)
        excluded = arg if isinstance(arg, list) else [arg]
        return not any(_equal(item, value) for item in excluded)
    raise ValueError(f"unsupported filter operator {name!r}")


def _match_leaf(rules: list, present: bool, value: Any) -> bool:
    values = value if isinstance(value, list) else [value]
    for rule in rules:
        if isinstance(rule, dict):
            if "exists" in rule:
                # exists applies to leaves: a present object is not a matching leaf.
                leaf_present = present and not isinstance(value, dict)
                if bool(rule["exists"]) == leaf_present:
                    return True
                continue
            if present and any(_match_operator(rule, v) for v in values if not isinstance(v, dict)):
                return True
        elif present and any(_equal(rule, v) for v in values):
            return True
    return False


def matches_pattern(pattern: dict, data: Any) -> bool:
    """Lambda's event-pattern match of one filter against one record (every key of the pattern must match)."""
    source = data if isinstance(data, dict) else {}
    for key, rule in pattern.items():
        present = key in source
        value = source.get(key, _MISSING)
        if isinstance(rule, dict):
            if not matches_pattern(rule, value if present and isinstance(value, dict) else {}):
                return False
        elif isinstance(rule, list):
            if not _match_leaf(rule, present, value):
                return False
        else:
            raise ValueError(f"filter rule for {key!r} must be an object or an array, got {rule!r}")
    return True


def matches_filters(filters: tuple[dict, ...] | list[dict], record: dict) -> bool:
    """No filters: every record. Otherwise the record must match at least one filter (they are OR-ed)."""
    return not filters or any(matches_pattern(pattern, record) for pattern in filters)


def _validate_pattern(pattern: Any, path: str = "") -> None:
    if not isinstance(pattern, dict):
        raise ValueError(f"filter pattern at {path or '/'} is not an object")
    for key, rule in pattern.items():
        where = f"{path}/{key}"
        if isinstance(rule, dict):
            _validate_pattern(rule, where)
        elif isinstance(rule, list):
            for item in rule:
                if isinstance(item, dict):
                    if len(item) != 1 or next(iter(item)) not in _OPERATORS:
                        raise ValueError(f"unsupported filter rule at {where}: {item!r}")
                    if "anything-but" in item and isinstance(item["anything-but"], dict):
                        inner = item["anything-but"]
                        if len(inner) != 1 or next(iter(inner)) not in ("prefix", "suffix", "equals-ignore-case"):
                            raise ValueError(f"unsupported anything-but rule at {where}: {inner!r}")
        else:
            raise ValueError(f"filter rule at {where} must be an object or an array")


# --- delivery ----------------------------------------------------------------------------------------


@dataclass
class _Entry:
    record: dict  # as Lambda sends it
    arrival: float  # ApproximateCreationDateTime with its full precision, epoch seconds

    @property
    def sequence(self) -> str:
        return self.record["dynamodb"]["SequenceNumber"]


@dataclass
class _Shard:
    shard_id: str
    iterator: str | None
    pending: list[_Entry] = field(default_factory=list)
    waiting_since: float | None = None


@dataclass
class _Outcome:
    failed_at: int | None  # index of the first record to retry from; None = the batch succeeded
    function_error: str | None = None


def _iso(epoch: float, millis: bool = False) -> str:
    moment = datetime.fromtimestamp(epoch, UTC)
    if millis:
        return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


class StreamDelivery:
    """One event source mapping: reads a stream's shards in order and invokes one handler like Lambda.

    ``poll_once()`` does one round (read what is new, deliver every batch that is due, retries included)
    and is what the tests drive; ``start()`` runs it in a background thread every ``interval`` seconds.
    """

    def __init__(
        self,
        mapping: StreamMapping,
        *,
        streams: Any,
        stream_arn: str,
        sqs: Any = None,
        on_failure_url: str | None = None,
        handler: Handler | None = None,
        region: str = "us-east-1",
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Any] | None = None,
        interval: float = 0.25,
        emit: Callable[[str], None] | None = None,
    ) -> None:
        for pattern in mapping.filters:
            _validate_pattern(pattern)
        if mapping.on_failure and on_failure_url is None:
            raise ValueError(f"{mapping.function_id}: no queue URL for the OnFailure destination {mapping.on_failure}")
        self.mapping = mapping
        self._streams, self._sqs = streams, sqs
        self._arn, self._region = stream_arn, region
        self._on_failure_url = on_failure_url
        self._handler = handler or self._load_handler(mapping)
        self._clock = clock
        self._stop = threading.Event()
        self._sleep = sleep or self._stop.wait
        self._interval = interval
        self._emit = emit or (lambda line: None)
        self._shards: dict[str, _Shard] = {}
        self._invokes: dict[str, int] = {}
        self._retries: dict[str, int] = {}
        self._lock = _function_lock(mapping.function_id)
        self._thread: threading.Thread | None = None
        self.function_arn = f"arn:aws:lambda:{region}:{ACCOUNT}:function:{mapping.function_name}"

    @staticmethod
    def _load_handler(mapping: StreamMapping) -> Handler:
        module, attribute = load_function(mapping.code_uri, mapping.handler)
        return getattr(module, attribute)

    # reading -------------------------------------------------------------------------------------

    def _refresh_shards(self) -> None:
        description = self._streams.describe_stream(StreamArn=self._arn)["StreamDescription"]
        first_round = not self._shards
        for shard in description.get("Shards", []):
            shard_id = shard["ShardId"]
            if shard_id in self._shards:
                continue
            # A shard that appears after the mapping started is read from its beginning, as Lambda does
            # for child shards; the first ones follow StartingPosition.
            position = self.mapping.starting_position if first_round else "TRIM_HORIZON"
            iterator = self._streams.get_shard_iterator(
                StreamArn=self._arn, ShardId=shard_id, ShardIteratorType=position
            )["ShardIterator"]
            self._shards[shard_id] = _Shard(shard_id, iterator)

    def _read(self, shard: _Shard) -> None:
        while shard.iterator:
            response = self._streams.get_records(ShardIterator=shard.iterator, Limit=1000)
            shard.iterator = response.get("NextShardIterator")
            raw_records = response.get("Records", [])
            if not raw_records:
                return
            for raw in raw_records:
                record = lambda_record(raw, self._arn, self._region)
                if not matches_filters(self.mapping.filters, record):
                    continue  # filtered out: checkpointed without ever reaching the function
                if not shard.pending:
                    shard.waiting_since = self._clock()
                shard.pending.append(_Entry(record, _epoch(raw["dynamodb"]["ApproximateCreationDateTime"])))

    def _due(self, shard: _Shard) -> bool:
        if not shard.pending:
            return False
        if len(shard.pending) >= self.mapping.batch_size or self.mapping.batching_window <= 0:
            return True
        return self._clock() - (shard.waiting_since or 0.0) >= self.mapping.batching_window

    def poll_once(self) -> None:
        """Read every shard and deliver every batch that is due (full, or its batching window passed)."""
        self._refresh_shards()
        for shard in list(self._shards.values()):
            self._read(shard)
            while self._due(shard) and not self._stop.is_set():
                batch = shard.pending[: self.mapping.batch_size]
                del shard.pending[: self.mapping.batch_size]
                self._deliver(shard, batch)
                shard.waiting_since = self._clock() if shard.pending else None

    # invoking ------------------------------------------------------------------------------------

    def _invoke(self, batch: list[_Entry]) -> _Outcome:
        event = {"Records": [entry.record for entry in batch]}
        context = LambdaContext(function_name=self.mapping.function_name, timeout_seconds=self.mapping.timeout)
        for entry in batch:
            self._invokes[entry.sequence] = self._invokes.get(entry.sequence, 0) + 1
        with self._lock:
            try:
                response = self._handler(event, context)
            except Exception as error:  # any handler exception is a function error, as on Lambda
                self._emit(f"stream    {self.mapping.function_id} failed: {type(error).__name__}")
                return _Outcome(failed_at=0, function_error="Unhandled")
        if not self.mapping.report_batch_item_failures or not isinstance(response, dict):
            return _Outcome(failed_at=None)
        failures = response.get("batchItemFailures")
        if not failures:
            return _Outcome(failed_at=None)
        positions = {entry.sequence: index for index, entry in enumerate(batch)}
        indexes = []
        for failure in failures:
            identifier = failure.get("itemIdentifier") if isinstance(failure, dict) else None
            if not isinstance(identifier, str) or identifier not in positions:
                return _Outcome(failed_at=0)  # Lambda treats a malformed failure report as a full failure
            indexes.append(positions[identifier])
        return _Outcome(failed_at=min(indexes))

    def _deliver(self, shard: _Shard, batch: list[_Entry]) -> None:
        """One batch to completion: every record is either delivered or discarded to the destination."""
        work: deque[list[_Entry]] = deque([batch])
        while work and not self._stop.is_set():
            part = self._drop_expired(shard, work.popleft())
            if not part:
                continue
            outcome = self._invoke(part)
            if outcome.failed_at is None:
                self._forget(part)
                continue
            done, failing = part[: outcome.failed_at], part[outcome.failed_at :]
            self._forget(done)
            if done and self.mapping.bisect_on_error:
                work.appendleft(failing)  # split at the reported record: no retry consumed
                continue
            if not done and self.mapping.bisect_on_error and len(failing) > 1:
                half = len(failing) // 2
                work.appendleft(failing[half:])
                work.appendleft(failing[:half])
                continue
            for entry in failing:
                self._retries[entry.sequence] = self._retries.get(entry.sequence, 0) + 1
            retries = max(self._retries[entry.sequence] for entry in failing)
            limit = self.mapping.max_retry_attempts
            if limit >= 0 and retries > limit:
                self._discard(shard, failing, "RetryAttemptsExhausted", outcome)
                continue
            self._sleep(min(0.5 * 2 ** (retries - 1), 5.0))
            work.appendleft(failing)

    def _drop_expired(self, shard: _Shard, part: list[_Entry]) -> list[_Entry]:
        limit = self.mapping.max_record_age
        if limit < 0:
            return part
        now = self._clock()
        expired = 0
        while expired < len(part) and now - part[expired].arrival > limit:
            expired += 1
        if expired:
            self._discard(shard, part[:expired], "RecordAgeExceeded", None)
        return part[expired:]

    def _forget(self, entries: list[_Entry]) -> None:
        for entry in entries:
            self._invokes.pop(entry.sequence, None)
            self._retries.pop(entry.sequence, None)

    def _discard(self, shard: _Shard, entries: list[_Entry], condition: str, outcome: _Outcome | None) -> None:
        invoke_count = max(self._invokes.get(entry.sequence, 0) for entry in entries)
        message: dict[str, Any] = {
            "requestContext": {
                "requestId": str(uuid.uuid4()),
                "functionArn": self.function_arn,
                "condition": condition,
                "approximateInvokeCount": invoke_count,
            },
        }
        if invoke_count:
            response_context: dict[str, Any] = {"statusCode": 200, "executedVersion": "$LATEST"}
            if outcome is not None and outcome.function_error:
                response_context["functionError"] = outcome.function_error
            message["responseContext"] = response_context
        message["version"] = "1.0"
        message["timestamp"] = _iso(self._clock(), millis=True)
        message["DDBStreamBatchInfo"] = {
            "shardId": shard.shard_id,
            "startSequenceNumber": entries[0].sequence,
            "endSequenceNumber": entries[-1].sequence,
            "approximateArrivalOfFirstRecord": _iso(entries[0].arrival),
            "approximateArrivalOfLastRecord": _iso(entries[-1].arrival),
            "batchSize": len(entries),
            "streamArn": self._arn,
        }
        if self._on_failure_url:
            self._sqs.send_message(QueueUrl=self._on_failure_url, MessageBody=json.dumps(message))
            where = f"sent to {self.mapping.on_failure}"
        else:
            where = "dropped (no OnFailure destination)"
        self._emit(f"stream    {self.mapping.function_id}: {len(entries)} record(s) {where} ({condition})")
        self._forget(entries)

    # background ----------------------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.poll_once()
            except Exception as error:  # the stack is shutting down, or a transient local error
                self._emit(f"(stream delivery to {self.mapping.function_id} failed: {type(error).__name__})")
            self._stop.wait(self._interval)

    def start(self) -> StreamDelivery:
        self._thread = threading.Thread(target=self._run, name=f"stream-{self.mapping.function_id}", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)


def _queue_url(sqs: Any, name: str) -> str:
    try:
        return sqs.get_queue_url(QueueName=name)["QueueUrl"]
    except sqs.exceptions.QueueDoesNotExist:
        return sqs.create_queue(QueueName=name)["QueueUrl"]


def start_stream_delivery(
    endpoint: str,
    tables: dict[str, str],
    template: dict | None = None,
    *,
    region: str = "us-east-1",
    emit: Callable[[str], None] | None = None,
) -> list[StreamDelivery]:
    """A started `StreamDelivery` (background thread) for every enabled DynamoDB event of the template.

    ``tables`` maps logical ids to the local table names (`create_tables`' result); on-failure queues are
    looked up by their logical id (the local queue name), and created if provisioning has not done so.
    """
    import boto3

    template = template if template is not None else load_template()
    mappings = [m for m in stream_mappings(template) if m.enabled]
    if not mappings:
        return []
    credentials = {"aws_access_key_id": "local", "aws_secret_access_key": "local"}
    dynamodb = boto3.client("dynamodb", endpoint_url=endpoint, region_name=region, **credentials)
    streams = boto3.client("dynamodbstreams", endpoint_url=endpoint, region_name=region, **credentials)
    sqs = boto3.client("sqs", endpoint_url=endpoint, region_name=region, **credentials)
    deliveries = []
    for mapping in mappings:
        arn = dynamodb.describe_table(TableName=tables[mapping.table])["Table"]["LatestStreamArn"]
        url = _queue_url(sqs, mapping.on_failure) if mapping.on_failure else None
        delivery = StreamDelivery(
            mapping, streams=streams, stream_arn=arn, sqs=sqs, on_failure_url=url, region=region, emit=emit
        )
        deliveries.append(delivery.start())
    return deliveries
