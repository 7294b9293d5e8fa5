"""`baidu`: 百度营销 oCPX click monitoring (监测URL), `GET /v1/callbacks/baidu`.

Baidu's server calls the monitoring URL configured in 转化追踪 on every ad click, its macros filled in:

    https://<api>/v1/callbacks/baidu?click_id={{CLICK_ID}}&callback_url={{CALLBACK_URL}}&pid={{PLAN_ID}}
        &uid={{UNIT_ID}}&aid={{IDEA_ID}}&ts={{TS}}&os={{OS}}&ip={{IP}}&ua={{UA}}&idfa={{IDFA}}&imei_md5={{IMEI_MD5}}

and appends `&sign=<md5(URL without "&sign=…" + akey)>` (32 hex characters; akey is the account's key from
the conversion settings, secret `callbacks/baidu` field `akey`), ocpx.baidu.com/developer/ocpc-doc/app/
app-interface/README1.html. The sign is checked over the URL exactly as Baidu called it: scheme and host
of the request (`x-forwarded-proto`, `host`), the raw path and the raw query string, never re-encoded,
with only the `&sign=…` part removed. Baidu counts any HTTP status below 400 as delivered; the body is
Baidu's own success shape. Only the click (click id, callback URL, plan/unit/idea ids, click time) is
kept: no device ids, IP or user agent. A replayed URL only repeats an already stored click.
"""

from __future__ import annotations

import hashlib
import re

from leadflow.errors import SignatureInvalid
from leadflow.secrets import secret_list
from leadflow.sources.base import constant_time_equal
from leadflow.sources.clicks import click_document, query_params
from leadflow.web import Request

NAME = "baidu"
SCHEMA = "baidu_callback.v1.json"
SECRET = "callbacks/baidu"
ACK = {"error_code": 0, "error_msg": "success"}
_SIGN = re.compile(r"^[0-9a-fA-F]{32}$")
# click field → query names that may carry it (Baidu's example names first)
FIELDS = {
    "click_id": ("click_id",),
    "callback_url": ("callback_url",),
    "campaign_id": ("pid", "plan_id"),
    "adgroup_id": ("uid", "unit_id"),
    "ad_id": ("aid", "idea_id"),
    "account_id": ("account_id", "userid"),
    "click_time": ("ts",),
}


def called_url(request: Request) -> tuple[str, str]:
    """(the URL Baidu called without its `&sign=…` part, the sign) from the raw request."""
    parts = request.raw_query.split("&") if request.raw_query else []
    signs = [i for i, part in enumerate(parts) if part.startswith("sign=")]
    if len(signs) != 1:
        raise SignatureInvalid("The callback must carry exactly one sign parameter.")
    sign = parts[signs[0]][len("sign=") :]
    unsigned = "&".join(part for i, part in enumerate(parts) if i != signs[0])
    proto = (request.header("x-forwarded-proto") or "http").split(",", 1)[0].strip().lower()
    host = request.header("host") or str(request.extra.get("domain_name") or "")
    if proto not in ("http", "https") or not host:
        raise SignatureInvalid("The called URL cannot be reconstructed.")
    return f"{proto}://{host}{request.path}" + (f"?{unsigned}" if unsigned else ""), sign


def verify(request: Request, now: float | None = None) -> None:
    url, sign = called_url(request)
    if not _SIGN.match(sign):
        raise SignatureInvalid("The sign is not 32 hexadecimal characters.")
    matched = False
    for akey in secret_list(SECRET, "akey"):  # current and, while rotating, previous akeys
        # md5 because Baidu's scheme prescribes it; compared in constant time.
        expected = hashlib.md5((url + akey).encode("utf-8", "surrogatepass")).hexdigest()  # noqa: S324
        matched |= constant_time_equal(expected, sign.lower())
    if not matched:
        raise SignatureInvalid("The sign does not match the called URL.")


def parse(request: Request, verified: None = None) -> dict:
    return click_document(NAME, SCHEMA, query_params(request), FIELDS)
