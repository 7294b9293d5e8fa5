"""CAPTCHA tokens of website forms, verified server-side with the provider's siteverify API.

A form of the registry may carry `captcha: {"provider", "field", "secret", "min_score"}`. The widget in the
browser puts a token into the form field (`cf-turnstile-response`, `g-recaptcha-response`,
`h-captcha-response` by default); the token proves nothing until the provider's siteverify API, called with
our secret, says so. All three providers take the same form-encoded request (`secret`, `response`, optional
`remoteip`) and answer JSON with `success` (reCAPTCHA v3 adds `score`, 0.0-1.0) and `error-codes`.

Tokens are single-use: verify once, never log or store them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from leadflow.errors import ConfigurationError, Forbidden, UpstreamUnavailable
from leadflow.observability import logger
from leadflow.secrets import get_secret
from leadflow.sources import http

DEFAULT_SECRET = "forms/captcha"
VERIFY_TIMEOUT = 5.0  # seconds; CaptureFormFunction's Timeout (10 s) leaves room for the capture itself
MAX_TOKEN_CHARS = 8192  # Turnstile documents 2048; reCAPTCHA tokens are longer. Anything bigger is junk.

# provider → (default form field, siteverify path below the base URL of leadflow.sources.http)
PROVIDERS: dict[str, tuple[str, str]] = {
    "turnstile": ("cf-turnstile-response", "/turnstile/v0/siteverify"),
    "recaptcha": ("g-recaptcha-response", "/recaptcha/api/siteverify"),
    "hcaptcha": ("h-captcha-response", "/siteverify"),
}


@dataclass(frozen=True)
class CaptchaConfig:
    provider: str
    field: str
    secret: str = DEFAULT_SECRET
    min_score: float = 0.5  # reCAPTCHA v3 only (v2 answers carry no score)

    @classmethod
    def from_registry(cls, raw: dict[str, Any]) -> CaptchaConfig:
        provider = raw["provider"]
        return cls(
            provider=provider,
            field=raw.get("field") or PROVIDERS[provider][0],
            secret=raw.get("secret") or DEFAULT_SECRET,
            min_score=float(raw.get("min_score", 0.5)),
        )


def token_from(config: CaptchaConfig, body: dict[str, Any]) -> str:
    """The submitted token (403 "CAPTCHA token missing" when absent, empty or not text)."""
    value = body.get(config.field)
    if isinstance(value, list) and len(value) == 1:
        value = value[0]  # a plain HTML form sends every field as a list
    if not isinstance(value, str) or not value.strip():
        raise Forbidden("CAPTCHA token missing")
    return value.strip()


def _secret_value(name: str) -> str:
    value = get_secret(name)
    if isinstance(value, dict):
        value = value.get("secret")
    if not isinstance(value, str) or not value:
        raise ConfigurationError(f"Secret {name} has no CAPTCHA secret key.")
    return value


def verify(config: CaptchaConfig, token: str, remote_ip: str | None) -> None:
    """Ask the provider whether `token` is a solved challenge; return only if it is.

    403 when the provider says no (or the reCAPTCHA v3 score is below `min_score`). When the provider cannot
    be asked (timeout, refused, 5xx, garbage) the answer is 503 with Retry-After, not a silent accept and
    not a 403: accepting would let bots through whenever the provider has an outage, and refusing would
    blame a real person for it. Nothing is stored, so the browser can resubmit once the provider answers.
    """
    if len(token) > MAX_TOKEN_CHARS:
        raise Forbidden("CAPTCHA verification failed")
    form = {"secret": _secret_value(config.secret), "response": token}
    if remote_ip:
        form["remoteip"] = remote_ip
    url = http.base_url(config.provider) + PROVIDERS[config.provider][1]
    try:
        answer = http.request_json(config.provider, "POST", url, form=form, timeout=VERIFY_TIMEOUT)
    except http.ApiError as exc:
        logger.warning("captcha verify unavailable", extra={"provider": config.provider, "status": exc.status})
        raise UpstreamUnavailable("The CAPTCHA could not be verified right now; submit again shortly.") from None
    if not isinstance(answer, dict):
        logger.warning("captcha verify unreadable", extra={"provider": config.provider})
        raise UpstreamUnavailable("The CAPTCHA could not be verified right now; submit again shortly.")
    codes = answer.get("error-codes")
    codes = [str(c) for c in codes] if isinstance(codes, list) else []
    if answer.get("success") is not True:
        if any("secret" in code for code in codes):
            # Our secret is missing or wrong: every submission would be refused. An alarm, not the visitor's fault.
            raise ConfigurationError("The CAPTCHA secret was refused by the provider.")
        if "internal-error" in codes:  # Turnstile: retry the validation
            raise UpstreamUnavailable("The CAPTCHA could not be verified right now; submit again shortly.")
        logger.info("captcha refused", extra={"provider": config.provider, "error_codes": codes[:5]})
        raise Forbidden("CAPTCHA verification failed")
    score = answer.get("score")
    if config.provider == "recaptcha" and isinstance(score, int | float) and score < config.min_score:
        logger.info("captcha score too low", extra={"provider": config.provider, "score": score})
        raise Forbidden("CAPTCHA verification failed")
