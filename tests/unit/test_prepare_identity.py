"""leadflow.domain.capture.prepare: one valid identity (email or phone) is enough to keep a lead."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from leadflow.domain.capture import prepare
from leadflow.domain.model import LeadInput
from leadflow.errors import ValidationFailed

NOW = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)


def submission(**fields):
    return prepare(LeadInput(source="generic", fields=fields), "US", NOW)


def test_a_malformed_email_next_to_a_valid_phone_keeps_the_lead_by_its_phone():
    # Given a malformed email and a valid phone
    sub = submission(email=" Ada@@Analytical ", phone="(415) 555-0123")
    # Then the lead is identified by the phone alone, and the bad email is kept as typed, flagged
    assert (sub.email, sub.phone, sub.keys) == (None, "+14155550123", ["PHONE#+14155550123"])
    assert sub.attributes["invalid_email"] == "Ada@@Analytical"
    assert sub.attributes["quality_flags"] == ["invalid_email"]


def test_a_malformed_phone_next_to_a_valid_email_is_flagged_the_same_way():
    sub = submission(email="kim@orbit.dev", phone="12")
    assert (sub.email, sub.phone) == ("kim@orbit.dev", None)
    assert sub.attributes["phone_unverified"] == "12"
    assert sub.attributes["quality_flags"] == ["phone_unverified"]


@pytest.mark.parametrize(
    ("fields", "refused"),
    [
        ({"email": "ada@@analytical"}, ["email"]),
        ({"phone": "12"}, ["phone"]),
        ({"email": "ada@@analytical", "phone": "12"}, ["email", "phone"]),
    ],
)
def test_without_any_valid_identity_it_is_a_validation_failure_that_never_echoes_the_value(fields, refused):
    with pytest.raises(ValidationFailed) as raised:
        submission(**fields)
    assert sorted(e.field for e in raised.value.errors) == refused
    for value in fields.values():
        assert value not in raised.value.detail


def test_valid_email_and_phone_carry_no_quality_flags():
    sub = submission(email="ada@analytical.dev", phone="+14155550123")
    assert "quality_flags" not in sub.attributes and "invalid_email" not in sub.attributes
