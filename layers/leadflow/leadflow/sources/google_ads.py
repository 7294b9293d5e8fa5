"""`google-ads`: Google Ads lead form webhook (developers.google.com/google-ads/webhook/docs/implementation).

Authentication: there is no header signature; Google sends the key configured on the lead form in the
body (`google_key`), compared in constant time with secret `webhooks/google-ads` field `google_key`. The
body must therefore be parsed before it can be authenticated: malformed JSON is 400, a wrong or missing
key 401. Nothing is stored before the key matched.

Columns are mapped by `column_id` (FULL_NAME, EMAIL, PHONE_NUMBER ...), never by position or by
`column_name` (a human label that may be translated or absent); unknown columns are kept as
`attributes.<lower-cased column_id>`. `gcl_id` is the touch's gclid. `lead_id` is Google's lead id
(unique across forms): an identity key (`EXT#google-ads#<lead_id>`) and the delivery key, so a resent lead
changes nothing. The form, campaign, ad group, creative and asset group ids are kept as
`attributes.google_ads_*` (strings: they are int64 and must never be rounded); every touch also keeps its
submission's attributes, so they stay with the Google Ads touch even if a later lead overwrites them.
`is_test: true` ("Send test data" in Google Ads) marks the lead as a test lead; it is still answered 200.
"""

from __future__ import annotations

from typing import Any

from leadflow import schemas
from leadflow.domain.model import LeadInput
from leadflow.errors import SignatureInvalid
from leadflow.secrets import secret_list
from leadflow.sources.base import constant_time_equal, event_key
from leadflow.sources.mapping import LeadDocument, attribute_name
from leadflow.web import Request, json_object

NAME = "google-ads"
SCHEMA = "google_ads.v1.json"
SECRET = "webhooks/google-ads"
CREDENTIAL_FIELDS = ("google_key",)  # never kept with a quarantined lead

# column_id → lead field. The second group only fills a field the first left empty.
COLUMNS = {
    "FULL_NAME": "full_name",
    "FIRST_NAME": "first_name",
    "LAST_NAME": "last_name",
    "EMAIL": "email",
    "PHONE_NUMBER": "phone",
    "COMPANY_NAME": "company",
    "JOB_TITLE": "job_title",
    "COUNTRY": "country",
}
FALLBACK_COLUMNS = {"WORK_EMAIL": "email", "WORK_PHONE": "phone"}
CAMPAIGN_IDS = ("form_id", "campaign_id", "adgroup_id", "creative_id", "asset_group_id")


def verify(request: Request, now: float | None = None) -> dict[str, Any]:
    """The parsed lead when its google_key is the configured one (401 otherwise)."""
    document = json_object(request)  # 400 for malformed JSON, before the key can be read
    offered = document.get("google_key")
    if not isinstance(offered, str) or not offered:
        raise SignatureInvalid("The google_key does not match the key configured for this lead form.")
    matched = False
    for expected in secret_list(SECRET, "google_key"):  # current and, while rotating, previous keys
        matched |= constant_time_equal(expected, offered)
    if not matched:
        raise SignatureInvalid("The google_key does not match the key configured for this lead form.")
    return document


def parse(request: Request, document: dict[str, Any]) -> list[LeadInput]:
    schemas.check(SCHEMA, document)
    lead = LeadDocument()
    later: list[tuple[str, Any, str, str]] = []
    for index, column in enumerate(document["user_column_data"]):
        column_id = str(column.get("column_id") or column.get("column_name") or f"column_{index}")
        value, origin = column.get("string_value"), f"user_column_data.{index}"
        if column_id.upper() in COLUMNS:
            lead.put_field(COLUMNS[column_id.upper()], value, origin, column_id)
        elif column_id.upper() in FALLBACK_COLUMNS:
            later.append((FALLBACK_COLUMNS[column_id.upper()], value, origin, column_id))
        else:
            lead.put(f"attributes.{attribute_name(column_id, f'column_{index}')}", value, origin)
    for target, value, origin, column_id in later:
        lead.put_field(target, value, origin, column_id)
    lead.put("gclid", document.get("gcl_id"), "gcl_id")
    for name in CAMPAIGN_IDS:
        if document.get(name) not in (None, ""):
            lead.put(f"attributes.google_ads_{name}", str(document[name]), name)
    lead.put("attributes.google_ads_lead_stage", document.get("lead_stage"), "lead_stage")
    lead_id = str(document["lead_id"])
    lead.put("external_id", lead_id, "lead_id")
    return [
        lead.lead_input(
            source=NAME,
            event_key=event_key(NAME, lead_id),
            submitted_at=document.get("lead_submit_time"),
            external_provider=NAME,
            is_test=document.get("is_test") is True,
        )
    ]
