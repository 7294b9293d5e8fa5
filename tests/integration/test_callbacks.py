"""GET /v1/callbacks/{baidu,tencent}: ad click monitoring, and leads attributed to the announced ad later."""

from __future__ import annotations

import json

import pytest

from tests.support.aws import SECRETS_FILE
from tests.support.callbacks import (
    BAIDU_CALLBACK,
    BAIDU_CLICK,
    GATEWAY,
    TENCENT_CALLBACK,
    TENCENT_CLICK,
    baidu_query,
    baidu_signed,
    tencent_path,
)


def _items(aws) -> list[dict]:
    from leadflow.config import settings

    return aws.scan(TableName=settings().table_name)["Items"]  # test-only: the whole (tiny) table


def _click(aws, platform: str, click_id: str) -> dict | None:
    from leadflow.config import settings

    key = {"pk": {"S": f"CLICK#{platform}#{click_id}"}, "sk": {"S": "CLICK"}}
    return aws.get_item(TableName=settings().table_name, Key=key).get("Item")


# ------------------------------------------------------------------------------------------------ Baidu
def test_baidu_click_with_valid_sign_is_acknowledged_and_stored(api, aws):
    # Given a click callback signed by Baidu over the URL it called
    # When it arrives
    reply = api.request("GET", baidu_signed(baidu_query()), headers=GATEWAY)
    # Then Baidu gets a success (status < 400) in its own shape
    assert reply.status == 200
    assert reply.json == {"error_code": 0, "error_msg": "success"}
    # And the click is kept with its ad and callback URL, case intact, for 90 days, without device data
    item = _click(aws, "baidu", BAIDU_CLICK)
    assert item is not None
    assert item["click_id"]["S"] == BAIDU_CLICK
    assert item["callback_url"]["S"] == BAIDU_CALLBACK
    assert (item["campaign_id"]["S"], item["adgroup_id"]["S"], item["ad_id"]["S"]) == (
        "11110001",
        "22220002",
        "33330003",
    )
    assert item["click_time"]["S"] == "2026-01-01T10:00:00.000Z"
    assert item["entity"]["S"] == "click"
    assert int(item["expires_at"]["N"]) > 0
    assert not {"ip", "ua", "idfa"} & set(item)


def test_baidu_sign_is_checked_over_the_url_as_called_locally_over_http(api, aws):
    # Given a callback to a plain-HTTP local stack (no proxy header): the sign covers http://host:port/...
    query = baidu_query()
    path = baidu_signed(query, host="127.0.0.1:3000", scheme="http")
    # Then it is accepted
    assert api.request("GET", path, headers={"host": "127.0.0.1:3000"}).status == 200


@pytest.mark.parametrize(
    "case",
    ["tampered_query", "wrong_akey", "missing_sign", "other_host", "other_scheme", "bad_sign_format", "two_signs"],
)
def test_baidu_bad_sign_is_401_and_stores_nothing(api, aws, case):
    # Given a callback whose sign does not cover the URL as called
    query = baidu_query()
    signed = baidu_signed(query)
    path = {
        "tampered_query": signed.replace("pid=11110001", "pid=99990009"),
        "wrong_akey": baidu_signed(query, akey="not-the-akey"),
        "missing_sign": f"/v1/callbacks/baidu?{query}",
        "other_host": baidu_signed(query, host="evil.example.net"),
        "other_scheme": baidu_signed(query, scheme="http"),
        "bad_sign_format": f"/v1/callbacks/baidu?{query}&sign=not-hex",
        "two_signs": signed + "&sign=" + signed.rsplit("=", 1)[1],
    }[case]
    # When it arrives
    reply = api.request("GET", path, headers=GATEWAY)
    # Then it is refused and nothing is stored
    assert reply.status == 401
    assert reply.headers["content-type"] == "application/problem+json"
    assert _items(aws) == []


def test_baidu_query_is_never_re_encoded_before_checking(api, aws):
    # Given Baidu encoded a value differently from how we would (lower-case escapes, '+' for spaces)
    query = baidu_query().replace("%2F", "%2f") + "&note=a+b%7e"
    # Then the sign over those exact bytes still matches
    assert api.request("GET", baidu_signed(query), headers=GATEWAY).status == 200


