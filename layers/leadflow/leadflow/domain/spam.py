"""Junk detection: disposable, role and test addresses are flagged, never silently dropped.

A flagged submission is stored as a disqualified lead with its reasons, so marketing can audit it and a
false positive can be requalified; the honeypot is handled by the form capture (answered as success,
nothing usable stored).
"""

from __future__ import annotations

# A small built-in list of the most common disposable-mail domains; deployments extend it via config.
DISPOSABLE_DOMAINS = frozenset(
    {
        "mailinator.com",
        "guerrillamail.com",
        "guerrillamail.net",
        "sharklasers.com",
        "10minutemail.com",
        "10minutemail.net",
        "temp-mail.org",
        "tempmail.com",
        "tempmailo.com",
        "throwawaymail.com",
        "yopmail.com",
        "yopmail.net",
        "getnada.com",
        "dispostable.com",
        "trashmail.com",
        "maildrop.cc",
        "mintemail.com",
        "fakeinbox.com",
        "emailondeck.com",
        "mohmal.com",
        "burnermail.io",
        "mailnesia.com",
        "spamgourmet.com",
        "tempr.email",
        "discard.email",
    }
)
ROLE_LOCAL_PARTS = frozenset(
    {
        "abuse",
        "admin",
        "administrator",
        "billing",
        "contact",
        "enquiries",
        "hostmaster",
        "info",
        "marketing",
        "no-reply",
        "noreply",
        "office",
        "postmaster",
        "sales",
        "support",
        "webmaster",
    }
)
# RFC 2606 / 6761 reserved names and the usual test spellings.
TEST_DOMAINS = frozenset({"example.com", "example.net", "example.org", "test.com"})
TEST_TLDS = (".test", ".example", ".invalid", ".localhost", ".local")
TEST_LOCAL_PARTS = frozenset({"test", "testing", "tester", "asdf", "qwerty", "fake", "nobody", "foo", "foobar"})


def junk_reasons(email: str | None) -> list[str]:
    """Reasons a normalised address is junk (empty list for a normal address)."""
    if not email or "@" not in email:
        return []
    local, domain = email.rsplit("@", 1)
    reasons = []
    base_local = local.split("+", 1)[0]
    if domain in DISPOSABLE_DOMAINS or any(domain.endswith("." + d) for d in DISPOSABLE_DOMAINS):
        reasons.append("disposable_email")
    if base_local in ROLE_LOCAL_PARTS:
        reasons.append("role_email")
    if domain in TEST_DOMAINS or domain.endswith(TEST_TLDS) or base_local in TEST_LOCAL_PARTS:
        reasons.append("test_email")
    return reasons
