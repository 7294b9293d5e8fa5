"""Conversions out: a lead reaching a configured stage is reported to each ad platform whose click id its
attribution carries, exactly as the platform documents the request; 5xx/429 are retried, permanent errors
dead-lettered (and replayable), nothing is sent outside the window or without the click id, and a
redelivered stage change sends no second conversion. Real HTTP to the local platform stand-ins."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta

import pytest

from leadflow import cli
from leadflow.services.leads import set_stage
from leadflow.store.models import LEAD_SK, LeadItem, lead_pk
from tests.support.conversions import conversion_history, conversion_rig
from tests.support.signing import SECRETS_FILE

pytestmark = pytest.mark.slow
SECRETS = json.loads(SECRETS_FILE.read_text())


@pytest.fixture
def rig(aws, monkeypatch, tmp_path):
    rig = conversion_rig(monkeypatch, tmp_path)
    yield rig
    rig.platforms.stop()


def capture(api, email: str, **tracking) -> str:
    reply = api.post_form("website", {"email": email, "first_name": "Mary", "country": "US", **tracking})
    assert reply.status == 202, reply.json
    return reply.json["lead_id"]


def to_sql(lead_id: str) -> None:
    set_stage(lead_id, "sql", "qualified by sales", "operator")


def test_google_ads_receives_exactly_its_documented_upload_for_an_sql(api, rig):
    # Given a lead from a Google click (gclid on the landing page)
    lead_id = capture(api, "g1@acme.example.org", page_url="https://www.example.com/?gclid=Cj0KCQiA-g1")
    rig.settle()
    assert rig.ads.received["google-ads"] == []  # `lead` is not a Google stage in this configuration
    # When sales moves it to sql
    to_sql(lead_id)
    rig.settle()
    # Then Google received one ClickConversion with the gclid, the action, the time with offset, the order id
    [request] = rig.ads.requests["google-ads"]
    assert request["partialFailure"] is True
    [row] = request["conversions"]
    stage_changed = LeadItem.get(lead_pk(lead_id), LEAD_SK).stage_changed_at
    assert row == {
        "gclid": "Cj0KCQiA-g1",
        "conversionAction": "customers/1234567890/conversionActions/555",
        "conversionDateTime": stage_changed[:10] + " " + stage_changed[11:19] + "+00:00",
        "orderId": f"{lead_id}#sql",
    }
    # with the developer token, the login customer id and an OAuth token exchanged from the refresh token
    call = [c for c in rig.platforms.calls if c.path.endswith(":uploadClickConversions")][0]
    assert call.headers["developer-token"] == SECRETS["ads/google"]["developer_token"]
    assert call.headers["login-customer-id"] == "1234567890"
    assert call.headers["authorization"].startswith("Bearer ya29.local-")
    assert [h["outcome"] for h in conversion_history(lead_id)] == ["sent"]


def test_meta_baidu_and_tencent_each_receive_their_documented_request(api, rig):
    # Given one lead carrying Meta's fbc/fbp, Baidu's bd_vid and Tencent's qz_gdt
    landing = "https://www.example.com/landing?bd_vid=BDV123&qz_gdt=QZ456"
    lead_id = capture(api, "John_Smith@gmail.com", phone="(650)555-1212", page_url=landing,
                      _fbc="fb.1.1554763741205.AbCdEf", _fbp="fb.1.1558571054389.1098115397")  # fmt: skip
    # When it is captured (stage lead) the lead conversions go out
    rig.settle()
    created = LeadItem.get(lead_pk(lead_id), LEAD_SK).created_at
    epoch = int(datetime.fromisoformat(created.replace("Z", "+00:00")).timestamp())
    [event] = rig.ads.received["meta"]
    assert event == {
        "event_name": "Lead",
        "event_time": epoch,
        "event_id": f"{lead_id}#lead",
        "action_source": "system_generated",
        "user_data": {
            "em": ["62a14e44f765419d10fea99367361a727c12365e2520f32218d505ed9aa0f62f"],
            "ph": ["e323ec626319ca94ee8bff2e4c87cf613be6ea19919ed1364124e16807ab3176"],
            "fn": ["6915771be1c5aa0c886870b6951b03d7eafc121fea0e80a5ea83beb7c449f4ec"],
            "country": ["79adb2a2fce5c6ba215fe5f27f532d4e7edbac4b6a5e09e1ef3a08084a904621"],
            "external_id": [__import__("hashlib").sha256(lead_id.encode()).hexdigest()],
            "fbc": "fb.1.1554763741205.AbCdEf",
            "fbp": "fb.1.1558571054389.1098115397",
        },
        "custom_data": {"event_source": "crm", "lead_event_source": "LeadFlowTest"},
    }
    assert rig.ads.requests["meta"][0]["access_token"] == SECRETS["ads/meta"]["access_token"]
    assert rig.ads.received["baidu"] == [{"logidUrl": landing, "newType": 3, "convertTime": epoch}]
    assert rig.ads.requests["baidu"][0]["token"] == SECRETS["ads/baidu"]["token"]
    [action] = rig.ads.received["tencent"]
    assert action == {"outer_action_id": f"{lead_id}#lead", "action_time": epoch, "action_type": "RESERVATION",
                      "trace": {"click_id": "QZ456"}, "url": landing}  # fmt: skip
    [tencent_call] = [c for c in rig.platforms.calls if c.path.endswith("/user_actions/add")]
    assert tencent_call.query["access_token"] == SECRETS["ads/tencent"]["access_token"]
    assert re.fullmatch(r"\d{10}", tencent_call.query["timestamp"]) and tencent_call.query["nonce"]
    assert rig.ads.received["google-ads"] == []  # no gclid: nothing for Google
    assert sorted(h["platform"] for h in conversion_history(lead_id)) == ["baidu", "meta", "tencent"]


def test_5xx_and_429_are_retried_until_the_conversion_is_sent_once(api, rig):
    # Given Google answers 503, then 429, then accepts
    rig.ads.fail("google-ads", 503)
    rig.ads.fail("google-ads", 429)
    lead_id = capture(api, "g2@acme.example.org", gclid="GCL-retry")
    to_sql(lead_id)
    rig.settle()
    # Then the conversion was tried three times and received once
    assert len(rig.ads.requests["google-ads"]) == 3
    assert [r["gclid"] for r in rig.ads.received["google-ads"]] == ["GCL-retry"]
    outcomes = [h["outcome"] for h in sorted(conversion_history(lead_id), key=lambda h: h["attempt"])]
    assert outcomes == ["retry", "retry", "sent"]


def test_a_permanent_row_error_is_dead_lettered_with_its_code_and_listed(api, rig, capsys):
    # Given a click Google no longer accepts (its upload answers EXPIRED_EVENT for that row)
    lead_id = capture(api, "g3@acme.example.org", gclid="EXPIRED-click")
    to_sql(lead_id)
    rig.settle()
    # Then it is dead-lettered with the code, on the timeline, and `leadflow dlq list` shows it
    [dead] = rig.dead_letters("google-ads")
    assert dead["lead_id"] == lead_id and dead["stage"] == "sql" and dead["failure_reason"] == "EXPIRED_EVENT"
    assert [h["outcome"] for h in conversion_history(lead_id)] == ["dead_letter"]
    args = ["--target", "google-ads", "--dlq-url", rig.dlq("google-ads"), "--queue-url", rig.queue("google-ads")]
    assert cli.main(["dlq", "list", *args]) == 0
    listed = capsys.readouterr().out
    assert lead_id in listed and "EXPIRED_EVENT" in listed and "1 failed conversion(s)" in listed


def test_a_dead_lettered_conversion_is_sent_once_after_a_replay(api, rig):
    # Given Meta refused an event for good (400), so it was dead-lettered
    rig.ads.fail("meta", 400)
    lead_id = capture(api, "m1@acme.example.org", _fbc="fb.1.1554763741205.Replay")
    rig.settle()
    assert rig.ads.received["meta"] == [] and len(rig.dead_letters("meta")) == 1
    # When the operator replays the platform's DLQ (twice, by mistake)
    args = ["--target", "meta", "--dlq-url", rig.dlq("meta"), "--queue-url", rig.queue("meta")]
    assert cli.main(["dlq", "replay", *args]) == 0
    rig.settle()
    assert cli.main(["dlq", "replay", *args]) == 0
    rig.settle()
    # Then Meta has the event exactly once and the DLQ is empty
    assert [e["event_id"] for e in rig.ads.received["meta"]] == [f"{lead_id}#lead"]
    assert rig.dead_letters("meta") == []


def test_nothing_is_sent_without_the_click_id_or_outside_the_window(api, rig):
    # Given a lead without any click id, and one whose gclid click was 100 days before it became an SQL
    plain = capture(api, "plain@acme.example.org", utm_source="newsletter")
    old = capture(api, "old@acme.example.org", gclid="GCL-old")
    item = LeadItem.get(lead_pk(old), LEAD_SK)
    long_ago = (datetime.now(UTC) - timedelta(days=100)).isoformat().replace("+00:00", "Z")
    item.attribution = {**item.attribution.as_dict(), "first_touch": {**item.attribution["first_touch"],
                        "captured_at": long_ago}, "last_touch": {**item.attribution["last_touch"],
                        "captured_at": long_ago}}  # fmt: skip
    item.save()
    # When both become SQLs
    to_sql(plain)
    to_sql(old)
    rig.settle()
    # Then no platform received anything
    assert all(rig.ads.requests[p] == [] for p in ("google-ads", "meta", "baidu", "tencent"))


def test_a_redelivered_stage_change_sends_no_second_conversion(api, rig):
    # Given a Google lead moved to sql, whose stream record the router then receives a second time
    lead_id = capture(api, "g4@acme.example.org", gclid="GCL-once")
    to_sql(lead_id)
    records: list[dict] = []
    contexts: list = []
    original = rig.router._handler

    def keep(event, context):
        records.extend(event["Records"])
        contexts.append(context)
        return original(event, context)

    rig.router._handler = keep
    rig.settle()
    assert records
    original({"Records": records}, contexts[0])  # the same records again: a retried or bisected stream batch
    assert rig.pending(rig.queue("google-ads")) >= 1  # a second message was queued for the same conversion
    rig.settle()
    # Then Google received the sql conversion once, though two messages were queued for it
    assert [r["orderId"] for r in rig.ads.received["google-ads"]] == [f"{lead_id}#sql"]
    assert len(rig.ads.requests["google-ads"]) == 1


def test_a_meta_event_that_waited_past_seven_days_is_skipped_not_sent(api, rig):
    # Given a lead from a Meta click 9 days ago whose sql conversion (8 days ago) waited in the queue since
    lead_id = capture(api, "m2@acme.example.org", _fbc="fb.1.1554763741205.Late")
    rig.settle()
    rig.ads.reset()
    clicked = (datetime.now(UTC) - timedelta(days=9)).isoformat().replace("+00:00", "Z")
    item = LeadItem.get(lead_pk(lead_id), LEAD_SK)
    touch = {**item.attribution["last_touch"], "captured_at": clicked}
    item.attribution = {**item.attribution.as_dict(), "first_touch": touch, "last_touch": touch}
    item.save()
    late = (datetime.now(UTC) - timedelta(days=8)).isoformat().replace("+00:00", "Z")
    ref = {"lead_id": lead_id, "stage": "sql", "at": late, "claim": "late-claim"}
    rig.sqs.send_message(QueueUrl=rig.queue("meta"),
                         MessageBody=json.dumps({"platform": "meta", "conversions": [ref], "attempt": 0}))  # fmt: skip
    # When the Meta function drains it
    rig.settle()
    # Then Meta receives nothing and the timeline says why
    assert rig.ads.requests["meta"] == []
    [skipped] = [h for h in conversion_history(lead_id) if h["outcome"] == "skipped"]
    assert skipped["stage"] == "sql" and "older than 7 days" in skipped["reason"]
