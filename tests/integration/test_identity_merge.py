"""One person is one lead: merges across sources, newer values, conflicts, touches and erasure."""

from __future__ import annotations


def test_second_submission_merges_fills_empty_fields_and_newer_values_win(api):
    # Given a lead from a form
    first = api.post_form("website", {"email": "sam@harbor.dev", "first_name": "Sam", "company": "Harbor"})
    # When the same person arrives through the generic webhook with more, and newer, details
    second = api.post_generic(
        {
            "email": "SAM@harbor.dev",
            "phone": "+1 212 555 0199",
            "company": "Harbor Inc",
            "job_title": "CTO",
            "utm_source": "linkedin",
            "utm_campaign": "q4",
        },
        "msg_merge",
    )
    # Then it is the same lead
    assert second.json["leads"][0] == {"lead_id": first.json["lead_id"], "status": "merged"}
    lead = api.get_lead_by_email("sam@harbor.dev").json
    assert lead["phone"] == "+12125550199"
    assert lead["company"] == "Harbor Inc"
    assert lead["job_title"] == "CTO"
    assert lead["first_name"] == "Sam"
    assert lead["touches"]["count"] == 2
    assert lead["touches"]["latest"]["source"] == "generic"
    # first touch from the form, last touch from the campaign touch
    assert lead["attribution"]["first_touch"]["source"] == "form:website"
    assert lead["attribution"]["last_touch"]["source"] == "generic"
    assert lead["attribution"]["last_touch"]["utm_campaign"] == "q4"
    # And the phone is now an identity of the same lead
    third = api.post_form("website", {"phone": "(212) 555-0199", "country": "US"})
    assert third.json == {"lead_id": first.json["lead_id"], "status": "merged"}


def test_direct_touch_does_not_replace_last_touch(api):
    api.post_form("website", {"email": "ali@dune.dev", "utm_source": "google", "utm_medium": "cpc"})
    api.post_form("website", {"email": "ali@dune.dev", "message": "direct visit"})
    lead = api.get_lead_by_email("ali@dune.dev").json
    assert lead["attribution"]["last_touch"]["utm_source"] == "google"
    assert lead["touches"]["count"] == 2
    assert lead["touches"]["latest"]["source"] == "form:website"


def test_older_submission_does_not_overwrite_newer_values(api):
    api.post_generic({"email": "old@new.dev", "company": "NewCo", "submitted_at": "2026-11-20T10:00:00Z"}, "m1")
    api.post_generic(
        {"email": "old@new.dev", "company": "OldCo", "job_title": "CEO", "submitted_at": "2026-11-01T10:00:00Z"}, "m2"
    )
    lead = api.get_lead_by_email("old@new.dev").json
    assert lead["company"] == "NewCo"  # the late redelivery of an older event loses
    assert lead["job_title"] == "CEO"  # but still fills what was empty


def test_email_and_phone_of_two_different_leads_is_a_conflict_not_a_merge(api):
    # Given two known people
    a = api.post_form("website", {"email": "ann@one.dev"}).json["lead_id"]
    b = api.post_form("website", {"phone": "+14155550100"}).json["lead_id"]
    # When a submission carries Ann's email and Bob's phone
    reply = api.post_form("website", {"email": "ann@one.dev", "phone": "+14155550100"})
    # Then it goes to the lead of the stronger key (email) and nothing is merged
    assert reply.json == {"lead_id": a, "status": "merged"}
    ann = api.request("GET", f"/v1/leads/{a}").json
    bob = api.request("GET", f"/v1/leads/{b}").json
    assert ann["phone"] is None
    assert ann["identity_conflicts"][0]["key"] == "phone"
    assert ann["identity_conflicts"][0]["lead_id"] == b
    assert bob["identity_conflicts"][0]["lead_id"] == a
    assert bob["email"] is None
    # and the phone still finds Bob
    assert api.post_form("website", {"phone": "+1 415 555 0100"}).json["lead_id"] == b


def test_erasure_removes_the_lead_its_touches_and_identity_keys(api, aws):
    from leadflow.config import settings

    lead_id = api.post_form("website", {"email": "del@gone.dev", "phone": "+14155550111"}).json["lead_id"]
    api.post_generic({"email": "del@gone.dev", "first_name": "Del"}, "msg_del")
    other = api.post_form("website", {"email": "keep@stay.dev"}).json["lead_id"]
    api.post_form("website", {"email": "keep@stay.dev", "phone": "+14155550111"})  # conflict twin on both
    # When the operator erases the lead
    reply = api.request("DELETE", f"/v1/leads/{lead_id}")
    assert reply.status == 204
    # Then every trace of the person is gone
    assert api.request("GET", f"/v1/leads/{lead_id}").status == 404
    assert api.get_lead_by_email("del@gone.dev").status == 404
    items = aws.scan(TableName=settings().table_name)["Items"]
    dump = repr(items)
    assert "del@gone.dev" not in dump and "+14155550111" not in dump and lead_id not in dump
    assert "identity_conflicts" not in api.request("GET", f"/v1/leads/{other}").json
    # And a second erasure says 404; a replay of an erased delivery brings nothing back
    assert api.request("DELETE", f"/v1/leads/{lead_id}").status == 404
    replay = api.post_generic({"email": "del@gone.dev"}, "msg_del")
    assert replay.json["leads"] == [{"lead_id": None, "status": "erased"}]
    assert api.get_lead_by_email("del@gone.dev").status == 404
    # while the same person arriving again (a new delivery) is a new lead
    again = api.post_generic({"email": "del@gone.dev"}, "msg_del_again")
    assert again.json["leads"][0]["status"] == "created"
    assert again.json["leads"][0]["lead_id"] != lead_id


def test_get_by_email_normalises_and_404s(api):
    api.post_form("website", {"email": "find@me.dev"})
    assert api.get_lead_by_email("  FIND@me.dev ").json["email"] == "find@me.dev"
    assert api.get_lead_by_email("nobody@me.dev").status == 404
    assert api.request("GET", "/v1/leads?email=bad").status == 422
    assert api.request("GET", "/v1/leads/does-not-exist").status == 404


def test_health(api):
    reply = api.request("GET", "/health")
    assert (reply.status, reply.json) == (200, {"status": "ok"})
