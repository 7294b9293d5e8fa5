"""A/B split through the real state machine: the variant a lead is sent is the one its id hashes to
(`variant_for`, whose split of 1,000 leads tests/unit/test_journey_planning.py holds within 3 points of the
weights), recorded on its timeline and its journey, and the email SES takes is that variant's."""

from __future__ import annotations

import time

import pytest
from moto.ses.models import ses_backends

from leadflow.domain.journey import variant_for
from leadflow.services.journeys import config, enrol
from leadflow.store.journeys import get_lead, history

SPLIT = """
templates:
  offer_a: {subject: Offer A, body: "Version A"}
  offer_b: {subject: Offer B, body: "Version B"}
email: {from: nurture@example.com}
journeys:
  - name: split
    default: true
    steps:
      - touch: {id: offer, channel: email, template: offer, variants: {a: 50, b: 50}}
"""
LEADS = 24  # fixed ids: both variants occur among them


@pytest.mark.slow
def test_each_lead_is_sent_the_variant_its_id_hashes_to_and_it_is_reported(world):
    # Given a one-touch journey split 50/50, and new leads
    world.use_journeys(SPLIT)
    leads = [world.lead(f"{i:08d}-5f1a-4c3e-9a57-1d2e3f4a5b6c") for i in range(LEADS)]

    # When every lead runs through the state machine
    arns = [world.execution_arn(enrol(lead_id)) for lead_id in leads]
    deadline = time.monotonic() + 30
    for arn in arns:
        described = world.wait_for_end(arn, timeout=max(0.1, deadline - time.monotonic()))
        assert described["status"] == "SUCCEEDED", described.get("cause")

    # Then each lead got the variant its id hashes to, on its timeline and its journey, and both were sent
    touch = config().journeys["split"].touches[0]
    expected = {lead_id: variant_for(lead_id, "split", touch) for lead_id in leads}
    sent = {lead_id: [e["variant"] for e in history(lead_id) if e["outcome"] == "sent"] for lead_id in leads}
    assert sent == {lead_id: [variant] for lead_id, variant in expected.items()}
    assert {lead_id: get_lead(lead_id)["journey"]["variants"] for lead_id in leads} == {
        lead_id: {"offer": variant} for lead_id, variant in expected.items()
    }
    assert set(expected.values()) == {"a", "b"}
    # And the email SES took for each lead is its variant's
    messages = ses_backends["123456789012"]["us-east-1"].sent_messages
    subjects = {m.destinations["ToAddresses"][0]: m.subject for m in messages}
    assert {lead_id: subjects[f"{lead_id}@example.org"] for lead_id in leads} == {
        lead_id: f"Offer {variant.upper()}" for lead_id, variant in expected.items()
    }
