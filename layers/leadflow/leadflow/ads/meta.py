"""Meta Conversions API: `POST /{version}/{dataset_id}/events` with `{"data": [...], "access_token"}`.

One server event per conversion: `event_name` from the stage's configuration, `event_time` (unix seconds of
the stage change), `event_id` = `<lead_id>#<stage>` (Meta drops a second event with the same name and id),
`action_source: system_generated` (the CRM reports it), `custom_data` `{event_source: crm,
lead_event_source: <crm_name>}` plus value/currency when configured, and `user_data`:

- hashed (SHA-256, lower-case hex, of the value normalised as Meta documents): `em` (trimmed, lower case),
  `ph` (digits only with the country code, no leading zeros: E.164 without '+'), `fn`/`ln` (lower case, no
  punctuation or spaces, UTF-8), `ct` (lower case, letters and digits only), `st` (two-letter code, lower case),
  `zp` (lower case, no spaces or dashes; US: the first five digits), `country` (ISO alpha-2, lower case) and
  `external_id` (the LeadFlow lead id);
- unhashed, as Meta requires: `fbc` and `fbp` (click and browser ids) and, for an Instant Form lead,
  `lead_id` (Meta's own lead id, which is what lets Meta tie the stage to its lead ad).

The access token travels in the JSON body, never in the URL. Events older than 7 days are never built
(`leadflow.domain.conversions` refuses them first); if Meta still refuses a multi-event request with a
permanent 400, each event is resent alone so one bad event fails only itself. 429, 5xx and Graph's
transient and throttling codes (1, 2, 4, 17, 32, 613) are retried; 190 (token) is retried until an operator
rotates `ads/meta`; other 4xx fail.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Callable

from leadflow.ads import Call, Conversion, Outcome, every
from leadflow.ads.config import PlatformConfig, stage_value
from leadflow.domain.conversions import parse_time
from leadflow.http import Response, base_url, retry_after_seconds
from leadflow.secrets import secret_field

NAME = "meta"
SECRET = "ads/meta"
MAX_EVENTS = 1000
RETRY_CODES = frozenset({1, 2, 4, 17, 32, 190, 613})


def sha256(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def _letters(value: str) -> str:
    """Lower case, NFC, letters and digits only (Meta: no punctuation, no spaces, UTF-8)."""
    text = unicodedata.normalize("NFC", value).strip().lower()
    return "".join(ch for ch in text if ch.isalnum())


def normalise_email(value: str) -> str:
    return value.strip().lower()


def normalise_phone(value: str, country: str | None = None) -> str:
    """Digits with the country code and no leading zeros, read in `country` when written without one."""
    import phonenumbers

    try:
        number = phonenumbers.parse(value, (country or "").upper() or None)
        value = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    except phonenumbers.NumberParseException:
        pass
    return re.sub(r"\D", "", value).lstrip("0")


def normalise_zip(value: str, country: str | None) -> str:
    text = re.sub(r"[\s-]", "", value.strip().lower())
    if (country or "").upper() == "US":
        text = text[:5]
    return text


def user_data(lead: dict, click: dict) -> dict:
    """Meta's `user_data` for a lead: the hashed identifiers, and fbc/fbp/lead_id as they are."""
    attributes = lead.get("attributes") or {}
    country = lead.get("country") or attributes.get("country")
    data: dict = {}
    if lead.get("email"):
        data["em"] = [sha256(normalise_email(str(lead["email"])))]
    if lead.get("phone"):
        data["ph"] = [sha256(normalise_phone(str(lead["phone"]), country))]
    for field, source in (("fn", lead.get("first_name")), ("ln", lead.get("last_name")),
                          ("ct", attributes.get("city"))):  # fmt: skip
        if source and _letters(str(source)):
            data[field] = [sha256(_letters(str(source)))]
    state = str(attributes.get("state") or "").strip().lower()
    if len(state) == 2 and state.isalpha():
        data["st"] = [sha256(state)]
    postal = attributes.get("zip") or attributes.get("postal_code")
    if postal and normalise_zip(str(postal), country):
        data["zp"] = [sha256(normalise_zip(str(postal), country))]
    if country and len(str(country).strip()) == 2:
        data["country"] = [sha256(str(country).strip().lower())]
    data["external_id"] = [sha256(str(lead["lead_id"]))]
    touches = [(lead.get("attribution") or {}).get(t) or {} for t in ("last_touch", "first_touch")]
    fbc = click["value"] if click.get("name") == "fbc" else next((t["fbc"] for t in touches if t.get("fbc")), None)
    fbp = next((t["fbp"] for t in touches if t.get("fbp")), None)
    if fbc:
        data["fbc"] = fbc
    if fbp:
        data["fbp"] = fbp
    if click.get("name") == "lead_id":
        data["lead_id"] = int(click["value"]) if str(click["value"]).isdigit() else click["value"]
    return data


def event(conversion: Conversion, platform: PlatformConfig) -> dict:
    spec = conversion.stage_config
    custom = {"event_source": "crm", "lead_event_source": platform.options.get("crm_name", "LeadFlow")}
    value = stage_value(conversion.lead, spec)
    if value is not None:
        custom.update(value=value, currency=spec.get("currency", "USD"))
    return {
        "event_name": spec["event_name"],
        "event_time": int(parse_time(conversion.at).timestamp()),
        "event_id": conversion.key,
        "action_source": "system_generated",
        "user_data": user_data(conversion.lead, conversion.click),
        "custom_data": custom,
    }


def build_calls(conversions: list[Conversion], platform: PlatformConfig) -> tuple[list[Call], dict[str, Outcome]]:
    dataset = secret_field(SECRET, "dataset_id")
    token = secret_field(SECRET, "access_token")
    url = f"{base_url(NAME)}/{platform.options.get('api_version', 'v21.0')}/{dataset}/events"
    size = max(1, min(platform.batch_size, MAX_EVENTS))
    calls = []
    for start in range(0, len(conversions), size):
        chunk = conversions[start : start + size]
        body = {"data": [event(c, platform) for c in chunk], "access_token": token}
        calls.append(Call("POST", url, tuple(c.key for c in chunk), {}, body))
    return calls, {}


def classify(call: Call, answer: Response) -> dict[str, Outcome]:
    body = answer.body if isinstance(answer.body, dict) else {}
    if answer.ok:
        return every(call.keys, Outcome("done"))
    error = body.get("error") if isinstance(body.get("error"), dict) else {}
    code = error.get("code")
    reason = f"HTTP {answer.status}" + (f" code {code}" if code is not None else "")
    if error.get("error_subcode") is not None:
        reason += f"/{error['error_subcode']}"
    if answer.status == 429 or answer.status >= 500 or code in RETRY_CODES:
        return every(call.keys, Outcome("retry", reason=reason, retry_after=retry_after_seconds(
            answer.headers.get("retry-after"))))  # fmt: skip
    return every(call.keys, Outcome("failed", reason=reason))


def send_call(call: Call, platform: PlatformConfig, send: Callable, request: Callable[..., Response]) -> dict:
    outcomes = send(call, platform, classify)
    if len(call.keys) > 1 and all(o.status == "failed" for o in outcomes.values()):
        # one bad event refuses the whole request: resend each alone so only the bad one fails
        outcomes = {}
        for key, data in zip(call.keys, call.json_body["data"], strict=True):
            alone = Call(call.method, call.url, (key,), call.headers, {**call.json_body, "data": [data]})
            outcomes.update(send(alone, platform, classify))
    return outcomes
