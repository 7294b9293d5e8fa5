"""Calling the click-monitoring routes the way Baidu and Tencent do (independent of the code under test)."""

from __future__ import annotations

import hashlib
from urllib.parse import quote, urlencode

from tests.support.signing import dev_secret

API_HOST = "leads-api.example.com"  # the Host Baidu called (API Gateway passes it with x-forwarded-proto)
GATEWAY = {"host": API_HOST, "x-forwarded-proto": "https"}
BAIDU_CLICK = "BdClk_7fA9xQ-MixedCase"
BAIDU_CALLBACK = "http://ocpc.baidu.com/ocpcapi/cb/actionCb?a_type={{ATYPE}}&a_value={{AVALUE}}&s=1234&ext_info=abcd"
TENCENT_CLICK = "24oi6xq2aaakvagNQU7a"
TENCENT_CALLBACK = "http://tracking.e.qq.com/conv?cb=MTIzYWJjNDU2ZGVm&conv_id=12345678"


def baidu_query(**overrides) -> str:
    """Baidu's monitoring URL with its macros filled in, as Baidu's server builds it (values URL-encoded)."""
    params = {
        "click_id": BAIDU_CLICK,
        "callback_url": BAIDU_CALLBACK,
        "pid": "11110001",
        "uid": "22220002",
        "aid": "33330003",
        "ts": "1767261600000",
        "os": "1",
        "ip": "203.0.113.9",
        "ua": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X)",
        "idfa": "6D92078A-8246-4BA4-AE5B-76104861E7DC",
        **overrides,
    }
    return urlencode({k: v for k, v in params.items() if v is not None}, quote_via=quote)


def baidu_signed(query: str, akey: str | None = None, host: str = API_HOST, scheme: str = "https") -> str:
    """`&sign=md5(full URL + akey)` appended, as ocpx.baidu.com documents (independent of the code under test)."""
    akey = akey or dev_secret("callbacks/baidu")["akey"]
    url = f"{scheme}://{host}/v1/callbacks/baidu?{query}"
    return f"/v1/callbacks/baidu?{query}&sign={hashlib.md5((url + akey).encode()).hexdigest()}"


def tencent_path(token: str | None = "default", **overrides) -> str:
    """Tencent's click server calling our monitoring URL template with the macros substituted."""
    params = {
        "token": dev_secret("callbacks/tencent")["token"] if token == "default" else token,
        "click_id": TENCENT_CLICK,
        "click_time": "1767261600",
        "account_id": "25610",
        "campaign_id": "102043154",
        "adgroup_id": "228691429",
        "ad_id": "251986746",
        "request_id": "req-8d3ebd3654fb46a2",
        "callback": TENCENT_CALLBACK,
        **overrides,
    }
    return "/v1/callbacks/tencent?" + urlencode({k: v for k, v in params.items() if v is not None})