def test_baidu_signed_callback_without_click_id_is_422(api, aws):
    # Given a correctly signed callback whose click id macro was not filled in
    for query in (baidu_query(click_id=None), baidu_query(click_id="{{CLICK_ID}}")):
        reply = api.request("GET", baidu_signed(query), headers=GATEWAY)
        # Then it is a validation error naming the parameter
        assert reply.status == 422
        assert {"field": "click_id", "message": "is required"} in reply.json["errors"]
    assert _items(aws) == []


# ---------------------------------------------------------------------------------------------- Tencent
def test_tencent_click_with_valid_token_is_acknowledged_and_stored(api, aws):
    reply = api.request("GET", tencent_path(), headers=GATEWAY)
    assert reply.status == 200
    assert reply.json == {"ret": 0, "msg": "ok"}
    item = _click(aws, "tencent", TENCENT_CLICK)
    assert item["callback_url"]["S"] == TENCENT_CALLBACK  # __CALLBACK__ arrives URL-encoded, kept decoded
    assert item["account_id"]["S"] == "25610"
    assert item["adgroup_id"]["S"] == "228691429"
    assert item["click_time"]["S"] == "2026-01-01T10:00:00.000Z"


@pytest.mark.parametrize("token", ["wrong-token", None, ""])
def test_tencent_wrong_or_missing_token_is_401_and_stores_nothing(api, aws, token):
    reply = api.request("GET", tencent_path(token=token), headers=GATEWAY)
    assert reply.status == 401
    assert _items(aws) == []


def test_tencent_tokens_per_account(api, aws, tmp_path, monkeypatch):
    # Given tokens configured per advertiser account
    from leadflow.config import settings

    secrets = json.loads(SECRETS_FILE.read_text())
    secrets["callbacks/tencent"] = {"token": {"25610": "tok-account-a", "25611": "tok-account-b"}}
    path = tmp_path / "secrets.json"
    path.write_text(json.dumps(secrets))
    monkeypatch.setenv("LEADFLOW_SECRETS_FILE", str(path))
    settings.cache_clear()
    # Then each account's token opens only that account's callbacks
    assert api.request("GET", tencent_path(token="tok-account-a", account_id="25610")).status == 200
    assert api.request("GET", tencent_path(token="tok-account-b", account_id="25610")).status == 401
    assert api.request("GET", tencent_path(token="tok-account-a", account_id=None)).status == 401
    assert api.request("GET", tencent_path(token="tok-account-a", account_id="99999")).status == 401


def test_unknown_platform_is_404(api):
    assert api.request("GET", "/v1/callbacks/bytedance?click_id=x", headers=GATEWAY).status == 404


def test_redelivered_callbacks_get_the_same_answer_and_store_one_click(api, aws):
    # Given each platform delivers the same click three times
    baidu = [api.request("GET", baidu_signed(baidu_query()), headers=GATEWAY) for _ in range(3)]
    tencent = [api.request("GET", tencent_path(), headers=GATEWAY) for _ in range(3)]
    # Then every delivery gets the same answer
    assert {(r.status, r.body) for r in baidu} == {(200, baidu[0].body)}
    assert {(r.status, r.body) for r in tencent} == {(200, tencent[0].body)}
    # And there is one click item each
    assert sorted(i["pk"]["S"] for i in _items(aws)) == [f"CLICK#baidu#{BAIDU_CLICK}", f"CLICK#tencent#{TENCENT_CLICK}"]


# ------------------------------------------------------------------------------------------ attribution
def _website_lead(api, email: str, page_url: str, **extra) -> dict:
    reply = api.post_form("website", {"email": email, "page_url": page_url, **extra})
    assert reply.status == 202
    lead = api.get_lead_by_email(email)
    assert lead.status == 200
    return lead.json


def test_website_lead_with_bd_vid_is_attributed_to_the_announced_baidu_ad(api):
    # Given Baidu announced a click
    assert api.request("GET", baidu_signed(baidu_query()), headers=GATEWAY).status == 200
    # When a website form lead arrives on a landing URL carrying that click as bd_vid
    landing = f"https://www.example.com/lp?utm_source=baidu&bd_vid={BAIDU_CLICK}"
    lead = _website_lead(api, "li.wei@xingchen-tech.cn", landing)
    # Then its touch names the ad, the click (case kept) and the callback URL for reporting the conversion
    touch = lead["attribution"]["first_touch"]
    assert touch["bd_vid"] == BAIDU_CLICK
    assert touch["landing_url"] == landing  # Baidu's logidUrl, kept whole
    assert touch["ad_click"] == {
        "platform": "baidu",
        "click_id": BAIDU_CLICK,
        "matched_by": "bd_vid",
        "campaign_id": "11110001",
        "adgroup_id": "22220002",
        "ad_id": "33330003",
        "callback_url": BAIDU_CALLBACK,
        "click_time": "2026-01-01T10:00:00.000Z",
    }
    assert lead["attribution"]["last_touch"]["ad_click"]["platform"] == "baidu"


