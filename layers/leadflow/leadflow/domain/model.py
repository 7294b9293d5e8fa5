"""The canonical lead input every source produces, and the field vocabularies of the contract."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

PROFILE_FIELDS = (
    "first_name",
    "last_name",
    "company",
    "job_title",
    "country",
    "company_size",
    "industry",
)
IDENTITY_FIELDS = ("email", "phone")
STANDARD_FIELDS = IDENTITY_FIELDS + PROFILE_FIELDS

# GA4's campaign parameters (support.google.com/analytics/answer/10917952).
UTM_PARAMS = (
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "utm_term",
    "utm_content",
    "utm_id",
    "utm_source_platform",
    "utm_creative_format",
    "utm_marketing_tactic",
)
# Every click id of the contract's lead JSON. Values are kept exactly as received: never re-cased.
CLICK_IDS = (
    "gclid",
    "gbraid",
    "wbraid",
    "fbclid",
    "fbc",
    "fbp",
    "msclkid",
    "ttclid",
    "li_fat_id",
    "bd_vid",
    "qz_gdt",
    "gdt_vid",
)
# Tracking cookies a page may post as hidden fields (or send as same-site cookies).
TRACKING_COOKIES = ("_fbc", "_fbp", "_gcl_aw", "hubspotutk")
TRACKING_FIELDS = UTM_PARAMS + CLICK_IDS + TRACKING_COOKIES + ("page_url", "landing_url", "referrer")

LIFECYCLE_STAGES = (
    "subscriber",
    "lead",
    "mql",
    "sql",
    "opportunity",
    "customer",
    "recycled",
    "disqualified",
)
# Engagement event types of `POST /v1/events` (the contract). The last three give no points: they set
# consent and suppression on the lead.
SUPPRESSION_EVENT_TYPES = ("unsubscribe", "bounce", "complaint")
EVENT_TYPES = (
    "email_open",
    "email_click",
    "page_view",
    "content_download",
    "webinar_registered",
    "webinar_attended",
    "meeting_booked",
    "form_submit",
    *SUPPRESSION_EVENT_TYPES,
)


@dataclass
class LeadInput:
    """What a source hands to capture, before normalisation.

    `event_key` identifies the provider's delivery (redelivery of the same key changes nothing);
    `external_ids` are the provider's lead ids, which are identity keys like email and phone.
    `authenticated` is False for senders nobody signs for (website forms, hubspot-forms): their claimed
    time never orders merges (receipt time does), and their consent answers say so.
    """

    source: str
    fields: dict[str, Any] = field(default_factory=dict)
    attributes: dict[str, Any] = field(default_factory=dict)
    consent: dict[str, Any] = field(default_factory=dict)
    tracking: dict[str, str] = field(default_factory=dict)
    cookies: dict[str, str] = field(default_factory=dict)
    occurred_at: datetime | None = None
    event_key: str | None = None
    external_ids: list[tuple[str, str]] = field(default_factory=list)
    is_test: bool = False
    authenticated: bool = True
