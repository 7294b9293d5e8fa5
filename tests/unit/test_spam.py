"""leadflow.domain.spam: junk addresses are flagged with reasons (never dropped)."""

from __future__ import annotations

import pytest

from leadflow.domain.spam import junk_reasons


@pytest.mark.parametrize(
    "email",
    [
        "ada@analytical-engines.co.uk",
        "grace.hopper@navy-labs.io",
        "information@acme.io",
        "contest@acme.io",
        "kim@latest.dev",
        "sam@notmailinator.com",
    ],
)
def test_a_normal_address_has_no_reasons(email):
    assert junk_reasons(email) == []


@pytest.mark.parametrize(
    ("email", "reasons"),
    [
        ("someone@mailinator.com", ["disposable_email"]),
        ("someone@eu.mailinator.com", ["disposable_email"]),  # subdomains of a disposable domain too
        ("x@yopmail.net", ["disposable_email"]),
        ("info@acme-widgets.com", ["role_email"]),
        ("info+leads@acme-widgets.com", ["role_email"]),  # the +tag does not hide the role
        ("no-reply@acme-widgets.com", ["role_email"]),
        ("test@acme-widgets.com", ["test_email"]),
        ("ada@example.com", ["test_email"]),
        ("ada@shop.test", ["test_email"]),
        ("ada@host.invalid", ["test_email"]),
        ("ada@printer.local", ["test_email"]),
        ("info@example.com", ["role_email", "test_email"]),
        ("test@mailinator.com", ["disposable_email", "test_email"]),
    ],
)
def test_junk_addresses_carry_every_reason_in_order(email, reasons):
    assert junk_reasons(email) == reasons


@pytest.mark.parametrize("value", [None, "", "no-at-sign"])
def test_missing_or_malformed_input_has_no_reasons(value):
    assert junk_reasons(value) == []
