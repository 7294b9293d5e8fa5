"""A lead's state: built from a first submission, merged with later ones, rendered as the contract's JSON.

Merge rules: identity fields (email, phone) are filled when empty; profile fields and attributes take the
newer non-empty value (by when the person submitted, so a late redelivery of an old event cannot overwrite
newer data); consent keeps the newest answer per channel; every submission is kept as a touch.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from leadflow.domain.attribution import apply_touch, iso
from leadflow.domain.identity import email_key, key_kind, phone_key

PROFILE_FIELDS = ("first_name", "last_name", "company", "job_title", "country")
# A lead item must stay well under DynamoDB's 400 KB: its attributes are capped (every submitted value
# is still kept whole on the submission's touch, so capping the lead loses nothing).
MAX_ATTRIBUTES_BYTES = 64 * 1024


def _size(value: object) -> int:
    return len(json.dumps(value, ensure_ascii=False, default=str).encode("utf-8"))


def cap_attributes(attributes: dict, prefer: set[str] | frozenset[str] = frozenset()) -> dict:
    """Drop the largest attributes (others before `prefer`red ones) until the map fits the cap."""
    capped = dict(attributes)
    while capped and _size(capped) > MAX_ATTRIBUTES_BYTES:
        candidates = [k for k in capped if k not in prefer] or list(capped)
        del capped[max(candidates, key=lambda k: _size(capped[k]))]
    return capped


@dataclass
class Submission:
    """One normalised, validated submission (what capture stores and merges)."""

    source: str
    email: str | None
    phone: str | None
    profile: dict[str, str]
    attributes: dict[str, Any]
    consent: dict[str, dict[str, Any]]
    touch: dict[str, Any]
    occurred_at: datetime
    keys: list[str]
    event_key: str | None = None
    junk: list[str] = field(default_factory=list)
    is_test: bool = False

    @property
    def occurred(self) -> str:
        return iso(self.occurred_at)


def empty_score() -> dict:
    # Scoring lands in a later wave; until then every lead carries the contract's shape with zero points.
    return {"fit": 0, "behaviour": 0, "total": 0, "breakdown": []}


def _touch_summary(sub: Submission) -> dict:
    return {"source": sub.source, "captured_at": sub.touch["captured_at"]}


def new_lead(lead_id: str, sub: Submission, now: datetime) -> dict:
    stamp = iso(now)
    lead: dict[str, Any] = {
        "lead_id": lead_id,
        "email": sub.email,
        "phone": sub.phone,
        **{name: sub.profile.get(name) for name in PROFILE_FIELDS},
        "attributes": cap_attributes(sub.attributes),
        "lifecycle_stage": "disqualified" if sub.junk else "lead",
        "disqualified_reasons": list(sub.junk),
        "is_test": sub.is_test,
        "score": empty_score(),
        "attribution": apply_touch(None, sub.touch),
        "consent": dict(sub.consent),
        "touch_count": 1,
        "latest_touch": _touch_summary(sub),
        "identity_keys": list(sub.keys),
        "crm": {},
        "journey": None,
        "source": sub.source,
        "profile_updated_at": sub.occurred,
        "created_at": stamp,
        "updated_at": stamp,
    }
    return lead


def merge_submission(lead: dict, sub: Submission, claimed: list[str], now: datetime) -> dict:
    """The lead after one more submission by the same person (pure: returns a new dict)."""
    merged = copy.deepcopy(lead)
    newer = sub.occurred >= (lead.get("profile_updated_at") or "")
    owned = {*claimed, *merged.get("identity_keys", [])}
    for name, key_of in (("email", email_key), ("phone", phone_key)):
        value = getattr(sub, name)
        # only a value this lead owns as an identity: another lead's email/phone is a conflict, not data
        if value and not merged.get(name) and key_of(value) in owned:
            merged[name] = value
    for name in PROFILE_FIELDS:
        value = sub.profile.get(name)
        if value and (newer or not merged.get(name)):
            merged[name] = value
    attributes = merged.setdefault("attributes", {})
    for name, value in sub.attributes.items():
        if value not in (None, "") and (newer or name not in attributes):
            attributes[name] = value
    merged["attributes"] = cap_attributes(attributes, prefer=set(sub.attributes))
    consent = merged.setdefault("consent", {})
    for channel, answer in sub.consent.items():
        current = consent.get(channel)
        if not current or current.get("captured_at", "") <= answer["captured_at"]:
            consent[channel] = answer
    merged["attribution"] = apply_touch(merged.get("attribution"), sub.touch)
    merged["touch_count"] = int(merged.get("touch_count") or 0) + 1
    latest = merged.get("latest_touch") or {}
    if latest.get("captured_at", "") <= sub.touch["captured_at"]:
        merged["latest_touch"] = _touch_summary(sub)
    merged["identity_keys"] = list(dict.fromkeys([*merged.get("identity_keys", []), *claimed]))
    if newer:
        merged["profile_updated_at"] = sub.occurred
    merged["updated_at"] = iso(now)
    return merged


def lead_view(lead: dict, conflicts: list[dict] | None = None) -> dict:
    """The lead JSON of the contract (GET /v1/leads/...); `conflicts` are the lead's identity conflicts."""
    attribution = lead.get("attribution") or {}
    view = {
        "lead_id": lead["lead_id"],
        "email": lead.get("email"),
        "phone": lead.get("phone"),
        **{name: lead.get(name) for name in PROFILE_FIELDS},
        "attributes": lead.get("attributes") or {},
        "lifecycle_stage": lead.get("lifecycle_stage", "lead"),
        "score": lead.get("score") or empty_score(),
        "attribution": {
            "first_touch": attribution.get("first_touch"),
            "last_touch": attribution.get("last_touch"),
            "click_ids": attribution.get("click_ids") or {},
        },
        "touches": {"count": int(lead.get("touch_count") or 0), "latest": lead.get("latest_touch")},
        "consent": lead.get("consent") or {},
        "crm": lead.get("crm") or {},
        "journey": lead.get("journey"),
        "created_at": lead.get("created_at"),
        "updated_at": lead.get("updated_at"),
        "version": int(lead.get("version") or 0),
    }
    # Scoring and qualification (persona and stage times from scoring; suppression from events)
    for name in ("persona", "mql_at", "stage_changed_at", "suppressed"):
        if lead.get(name):
            view[name] = lead[name]
    if (lead.get("owner") or {}).get("id"):  # routing: the contract's fields, then the SLA's
        view["owner"] = {k: lead["owner"].get(k) for k in ("id", "name", "team", "rule", "assigned_at")} | {
            k: lead["owner"][k] for k in ("due_at", "accepted_at", "previous") if lead["owner"].get(k)
        }
    if lead.get("disqualified_reasons"):
        view["disqualified_reasons"] = list(lead["disqualified_reasons"])
    if lead.get("is_test"):
        view["is_test"] = True
    if conflicts:
        # The conflicting key itself may be the other person's data: show only its kind and the other lead.
        view["identity_conflicts"] = [
            {"key": key_kind(c["key"]), "lead_id": c["other_lead_id"], "detected_at": c.get("detected_at")}
            for c in conflicts
        ]
    return view
