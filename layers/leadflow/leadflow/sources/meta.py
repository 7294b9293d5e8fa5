"""`meta`: Meta (Facebook/Instagram) Lead Ads via the Page `leadgen` webhook, fetched from the Graph API.

- Subscription check (GET): `hub.mode=subscribe&hub.verify_token=…&hub.challenge=…` → the token is
  compared in constant time with `webhooks/meta.verify_token`; 200 text/plain echoing the challenge, else 403.
- Deliveries (POST): `X-Hub-Signature-256: sha256=<hex HMAC-SHA256(app_secret, raw body)>` (401 otherwise).
  The body names leads (`entry[].changes[]` with `field: "leadgen"`, `value.leadgen_id`), never their data.
- Fetch: a delivery's leads travel in one queue message (≤ 50, the Graph API's batch limit) and are read
  with one batch request, `POST {graph}/` with `batch=[{"method":"GET","relative_url":"v21.0/<id>?fields=…"}]`
  and the Page token (`webhooks/meta.access_token`). Each answer is judged on its own, so one lead that
  fails (e.g. 404/403) does not hold back the others; a failed batch call fails them all.

Lead mapping: `field_data[{name, values[]}]` standard questions → lead fields, custom questions →
attributes; the ad, ad set, campaign, form and page ids, `is_organic` and `platform` → attributes
`meta_*` (the touch shape is the contract's: source + utm/click ids, and a Meta lead carries none, so
utm_source is not invented); `leadgen_id` → external id ("meta", id) and the delivery key.
"""

from __future__ import annotations

import json
import re
from typing import Any

from leadflow.domain.model import LeadInput
from leadflow.errors import Forbidden, MalformedBody, SignatureInvalid
from leadflow.secrets import secret_field, secret_list
from leadflow.sources import http
from leadflow.sources.base import ascii_unsigned, constant_time_equal, event_key, hmac_sha256, parse_time
from leadflow.web import Request, json_object, response

NAME = "meta"
SCHEMA = "meta.v1.json"
SECRET = "webhooks/meta"
GRAPH_VERSION = "v21.0"
LEAD_FIELDS = "created_time,field_data,ad_id,adset_id,campaign_id,form_id,is_organic,platform"
POINTERS_PER_MESSAGE = 50  # Graph API batch requests take at most 50 operations
SIGNATURE_PREFIX = "sha256="
MAX_CHALLENGE = 1024

# field_data names of Meta's standard questions → lead fields (first match wins for each field)
STANDARD_QUESTIONS = {
    "email": "email",
    "work_email": "email",
    "phone_number": "phone",
    "phone": "phone",
    "work_phone_number": "phone",
    "full_name": "full_name",
    "first_name": "first_name",
    "last_name": "last_name",
    "company_name": "company",
    "job_title": "job_title",
    "country": "country",
}
_ID = re.compile(r"[0-9]{1,32}", re.ASCII)  # fullmatch: "$" would let a trailing newline through


# ---------------------------------------------------------------- webhook
def handshake(request: Request) -> dict:
    mode = request.query.get("hub.mode", "")
    token = request.query.get("hub.verify_token", "")
    challenge = request.query.get("hub.challenge", "")
    expected = secret_field(SECRET, "verify_token")
    token_ok = constant_time_equal(token.encode("utf-8", "surrogatepass"), expected.encode())
    if mode != "subscribe" or not token_ok or not challenge or len(challenge) > MAX_CHALLENGE:
        raise Forbidden("The subscription check was refused.")
    return response(200, challenge, {"content-type": "text/plain"})


def verify(request: Request, now: float | None = None) -> bool:
    header = request.header("x-hub-signature-256") or ""
    if not header.startswith(SIGNATURE_PREFIX):
        raise SignatureInvalid("The X-Hub-Signature-256 header is missing or malformed.")
    offered = header.strip().lower()
    matched = False
    for secret in secret_list(SECRET, "app_secret"):  # current and, while rotating, previous app secrets
        matched |= constant_time_equal(SIGNATURE_PREFIX + hmac_sha256(secret.encode(), request.body).hex(), offered)
    if not matched:
        raise SignatureInvalid("The X-Hub-Signature-256 signature does not match.")
    return True


