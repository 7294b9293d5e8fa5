"""Website forms: `POST /v1/forms/{form_id}` from browsers (fetch JSON or plain HTML urlencoded).

Each form is an entry of the form registry (configuration, validated by form_registry.v1.json): which
fields it accepts and what lead field each maps to, required fields, allowed browser origins, the
honeypot field, where plain HTML forms may be redirected after submitting, and an optional CAPTCHA
(leadflow.sources.captcha) whose token is verified with the provider before anything is stored.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from leadflow import schemas
from leadflow.config import settings
from leadflow.domain.capture import prepare
from leadflow.domain.model import TRACKING_FIELDS, LeadInput
from leadflow.errors import (
    ConfigurationError,
    FieldError,
    Forbidden,
    NotFound,
    UnsupportedMediaType,
    UpstreamUnavailable,
    ValidationFailed,
)
from leadflow.sources import captcha as captcha_check
from leadflow.sources import redirects
from leadflow.sources.base import event_key, fingerprint_key, lead_input_from_flat, unauthenticated
from leadflow.web import Request, form_body, json_object

REDIRECT_FIELD = "_redirect"
_ORIGIN = re.compile(r"https?://(\[[0-9a-f:.]+\]|[a-z0-9.-]+)(:[0-9]{1,5})?", re.ASCII)
FORM_MEDIA_TYPES = ("application/json", "application/x-www-form-urlencoded")


@dataclass(frozen=True)
class FormConfig:
    form_id: str
    fields: dict[str, str]  # submitted name → lead field (flat name or attributes.<name>)
    required: tuple[str, ...] = ()
    allowed_origins: tuple[str, ...] = ()
    honeypot: str | None = None
    redirect: str | None = None
    redirect_hosts: tuple[str, ...] = ()
    source: str = ""
    accepted: frozenset[str] = field(default_factory=frozenset)
    captcha: captcha_check.CaptchaConfig | None = None

    def origin_allowed(self, origin: str) -> bool:
        origin = origin.lower().rstrip("/")  # not stripped of whitespace: the Origin is echoed as sent
        if not _ORIGIN.fullmatch(origin):
            return False  # never pattern-match (and later echo) anything that is not scheme://host[:port]
        return any(fnmatch.fnmatchcase(origin, pattern.lower().rstrip("/")) for pattern in self.allowed_origins)

    def redirect_target(self, url: str) -> str | None:
        """The URL to send as `Location` when a browser following `url` lands on a host this form allows
        (judged as browsers parse URLs, see sources/redirects.py), else None."""
        return redirects.allowed_target(url, self.redirect_hosts)

    def redirect_allowed(self, url: str) -> bool:
        return self.redirect_target(url) is not None


def _form_config(form_id: str, raw: dict) -> FormConfig:
    mapping = raw["fields"]
    fields = {name: name for name in mapping} if isinstance(mapping, list) else dict(mapping)
    if raw.get("tracking", True):
        for name in TRACKING_FIELDS:
            fields.setdefault(name, name)
    fields.setdefault("submission_id", "submission_id")
    for name, target in fields.items():
        if not target.startswith("attributes.") and target not in schemas.schema("lead_input.v1.json")["properties"]:
            # not a standard lead field: keep it, under attributes
            fields[name] = f"attributes.{target}"
    captcha = captcha_check.CaptchaConfig.from_registry(raw["captcha"]) if raw.get("captcha") else None
    if captcha is not None:
        fields.pop(captcha.field, None)  # the token is never stored, even if the form declares the field
    return FormConfig(
        form_id=form_id,
        fields=fields,
        required=tuple(raw.get("required") or ()),
        allowed_origins=tuple(raw.get("allowed_origins") or ()),
        honeypot=raw.get("honeypot"),
        redirect=raw.get("redirect"),
        redirect_hosts=tuple(raw.get("redirect_hosts") or ()),
        source=raw.get("source") or f"form:{form_id}",
        accepted=frozenset(fields),
        captcha=captcha,
    )


MAX_AGE_SECONDS = 300  # an SSM change reaches every warm function within this


@lru_cache(maxsize=4)
def _compiled(text: str) -> dict[str, FormConfig]:
    """The registry built from its JSON text (cached by content, so a changed parameter is rebuilt)."""
    try:
        document = json.loads(text)
    except ValueError as exc:
        raise ConfigurationError("The form registry is not valid JSON.") from exc
    errors = schemas.field_errors("form_registry.v1.json", document)
    if errors:
        raise ConfigurationError("The form registry is invalid: " + "; ".join(f"{e.field} {e.message}" for e in errors))
    return {form_id: _form_config(form_id, raw) for form_id, raw in document["forms"].items()}


@lru_cache(maxsize=4)
def _file_text(path: str, mtime_ns: int, size: int) -> str:
    with open(path, encoding="utf-8") as handle:
        return handle.read()


def _registry_text() -> str:
    config = settings()
    if config.forms_file:
        try:
            stat = os.stat(config.forms_file)
            return _file_text(config.forms_file, stat.st_mtime_ns, stat.st_size)
        except OSError as exc:
            raise ConfigurationError("The form registry could not be read.") from exc
    if config.forms_parameter:
        from aws_lambda_powertools.utilities import parameters  # lazy: only on AWS

        try:
            # Powertools caches the value for MAX_AGE_SECONDS, then reads SSM again: no process-lifetime copy
            value = parameters.get_parameter(config.forms_parameter, max_age=MAX_AGE_SECONDS)
        except parameters.exceptions.GetParameterError as exc:
            raise UpstreamUnavailable("The form registry could not be read; retry shortly.") from exc
        return value if isinstance(value, str) else str(value)
    return '{"forms": {}}'


def registry() -> dict[str, FormConfig]:
    return _compiled(_registry_text())


def _clear_caches() -> None:
    _compiled.cache_clear()
    _file_text.cache_clear()


registry.cache_clear = _clear_caches  # type: ignore[attr-defined] - tests reset it as they did the lru_cache


def form(form_id: str) -> FormConfig:
    found = registry().get(form_id)
    if found is None:
        raise NotFound(f"Unknown form {form_id!r}.")
    return found


def check_origin(config: FormConfig, request: Request) -> str | None:
    """The request's Origin when a browser sent one (403 when the form does not allow it)."""
    origin = request.header("origin")
    if origin is None:
        return None  # server-side posting: judged by the other rules
    if not config.origin_allowed(origin):
        raise Forbidden("This origin may not post to this form.")
    return origin


