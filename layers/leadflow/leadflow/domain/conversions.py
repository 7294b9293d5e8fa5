"""Which conversions a lead change calls for, and whether each platform may still receive it (pure).

A lead reaches a stage when its funnel position moves past it: a lead created straight as `mql` has
reached `lead` and `mql`; `sql` → `customer` reaches `opportunity` and `customer`. Each configured stage it
reached is one conversion per platform, but only when the lead's attribution (last touch first, then first
touch) carries that platform's click id and the click is inside the platform's window:

- Google Ads: `gclid`, else `gbraid`, else `wbraid`; the click at most `window_days` (default and maximum 90,
  Google's longest click-through window) before the conversion *and* before the upload (an older click is
  refused by Google as EXPIRED_EVENT).
- Meta: `fbc` (built from `fbclid` at capture) or, for an Instant Form lead, Meta's own lead id; the click
  within `window_days` (default 7) of the conversion, and the event itself never older than 7 days when it is
  sent (Meta refuses the whole request for one stale event).
- Baidu: `bd_vid`, sent as the landing URL that carried it; Tencent: `qz_gdt` or `gdt_vid` (the click id).
  Both within `window_days` (default 30; neither platform documents a limit we could confirm).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

from leadflow.domain.lifecycle import FUNNEL

CLICK_PARAMS = {
    "google-ads": ("gclid", "gbraid", "wbraid"),
    "meta": ("fbc",),
    "baidu": ("bd_vid",),
    "tencent": ("qz_gdt", "gdt_vid"),
}
META_MAX_EVENT_AGE = timedelta(days=7)
CONVERSION_STAGES = FUNNEL[1:]  # lead, mql, sql, opportunity, customer


def parse_time(value: str) -> datetime:
    moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _rank(stage: str | None) -> int:
    """Position in the funnel; stages outside it (recycled, disqualified, none) are before `lead`."""
    return FUNNEL.index(stage) if stage in FUNNEL else 0


def stages_reached(old_stage: str | None, new_stage: str | None) -> list[str]:
    """The conversion stages a move from `old_stage` to `new_stage` passes, in funnel order."""
    if new_stage not in FUNNEL:
        return []
    low, high = _rank(old_stage), _rank(new_stage)
    return [stage for stage in CONVERSION_STAGES if low < FUNNEL.index(stage) <= high]


def conversion_time(old: dict | None, new: dict) -> str:
    """When the stage was reached: the stage move's time, else the lead's creation (a new lead)."""
    if old and old.get("lifecycle_stage") != new.get("lifecycle_stage") and new.get("stage_changed_at"):
        return str(new["stage_changed_at"])
    if not old:
        return str(new.get("created_at") or new.get("updated_at"))
    return str(new.get("stage_changed_at") or new.get("updated_at"))


def meta_lead_id(lead: dict) -> str | None:
    """The Meta lead id of an Instant Form lead (its `EXT#meta#<id>` identity key)."""
    for key in lead.get("identity_keys") or []:
        if str(key).startswith("EXT#meta#"):
            return str(key).removeprefix("EXT#meta#")
    return None


def _touches(lead: dict) -> list[dict]:
    attribution = lead.get("attribution") or {}
    touches = [attribution.get("last_touch"), attribution.get("first_touch")]
    return [t for t in touches if isinstance(t, dict)]


def find_click(platform: str, lead: dict, at: datetime, window_days: int) -> tuple[dict | None, str]:
    """The platform's click for a conversion at `at` (last touch first), or None and why not."""
    found_outside = no_landing = False
    for touch in _touches(lead):
        for name in CLICK_PARAMS[platform]:
            value = touch.get(name)
            if not value:
                continue
            if platform == "baidu" and not touch.get("landing_url"):
                no_landing = True  # Baidu identifies the click by the landing URL (logidUrl), not bd_vid alone
                continue
            clicked = parse_time(touch.get("captured_at") or at.isoformat())
            if not clicked - timedelta(minutes=5) <= at <= clicked + timedelta(days=window_days):
                found_outside = True
                continue
            click = {"name": name, "value": str(value), "captured_at": touch.get("captured_at")}
            if touch.get("landing_url"):
                click["landing_url"] = touch["landing_url"]
            return click, ""
    if platform == "meta":
        leadgen = meta_lead_id(lead)
        if leadgen:
            return {"name": "lead_id", "value": leadgen, "captured_at": lead.get("created_at")}, ""
    if found_outside:
        return None, f"click outside the {window_days}-day window"
    if no_landing:
        return None, "bd_vid without the landing URL that carried it"
    return None, "no " + "/".join(CLICK_PARAMS[platform]) + " in the lead's attribution"


def still_sendable(platform: str, click: dict, at: datetime, now: datetime, window_days: int) -> str:
    """'' when the platform still takes this conversion now, else why not (the upload came too late)."""
    if platform == "meta":
        if now - at > META_MAX_EVENT_AGE:
            return "event older than 7 days (Meta refuses it)"
        return ""
    clicked = click.get("captured_at")
    if clicked and now - parse_time(clicked) > timedelta(days=window_days):
        return f"click older than {window_days} days at upload"
    return ""


def logid_url(click: dict) -> str | None:
    """Baidu's `logidUrl`: the landing URL carrying bd_vid (≤ 1024 characters), or None without one."""
    url, value = click.get("landing_url"), click.get("value")
    if not url or not value:
        return None
    if f"bd_vid={value}" not in url:
        url = f"{url}{'&' if '?' in url else '?'}bd_vid={value}"
    if len(url) > 1024:
        parts = urlsplit(url)
        url = f"{parts.scheme}://{parts.netloc}{parts.path}?bd_vid={value}"
    return url if len(url) <= 1024 else None
