"""Conversions out, the pure rules: which stages a change reaches, the click and window per platform, Meta's
hashing against Meta's published examples, Google's date format, and configuration errors by file and line."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from leadflow.ads import meta
from leadflow.ads.config import ConversionConfigInvalid, load_conversions, load_conversions_file
from leadflow.ads.google_ads import date_time
from leadflow.domain.conversions import find_click, logid_url, stages_reached, still_sendable

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


def lead_with(touch: dict, **fields) -> dict:
    return {"lead_id": "L1", "attribution": {"first_touch": touch, "last_touch": touch}, **fields}


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


@pytest.mark.parametrize(
    ("old", "new", "reached"),
    [
        (None, "lead", ["lead"]),
        (None, "mql", ["lead", "mql"]),
        ("lead", "sql", ["mql", "sql"]),
        ("sql", "customer", ["opportunity", "customer"]),
        ("mql", "mql", []),
        ("sql", "disqualified", []),
        ("recycled", "lead", ["lead"]),
    ],
)
def test_a_stage_move_reaches_every_funnel_stage_it_passes(old, new, reached):
    assert stages_reached(old, new) == reached


def test_google_takes_the_gclid_of_the_last_touch_inside_90_days():
    # Given a lead whose click was 89 days before it became an SQL
    clicked = NOW - timedelta(days=89)
    lead = lead_with({"source": "form:website", "gclid": "Cj0KCQ", "captured_at": iso(clicked)})
    # Then Google gets that gclid; one more day and the click is outside the window
    click, why = find_click("google-ads", lead, NOW, 90)
    assert click == {"name": "gclid", "value": "Cj0KCQ", "captured_at": iso(clicked)} and why == ""
    click, why = find_click("google-ads", lead, NOW + timedelta(days=2), 90)
    assert click is None and "90-day window" in why


def test_a_lead_without_the_platforms_click_id_has_no_conversion():
    lead = lead_with({"source": "form:website", "gclid": "Cj0KCQ", "captured_at": iso(NOW)})
    for platform in ("meta", "baidu", "tencent"):
        click, why = find_click(platform, lead, NOW, 30)
        assert click is None and why.startswith("no ")


def test_gbraid_and_wbraid_stand_in_for_a_missing_gclid():
    lead = lead_with({"source": "form:website", "wbraid": "WB1", "captured_at": iso(NOW)})
    assert find_click("google-ads", lead, NOW, 90)[0]["name"] == "wbraid"


def test_meta_events_older_than_seven_days_are_never_sent():
    click = {"name": "fbc", "value": "fb.1.1.abc", "captured_at": iso(NOW - timedelta(days=1))}
    assert still_sendable("meta", click, NOW - timedelta(days=6), NOW, 7) == ""
    assert "older than 7 days" in still_sendable("meta", click, NOW - timedelta(days=8), NOW, 7)


def test_google_refuses_at_upload_a_click_that_aged_past_the_window():
    click = {"name": "gclid", "value": "x", "captured_at": iso(NOW - timedelta(days=91))}
    assert "older than 90 days" in still_sendable("google-ads", click, NOW - timedelta(days=60), NOW, 90)


def test_a_meta_instant_form_lead_converts_by_its_meta_lead_id():
    lead = {"lead_id": "L2", "identity_keys": ["EMAIL#a@b.c", "EXT#meta#123456789012345"], "attribution": {}}
    click, _ = find_click("meta", lead, NOW, 7)
    assert click["name"] == "lead_id" and click["value"] == "123456789012345"


def test_baidu_needs_the_landing_url_that_carried_bd_vid():
    # Given bd_vid posted as a field with no landing page, then with one
    bare = lead_with({"source": "generic", "bd_vid": "V1", "captured_at": iso(NOW)})
    landed = lead_with({"source": "form:website", "bd_vid": "V1", "captured_at": iso(NOW),
                        "landing_url": "https://site.cn/a"})  # fmt: skip
    # Then only the second is a Baidu conversion
    assert find_click("baidu", bare, NOW, 30) == (None, "bd_vid without the landing URL that carried it")
    assert find_click("baidu", landed, NOW, 30)[0]["landing_url"] == "https://site.cn/a"


def test_baidus_logid_url_is_the_landing_url_carrying_bd_vid():
    assert (
        logid_url({"value": "V1", "landing_url": "https://site.cn/a?x=1&bd_vid=V1"})
        == "https://site.cn/a?x=1&bd_vid=V1"
    )
    assert logid_url({"value": "V1", "landing_url": "https://site.cn/a"}) == "https://site.cn/a?bd_vid=V1"
    assert logid_url({"value": "V1"}) is None


# Meta's customer information parameters page: the normalised forms and SHA-256 hashes it publishes
# (also in /work/shared/reference/wire-formats.md §E, where the shortened hashes were checked).
def test_meta_hashes_match_metas_published_examples():
    lead = {
        "lead_id": "L3",
        "email": " John_Smith@gmail.com ",
        "phone": "(650)555-1212",
        "country": "US",
        "first_name": "Mary",
        "attribution": {},
    }
    data = meta.user_data(lead, {"name": "fbc", "value": "fb.1.1554763741205.AbCdEf"})
    assert data["em"] == ["62a14e44f765419d10fea99367361a727c12365e2520f32218d505ed9aa0f62f"]
    assert data["ph"] == ["e323ec626319ca94ee8bff2e4c87cf613be6ea19919ed1364124e16807ab3176"]
    assert data["fn"] == ["6915771be1c5aa0c886870b6951b03d7eafc121fea0e80a5ea83beb7c449f4ec"]
    assert data["country"] == ["79adb2a2fce5c6ba215fe5f27f532d4e7edbac4b6a5e09e1ef3a08084a904621"]
    assert data["fbc"] == "fb.1.1554763741205.AbCdEf"  # never hashed


def test_meta_normalises_city_state_zip_and_names_before_hashing():
    lead = {"lead_id": "L4", "last_name": "O'Brien-Smith", "country": "US",
            "attributes": {"city": "Menlo Park", "state": "CA", "zip": "94025-1234"}}  # fmt: skip
    data = meta.user_data(lead, {"name": "lead_id", "value": "123456789012345"})
    assert data["ln"] == [meta.sha256("obriensmith")]
    assert data["ct"] == [meta.sha256("menlopark")]
    assert data["st"] == [meta.sha256("ca")]
    assert data["zp"] == [meta.sha256("94025")]
    assert data["external_id"] == [meta.sha256("L4")]
    assert data["lead_id"] == 123456789012345  # Meta's own lead id, unhashed


def test_google_conversion_date_time_carries_the_offset():
    assert date_time("2026-11-29T10:15:30.123Z") == "2026-11-29 10:15:30+00:00"
    assert date_time("2026-11-29T10:15:30Z", "-08:00") == "2026-11-29 02:15:30-08:00"


def test_a_bad_configuration_names_file_line_and_field():
    text = "platforms:\n  google-ads:\n    enabled: true\n    stages:\n      sql: {conversion_action: '1'}\n"
    with pytest.raises(ConversionConfigInvalid) as caught:
        load_conversions(text, "conversions.yaml")
    assert any(p.startswith("conversions.yaml:5: platforms.google-ads.stages.sql") for p in caught.value.problems)


def test_the_shipped_configurations_load_and_only_the_local_one_is_on():
    assert load_conversions_file("infra/conversions/default.yaml").active() == []
    local = load_conversions_file("infra/local/conversions.yaml")
    assert [p.name for p in local.active()] == ["google-ads", "meta", "baidu", "tencent"]
