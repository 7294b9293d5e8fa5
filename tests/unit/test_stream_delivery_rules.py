"""Stream delivery's pure parts: Lambda's filter rules, the record Lambda builds, and the template's mappings."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from leadflow_local.stream_delivery import lambda_record, matches_filters, matches_pattern
from leadflow_local.template import load_template, stream_mappings


def _record(event_name: str = "INSERT", new: dict | None = None, old: dict | None = None) -> dict:
    dynamodb: dict = {"Keys": {"pk": {"S": "LEAD#1"}}, "SequenceNumber": "100", "SizeBytes": 10}
    if new is not None:
        dynamodb["NewImage"] = new
    if old is not None:
        dynamodb["OldImage"] = old
    return {"eventName": event_name, "eventSource": "aws:dynamodb", "dynamodb": dynamodb}


LEAD = {"entity": {"S": "lead"}, "stage": {"S": "qualified"}, "score": {"N": "72"}, "tags": {"SS": ["b2b", "eu"]}}
CHANGED = _record("MODIFY", new=LEAD, old={"entity": {"S": "lead"}, "stage": {"S": "new"}})


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        # exact values (OR within the array), nested keys, every key must match (AND)
        ({"dynamodb": {"NewImage": {"entity": {"S": ["lead"]}}}}, True),
        ({"dynamodb": {"NewImage": {"entity": {"S": ["touch", "lead"]}}}}, True),
        ({"dynamodb": {"NewImage": {"entity": {"S": ["touch"]}}}}, False),
        ({"eventName": ["MODIFY"], "dynamodb": {"NewImage": {"entity": {"S": ["lead"]}}}}, True),
        ({"eventName": ["INSERT"], "dynamodb": {"NewImage": {"entity": {"S": ["lead"]}}}}, False),
        # prefix / suffix / equals-ignore-case
        ({"dynamodb": {"Keys": {"pk": {"S": [{"prefix": "LEAD#"}]}}}}, True),
        ({"dynamodb": {"Keys": {"pk": {"S": [{"prefix": "EMAIL#"}]}}}}, False),
        ({"dynamodb": {"Keys": {"pk": {"S": [{"suffix": "#1"}]}}}}, True),
        ({"dynamodb": {"NewImage": {"stage": {"S": [{"equals-ignore-case": "QUALIFIED"}]}}}}, True),
        # anything-but: a value, a list, a prefix; never matches a missing field
        ({"dynamodb": {"NewImage": {"stage": {"S": [{"anything-but": "new"}]}}}}, True),
        ({"dynamodb": {"NewImage": {"stage": {"S": [{"anything-but": ["new", "qualified"]}]}}}}, False),
        ({"dynamodb": {"NewImage": {"stage": {"S": [{"anything-but": {"prefix": "qual"}}]}}}}, False),
        ({"dynamodb": {"NewImage": {"missing": {"S": [{"anything-but": "x"}]}}}}, False),
        # exists on leaves, including under an image the record does not have
        ({"dynamodb": {"NewImage": {"stage": {"S": [{"exists": True}]}}}}, True),
        ({"dynamodb": {"NewImage": {"owner": {"S": [{"exists": False}]}}}}, True),
        ({"dynamodb": {"NewImage": {"stage": [{"exists": True}]}}}, False),  # an object is not a leaf
        # arrays in the record: a rule matches if any element does
        ({"dynamodb": {"NewImage": {"tags": {"SS": ["eu"]}}}}, True),
        # numeric compares JSON numbers: a DynamoDB N value is a string in the record
        ({"dynamodb": {"SizeBytes": [{"numeric": [">", 5, "<=", 10]}]}}, True),
        ({"dynamodb": {"SizeBytes": [{"numeric": ["=", 10.0]}]}}, True),
        ({"dynamodb": {"SizeBytes": [{"numeric": ["<", 10]}]}}, False),
        ({"dynamodb": {"NewImage": {"score": {"N": [{"numeric": [">", 50]}]}}}}, False),
        ({"dynamodb": {"NewImage": {"score": {"N": ["72"]}}}}, True),
    ],
)
def test_filter_rules_match_like_lambda_event_filtering(pattern, expected):
    # Given a MODIFY of a lead, When a filter pattern is applied, Then it matches as Lambda's would
    assert matches_pattern(pattern, CHANGED) is expected


def test_exists_false_matches_under_an_image_an_insert_does_not_carry():
    # Given an INSERT (no OldImage), When a filter asks for an attribute of the old image not to exist
    insert = _record("INSERT", new=LEAD)
    # Then it matches, and a filter needing the old image does not
    assert matches_pattern({"dynamodb": {"OldImage": {"stage": {"S": [{"exists": False}]}}}}, insert)
    assert not matches_pattern({"dynamodb": {"OldImage": {"stage": {"S": ["new"]}}}}, insert)


def test_filters_are_ored_and_no_filters_lets_everything_through():
    touch = _record("INSERT", new={"entity": {"S": "touch"}})
    removed_lead = _record("REMOVE", old={"entity": {"S": "lead"}})
    filters = (
        {"dynamodb": {"NewImage": {"entity": {"S": ["lead"]}}}},
        {"dynamodb": {"OldImage": {"entity": {"S": ["lead"]}}}},
    )
    assert matches_filters(filters, removed_lead)
    assert not matches_filters(filters, touch)
    assert matches_filters((), touch)


def test_an_unsupported_operator_is_an_error_not_a_silent_match():
    with pytest.raises(ValueError, match="unsupported"):
        matches_pattern({"dynamodb": {"Keys": {"pk": {"S": [{"wildcard": "LEAD*"}]}}}}, CHANGED)


def test_lambda_record_has_lambdas_shape_epoch_seconds_and_base64_binaries():
    # Given a record as boto3 parses it from GetRecords (datetime, bytes)
    raw = {
        "eventID": "e1",
        "eventName": "INSERT",
        "eventVersion": "1.0",
        "eventSource": "aws:dynamodb",
        "awsRegion": "us-east-1",
        "dynamodb": {
            "ApproximateCreationDateTime": datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC),
            "Keys": {"pk": {"S": "a"}},
            "NewImage": {"pk": {"S": "a"}, "blob": {"B": b"\x00\x01"}},
            "SequenceNumber": "42",
            "SizeBytes": 12,
            "StreamViewType": "NEW_AND_OLD_IMAGES",
        },
    }
    # When it becomes the record of a Lambda event
    record = lambda_record(raw, "arn:aws:dynamodb:us-east-1:123456789012:table/T/stream/x")
    # Then it carries what Lambda sends
    assert record["eventVersion"] == "1.1"
    assert record["eventSourceARN"].endswith("/stream/x")
    assert record["dynamodb"]["ApproximateCreationDateTime"] == 1767323045.0
    assert record["dynamodb"]["NewImage"]["blob"] == {"B": "AAE="}
    assert list(record["dynamodb"]) == [
        "ApproximateCreationDateTime", "Keys", "NewImage", "SequenceNumber", "SizeBytes", "StreamViewType",
    ]  # fmt: skip


def _function(events: dict) -> dict:
    return {
        "Globals": {"Function": {"Handler": "app.handler", "Timeout": 15}},
        "Resources": {
            "Table": {"Type": "AWS::DynamoDB::Table", "Properties": {}},
            "Dlq": {"Type": "AWS::SQS::Queue"},
            "PushFunction": {
                "Type": "AWS::Serverless::Function",
                "Properties": {"CodeUri": "functions/push/", "Events": events},
            },
        },
    }


def test_stream_mappings_apply_lambdas_defaults_and_globals():
    template = _function({"S": {"Type": "DynamoDB", "Properties": {"Stream": {"Fn::GetAtt": ["Table", "StreamArn"]}}}})
    (mapping,) = stream_mappings(template)
    assert (mapping.function_id, mapping.code_uri, mapping.handler, mapping.timeout) == (
        "PushFunction", "functions/push/", "app.handler", 15.0,
    )  # fmt: skip
    assert mapping.table == "Table"
    assert (mapping.batch_size, mapping.batching_window, mapping.max_retry_attempts, mapping.max_record_age) == (
        100, 0.0, -1, -1,
    )  # fmt: skip
    assert not mapping.bisect_on_error and not mapping.report_batch_item_failures
    assert mapping.filters == () and mapping.on_failure is None and mapping.starting_position == "LATEST"


def test_stream_mappings_read_every_setting():
    template = _function(
        {
            "S": {
                "Type": "DynamoDB",
                "Properties": {
                    "Stream": {"Fn::GetAtt": "Table.StreamArn"},
                    "StartingPosition": "TRIM_HORIZON",
                    "BatchSize": 25,
                    "MaximumBatchingWindowInSeconds": 2,
                    "FilterCriteria": {
                        "Filters": [{"Pattern": '{"dynamodb": {"NewImage": {"entity": {"S": ["lead"]}}}}'}]
                    },
                    "FunctionResponseTypes": ["ReportBatchItemFailures"],
                    "BisectBatchOnFunctionError": True,
                    "MaximumRetryAttempts": 3,
                    "MaximumRecordAgeInSeconds": 3600,
                    "ParallelizationFactor": 2,
                    "DestinationConfig": {"OnFailure": {"Destination": {"Fn::GetAtt": ["Dlq", "Arn"]}}},
                },
            },
            "Api": {"Type": "HttpApi", "Properties": {"Path": "/x", "Method": "GET"}},
        }
    )
    (mapping,) = stream_mappings(template)
    assert mapping.filters == ({"dynamodb": {"NewImage": {"entity": {"S": ["lead"]}}}},)
    assert mapping.report_batch_item_failures and mapping.bisect_on_error
    assert (mapping.batch_size, mapping.batching_window, mapping.max_retry_attempts, mapping.max_record_age) == (
        25, 2.0, 3, 3600,
    )  # fmt: skip
    assert mapping.on_failure == "Dlq" and mapping.parallelization_factor == 2


def test_the_shipped_template_reads_without_error():
    assert all(mapping.table for mapping in stream_mappings(load_template()))
