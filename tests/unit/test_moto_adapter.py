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


def test_two_actions_on_one_item_are_rejected(table):
    with pytest.raises(ClientError) as raised:
        table.transact_write_items(TransactItems=[_put("a"), _put("a", new_only=False)])
    assert raised.value.response["Error"]["Code"] == "ValidationException"
    assert "Item" not in table.get_item(TableName="t", Key={"pk": {"S": "a"}})
