"""leadflow.schemas.field_errors: every violation as (field path, message), never echoing the value."""

from __future__ import annotations

import pytest

from leadflow.errors import FieldError, ValidationFailed
from leadflow.schemas import check, field_errors, validator

LEAD = "lead_input.v1.json"
GENERIC = "generic_webhook.v1.json"
SECRET = "ada.secret@example.io"


def test_a_valid_lead_has_no_errors():
    doc = {"email": "ada@example.io", "company_size": 50, "consent_email": True, "attributes": {"budget": 5, "x": None}}
    assert field_errors(LEAD, doc) == []


@pytest.mark.parametrize(
    ("doc", "expected"),
    [
        ({"email": 42}, [FieldError("email", "must be of type string")]),
        ({"email": "x" * 400}, [FieldError("email", "must be at most 320 characters")]),
        ({"company_size": -3}, [FieldError("company_size", "must be at least 0")]),
        ({"company_size": 3.5}, [FieldError("company_size", "must be of type string or integer")]),
        ({"consent_email": ["on"]}, [FieldError("consent_email", "must be of type boolean or string")]),
        ({"submitted_at": "yesterday 5pm"}, [FieldError("submitted_at", "must be a valid date-time")]),
        ({"consent": {"email": "x" * 17}}, [FieldError("consent.email", "must be at most 16 characters")]),
        ({"consent": {"Email": True}}, [FieldError("consent", "has an invalid format")]),
        ({"attributes": {"bad key!": "v"}}, [FieldError("attributes", "has an invalid format")]),
        (
            {"attributes": {"budget": {"nested": "v"}}},
            [FieldError("attributes.budget", "must be of type string or number or boolean or null")],
        ),
    ],
)
def test_violations_name_the_field_path(doc, expected):
    assert field_errors(LEAD, doc) == expected


def test_unknown_fields_are_each_named_sorted():
    errors = field_errors(LEAD, {"zeta": 1, "favourite_colour": "teal", "email": "a@b.io"})
    assert errors == [
        FieldError("favourite_colour", "is not a known field"),
        FieldError("zeta", "is not a known field"),
    ]


def test_generic_envelope_paths_are_prefixed_with_data():
    errors = field_errors(GENERIC, {"data": {"email": SECRET, "phone": 5}})
    assert errors == [FieldError("data.phone", "must be of type string"), FieldError("type", "is required")]
    assert field_errors(GENERIC, {"type": "lead.submitted"}) == [FieldError("data", "is required")]
    assert field_errors(GENERIC, {"type": "lead.deleted", "data": {}}) == [
        FieldError("type", "must be 'lead.submitted'")
    ]


def test_a_body_that_is_not_an_object_is_reported_as_body():
    assert field_errors(GENERIC, []) == [FieldError("body", "must be of type object")]


def test_prefix_and_rename_map_paths_to_what_the_form_submitted():
    assert field_errors(LEAD, {"email": 42}, prefix="data.") == [FieldError("data.email", "must be of type string")]
    renamed = field_errors(LEAD, {"email": 42}, rename={"email": "Email Address"})
    assert renamed == [FieldError("Email Address", "must be of type string")]


@pytest.mark.parametrize(
    "doc",
    [
        {"email": 12345678901},
        {"email": SECRET * 20},
        {"first_name": [SECRET]},
        {"submitted_at": SECRET},
        {"consent": {"email": SECRET}},
        {"attributes": {"note": {"who": SECRET}}},
        {"country": SECRET * 5},
        {"company_size": -987654321},
    ],
)
def test_messages_never_echo_the_submitted_value(doc):
    errors = field_errors(LEAD, doc)
    assert errors
    for error in errors:
        assert SECRET not in error.message
        assert "12345678901" not in error.message and "987654321" not in error.message


def test_check_raises_validation_failed_with_the_errors():
    with pytest.raises(ValidationFailed) as raised:
        check(LEAD, {"email": 42})
    assert raised.value.errors == [FieldError("email", "must be of type string")]
    assert raised.value.status == 422


def test_validators_are_compiled_once():
    assert validator(LEAD) is validator(LEAD)


def test_a_too_long_attribute_list_is_told_its_item_limit():
    assert field_errors(LEAD, {"attributes": {"tags": ["a"] * 51}}) == [
        FieldError("attributes.tags", "must have at most 50 items")
    ]
