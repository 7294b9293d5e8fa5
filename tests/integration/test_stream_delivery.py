"""Stream delivery behaves like Lambda's DynamoDB event source mapping (leadflow_local.stream_delivery).

Runs against embedded AWS (moto's server over HTTP, the real dynamodbstreams and SQS APIs). No stream
function exists in template.yaml yet, so a test-only template fragment declares one, pointing at the
recording handler in tests/support/stream_functions; the table and the on-failure queue come from it too.
"""

from __future__ import annotations

import json
import re
import time

import boto3
import pytest
import yaml

from leadflow_local.moto_server import EmbeddedAws
from leadflow_local.stream_delivery import StreamDelivery, start_stream_delivery
from leadflow_local.template import CloudFormationLoader, create_tables, stream_mappings
from tests.support.stream_probe import PROBE

FRAGMENT = """
Globals:
  Function:
    Runtime: python3.12
    Timeout: 10
    Handler: app.handler
Resources:
  ItemsTable:
    Type: AWS::DynamoDB::Table
    Properties:
      AttributeDefinitions: [{AttributeName: pk, AttributeType: S}]
      KeySchema: [{AttributeName: pk, KeyType: HASH}]
      StreamSpecification: {StreamViewType: NEW_AND_OLD_IMAGES}
  StreamFailuresQueue:
    Type: AWS::SQS::Queue
  RecordingFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: tests/support/stream_functions/
      Events:
        Changes:
          Type: DynamoDB
          Properties:
            Stream: !GetAtt ItemsTable.StreamArn
            StartingPosition: TRIM_HORIZON
            BatchSize: 3
            FilterCriteria:
              Filters:
                - Pattern: '{"dynamodb": {"NewImage": {"entity": {"S": ["lead"]}}}}'
                - Pattern: '{"dynamodb": {"OldImage": {"entity": {"S": ["lead"]}}}}'
            FunctionResponseTypes: [ReportBatchItemFailures]
            BisectBatchOnFunctionError: true
            MaximumRetryAttempts: 2
            MaximumRecordAgeInSeconds: 60
            DestinationConfig:
              OnFailure:
                Destination: !GetAtt StreamFailuresQueue.Arn
"""
ISO_SECONDS = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")


def _template(**event_overrides) -> dict:
    template = yaml.load(FRAGMENT, Loader=CloudFormationLoader)  # noqa: S506 - a SafeLoader subclass
    template["Resources"]["RecordingFunction"]["Properties"]["Events"]["Changes"]["Properties"].update(event_overrides)
    return template


