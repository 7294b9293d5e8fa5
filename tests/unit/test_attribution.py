"""leadflow.domain.attribution: one touch per submission, first touch once, last touch by campaign touches."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from leadflow.domain.attribution import apply_touch, build_touch, click_ids_of, iso

T0 = datetime(2026, 11, 22, 10, 0, 0, 123456, tzinfo=UTC)
T0_MS = 1795341600123  # T0 in epoch milliseconds


def touch(tracking=None, cookies=None, at=T0, source="form:website"):
    return build_touch(source, tracking or {}, cookies or {}, at)


def test_a_touch_records_source_utms_click_ids_landing_url_referrer_and_time():
    result = touch(
        {
            "utm_source": " newsletter ",
            "utm_campaign": "Launch",
            "gclid": "Cj0KCQ_AbC",
            "page_url": "https://www.example.com/pricing",
            "referrer": "https://news.example.org/",
        }
    )
    assert result == {
        "source": "form:website",
        "utm_source": "newsletter",
        "utm_campaign": "Launch",
        "gclid": "Cj0KCQ_AbC",
        "landing_url": "https://www.example.com/pricing",
        "referrer": "https://news.example.org/",
        "captured_at": "2026-11-22T10:00:00.123Z",
    }


def test_body_field_wins_over_landing_url_query():
    result = touch({"utm_source": "body", "page_url": "https://x.io/?utm_source=url&utm_medium=cpc&gclid=FromUrl"})
    assert (result["utm_source"], result["utm_medium"], result["gclid"]) == ("body", "cpc", "FromUrl")


def test_landing_url_query_wins_over_posted_and_request_cookies():
    result = touch(
        {"landing_url": "https://x.io/?gclid=FromUrl", "_gcl_aw": "GCL.1700000000.FromPostedCookie"},
        cookies={"_gcl_aw": "GCL.1700000000.FromRequestCookie"},
    )
    assert result["gclid"] == "FromUrl"


def test_posted_cookie_wins_over_request_cookie():
    result = touch(
        {"_fbc": "fb.1.1700000000000.Posted", "_fbp": "fb.1.1.PostedP", "_gcl_aw": "GCL.1.PostedG"},
        cookies={"_fbc": "fb.1.1.Cookie", "_fbp": "fb.1.1.CookieP", "_gcl_aw": "GCL.1.CookieG"},
    )
    assert (result["fbc"], result["fbp"], result["gclid"]) == ("fb.1.1700000000000.Posted", "fb.1.1.PostedP", "PostedG")


def test_request_cookies_are_used_when_nothing_else_says():
    result = touch(cookies={"_fbc": "fb.1.1.Cookie", "_fbp": "fb.1.1.CookieP", "_gcl_aw": "GCL.1700000000.CookieG"})
    assert (result["fbc"], result["fbp"], result["gclid"]) == ("fb.1.1.Cookie", "fb.1.1.CookieP", "CookieG")


@pytest.mark.parametrize("cookie", ["GCL.1700000000", "XYZ.1.abc", "GCL.1.", "", "gclid-only"])
def test_gcl_aw_that_is_not_GCL_ts_gclid_gives_no_gclid(cookie):
    assert "gclid" not in touch({"_gcl_aw": cookie})


def test_fbclid_builds_fbc_with_the_capture_time_in_milliseconds():
    result = touch({"page_url": "https://x.io/?fbclid=IwAR_MixedCase"})
    assert result["fbclid"] == "IwAR_MixedCase"
    assert result["fbc"] == f"fb.1.{T0_MS}.IwAR_MixedCase"


def test_fbclid_does_not_overwrite_an_fbc_cookie():
    result = touch({"fbclid": "IwAR_New", "_fbc": "fb.1.1600000000000.IwAR_Old"})
    assert result["fbc"] == "fb.1.1600000000000.IwAR_Old"


def test_click_ids_are_never_re_cased():
    ids = {"gclid": "EAIaIQobChMI-Case", "msclkid": "AbC123dEf", "ttclid": "E.C.P.Mixed", "li_fat_id": "Ab-Cd"}
    result = touch({**ids, "utm_source": "Google"})
    assert {name: result[name] for name in ids} == ids
    assert result["utm_source"] == "Google"


def test_direct_visit_touch_carries_only_source_and_time():
    assert touch() == {"source": "form:website", "captured_at": "2026-11-22T10:00:00.123Z"}


def test_captured_at_is_utc_whatever_the_offset_of_the_submission_time():
    at = datetime(2026, 11, 22, 10, 0, tzinfo=timezone(timedelta(hours=5)))
    assert iso(at) == "2026-11-22T05:00:00.000Z"
    assert touch(at=at)["captured_at"] == "2026-11-22T05:00:00.000Z"


# ------------------------------------------------------------------------------------------- apply
def later(minutes):
    return T0 + timedelta(minutes=minutes)


def test_first_touch_is_written_once_and_is_also_the_last_touch():
    first = touch({"utm_source": "google"})
    attribution = apply_touch(None, first)
    assert attribution["first_touch"] == first
    assert attribution["last_touch"] == first
    second = touch({"utm_source": "bing"}, at=later(5))
    attribution = apply_touch(attribution, second)
    assert attribution["first_touch"] == first
    assert attribution["last_touch"] == second


def test_direct_touch_does_not_replace_last_touch():
    campaign = touch({"utm_campaign": "spring"})
    attribution = apply_touch(apply_touch(None, campaign), touch(at=later(5), source="generic"))
    assert attribution["last_touch"] == campaign


def test_click_id_alone_makes_a_touch_non_direct():
    first = touch()
    clicked = touch({"msclkid": "Abc"}, at=later(1))
    assert apply_touch(apply_touch(None, first), clicked)["last_touch"] == clicked


def test_an_older_campaign_touch_does_not_replace_a_newer_last_touch():
    newer = touch({"utm_source": "newer"}, at=later(10))
    older = touch({"utm_source": "older"}, at=later(1))
    attribution = apply_touch(apply_touch(None, newer), older)
    assert attribution["last_touch"]["utm_source"] == "newer"
    assert attribution["first_touch"]["utm_source"] == "newer"  # written once, even by a late redelivery


def test_click_ids_keep_their_capture_time_and_source_and_the_newest_value():
    first = touch({"gclid": "G1"}, source="form:website")
    attribution = apply_touch(None, first)
    assert attribution["click_ids"] == {
        "gclid": {"value": "G1", "captured_at": "2026-11-22T10:00:00.123Z", "source": "form:website"}
    }
    attribution = apply_touch(attribution, touch({"gclid": "G2", "ttclid": "T1"}, at=later(1), source="generic"))
    attribution = apply_touch(attribution, touch({"gclid": "G0"}, at=T0 - timedelta(days=1)))  # older: ignored
    assert attribution["click_ids"]["gclid"] == {
        "value": "G2",
        "captured_at": "2026-11-22T10:01:00.123Z",
        "source": "generic",
    }
    assert attribution["click_ids"]["ttclid"]["value"] == "T1"


def test_click_ids_of_a_direct_touch_is_empty():
    assert click_ids_of(touch()) == {}


def test_apply_touch_does_not_mutate_the_attribution_it_is_given():
    attribution = apply_touch(None, touch({"gclid": "G1"}))
    snapshot = {**attribution, "click_ids": dict(attribution["click_ids"])}
    apply_touch(attribution, touch({"gclid": "G2"}, at=later(1)))
    assert attribution == snapshot
