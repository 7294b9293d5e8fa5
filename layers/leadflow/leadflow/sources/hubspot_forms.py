"""`hubspot-forms`: the body of HubSpot's Forms v3 submit endpoint, so existing HubSpot front ends can post
to LeadFlow instead (`fields[{objectTypeId, name, value}]`, `context{hutk, pageUri, pageName, ipAddress}`,
`legalConsentOptions`).

Unauthenticated like HubSpot's public (unauthenticated) submit endpoint, and judged by the same rules as a
website form, from the form registry entry `hubspot-forms`: a browser `Origin` the entry does not allow is
403 (`verify`), the honeypot field is answered as a success and stores nothing, only the fields the entry
declares are kept (mapped as it says; `0-2/name` addresses a field of another object type), its required
fields are enforced, and its redirect must be an allowed host.

`context.hutk` → `attributes.hubspotutk` (and the touch's tracking), `context.pageUri` → landing URL
(whose query string yields utm_* and click ids), `context.pageName` → `attributes.hubspot_page_name`. The
visitor's IP address is not stored. Consent: `consentToProcess` and the `communications` checkboxes make
`consent.email` (granted only when processing is consented to and, if communications are offered, at
least one is ticked).

HubSpot answers `{inlineMessage}` or `{redirectUri}`; LeadFlow keeps its `{"received", "leads"}` answer and
adds `inlineMessage` (or `redirectUri` when the registry entry configures a redirect) so HubSpot front
ends show it. Being unauthenticated, a submission never sets the time that orders merges (last touch,
profile, consent): receipt time does, and `submittedAt` is kept only as `attributes.claimed_submitted_at`;
a consent answer from here is marked `authenticated: false` on the lead and on its touch. A submission
carries no id: the delivery key is the fingerprint of the mapped submission per hour (sources/base.py
`fingerprint_key`, shared with website forms), so a double submit is one touch.
"""

from __future__ import annotations

from typing import Any

from leadflow import schemas
from leadflow.domain.model import LeadInput
from leadflow.errors import FieldError, Forbidden, ValidationFailed
from leadflow.sources import forms
from leadflow.sources.base import fingerprint_key, unauthenticated
from leadflow.sources.mapping import LeadDocument
from leadflow.web import Request, cors_headers, json_object, response
from leadflow.web import preflight as web_preflight

NAME = "hubspot-forms"
SIGNED = False  # like a website form: refusals are answered 422 with field errors, never quarantined
FORM_ID = "hubspot-forms"
SCHEMA = "hubspot_forms.v1.json"
INLINE_MESSAGE = "Thanks for submitting the form."
CONTACT = "0-1"


def verify(request: Request, now: float | None = None) -> forms.FormConfig:
    """No signature exists: the form registry's Origin allow-list (403) is the check."""
    config = forms.form(FORM_ID)
    forms.check_origin(config, request)
    if config.redirect is not None and not config.redirect_allowed(config.redirect):
        raise Forbidden("The redirect target is not allowed for this form.")
    return config


def preflight(request: Request) -> dict:
    """CORS preflight of a browser about to post JSON cross-origin (HubSpot front ends do)."""
    return web_preflight(forms.check_origin(forms.form(FORM_ID), request))


def _lookup(config: forms.FormConfig, field: dict[str, Any]) -> tuple[str | None, str]:
    name = str(field["name"])
    object_type = str(field.get("objectTypeId") or CONTACT)
    qualified = f"{object_type}/{name}"
    if qualified in config.fields:
        return config.fields[qualified], qualified
    if object_type == CONTACT:
        return config.fields.get(name), name
    return None, qualified


def _consent(options: dict[str, Any]) -> bool | None:
    consent = options.get("consent")
    if not isinstance(consent, dict) or "consentToProcess" not in consent:
        return None
    communications = [c for c in consent.get("communications") or [] if isinstance(c, dict)]
    granted = consent.get("consentToProcess") is True
    if communications:
        granted = granted and any(c.get("value") is True for c in communications)
    return granted


def parse(request: Request, config: forms.FormConfig) -> list[LeadInput]:
    document = json_object(request, SCHEMA)
    submitted = document["fields"]
    if config.honeypot and any(
        f.get("name") == config.honeypot and f.get("value") not in (None, "", False) for f in submitted
    ):
        return []  # a bot: answered like a success, nothing stored
    lead = LeadDocument()
    for index, field in enumerate(submitted):
        target, name = _lookup(config, field)
        if target is None:
            continue  # fields the form does not declare are not stored (as for website forms)
        value = field.get("value")
        value = value if isinstance(value, bool) or target.startswith("attributes.") else _text(value)
        lead.put(target, value, f"fields.{index}")
    context = document.get("context") or {}
    if context.get("hutk"):
        lead.put("hubspotutk", context["hutk"], "context.hutk")
        lead.put("attributes.hubspotutk", context["hutk"], "context.hutk")
    lead.put("landing_url", context.get("pageUri"), "context.pageUri")
    lead.put("attributes.hubspot_page_name", context.get("pageName"), "context.pageName")
    consent = _consent(document.get("legalConsentOptions") or {})
    if consent is not None:
        lead.put("consent_email", consent, "legalConsentOptions.consent", overwrite=True)
    missing = [FieldError(_submitted_name(config, f), "is required") for f in config.required if not lead.has(f)]
    if missing:
        schemas.check("lead_input.v1.json", lead.doc, rename=lead.origins)  # report type errors first
        raise ValidationFailed(missing)
    inp = lead.lead_input(source=NAME, event_key=fingerprint_key(NAME, lead.doc, forms.request_time(request)))
    return [unauthenticated(inp, document.get("submittedAt"))]  # anyone may post: receipt time orders it


def respond(request: Request, config: forms.FormConfig, answers: list[dict]) -> dict:
    """HubSpot's answer shape added to LeadFlow's, with CORS for the allowed browser origin."""
    body: dict[str, Any] = {"received": len(answers), "leads": answers}
    if config.redirect:
        body["redirectUri"] = config.redirect_target(config.redirect)  # checked by verify
    else:
        body["inlineMessage"] = INLINE_MESSAGE
    origin = forms.check_origin(config, request)  # already allowed by verify: echo it for the browser
    return response(200, body, cors_headers(origin))


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _submitted_name(config: forms.FormConfig, target: str) -> str:
    for name, mapped in config.fields.items():
        if mapped == target:
            return name
    return target
