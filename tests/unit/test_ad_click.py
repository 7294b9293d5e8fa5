"""Attaching an announced ad click (Baidu/Tencent click monitoring) to a touch: pure domain rules."""

from __future__ import annotations

from leadflow.domain.attribution import ad_click_key, ad_click_keys, attach_ad_click

CLICK = {"platform": "tencent", "click_id": "AbC123", "adgroup_id": "228691429", "callback_url": "http://t/conv?cb=x"}


def test_keys_cover_every_click_parameter_once_and_keep_case():
    # Given a touch carrying qz_gdt and gdt_vid with the same id, and bd_vid
    touch = {"qz_gdt": "AbC123", "gdt_vid": "AbC123", "bd_vid": "BdVid9", "landing_url": "https://x/?click_id=Fe3"}
    # Then each click item is looked up once, ids as sent
    assert ad_click_keys(touch) == ["CLICK#baidu#BdVid9", "CLICK#tencent#AbC123", "CLICK#baidu#Fe3"]


def test_no_click_parameters_means_no_lookup():
    assert ad_click_keys({"source": "form:website", "gclid": "Cj0"}) == []
    assert ad_click_keys({"landing_url": "http://[bad"}) == []


def test_overlong_ids_are_not_looked_up():
    assert ad_click_keys({"bd_vid": "x" * 257}) == []


def test_attach_names_the_ad_and_how_it_matched_without_changing_the_input():
    touch = {"source": "form:website", "gdt_vid": "AbC123"}
    attached = attach_ad_click(touch, {ad_click_key("tencent", "AbC123"): CLICK})
    assert attached["ad_click"] == {**CLICK, "matched_by": "gdt_vid"}
    assert "ad_click" not in touch


def test_attach_leaves_the_touch_alone_when_the_click_was_not_announced():
    touch = {"source": "form:website", "qz_gdt": "abc123"}
    assert attach_ad_click(touch, {ad_click_key("tencent", "AbC123"): CLICK}) == touch
