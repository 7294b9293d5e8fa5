"""Conversion reporting back to the ad platforms: one module per platform, shaped like `leadflow.crm`.

Each module builds the platform's batch request (`build_calls`) and classifies its answer per conversion
(`classify`: `done`, `retry` for 429/5xx/timeouts with the platform's Retry-After, `failed` for good). They
never open sockets: `leadflow.services.conversions` sends their `Call`s through `leadflow.http`.

A conversion is named by its key `<lead_id>#<stage>`: the idempotency key kept in DynamoDB and, where the
platform has one, its own dedupe key too (Google `order_id`, Meta `event_id`, Tencent `outer_action_id`).
Baidu has none, so LeadFlow's own record is what keeps a redelivered stage change from counting twice.
"""

from __future__ import annotations

from dataclasses import dataclass

from leadflow.crm import Call, Outcome, every

# platform name (queue, DLQ, `leadflow dlq --target`, timeline) → module under leadflow.ads
PLATFORMS = {"google-ads": "google_ads", "meta": "meta", "baidu": "baidu", "tencent": "tencent"}

__all__ = ["PLATFORMS", "Call", "Conversion", "Outcome", "conversion_key", "every"]


def conversion_key(lead_id: str, stage: str) -> str:
    return f"{lead_id}#{stage}"


@dataclass(frozen=True)
class Conversion:
    """One conversion to report: the lead reached `stage` at `at` (ISO 8601 UTC) after the ad click `click`.

    `click` is `{"name": <click id parameter>, "value": ..., "captured_at": ..., "landing_url": ...}` of the
    touch that carried it (a Meta lead-ad lead has `{"name": "lead_id", "value": <Meta lead id>}`).
    `lead` is the stored lead: modules read only what their platform needs from it.
    """

    lead_id: str
    stage: str
    at: str
    click: dict
    lead: dict
    stage_config: dict

    @property
    def key(self) -> str:
        return conversion_key(self.lead_id, self.stage)