@dataclass(frozen=True)
class FormSubmission:
    lead: LeadInput | None  # None: the honeypot was filled (answered as success, nothing stored)
    redirect: str | None  # where a plain HTML form goes next (303), if anywhere


def _single(value: Any) -> Any:
    if isinstance(value, list):
        return ", ".join(str(v) for v in value) if value else None
    return value


def parse(config: FormConfig, request: Request) -> FormSubmission:
    if request.media_type == "application/json":
        body = json_object(request)
        html_form = False
    elif request.media_type == "application/x-www-form-urlencoded":
        body = form_body(request)
        html_form = True
    else:
        raise UnsupportedMediaType("Send application/json or application/x-www-form-urlencoded.")

    redirect = _single(body.get(REDIRECT_FIELD)) if html_form else None
    redirect = redirect or (config.redirect if html_form else None)
    if redirect is not None:
        redirect = config.redirect_target(redirect) if isinstance(redirect, str) else None
        if redirect is None:
            raise Forbidden("The redirect target is not allowed for this form.")

    if config.honeypot and body.get(config.honeypot) not in (None, "", []):
        return FormSubmission(None, redirect)  # before the CAPTCHA: bots learn nothing and cost no outbound call
    token = captcha_check.token_from(config.captcha, body) if config.captcha else None

    document: dict[str, Any] = {}
    renamed: dict[str, str] = {}
    for name, value in body.items():
        target = config.fields.get(name)
        if target is None:
            continue  # fields the form does not declare are not stored
        value = _single(value) if html_form else value
        if target.startswith("attributes."):
            document.setdefault("attributes", {})[target.split(".", 1)[1]] = value
            renamed[target] = name
        else:
            document[target] = value
            renamed[target] = name
    schemas.check("lead_input.v1.json", document, rename=renamed)
    missing = [
        FieldError(_submitted_name(config, f), "is required") for f in config.required if document.get(f) in (None, "")
    ]
    if missing:
        raise ValidationFailed(missing)

    if document.get("submission_id"):
        # The client chooses submission_id (a cached page may reuse it), so it is never the key alone: the key
        # covers the whole mapped submission too. The same id with another person's answers is a submission of
        # its own (never their lead id back); a genuine resubmission of the same content is still one.
        content = json.dumps(document, sort_keys=True, default=str).encode("utf-8", "surrogatepass")
        key = event_key(config.source, f"sub:{hashlib.sha256(content).hexdigest()[:40]}")
    else:
        # No client submission id: an identical body to the same form within the hour is one submission
        # (double clicks, browser retries), so it never becomes two touches.
        key = fingerprint_key(config.source, document, request_time(request))
    lead = lead_input_from_flat(document, source=config.source, event_key=key, cookies=request.cookies)
    unauthenticated(lead)  # a browser's `submitted_at` never orders merges: receipt time does
    if config.captcha is not None and token is not None:
        # Tokens are single-use: run capture's (pure) validation first, so a 422 the visitor can fix does not
        # spend the solved challenge; then ask the provider, before anything is stored.
        prepare(lead, settings().default_phone_region, datetime.now(UTC))
        captcha_check.verify(config.captcha, token, request.source_ip)
    return FormSubmission(lead, redirect)


def _submitted_name(config: FormConfig, target: str) -> str:
    for name, mapped in config.fields.items():
        if mapped == target:
            return name
    return target


def request_time(request: Request) -> float:
    """When the request arrived (tests and the local runtime may pin it in `request.extra["now"]`)."""
    import time

    return float(request.extra.get("now", time.time()))
