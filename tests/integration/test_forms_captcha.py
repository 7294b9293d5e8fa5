"""POST /v1/forms/{form_id} with a CAPTCHA in the form registry: the token is verified with the provider's
siteverify API (a fake on 127.0.0.1 here) before anything is stored, and never stored itself."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

import pytest

from leadflow.config import settings
from leadflow.sources import forms

ORIGIN = {"origin": "http://localhost:8080"}
LOOPBACK = ["http://localhost:*", "http://127.0.0.1:*"]
REGISTRY = {
    "forms": {
        "gated": {
            "fields": ["email", "first_name", "cf-turnstile-response"],  # declared, still never stored
            "allowed_origins": LOOPBACK,
            "honeypot": "_hp",
            "captcha": {"provider": "turnstile"},
        },
        "scored": {
            "fields": ["email"],
            "allowed_origins": LOOPBACK,
            "captcha": {"provider": "recaptcha", "min_score": 0.5},
        },
    }
}
TURNSTILE_PATH = "/turnstile/v0/siteverify"
RECAPTCHA_PATH = "/recaptcha/api/siteverify"


class FakeSiteverify:
    """Answers siteverify POSTs with scripted (status, JSON) per path and records each form-encoded request."""

    def __init__(self) -> None:
        self.answers: dict[str, tuple[int, dict]] = {}
        self.calls: list[tuple[str, str, dict[str, str]]] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                raw = self.rfile.read(int(self.headers.get("content-length") or 0)).decode()
                form = {k: v[0] for k, v in parse_qs(raw).items()}
                fake.calls.append((self.path, self.headers.get("content-type", ""), form))
                status, body = fake.answers.get(self.path, (404, {"success": False}))
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def siteverify(api, monkeypatch, tmp_path):
    """A test-only registry with CAPTCHA forms, and the siteverify APIs pointed at a fake on 127.0.0.1."""
    registry = tmp_path / "forms.json"
    registry.write_text(json.dumps(REGISTRY))
    monkeypatch.setenv("LEADFLOW_FORMS_FILE", str(registry))
    fake = FakeSiteverify()
    monkeypatch.setenv("LEADFLOW_CAPTCHA_VERIFY_URL", fake.url)
    settings.cache_clear()
    forms.registry.cache_clear()
    yield fake
    fake.close()
    forms.registry.cache_clear()


def _stored(api, email: str) -> bool:
    return api.get_lead_by_email(email).status == 200


def test_valid_token_is_verified_and_the_lead_stored_without_it(api, siteverify):
    # Given the `gated` form requires a Turnstile token and Turnstile accepts it
    siteverify.answers[TURNSTILE_PATH] = (200, {"success": True, "error-codes": [], "hostname": "localhost"})
    fields = {"email": "grace@example.com", "first_name": "Grace", "cf-turnstile-response": "XXXX.DUMMY.TOKEN"}
    # When a browser submits the form with the token
    reply = api.post_form("gated", fields, headers=ORIGIN)
    # Then it is accepted and the lead is stored, without the token
    assert reply.status == 202
    lead = api.request("GET", f"/v1/leads/{reply.json['lead_id']}").json
    assert lead["email"] == "grace@example.com"
    assert "XXXX.DUMMY.TOKEN" not in json.dumps(lead)
    # And the verify request carried our secret, the token and the visitor's IP, form-encoded
    ((path, content_type, form),) = siteverify.calls
    assert path == TURNSTILE_PATH
    assert content_type == "application/x-www-form-urlencoded"
    assert form == {"secret": "dev-captcha-secret", "response": "XXXX.DUMMY.TOKEN", "remoteip": "127.0.0.1"}


def test_plain_html_form_token_is_verified_too(api, siteverify):
    # Given Turnstile accepts the token of a plain HTML (urlencoded) submission
    siteverify.answers[TURNSTILE_PATH] = (200, {"success": True})
    fields = {"email": "html@example.com", "cf-turnstile-response": "XXXX.HTML.TOKEN"}
    # When it is posted
    reply = api.post_form("gated", fields, as_json=False, headers=ORIGIN)
    # Then it is accepted after one verification of that token
    assert reply.status == 202
    assert [call[2]["response"] for call in siteverify.calls] == ["XXXX.HTML.TOKEN"]
    assert _stored(api, "html@example.com")


def test_missing_token_is_403_without_asking_the_provider(api, siteverify):
    # Given a submission to the `gated` form without the token field
    reply = api.post_form("gated", {"email": "nobody@example.com"}, headers=ORIGIN)
    # Then it is refused, nothing is stored and the provider was not called
    assert reply.status == 403
    assert reply.headers["content-type"] == "application/problem+json"
    assert reply.json["detail"] == "CAPTCHA token missing"
    assert siteverify.calls == []
    assert not _stored(api, "nobody@example.com")


def test_rejected_token_is_403_and_nothing_is_stored(api, siteverify):
    # Given Turnstile rejects the token (already used)
    siteverify.answers[TURNSTILE_PATH] = (200, {"success": False, "error-codes": ["timeout-or-duplicate"]})
    # When the form is submitted with it
    fields = {"email": "replay@example.com", "cf-turnstile-response": "XXXX.USED.TOKEN"}
    reply = api.post_form("gated", fields, headers=ORIGIN)
    # Then it is refused and nothing is stored
    assert reply.status == 403
    assert reply.json["detail"] == "CAPTCHA verification failed"
    assert not _stored(api, "replay@example.com")


def test_provider_outage_is_503_with_retry_after_and_nothing_is_stored(api, siteverify):
    # Given the siteverify API answers 500
    siteverify.answers[TURNSTILE_PATH] = (500, {"success": False})
    # When the form is submitted with a token
    fields = {"email": "outage@example.com", "cf-turnstile-response": "XXXX.DUMMY.TOKEN"}
    reply = api.post_form("gated", fields, headers=ORIGIN)
    # Then the browser is told to retry, and nothing is stored
    assert reply.status == 503
    assert reply.headers["retry-after"]
    assert reply.headers["access-control-allow-origin"] == "http://localhost:8080"  # the page can read it
    assert not _stored(api, "outage@example.com")


def test_honeypot_hit_is_a_fake_success_without_verification(api, siteverify):
    # Given a bot fills the honeypot (and sends no token)
    reply = api.post_form("gated", {"email": "bot@example.com", "_hp": "gotcha"}, headers=ORIGIN)
    # Then it looks accepted, but nothing is stored and the provider was not called
    assert reply.status == 202
    assert siteverify.calls == []
    assert not _stored(api, "bot@example.com")


def test_invalid_submission_is_422_before_the_token_is_spent(api, siteverify):
    # Given a submission with neither email nor phone
    reply = api.post_form("gated", {"first_name": "Ada", "cf-turnstile-response": "XXXX.DUMMY.TOKEN"}, headers=ORIGIN)
    # Then it is a validation error and the single-use token was not sent to the provider
    assert reply.status == 422
    assert siteverify.calls == []


@pytest.mark.parametrize(("score", "status"), [(0.3, 403), (0.9, 202)])
def test_recaptcha_v3_score_below_min_score_is_403(api, siteverify, score, status):
    # Given reCAPTCHA v3 accepts the token with a score
    siteverify.answers[RECAPTCHA_PATH] = (200, {"success": True, "score": score, "action": "submit"})
    # When the `scored` form (min_score 0.5) is submitted
    email = f"score{int(score * 10)}@example.com"
    reply = api.post_form("scored", {"email": email, "g-recaptcha-response": "XXXX.V3.TOKEN"}, headers=ORIGIN)
    # Then a low score is refused and stores nothing; a high one is accepted
    assert reply.status == status
    assert _stored(api, email) is (status == 202)
    assert siteverify.calls[0][0] == RECAPTCHA_PATH


def test_shipped_website_form_needs_no_captcha(api):
    # Given the shipped local registry (the demo posts to `website` without a token)
    reply = api.post_form("website", {"email": "demo@example.com"}, headers=ORIGIN)
    # Then it is accepted as before
    assert reply.status == 202
