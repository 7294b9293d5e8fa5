"""A/B split of 1,000 leads through the real state machine (the ASL of template.yaml executed by embedded Step
Functions, the real Touch handler, SES and DynamoDB embedded): the split of what was sent lands within 3 points
of the weights, and each lead is sent, shown on its timeline and its journey, the variant its id hashes to
(`variant_for`)."""

from __future__ import annotations

import uuid
from collections import Counter, defaultdict

import boto3
import pytest
from boto3.dynamodb.types import TypeDeserializer
from moto.ses.models import ses_backends

from leadflow.domain.journey import variant_for
from leadflow.services.journeys import config, enrol
from leadflow.store.models import LEAD_SK

SPLIT = """
templates:
  offer_a: {subject: Offer A, body: "Version A"}
  offer_b: {subject: Offer B, body: "Version B"}
  offer_c: {subject: Offer C, body: "Version C"}
email: {from: nurture@example.com}
journeys:
  - name: split
    default: true
    steps:
      - touch: {id: offer, channel: email, template: offer, variants: {a: 50, b: 30, c: 20}}
"""
WEIGHTS = {"a": 0.50, "b": 0.30, "c": 0.20}
LEADS = 1000


def _stored(table: str) -> tuple[dict[str, list[str]], dict[str, dict]]:
    """Each lead's `sent` timeline variants and its journey's variants, as stored: one paginated Scan of the
    test's table (lead items and journey timeline entries) instead of 2,000 reads."""
    plain, timeline, journeys = TypeDeserializer(), defaultdict(list), {}
    pages = boto3.client("dynamodb", region_name="us-east-1").get_paginator("scan")
    for page in pages.paginate(
        TableName=table,
        FilterExpression="sk = :lead OR (begins_with(sk, :history) AND kind = :journey)",
        ProjectionExpression="pk, sk, #detail, #journey",
        ExpressionAttributeNames={"#detail": "detail", "#journey": "journey"},
        ExpressionAttributeValues={":lead": {"S": LEAD_SK}, ":history": {"S": "HIST#"}, ":journey": {"S": "journey"}},
    ):
        for raw in page["Items"]:
            item = {name: plain.deserialize(value) for name, value in raw.items()}
            lead_id = item["pk"].removeprefix("LEAD#")
            if item["sk"] == LEAD_SK:
                journeys[lead_id] = (item.get("journey") or {}).get("variants")
            elif item["detail"]["outcome"] == "sent":
                timeline[lead_id].append(item["detail"]["variant"])
    return dict(timeline), journeys


@pytest.mark.slow
def test_a_split_of_1000_leads_lands_within_3_points_of_its_weights_each_lead_sent_its_hashed_variant(world):
    # Given a one-touch journey split 50/30/20, and 1,000 new leads
    world.use_journeys(SPLIT)
    leads = world.leads([str(uuid.uuid5(uuid.NAMESPACE_URL, f"leadflow-split-{i}")) for i in range(LEADS)])

    # When every lead is enrolled and its execution runs the journey
    names = [enrol(lead_id) for lead_id in leads]
    statuses = world.wait_for_all(names, timeout=180)
    assert Counter(statuses.values()) == {"SUCCEEDED": LEADS}

    # Then SES took one email per lead, the one of the variant its id hashes to
    touch = config().journeys["split"].touches[0]
    expected = {lead_id: variant_for(lead_id, "split", touch) for lead_id in leads}
    messages = ses_backends["123456789012"]["us-east-1"].sent_messages
    recipients = Counter(m.destinations["ToAddresses"][0] for m in messages)
    assert len(messages) == LEADS and set(recipients.values()) == {1}
    sent = {m.destinations["ToAddresses"][0].removesuffix("@example.org"): m.subject for m in messages}
    assert sent == {lead_id: f"Offer {variant.upper()}" for lead_id, variant in expected.items()}
    # And the split of what was sent lands within 3 points of each weight
    observed = Counter(subject.removeprefix("Offer ").lower() for subject in sent.values())
    shares = {variant: observed[variant] / LEADS for variant in WEIGHTS}
    assert set(observed) == set(WEIGHTS)
    assert all(abs(shares[variant] - weight) <= 0.03 for variant, weight in WEIGHTS.items()), shares
    # And each lead's timeline and journey report the variant it was sent, once
    timeline, journeys = _stored(world.table)
    assert timeline == {lead_id: [variant] for lead_id, variant in expected.items()}
    assert journeys == {lead_id: {"offer": variant} for lead_id, variant in expected.items()}