def test_website_lead_with_qz_gdt_or_gdt_vid_is_attributed_to_the_announced_tencent_ad(api):
    # Given Tencent announced two clicks (non-WeChat and WeChat traffic)
    assert api.request("GET", tencent_path(), headers=GATEWAY).status == 200
    wechat_click = "wx0ewinbalytptMA00"
    assert api.request("GET", tencent_path(click_id=wechat_click, adgroup_id="228691430")).status == 200
    # When leads arrive with qz_gdt on the landing URL, and with gdt_vid as a hidden field
    web = _website_lead(api, "zhang.min@qinghao-bio.cn", f"https://www.example.com/lp?qz_gdt={TENCENT_CLICK}")
    wechat = _website_lead(api, "chen.jie@qinghao-bio.cn", "https://www.example.com/lp", gdt_vid=wechat_click)
    # Then each touch is tied to its ad, click ids exactly as sent
    ad = web["attribution"]["first_touch"]["ad_click"]
    assert (ad["platform"], ad["click_id"], ad["matched_by"]) == ("tencent", TENCENT_CLICK, "qz_gdt")
    assert (ad["account_id"], ad["campaign_id"], ad["adgroup_id"], ad["ad_id"]) == (
        "25610",
        "102043154",
        "228691429",
        "251986746",
    )
    assert ad["callback_url"] == TENCENT_CALLBACK
    ad = wechat["attribution"]["first_touch"]["ad_click"]
    assert (ad["click_id"], ad["matched_by"], ad["adgroup_id"]) == (wechat_click, "gdt_vid", "228691430")


def test_baidu_feed_click_id_on_the_landing_url_is_attributed(api):
    assert api.request("GET", baidu_signed(baidu_query()), headers=GATEWAY).status == 200
    lead = _website_lead(api, "feed.reader@xingchen-tech.cn", f"https://www.example.com/feed?click_id={BAIDU_CLICK}")
    assert lead["attribution"]["first_touch"]["ad_click"]["matched_by"] == "click_id"


def test_click_ids_are_matched_exactly_and_unknown_clicks_attach_nothing(api):
    # Given Baidu announced a click
    assert api.request("GET", baidu_signed(baidu_query()), headers=GATEWAY).status == 200
    # When leads arrive with the same id in another case, or a click nobody announced
    other_case = _website_lead(api, "a@xingchen-tech.cn", f"https://www.example.com/?bd_vid={BAIDU_CLICK.lower()}")
    unknown = _website_lead(api, "b@xingchen-tech.cn", "https://www.example.com/?bd_vid=NeverAnnounced")
    # Then neither is attributed to the ad, and their click ids are kept as sent
    assert "ad_click" not in other_case["attribution"]["first_touch"]
    assert other_case["attribution"]["first_touch"]["bd_vid"] == BAIDU_CLICK.lower()
    assert "ad_click" not in unknown["attribution"]["first_touch"]


def test_demo_callback_traffic_is_accepted_and_attributes_its_lead(api):
    # Given the demo's callback traffic built for a stack on http://127.0.0.1:3000
    import random

    from leadflow_local.demo_callbacks import shots

    traffic = shots("http://127.0.0.1:3000", random.Random(3))
    # When it is sent as an HTTP client would (Host = the demo URL's host, plain HTTP)
    replies = [api.request(s.method, s.path, s.body or None, {"host": "127.0.0.1:3000", **s.headers}) for s in traffic]
    # Then the callbacks and the lead are accepted, the tampered callback is refused
    assert [r.status for r in replies] == [200, 200, 200, 202, 401]
    # And the lead that landed with the Baidu click is attributed to its ad
    email = json.loads(traffic[3].body)["email"]
    ad = api.get_lead_by_email(email).json["attribution"]["first_touch"]["ad_click"]
    assert (ad["platform"], ad["matched_by"]) == ("baidu", "bd_vid")
