"""Demo traffic for ad click monitoring: Baidu and Tencent announce clicks, then a lead lands with one.

`shots(url, rng)` gives the requests `leadflow demo` can send: a Baidu click callback signed the way
Baidu signs it (md5 of the URL it calls + akey, over the demo's own URL), a Tencent click callback with
the development token, a website form lead arriving on a landing URL that carries the Baidu click as
`bd_vid` (so its touch is attributed to the announced ad), and a callback with a tampered URL (401).
Secrets are the development values of infra/local/secrets.json.
"""

from __future__ import annotations

import hashlib
import json
import random
import time
from typing import Any
from urllib.parse import quote, urlencode

from leadflow_local.demo import SECRETS, Shot


def _secret(name: str) -> Any:
    return json.loads(SECRETS.read_text())[name]


def _click_id(rng: random.Random, prefix: str) -> str:
    alphabet = "abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # mixed case: ids are never re-cased
    return prefix + "".join(rng.choice(alphabet) for _ in range(18))


def _baidu_path(url: str, query: str) -> str:
    """Baidu appends `&sign=md5(<the URL it calls> + akey)`; the stack checks it over the URL as called."""
    called = f"{url}/v1/callbacks/baidu?{query}"
    sign = hashlib.md5((called + _secret("callbacks/baidu")["akey"]).encode()).hexdigest()  # noqa: S324 - Baidu's scheme
    return f"/v1/callbacks/baidu?{query}&sign={sign}"


def shots(url: str, rng: random.Random) -> list[Shot]:
    url = url.rstrip("/")
    now = int(time.time())
    baidu_click = _click_id(rng, "bd")
    tencent_click = _click_id(rng, "gdt")
    baidu_query = urlencode(
        {
            "click_id": baidu_click,
            "callback_url": "http://ocpc.baidu.com/ocpcapi/cb/actionCb?a_type={{ATYPE}}&a_value={{AVALUE}}&s=1234",
            "pid": str(rng.randrange(10**7, 10**8)),
            "uid": str(rng.randrange(10**7, 10**8)),
            "aid": str(rng.randrange(10**7, 10**8)),
            "ts": str(now * 1000),
            "os": "2",
        },
        quote_via=quote,
    )
    baidu = _baidu_path(url, baidu_query)
    tencent_query = urlencode(
        {
            "token": _secret("callbacks/tencent")["token"],
            "click_id": tencent_click,
            "click_time": str(now),
            "account_id": str(rng.randrange(10**4, 10**5)),
            "campaign_id": str(rng.randrange(10**8, 10**9)),
            "adgroup_id": str(rng.randrange(10**8, 10**9)),
            "ad_id": str(rng.randrange(10**8, 10**9)),
            "callback": "http://tracking.e.qq.com/conv?cb=ZGVtby1jYWxsYmFjaw%3D%3D&conv_id=10001",
        }
    )
    lead = {
        "email": f"lin.{baidu_click.lower()}@xingchen-tech.cn",
        "first_name": "Lin",
        "company": "Xingchen Tech",
        "country": "CN",
        "page_url": f"https://www.example.com/lp/cn-launch?utm_source=baidu&utm_medium=cpc&bd_vid={baidu_click}",
        "_hp": "",
    }
    form_headers = {"content-type": "application/json", "origin": url}
    return [
        Shot("callback:baidu", "GET", baidu, b"", {}),
        Shot("callback:baidu", "GET", baidu, b"", {}, kind="redelivery"),
        Shot("callback:tencent", "GET", f"/v1/callbacks/tencent?{tencent_query}", b"", {}),
        Shot("form:website (fetch)", "POST", "/v1/forms/website", json.dumps(lead).encode(), form_headers),
        Shot("callback:baidu", "GET", baidu.replace("&pid=", "&pid=9"), b"", {}, kind="bad"),
    ]
