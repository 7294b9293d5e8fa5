"""`tencent`: 腾讯广告 click monitoring (点击监测 / Feedback URL), `GET /v1/callbacks/tencent`.

Tencent's click server GETs the monitoring URL configured in DataNexus (广告效果监测) or the ad's
conversion settings, with its macros (upper case, double underscores) substituted into query parameters
we name ourselves. The monitoring URL an operator pastes (one line):

    https://<api>/v1/callbacks/tencent?token=<token>&click_id=__CLICK_ID__&click_time=__CLICK_TIME__
        &account_id=__ACCOUNT_ID__&campaign_id=__CAMPAIGN_ID__&adgroup_id=__ADGROUP_ID__&ad_id=__AD_ID__
        &request_id=__REQUEST_ID__&callback=__CALLBACK__

(developers.e.qq.com/docs/guide/conversion/new_version/dianjijiance, datanexus.qq.com/doc/develop/guider/
interface/conversion/ad_track_click). `__CALLBACK__` (URL-encoded) is the reporting URL for conversions
in monitoring-link mode; a macro Tencent does not fill arrives empty or unreplaced and counts as absent.
Tencent documents no signature for this GET, so the URL carries an unguessable token: secret
`callbacks/tencent` field `token`, either one string for every account or an object account id → token
(then `account_id` must be in the URL); any token may be a list (current first, previous while rotating).
Tencent asks for "the correct return value" without documenting a body: any 200 is taken as delivered, and
the body is `{"ret":0,"msg":"ok"}` (Marketing API convention).
"""

from __future__ import annotations

from leadflow.errors import ConfigurationError, SignatureInvalid
from leadflow.secrets import get_secret
from leadflow.sources.base import constant_time_equal
from leadflow.sources.clicks import click_document, query_params
from leadflow.web import Request

NAME = "tencent"
SCHEMA = "tencent_callback.v1.json"
SECRET = "callbacks/tencent"
ACK = {"ret": 0, "msg": "ok"}
FIELDS = {
    "click_id": ("click_id",),
    "callback_url": ("callback",),
    "account_id": ("account_id",),
    "campaign_id": ("campaign_id",),
    "adgroup_id": ("adgroup_id",),
    "ad_id": ("ad_id",),
    "request_id": ("request_id",),
    "click_time": ("click_time",),
}


def _tokens(value: object) -> list[str]:
    values = value if isinstance(value, list) else [value]
    return [v for v in values if isinstance(v, str) and v]


def _expected_tokens(account_id: str | None) -> list[str]:
    """The tokens accepted for this account (current and, while rotating, previous); [] if none is."""
    value = get_secret(SECRET)
    token = value.get("token") if isinstance(value, dict) else value
    if not token:
        raise ConfigurationError(f"Secret {SECRET} has no token.")
    if isinstance(token, dict):
        return _tokens(token.get(account_id)) if account_id else []
    return _tokens(token)


def verify(request: Request, now: float | None = None) -> None:
    params = query_params(request)
    offered = params.get("token")
    if not offered:
        raise SignatureInvalid("The callback token is missing.")
    expected = _expected_tokens(params.get("account_id"))
    matched = False
    # compare even when no token is configured for the account, so both cases take the same time
    for token in expected or ["\x00" * len(offered)]:
        matched |= constant_time_equal(token, offered)
    if not matched or not expected:
        raise SignatureInvalid("The callback token is not valid.")


def parse(request: Request, verified: None = None) -> dict:
    return click_document(NAME, SCHEMA, query_params(request), FIELDS)