class FakeClock:
    """Real time plus an offset the test moves (record age, batching windows) without sleeping."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


@pytest.fixture(scope="module")
def embedded_aws():
    with EmbeddedAws() as aws:
        yield aws


@pytest.fixture
def stack(embedded_aws, request):
    # One embedded AWS for the module; a fresh table (so a fresh stream) per test.
    PROBE.reset()
    kwargs = {"endpoint_url": embedded_aws.endpoint, "region_name": "us-east-1"}
    dynamodb, sqs = boto3.client("dynamodb", **kwargs), boto3.client("sqs", **kwargs)
    streams = boto3.client("dynamodbstreams", **kwargs)
    tables = create_tables(dynamodb, _template(), prefix=f"t{len(request.node.name)}{id(request)}-")
    queue_url = sqs.create_queue(QueueName="StreamFailuresQueue")["QueueUrl"]
    _failures({"sqs": sqs, "queue_url": queue_url})  # an earlier test's leftovers (PurgeQueue is rate-limited)
    arn = dynamodb.describe_table(TableName=tables["ItemsTable"])["Table"]["LatestStreamArn"]
    yield {
        "aws": embedded_aws,
        "dynamodb": dynamodb,
        "sqs": sqs,
        "streams": streams,
        "tables": tables,
        "queue_url": queue_url,
        "stream_arn": arn,
    }
    PROBE.reset()


def _engine(stack, clock=None, **event_overrides) -> StreamDelivery:
    (mapping,) = stream_mappings(_template(**event_overrides))
    return StreamDelivery(
        mapping,
        streams=stack["streams"],
        stream_arn=stack["stream_arn"],
        sqs=stack["sqs"],
        on_failure_url=stack["queue_url"],
        clock=clock or time.time,
        sleep=lambda seconds: None,
    )


def _put(stack, key: str, entity: str = "lead", **attributes: str) -> None:
    item = {"pk": {"S": key}, "entity": {"S": entity}, **{k: {"S": v} for k, v in attributes.items()}}
    stack["dynamodb"].put_item(TableName=stack["tables"]["ItemsTable"], Item=item)


def _records_of(key: str) -> list[dict]:
    """Every record the function was invoked with for one item key, in invocation order."""
    records = [record for invocation in PROBE.invocations for record in invocation.event["Records"]]
    return [record for record in records if record["dynamodb"]["Keys"]["pk"]["S"] == key]


def _failures(stack) -> list[dict]:
    """Receive (and delete) every message of the on-failure queue."""
    sqs, url = stack["sqs"], stack["queue_url"]
    messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
    for message in messages:
        sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    return [json.loads(message["Body"]) for message in messages]


def test_records_arrive_in_order_in_batches_of_batch_size_filtered_and_shaped_like_lambda_events(stack):
    # Given leads written to the table, interleaved with items of another entity the filter leaves out,
    # then one lead changed and one removed
    for i in range(1, 8):
        _put(stack, f"lead-{i}", stage="new")
        if i % 3 == 0:
            _put(stack, f"touch-{i}", entity="touch")
    _put(stack, "lead-1", stage="qualified")
    stack["dynamodb"].delete_item(TableName=stack["tables"]["ItemsTable"], Key={"pk": {"S": "lead-2"}})

    # When `leadflow up`'s wiring starts delivery for the template's DynamoDB event (a background thread)
    deliveries = start_stream_delivery(stack["aws"].endpoint, stack["tables"], _template())
    try:
        deadline = time.monotonic() + 5
        while sum(len(batch) for batch in PROBE.batches) < 9 and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        for delivery in deliveries:
            delivery.stop()

    # Then every lead change reached the function once, in stream order, in batches of BatchSize (3)
    assert PROBE.batches == [
        ["lead-1", "lead-2", "lead-3"],
        ["lead-4", "lead-5", "lead-6"],
        ["lead-7", "lead-1", "lead-2"],
    ]
    # And the other entity never reached it
    records = [record for invocation in PROBE.invocations for record in invocation.event["Records"]]
    assert not any(record["dynamodb"]["Keys"]["pk"]["S"].startswith("touch") for record in records)
    # And each record has the DynamoDB stream event shape Lambda sends
    sequence_numbers = [int(record["dynamodb"]["SequenceNumber"]) for record in records]
    assert sequence_numbers == sorted(sequence_numbers) and len(set(sequence_numbers)) == 9
    for record in records:
        assert set(record) == {
            "eventID", "eventName", "eventVersion", "eventSource", "awsRegion", "dynamodb", "eventSourceARN",
        }  # fmt: skip
        assert record["eventSource"] == "aws:dynamodb"
        assert record["eventVersion"] == "1.1"
        assert record["awsRegion"] == "us-east-1"
        assert record["eventSourceARN"] == stack["stream_arn"]
        created = record["dynamodb"]["ApproximateCreationDateTime"]
        assert isinstance(created, float) and created == int(created) and abs(created - time.time()) < 60
        assert record["dynamodb"]["StreamViewType"] == "NEW_AND_OLD_IMAGES"
        assert record["dynamodb"]["SizeBytes"] > 0
    insert, modify, remove = records[0], records[7], records[8]
    assert insert["eventName"] == "INSERT"
    assert insert["dynamodb"]["Keys"] == {"pk": {"S": "lead-1"}}
    assert insert["dynamodb"]["NewImage"] == {"pk": {"S": "lead-1"}, "entity": {"S": "lead"}, "stage": {"S": "new"}}
    assert "OldImage" not in insert["dynamodb"]
    assert modify["eventName"] == "MODIFY"
    assert modify["dynamodb"]["OldImage"]["stage"] == {"S": "new"}
    assert modify["dynamodb"]["NewImage"]["stage"] == {"S": "qualified"}
    assert remove["eventName"] == "REMOVE"
    assert remove["dynamodb"]["Keys"] == {"pk": {"S": "lead-2"}}
    assert remove["dynamodb"]["OldImage"]["pk"] == {"S": "lead-2"} and "NewImage" not in remove["dynamodb"]
    # And nothing was discarded
    assert _failures(stack) == []


def test_a_partial_batch_waits_for_the_batching_window(stack):
    # Given a mapping with BatchSize 10 and a 30 s batching window, and two new leads
    clock = FakeClock()
    engine = _engine(stack, clock=clock, BatchSize=10, MaximumBatchingWindowInSeconds=30, MaximumRecordAgeInSeconds=-1)
    _put(stack, "lead-1")
    _put(stack, "lead-2")

    # When the poller runs before the window has passed
    engine.poll_once()
    # Then the function is not invoked yet
    assert PROBE.batches == []

    # When the window has passed
    clock.offset = 31
    engine.poll_once()
    # Then both records arrive in one batch
    assert PROBE.batches == [["lead-1", "lead-2"]]


@pytest.mark.parametrize(
    ("mode", "bisect", "delivered", "discarded"),
    [
        pytest.param("report", True, ["a", "b", "c", "d", "e", "f"], ["poison"], id="batchItemFailures+bisect"),
        pytest.param("raise", True, ["a", "b", "c", "d", "e", "f"], ["poison"], id="exception+bisect"),
        # Without bisect Lambda discards the whole failing batch: the records after the poison in its batch.
        pytest.param("report", False, ["a", "b", "e", "f"], ["poison", "c", "d"], id="batchItemFailures"),
    ],
)
def test_a_poison_record_is_retried_then_sent_to_the_on_failure_queue_and_the_stream_moves_on(
    stack, mode, bisect, delivered, discarded
):
    # Given a batch of five lead changes with a poison record in the middle, and two more after it
    PROBE.reset(poison={"poison"}, mode=mode)
    engine = _engine(stack, BatchSize=5, BisectBatchOnFunctionError=bisect, MaximumRetryAttempts=2)
    for key in ("a", "b", "poison", "c", "d", "e", "f"):
        _put(stack, key)

    # When the poller delivers them
    engine.poll_once()

    # Then every other record was delivered exactly once, in order
    assert PROBE.delivered == delivered
    # And the discarded records were retried MaximumRetryAttempts (2) times after their first failure
    with_poison = [invocation for invocation in PROBE.invocations if "poison" in invocation.keys]
    assert all(invocation.outcome in ("error", "partial") for invocation in with_poison)
    assert [invocation.keys for invocation in with_poison[-3:]][1:] == [discarded] * 2
    # And the on-failure queue holds one invocation record in Lambda's shape for exactly those records
    (failure,) = _failures(stack)
    poison_records, last_records = _records_of("poison"), _records_of(discarded[-1])
    assert set(failure) == {"requestContext", "responseContext", "version", "timestamp", "DDBStreamBatchInfo"}
    context = failure["requestContext"]
    assert context["condition"] == "RetryAttemptsExhausted"
    assert context["functionArn"] == "arn:aws:lambda:us-east-1:123456789012:function:RecordingFunction"
    assert context["approximateInvokeCount"] == len(poison_records) >= 3
    assert context["requestId"]
    assert failure["responseContext"]["statusCode"] == 200
    assert failure["responseContext"].get("functionError") == ("Unhandled" if mode == "raise" else None)
    assert failure["version"] == "1.0"
    info = failure["DDBStreamBatchInfo"]
    assert info["shardId"].startswith("shardId-")
    assert info["startSequenceNumber"] == poison_records[0]["dynamodb"]["SequenceNumber"]
    assert info["endSequenceNumber"] == last_records[0]["dynamodb"]["SequenceNumber"]
    assert info["batchSize"] == len(discarded)
    assert info["streamArn"] == stack["stream_arn"]
    assert ISO_SECONDS.match(info["approximateArrivalOfFirstRecord"])
    assert ISO_SECONDS.match(info["approximateArrivalOfLastRecord"])

    # And the stream moved on: a later record is delivered normally and nothing is retried again
    _put(stack, "g")
    engine.poll_once()
    assert PROBE.batches[-1] == ["g"] and PROBE.delivered[-1] == "g"
    assert _failures(stack) == []


def test_records_older_than_maximum_record_age_go_to_the_on_failure_queue_without_an_invocation(stack):
    # Given three lead changes and a mapping with MaximumRecordAgeInSeconds 60
    clock = FakeClock()
    engine = _engine(stack, clock=clock)
    for key in ("old-1", "old-2", "old-3"):
        _put(stack, key)

    # When the poller only gets to them two minutes later
    clock.offset = 120
    engine.poll_once()

    # Then the function is never invoked with them
    assert PROBE.invocations == []
    # And one invocation record with condition RecordAgeExceeded covers all three
    (failure,) = _failures(stack)
    assert failure["requestContext"]["condition"] == "RecordAgeExceeded"
    assert failure["requestContext"]["approximateInvokeCount"] == 0
    assert failure["DDBStreamBatchInfo"]["batchSize"] == 3
    assert "responseContext" not in failure

    # And a fresh record is still delivered
    clock.offset = 0
    _put(stack, "fresh")
    engine.poll_once()
    assert PROBE.delivered == ["fresh"]
