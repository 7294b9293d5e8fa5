"""`_redirect` of plain HTML forms goes only where the form allows, judged as a browser parses the URL.

Every case goes through the real form handler (`POST /v1/forms/website`, urlencoded) with the shipped local
registry, whose `redirect_hosts` are `www.example.com` (https, default port) and http on any port of the
loopback names (`http://localhost:*`, `http://127.0.0.1:*`, `http://[::1]:*`). The answer is either 303 to
exactly the URL a browser would then visit (on an allowed host), or 403 with nothing stored.

The bypass strings are the classic families: userinfo and backslash confusion, protocol-relative and
scheme-less URLs, scripting schemes, whitespace and control characters, percent-encoded, full-width and
look-alike hosts, trailing dots, IPv4 in other notations, IPv6, and ports.
"""

from __future__ import annotations

import hashlib
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.support.api import Api
from tests.support.aws import local_aws

REFUSED = [
    # userinfo: the browser goes to the host after the last "@" of the authority, or before a "\"
    "https://evil.example\\@www.example.com/",
    "https://evil.example%5C@www.example.com/",
    "https://www.example.com@evil.example/",
    "https://www.example.com:@evil.example/",
    "https://www.example.com:443@evil.example/",
    "https://user:pass@www.example.com/",
    "https://www.example.com%40evil.example/",
    "https://www.example.com%2F@evil.example/",
    "https://evil.example\r\n@www.example.com/",
    # the allowed host somewhere else in the URL
    "https://evil.example#@www.example.com/",
    "https://evil.example?@www.example.com/",
    "https://evil.example/www.example.com",
    "https://evil.example/?next=https://www.example.com/",
    "https://evil.example\\www.example.com",
    "https://www.example.com.evil.example/",
    "https://www.example.com\n.evil.example/",
    "https://www.example.com%2eevil.example/",
    "https://www.example.com%00.evil.example/",
    "https://www.example.com%E3%80%82evil.example/",
    "https://evil.example%E3%80%82www.example.com",
    "https://www.example.com%20/",
    # relative, protocol-relative and slash-confused URLs
    "//evil.example/",
    "///evil.example/",
    "\\\\evil.example/",
    "/\\evil.example",
    "\\/evil.example",
    "/thanks",
    "thanks.html",
    "https:evil.example",
    "https:/evil.example",
    "https:\\\\evil.example",
    "https:/\\evil.example",
    "%68ttps://evil.example",
    # other schemes
    "javascript:alert(document.domain)//www.example.com",
    "JaVaScRiPt:alert(1)",
    " javascript:alert(1)",
    "java\tscript:alert(1)",
    "javascript://www.example.com/%0aalert(1)",
    "data:text/html,<script>alert(1)</script>",
    "ftp://www.example.com/",
    "http://www.example.com/",  # https only for this host
    # look-alike hosts
    "https://ｅｖｉｌ.example/",
    "https://www.exampIe.com/",
    "https://www.\u0435xample.com/",  # Cyrillic е
    "https://example.com/",
    "https://wwwxexample.com/",
    "https://*.example.com/",
    "https://www.example.com../",
    # ports
    "https://www.example.com:8443/",
    "https://www.example.com:99999/",
    "https://www.example.com:443abc/",
    "https://www.example.com:0x1bb/",
    # loopback look-alikes and malformed addresses
    "http://localhost.evil.example:3000/",
    "http://127.0.0.1.nip.io/",
    "http://127.0.0.08:3000/",
    "http://[::ffff:127.0.0.1]:3000/",
    "http://[::1%25eth0]:3000/",
    "http://[::1/",
    "\x00https://evil.example",
]
ALLOWED = {
    # as typed → the Location a browser receives (and the host it visits is allowed)
    "https://www.example.com/thanks": "https://www.example.com/thanks",
    "HTTPS://WWW.EXAMPLE.COM/Thanks": "https://www.example.com/Thanks",
    "https://www.example.com./thanks": "https://www.example.com/thanks",
    "https://www.example.com:443/thanks": "https://www.example.com/thanks",
    "https://www.example.com:0443/": "https://www.example.com/",
    "https://www.example.com:/": "https://www.example.com/",
    "https:///www.example.com": "https://www.example.com/",
    "  https://www.ex\tample.com/thanks\n": "https://www.example.com/thanks",
    "https://www.example.com\\.evil.example/": "https://www.example.com/.evil.example/",
    "https://www.example.com\\@evil.example/": "https://www.example.com/@evil.example/",
    "https://%77ww.example.com/p": "https://www.example.com/p",
    "https://ｗｗｗ．ｅｘａｍｐｌｅ．ｃｏｍ/": "https://www.example.com/",
    'https://www.example.com/a b?q=<x>#"f"': "https://www.example.com/a%20b?q=%3Cx%3E#%22f%22",
    "https://www.example.com/?x=%0d%0aSet-Cookie:a=b": "https://www.example.com/?x=%0d%0aSet-Cookie:a=b",
    "https://www.example.com/\r\nSet-Cookie: s=1": "https://www.example.com/Set-Cookie:%20s=1",
    "http://localhost:8000/thanks": "http://localhost:8000/thanks",
    "http://LOCALHOST:8000/thanks": "http://localhost:8000/thanks",
    "http://0x7f.1:3000/": "http://127.0.0.1:3000/",
    "http://2130706433:3000/": "http://127.0.0.1:3000/",
    "http://0177.0.0.1:3000/": "http://127.0.0.1:3000/",
    "http://127.1:3000/": "http://127.0.0.1:3000/",
    "http://[0:0:0:0:0:0:0:1]:3000/x": "http://[::1]:3000/x",
}


