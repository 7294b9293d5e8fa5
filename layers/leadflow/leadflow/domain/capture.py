"""From a source's LeadInput to a normalised, validated Submission (pure)."""

from __future__ import annotations

import math
from datetime import datetime, timedelta

from leadflow.domain import normalise as n
from leadflow.domain.attribution import build_touch, iso
from leadflow.domain.identity import identity_keys
from leadflow.domain.lead import PROFILE_FIELDS, Submission
from leadflow.domain.model import LeadInput
from leadflow.domain.spam import junk_reasons
from leadflow.errors import FieldError, ValidationFailed

# A provider's submission time is trusted for ordering only within reason (clock skew, old redeliveries).
_MAX_FUTURE = timedelta(minutes=5)
# The lead attribute listing what was kept but not trusted (e.g. "invalid_email"), for review in the lead JSON.
QUALITY_FLAGS = "quality_flags"


def _occurred(inp: LeadInput, now: datetime) -> datetime:
    at = inp.occurred_at
    # An unauthenticated sender could date its submission to reorder history (last touch, profile, consent).
    if at is None or not inp.authenticated or at > now + _MAX_FUTURE:
        return now
    return at


def _storable(value: object) -> bool:
    """DynamoDB numbers: finite, magnitude in [1e-130, 1e126), at most 38 significant digits."""
    if isinstance(value, list):
        return all(_storable(v) for v in value)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return True
    if isinstance(value, int):
        return abs(value) < 10**38
    return math.isfinite(value) and (value == 0 or 1e-130 <= abs(value) < 1e126)


def prepare(inp: LeadInput, default_region: str, now: datetime) -> Submission:
    """Normalise and validate one submission; raises ValidationFailed with field paths."""
    errors: list[FieldError] = []
    fields = inp.fields
    email, email_error = n.normalise_email(fields.get("email"))
    country = n.normalise_country(fields.get("country"))
    region = country if country and len(country) == 2 else default_region
    phone, phone_error = n.normalise_phone(fields.get("phone"), region)
    attributes = {k: v for k, v in inp.attributes.items() if v not in (None, "")}
    errors.extend(
        FieldError(f"attributes.{k}", "is a number out of range") for k, v in attributes.items() if not _storable(v)
    )
    # One reachable identity is enough: a malformed email or phone next to a valid other one keeps the lead,
    # with the bad value as typed in an attribute and a flag saying why (never in an error or a log line).
    flags: list[str] = []
    if email_error:
        if phone:
            attributes["invalid_email"] = n.clean_text(fields.get("email"), 320)
            flags.append("invalid_email")
        else:
            errors.append(email_error)
    if phone_error:
        if email:
            attributes["phone_unverified"] = n.clean_text(fields.get("phone"), 64)
            flags.append("phone_unverified")
        else:
            errors.append(phone_error)
    if flags:
        attributes[QUALITY_FLAGS] = flags
    if errors:
        raise ValidationFailed(errors)
    if not email and not phone:
        raise ValidationFailed([FieldError("email", "email or phone is required to identify the lead")])

    first, last = n.normalise_name(fields.get("first_name")), n.normalise_name(fields.get("last_name"))
    if not first and not last and fields.get("full_name"):
        first, last = n.split_full_name(fields.get("full_name"))
    profile = {
        "first_name": first,
        "last_name": last,
        "company": n.clean_text(fields.get("company")),
        "job_title": n.clean_text(fields.get("job_title")),
        "country": country,
    }
    size = n.normalise_company_size(fields.get("company_size"))
    if size:
        attributes["company_size"] = size
    industry = n.clean_text(fields.get("industry"))
    if industry:
        attributes["industry"] = industry

    occurred = _occurred(inp, now)
    consent = {}
    for channel, value in inp.consent.items():
        granted = n.parse_consent(value)
        if granted is not None:
            consent[channel] = {"granted": granted, "captured_at": iso(occurred), "source": inp.source}
            if not inp.authenticated:
                consent[channel]["authenticated"] = False  # anyone may post it: shown to the operator
    touch = build_touch(inp.source, inp.tracking, inp.cookies, occurred)
    return Submission(
        source=inp.source,
        email=email,
        phone=phone,
        profile={k: v for k, v in profile.items() if v and k in PROFILE_FIELDS},
        attributes=attributes,
        consent=consent,
        touch=touch,
        occurred_at=occurred,
        keys=identity_keys(email, phone, inp.external_ids),
        event_key=inp.event_key,
        junk=junk_reasons(email),
        is_test=inp.is_test,
    )