def parse_pointers(request: Request, verified: Any) -> list[dict]:
    """One pointer per leadgen change (other Page fields are ignored); repeated leadgen ids once."""
    document = json_object(request, SCHEMA)
    pointers: dict[str, dict] = {}
    for entry in document["entry"]:
        for change in entry.get("changes") or []:
            if change.get("field") != "leadgen":
                continue
            value = change["value"]
            pointer = {"id": str(value["leadgen_id"]), "page_id": _id(value.get("page_id") or entry.get("id"))}
            for name in ("form_id", "ad_id", "adgroup_id"):
                if value.get(name) is not None:
                    pointer[name] = str(value[name])
            if value.get("created_time") is not None:
                pointer["created_time"] = value["created_time"]
            pointers.setdefault(pointer["id"], {k: v for k, v in pointer.items() if v is not None})
    return list(pointers.values())


def _id(value: Any) -> str | None:
    return str(value) if value is not None and _ID.fullmatch(str(value)) else None


# ---------------------------------------------------------------- fetch
def fetch(pointer: dict) -> LeadInput:
    outcome = fetch_many([pointer])[0]
    if isinstance(outcome, BaseException):
        raise outcome
    return outcome


def fetch_many(pointers: list[dict]) -> list[LeadInput | BaseException]:
    """Read up to 50 leads with one Graph API batch request; one outcome per pointer, in order."""
    operations = [
        {"method": "GET", "relative_url": f"{GRAPH_VERSION}/{_leadgen_id(p)}?fields={LEAD_FIELDS}"} for p in pointers
    ]
    answers = http.request_json(
        NAME,
        "POST",
        http.base_url(NAME) + "/",
        form={
            "batch": json.dumps(operations, separators=(",", ":")),
            "include_headers": "false",
            "access_token": secret_field(SECRET, "access_token"),
        },
    )
    if not isinstance(answers, list) or len(answers) != len(pointers):
        raise http.ApiError(NAME, 502, "unexpected-batch-answer")
    return [_outcome(pointer, answer) for pointer, answer in zip(pointers, answers, strict=True)]


def _leadgen_id(pointer: dict) -> str:
    leadgen_id = str(pointer.get("id", ""))
    if not _ID.fullmatch(leadgen_id):  # it goes into a Graph API path
        raise MalformedBody("The leadgen id is not numeric.")
    return leadgen_id


def _outcome(pointer: dict, answer: Any) -> LeadInput | BaseException:
    if answer is None:  # Graph answers null for an operation that did not complete in time
        return http.ApiError(NAME, None, "batch-operation-timeout")
    if not isinstance(answer, dict):
        return http.ApiError(NAME, 502, "unexpected-batch-answer")
    try:
        body = json.loads(answer.get("body") or "null")
    except ValueError:
        body = None
    status = ascii_unsigned(str(answer.get("code")), 3) or 0  # a code that is not a status is a bad answer
    if status != 200:
        code = None
        if isinstance(body, dict) and isinstance(body.get("error"), dict):
            code = str(body["error"].get("code", "")) or None
        return http.ApiError(NAME, status or 502, code)
    if not isinstance(body, dict):
        return http.ApiError(NAME, 502, "unexpected-lead-body")
    return lead_input(pointer, body)


def lead_input(pointer: dict, lead: dict) -> LeadInput:
    """A Graph API Lead object (`field_data`, ad ids) as a LeadInput."""
    fields: dict[str, Any] = {}
    attributes: dict[str, Any] = {}
    for item in lead.get("field_data") or []:
        if not isinstance(item, dict) or not item.get("name"):
            continue
        name = str(item["name"])[:100]
        values = [str(v) for v in (item.get("values") or []) if v not in (None, "")]
        if not values:
            continue
        target = STANDARD_QUESTIONS.get(name.lower())
        if target and target not in fields:
            fields[target] = values[0]
        elif target is None:
            attributes[name] = values[0] if len(values) == 1 else values
    ids = {
        "meta_ad_id": lead.get("ad_id") or pointer.get("ad_id"),
        "meta_adset_id": lead.get("adset_id") or pointer.get("adgroup_id"),
        "meta_campaign_id": lead.get("campaign_id"),
        "meta_form_id": lead.get("form_id") or pointer.get("form_id"),
        "meta_page_id": pointer.get("page_id"),
        "meta_platform": lead.get("platform"),
    }
    attributes.update({name: str(value) for name, value in ids.items() if value not in (None, "")})
    if isinstance(lead.get("is_organic"), bool):
        attributes["meta_is_organic"] = lead["is_organic"]
    leadgen_id = str(pointer["id"])
    created = lead.get("created_time") or pointer.get("created_time")
    if isinstance(created, str):
        created = re.sub(r"([+-]\d{2})(\d{2})$", r"\1:\2", created)  # Graph writes +0000
    return LeadInput(
        source=NAME,
        fields=fields,
        attributes=attributes,
        occurred_at=parse_time(created),
        event_key=event_key(NAME, leadgen_id),
        external_ids=[(NAME, leadgen_id)],
    )