@pytest.fixture(scope="module")
def api():
    """One offline AWS for the whole module (each case uses its own person, so they cannot interfere)."""
    with pytest.MonkeyPatch.context() as patch, local_aws(patch):
        yield Api()


def email_for(url: str) -> str:
    return f"redirect.{hashlib.sha256(url.encode()).hexdigest()[:12]}@orbit.dev"


def post(api, redirect: str, form: str = "website"):
    return api.post_form(form, {"email": email_for(redirect), "_redirect": redirect}, as_json=False)


@pytest.mark.parametrize("url", REFUSED, ids=[json.dumps(u)[1:-1] for u in REFUSED])
def test_redirect_a_browser_would_follow_elsewhere_is_403_and_nothing_is_stored(api, url):
    # Given a plain HTML form whose _redirect a browser would follow to a host the form does not allow
    # When it is submitted
    reply = post(api, url)
    # Then it is refused like any disallowed redirect, with no Location, and nothing is stored
    assert reply.status == 403, (reply.status, reply.headers)
    assert "location" not in reply.headers
    assert api.get_lead_by_email(email_for(url)).status == 404


@pytest.mark.parametrize("url", sorted(ALLOWED), ids=[json.dumps(u)[1:-1] for u in sorted(ALLOWED)])
def test_redirect_to_an_allowed_host_is_303_to_exactly_what_was_checked(api, url):
    # Given a plain HTML form whose _redirect a browser resolves to an allowed host
    # When it is submitted
    reply = post(api, url)
    # Then the lead is stored and the browser is sent, 303, to the URL as checked (re-serialised)
    assert reply.status == 303, reply.body
    assert reply.headers["location"] == ALLOWED[url]
    assert api.get_lead_by_email(email_for(url)).status == 200


def test_there_are_at_least_forty_bypass_strings():
    assert len(REFUSED) + len(ALLOWED) >= 40 and len(REFUSED) >= 40


