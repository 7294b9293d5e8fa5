"""Attribution: one touch per submission, first touch written once, last touch on every non-direct touch.

Where parameters come from, highest precedence first: explicit body/hidden fields, the landing URL's
query string, tracking cookies posted as fields (`_fbc`, `_fbp`, `_gcl_aw`, `hubspotutk`), then
same-site request cookies. Click ids are never re-cased and are kept with their capture time.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

from leadflow.domain.model import CLICK_IDS, UTM_PARAMS


def iso(ts: datetime) -> str:
    """UTC ISO 8601 with milliseconds and Z (sortable as text), whatever the offset of `ts`."""
    if ts.tzinfo is not None:
        ts = ts.astimezone(UTC)
    return ts.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts.microsecond // 1000:03d}Z"


def _url_params(url: str | None) -> dict[str, str]:
    if not url:
        return {}
    try:
        query = urlsplit(url).query
    except ValueError:
        return {}
    params = parse_qs(query, keep_blank_values=False)
    return {k: v[0] for k, v in params.items() if v and (k in UTM_PARAMS or k in CLICK_IDS)}


def _clean(value: Any, limit: int = 1024) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text[:limit] or None


def _gclid_from_gcl_aw(cookie: str | None) -> str | None:
    """`_gcl_aw` is `GCL.<timestamp>.<gclid>` (Google tag conversion linker)."""
    if not cookie:
        return None
    parts = cookie.split(".", 2)
    return parts[2] if len(parts) == 3 and parts[0] == "GCL" and parts[2] else None


def build_touch(source: str, tracking: dict[str, Any], cookies: dict[str, str], captured_at: datetime) -> dict:
    """The attribution snapshot of one submission (the contract's touch shape, empty values left out)."""
    landing_url = _clean(tracking.get("landing_url") or tracking.get("page_url"), 2048)
    from_url = _url_params(landing_url)
    touch: dict[str, Any] = {"source": source}
    for name in UTM_PARAMS:
        value = _clean(tracking.get(name)) or from_url.get(name)
        if value:
            touch[name] = value
    for name in CLICK_IDS:
        value = _clean(tracking.get(name)) or from_url.get(name)
        if value:
            touch[name] = value
    # Tracking cookies: posted as hidden fields win over request cookies.
    fbc = _clean(tracking.get("_fbc")) or _clean(cookies.get("_fbc"))
    fbp = _clean(tracking.get("_fbp")) or _clean(cookies.get("_fbp"))
    if fbc and "fbc" not in touch:
        touch["fbc"] = fbc
    if fbp and "fbp" not in touch:
        touch["fbp"] = fbp
    if "gclid" not in touch:
        gclid = _gclid_from_gcl_aw(_clean(tracking.get("_gcl_aw")) or _clean(cookies.get("_gcl_aw")))
        if gclid:
            touch["gclid"] = gclid
    if "fbclid" in touch and "fbc" not in touch:
        # Meta's documented server-side fbc: fb.<subdomainIndex>.<creationTime ms>.<fbclid>
        touch["fbc"] = f"fb.1.{int(captured_at.timestamp() * 1000)}.{touch['fbclid']}"
    if landing_url:
        touch["landing_url"] = landing_url
    referrer = _clean(tracking.get("referrer"), 2048)
    if referrer:
        touch["referrer"] = referrer
    touch["captured_at"] = iso(captured_at)
    return touch


def is_non_direct(touch: dict) -> bool:
    """A touch that carries campaign information (any utm_* value or click id) replaces last touch."""
    return any(name in touch for name in UTM_PARAMS) or any(name in touch for name in CLICK_IDS)


def click_ids_of(touch: dict) -> dict[str, dict[str, str]]:
    """Click ids of a touch with their capture time and source, for later conversion reporting."""
    return {
        name: {"value": touch[name], "captured_at": touch["captured_at"], "source": touch["source"]}
        for name in CLICK_IDS
        if name in touch
    }


def apply_touch(attribution: dict | None, touch: dict) -> dict:
    """New attribution after one touch: first touch once, last touch if non-direct and not older."""
    current = dict(attribution or {})
    if not current.get("first_touch"):
        current["first_touch"] = touch
    last = current.get("last_touch")
    # The first touch is also the latest until a campaign touch (utm or click id) replaces it.
    if not last or (is_non_direct(touch) and last.get("captured_at", "") <= touch["captured_at"]):
        current["last_touch"] = touch
    clicks = dict(current.get("click_ids") or {})
    for name, entry in click_ids_of(touch).items():
        if name not in clicks or clicks[name]["captured_at"] <= entry["captured_at"]:
            clicks[name] = entry
    current["click_ids"] = clicks
    return current


# ---------------------------------------------------------------- ad clicks announced by click monitoring
# Baidu and Tencent call our click-monitoring URL on every ad click (GET /v1/callbacks/{platform}); a lead
# arriving later carries the same click id on its landing URL, which ties it to the ad and the callback
# URL used to report the conversion. Tencent's `qz_gdt` (non-WeChat) / `gdt_vid` (WeChat) IS the click id
# (`trace.click_id`); Baidu's search `bd_vid` and a feed `click_id` are looked up as Baidu clicks.
AD_CLICK_PARAMS = (("bd_vid", "baidu"), ("qz_gdt", "tencent"), ("gdt_vid", "tencent"))
MAX_AD_CLICK_ID = 256  # longer values cannot be a stored click (and would not fit a DynamoDB key)
AD_CLICK_FIELDS = (
    "platform",
    "click_id",
    "account_id",
    "campaign_id",
    "adgroup_id",
    "ad_id",
    "callback_url",
    "click_time",
)


def ad_click_key(platform: str, click_id: str) -> str:
    """The item key of an announced click; the click id is kept exactly as received (never re-cased)."""
    return f"CLICK#{platform}#{click_id}"


def _ad_click_candidates(touch: dict) -> list[tuple[str, str, str]]:
    """(touch parameter, platform, click id) that may name an announced click, strongest first."""
    found = [(param, platform, touch[param]) for param, platform in AD_CLICK_PARAMS if touch.get(param)]
    feed = _clean((parse_qs(_query(touch.get("landing_url"))).get("click_id") or [None])[0])
    if feed:
        found.append(("click_id", "baidu", feed))  # Baidu feed ads: click_id on the landing URL
    return [(p, platform, value) for p, platform, value in found if len(value) <= MAX_AD_CLICK_ID]


def _query(url: str | None) -> str:
    try:
        return urlsplit(url).query if url else ""
    except ValueError:
        return ""


def ad_click_keys(touch: dict) -> list[str]:
    """The click items worth looking up for this touch (no duplicates: one BatchGetItem takes them all)."""
    return list(dict.fromkeys(ad_click_key(platform, value) for _, platform, value in _ad_click_candidates(touch)))


def attach_ad_click(touch: dict, clicks: dict[str, dict]) -> dict:
    """The touch with `ad_click` (platform, ad ids, callback URL) when one of its click ids was announced."""
    for param, platform, value in _ad_click_candidates(touch):
        click = clicks.get(ad_click_key(platform, value))
        if click:
            ad = {name: click[name] for name in AD_CLICK_FIELDS if click.get(name) not in (None, "")}
            return {**touch, "ad_click": {**ad, "platform": platform, "click_id": value, "matched_by": param}}
    return touch


# ---------------------------------------------------------------- UTM rules (infra/funnel/default.yaml)
def _host_matches(host: str, pattern: str) -> bool:
    pattern = pattern.lower().rstrip(".")
    if pattern.startswith("*."):
        return host.endswith(pattern[1:])
    return host == pattern or host.endswith("." + pattern)


def utm_rule_values(touch: dict, rule: dict) -> dict[str, str] | None:
    """The utm_* values `rule` gives the touch (`{param}` replaced by the custom parameter's value), or None."""
    when = rule["when"]
    param_value = None
    if "referrer_host" in when:
        host = _host(touch.get("referrer"))
        if not host or not any(_host_matches(host, p) for p in when["referrer_host"]):
            return None
    landing = touch.get("landing_url")
    if "landing_path" in when:
        try:
            path = urlsplit(landing).path if landing else ""
        except ValueError:
            path = ""
        if not path.startswith(when["landing_path"]):
            return None
    if "param" in when:
        param_value = _clean((parse_qs(_query(landing)).get(when["param"]) or [None])[0], 200)
        if not param_value or ("param_value" in when and param_value != when["param_value"]):
            return None
    return {k: v.replace("{param}", param_value or "") for k, v in rule["set"].items()}


def _host(url: str | None) -> str:
    try:
        return (urlsplit(url).hostname or "").rstrip(".") if url else ""
    except ValueError:
        return ""


def needs_utm_rules(touch: dict) -> bool:
    """Whether a UTM rule could change the touch: it has no utm_source of its own, and a referrer or a landing
    URL for a rule to match (every rule matches on a referrer host, a landing path or a landing parameter)."""
    return not touch.get("utm_source") and bool(touch.get("referrer") or touch.get("landing_url"))


def apply_utm_rules(touch: dict, rules: list[dict]) -> dict:
    """The touch with source/medium/campaign from the first matching rule, for a touch that has no utm_source
    of its own (Zhihu, Baijiahao and other platforms with no UTM convention); `utm_rule` names the rule."""
    if touch.get("utm_source") or not rules:
        return touch
    for rule in rules:
        values = utm_rule_values(touch, rule)
        if values:
            added = {k: v for k, v in values.items() if v and not touch.get(k)}
            return {**touch, **added, "utm_rule": rule["id"]} if added else touch
    return touch
