"""leadflow.domain.identity: which lead a submission belongs to, and which keys conflict."""

from __future__ import annotations

from leadflow.domain.identity import Resolution, identity_keys, key_kind, resolve

EXT = "EXT#generic#crm-42"
EMAIL = "EMAIL#ada@example.io"
PHONE = "PHONE#+442079460958"


def test_keys_are_listed_strongest_first_without_duplicates():
    keys = identity_keys("ada@example.io", "+442079460958", [("generic", "crm-42"), ("generic", "crm-42")])
    assert keys == [EXT, EMAIL, PHONE]


def test_missing_email_or_phone_gives_no_key_for_it():
    assert identity_keys(None, "+442079460958", []) == [PHONE]
    assert identity_keys("ada@example.io", None, []) == [EMAIL]
    assert identity_keys(None, None, []) == []


def test_no_owned_key_means_a_new_lead_that_claims_every_key():
    assert resolve([EXT, EMAIL, PHONE], {}) == Resolution(None, [EXT, EMAIL, PHONE], [])


def test_all_keys_owned_by_one_lead_is_that_lead_with_nothing_to_claim():
    owners = {EXT: "lead-a", EMAIL: "lead-a", PHONE: "lead-a"}
    assert resolve([EXT, EMAIL, PHONE], owners) == Resolution("lead-a", [], [])


def test_external_id_wins_over_email_and_phone():
    owners = {EXT: "lead-ext", EMAIL: "lead-email", PHONE: "lead-phone"}
    result = resolve([EXT, EMAIL, PHONE], owners)
    assert result.lead_id == "lead-ext"
    assert result.conflicts == [(EMAIL, "lead-email"), (PHONE, "lead-phone")]
    assert result.claim == []


def test_email_wins_over_phone_and_the_phone_is_a_conflict():
    result = resolve([EMAIL, PHONE], {EMAIL: "lead-email", PHONE: "lead-phone"})
    assert result == Resolution("lead-email", [], [(PHONE, "lead-phone")])


def test_phone_alone_matches_and_the_new_email_is_claimed():
    result = resolve([EMAIL, PHONE], {PHONE: "lead-phone"})
    assert result == Resolution("lead-phone", [EMAIL], [])


def test_unowned_keys_are_claimed_even_when_another_key_conflicts():
    result = resolve([EXT, EMAIL, PHONE], {EMAIL: "lead-a", PHONE: "lead-b"})
    assert result == Resolution("lead-a", [EXT], [(PHONE, "lead-b")])


def test_key_kind_names_the_kind_without_the_value():
    assert [key_kind(k) for k in (EXT, EMAIL, PHONE)] == ["external_id", "email", "phone"]