# ------------------------------------------------------------------------------ registry entry forms
RULES_FORM = {
    "fields": ["email"],
    "redirect_hosts": [
        "*.example.org",
        "app.example.net:8443",
        "shop.example.net:*",
        "http://plain.example.net",
        "xn--strae-oqa.example",
    ],
}
RULE_CASES = {
    "https://a.example.org/": "https://a.example.org/",
    "https://a.b.example.org/": "https://a.b.example.org/",
    "https://example.org/": None,  # the wildcard is for subdomains, not the apex
    "https://evilexample.org/": None,
    "https://a.example.org:8443/": None,
    "http://a.example.org/": None,
    "https://app.example.net:8443/": "https://app.example.net:8443/",
    "https://app.example.net/": "https://app.example.net/",
    "https://app.example.net:8444/": None,
    "https://shop.example.net:1234/": "https://shop.example.net:1234/",
    "http://plain.example.net/": "http://plain.example.net/",
    "https://plain.example.net/": "https://plain.example.net/",
    "http://plain.example.net:8080/": None,
    "https://straße.example/": "https://xn--strae-oqa.example/",  # browsers map ß non-transitionally
    "https://strasse.example/": None,
}


@pytest.fixture
def rules_registry(api, tmp_path, monkeypatch):  # a form registry for these tests only
    from leadflow.config import settings
    from leadflow.sources import forms

    path = tmp_path / "forms.json"
    hubspot = {**RULES_FORM, "redirect": "https://evil.example\\@a.example.org/"}
    path.write_text(json.dumps({"forms": {"site": RULES_FORM, "hubspot-forms": hubspot}}))
    monkeypatch.setenv("LEADFLOW_FORMS_FILE", str(path))
    settings.cache_clear()
    forms.registry.cache_clear()
    yield
    settings.cache_clear()
    forms.registry.cache_clear()


@pytest.mark.parametrize("url", sorted(RULE_CASES))
def test_registry_entries_allow_wildcards_ports_and_http_only_as_written(api, rules_registry, url):
    # Given a form whose redirect_hosts use a wildcard, explicit ports, an http entry and an IDN
    reply = post(api, url, form="site")
    # Then the redirect is 303 exactly where allowed, else 403
    expected = RULE_CASES[url]
    if expected is None:
        assert reply.status == 403, reply.headers
    else:
        assert (reply.status, reply.headers.get("location")) == (303, expected)


def test_hubspot_forms_registry_redirect_is_judged_the_same_way(api, rules_registry):
    # Given the hubspot-forms entry configures a redirect a browser would follow to evil.example
    email = email_for("hubspot-forms")
    body = json.dumps({"fields": [{"name": "email", "value": email}]}).encode()
    # When a submission arrives
    reply = api.request("POST", "/v1/webhooks/hubspot-forms", body, {"content-type": "application/json"})
    # Then it is refused and nothing is stored
    assert reply.status == 403
    assert api.get_lead_by_email(email).status == 404


@pytest.mark.parametrize("entry", ["www.*.com", "https://evil.example/path", "*", "*.[::1]", "a..b", "host:0x1"])
def test_an_entry_that_is_not_a_host_rule_is_a_registry_error(entry):
    # Given a redirect_hosts entry outside the documented forms
    from leadflow import schemas
    from leadflow.sources import redirects

    errors = schemas.field_errors("form_registry.v1.json", {"forms": {"f": {"fields": [], "redirect_hosts": [entry]}}})
    # Then the registry is invalid, or (where the schema cannot tell) the entry allows nothing
    assert errors or redirects.host_rule(entry) is None


url_parts = st.sampled_from(
    ["https:", "http:", "HTTPS:", "//", "\\\\", "/", "\\", "@", ":", "443", "8080", "%2e", "%40", "%5C", "?", "#"]
    + ["www.example.com", "evil.example", "localhost", "127.0.0.1", "0x7f", "[::1]", ".", "\t", "\n", " ", "ß", "．"]
)


@settings(max_examples=300, deadline=None)
@given(st.lists(url_parts, max_size=10).map("".join) | st.text(max_size=40))
def test_any_string_is_judged_without_error_and_the_location_sent_means_the_same(url):
    # Given any string as a redirect target
    from leadflow.sources import redirects

    target = redirects.parse(url)
    # Then it is judged without an exception, and the URL LeadFlow would send parses to the same destination
    if target is not None:
        assert redirects.parse(target.url) == target
        assert all(0x21 <= ord(ch) <= 0x7E for ch in target.url)  # safe in a Location header as is
