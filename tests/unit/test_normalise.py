"""leadflow.domain.normalise: what a submitted value becomes on the lead."""

from __future__ import annotations

import pytest

from leadflow.domain.normalise import (
    clean_text,
    normalise_company_size,
    normalise_country,
    normalise_email,
    normalise_phone,
    parse_consent,
    split_full_name,
)
from leadflow.errors import FieldError

INVALID_EMAIL = FieldError("email", "is not a valid email address")


@pytest.mark.parametrize(
    ("typed", "stored"),
    [
        ("  Grace.Hopper@Navy-Labs.io ", "grace.hopper@navy-labs.io"),
        ("John.Doe+news@Gmail.com", "john.doe+news@gmail.com"),  # Gmail dots and +tag kept as typed
        ("j.o.h.n@googlemail.com", "j.o.h.n@googlemail.com"),
        ("MAILTO:ada@example.io", "ada@example.io"),
    ],
)
def test_email_is_trimmed_and_lower_cased_but_otherwise_kept_as_typed(typed, stored):
    assert normalise_email(typed) == (stored, None)


@pytest.mark.parametrize("typed", ["not-an-address", "a@b", "a b@c.io", "x@localhost", "a@b.c", "a" * 65 + "@b.io"])
def test_email_that_is_certainly_not_an_address_is_a_field_error(typed):
    assert normalise_email(typed) == (None, INVALID_EMAIL)


@pytest.mark.parametrize("typed", [None, "", "   ", "\t\n"])
def test_absent_email_is_neither_a_value_nor_an_error(typed):
    assert normalise_email(typed) == (None, None)


@pytest.mark.parametrize(
    ("typed", "region", "e164"),
    [
        ("(415) 555-2671", "US", "+14155552671"),
        ("415.555.2671", "US", "+14155552671"),
        ("020 7946 0958", "GB", "+442079460958"),  # national number read with the lead's country
        ("00 44 20 7946 0958", "GB", "+442079460958"),
        ("030 1234567", "DE", "+49301234567"),
        ("+44 20 7946 0958", "US", "+442079460958"),  # an international number ignores the region
        ("+1 202-555-0143", "GB", "+12025550143"),
    ],
)
def test_phone_becomes_e164_with_the_region(typed, region, e164):
    assert normalise_phone(typed, region) == (e164, None)


def test_the_same_national_number_depends_on_the_region():
    # Given a UK national number, When read with the US default region, Then it is not a valid US number
    assert normalise_phone("020 7946 0958", "GB")[0] == "+442079460958"
    assert normalise_phone("020 7946 0958", "US") == (
        None,
        FieldError("phone", "is not a valid phone number (default region US)"),
    )


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        ("12", "is not a valid phone number (default region US)"),
        ("abc", "is not a phone number (default region US)"),
        ("+", "is not a phone number (default region US)"),
    ],
)
def test_invalid_phone_is_a_field_error_naming_the_region_not_the_value(typed, message):
    value, error = normalise_phone(typed, "US")
    assert value is None
    assert error == FieldError("phone", message)
    assert typed not in error.message


def test_phone_with_an_unknown_region_is_an_error_not_a_crash():
    assert normalise_phone("555 2671", "ZZ") == (None, FieldError("phone", "is not a phone number (default region ZZ)"))


def test_absent_phone_is_neither_a_value_nor_an_error():
    assert normalise_phone("  ", "US") == (None, None)


@pytest.mark.parametrize(
    ("typed", "band"),
    [
        ("1", "1-10"),
        ("11-50", "11-50"),
        ("11 to 50", "11-50"),
        ("50 employees", "11-50"),
        ("40-60", "51-200"),  # a range goes by its upper bound
        ("201-500", "201-500"),
        ("500+", "501-1000"),  # 'N+' where N closes a band starts the next band
        ("1000", "501-1000"),
        ("1,000+", "1001-5000"),
        ("2.500", "1001-5000"),  # thousands separator
        ("5000", "1001-5000"),
        ("10000+", "10001+"),
        ("10,000+", "10001+"),
        ("10001", "10001+"),
        ("1.000.000", "10001+"),
        (250, "201-500"),  # a plain number, as JSON sends it
    ],
)
def test_company_size_becomes_a_band(typed, band):
    assert normalise_company_size(typed) == band


def test_company_size_in_words_is_kept_as_typed_and_absent_is_none():
    assert normalise_company_size("  just   me ") == "just me"
    assert normalise_company_size("") is None
    assert normalise_company_size(None) is None


@pytest.mark.parametrize(
    ("typed", "code"),
    [
        ("us", "US"),
        ("gb", "GB"),
        ("United States", "US"),
        ("Germany", "DE"),
        ("Deutschland", "DE"),
        ("Allemagne", "DE"),
        ("Alemania", "DE"),
        ("España", "ES"),
        ("Spanien", "ES"),
        ("Royaume-Uni", "GB"),
        ("UK", "GB"),
        ("England", "GB"),
        ("中国", "CN"),
        ("日本", "JP"),
        ("Japon", "JP"),
    ],
)
def test_country_names_in_several_languages_and_codes_become_iso_alpha2(typed, code):
    assert normalise_country(typed) == code


def test_unknown_country_is_kept_as_typed():
    assert normalise_country("  Narnia ") == "Narnia"
    assert normalise_country("") is None


@pytest.mark.parametrize(("typed", "code"), [("U.S.A.", "US"), ("U.S.", "US"), ("u.k.", "GB")])
def test_dotted_country_abbreviations_become_iso_alpha2(typed, code):
    assert normalise_country(typed) == code


def test_clean_text_trims_collapses_spaces_and_drops_control_and_invisible_characters():
    assert clean_text("  a\x00b\u200b  c\t\td \n") == "ab c d"
    assert clean_text("x" * 300) == "x" * 256
    assert clean_text(" \t ") is None


def test_full_name_is_split_on_the_first_space():
    assert split_full_name("  Ada   King Lovelace ") == ("Ada", "King Lovelace")
    assert split_full_name("Cher") == ("Cher", None)
    assert split_full_name("  ") == (None, None)


@pytest.mark.parametrize(
    ("typed", "granted"),
    [
        (True, True),
        (False, False),
        ("on", True),
        ("YES", True),
        ("Opt-In", True),
        ("1", True),
        ("off", False),
        ("", False),
        ("0", False),
        ("maybe", None),
        (None, None),
    ],
)
def test_consent_spellings(typed, granted):
    assert parse_consent(typed) is granted


def test_country_names_come_from_phonenumbers_own_locale_table():
    # Given phonenumbers' table of country names per language, imported the ordinary way
    from phonenumbers.geodata.locale import LOCALE_DATA

    from leadflow.domain.normalise import _locale_data

    # When LeadFlow reads it without running the geocoding package (tests/unit/test_import_budget.py)
    # Then it reads the very same table
    assert _locale_data() == LOCALE_DATA


def test_the_shipped_country_name_table_is_what_phonenumbers_says():
    # Given the table the layer ships (read on a cold start instead of phonenumbers' locale module)
    import json

    from leadflow.domain.normalise import COUNTRY_NAMES_FILE, build_country_names

    shipped = json.loads(COUNTRY_NAMES_FILE.read_text(encoding="utf-8"))
    # When it is built again from the installed phonenumbers
    # Then it is the same (after a phonenumbers upgrade: python -m leadflow.domain.normalise)
    assert shipped == build_country_names()
