"""CRM clients without a network: configuration validation, request building, answer classification,
the token bucket and the backoff (the HTTP behaviour is shown in tests/integration/test_crm_push_*.py)."""

from __future__ import annotations

import pytest

from leadflow.crm import Call, hubspot, salesforce
from leadflow.crm.config import CrmConfigInvalid, map_lead, parse
from leadflow.crm.ratelimit import TokenBucket
from leadflow.http import Response, retry_after_seconds
from leadflow.services.push import backoff_seconds, needs_push

LEAD = {"lead_id": "L1", "email": "A@Example.org", "first_name": "Ada", "lifecycle_stage": "mql", "version": 3,
        "owner": {"id": "77"}, "attribution": {"first_touch": {"source": "form:website"}}, "crm": {}}  # fmt: skip


def test_a_bad_mapping_is_refused_at_load_with_errors_naming_each_field():
    document = {
        "targets": {
            "hubspot": {
                "fields": {
                    "email": "email",
                    "job_title": {"property": "jobtitle", "transform": "shout"},
                    "favourite_colour": "colour",
                }
            },  # fmt: skip
            "salesforce": {"batch_size": 500},
        }
    }
    with pytest.raises(CrmConfigInvalid) as raised:
        parse(document)
    problems = " | ".join(raised.value.problems)
    assert "targets.hubspot.fields.job_title.transform" in problems
    assert "targets.salesforce.batch_size" in problems
    # and the semantic check (a field the lead does not have) names its field too, once the schema passes
    with pytest.raises(CrmConfigInvalid, match=r"targets.hubspot.fields.favourite_colour: is not a lead field"):
        parse({"targets": {"hubspot": {"fields": {"email": "email", "favourite_colour": "colour"}}}})
    with pytest.raises(CrmConfigInvalid, match=r"targets.hubspot.fields.email"):
        parse({"targets": {"hubspot": {"fields": {"first_name": "firstname"}}}})


def test_crm_owned_fields_are_sent_on_the_first_push_only():
    target = parse({}).targets["hubspot"]
    first = map_lead(LEAD, target, first_push=True)
    later = map_lead(LEAD, target, first_push=False)
    assert first["leadflow_source"] == "form:website" and "leadflow_source" not in later
    assert later["email"] == "a@example.org" and later["hubspot_owner_id"] == "77"
    assert later["lifecyclestage"] == "marketingqualifiedlead"


def test_hubspot_batches_hold_at_most_100_inputs_and_never_one_email_twice(monkeypatch):
    target = parse({}).targets["hubspot"]
    items = [(f"L{i}#1", {**LEAD, "lead_id": f"L{i}", "email": f"p{i}@example.org"}, True) for i in range(150)]
    items.append(("L0b#1", {**LEAD, "lead_id": "L0b", "email": "p0@example.org"}, True))
    items.append(("L-none#1", {**LEAD, "lead_id": "L-none", "email": None}, True))
    calls, refused = hubspot.build_calls(items, target)
    assert [len(c.keys) for c in calls] == [100, 51]
    assert "L0#1" in calls[0].keys and "L0b#1" in calls[1].keys
    assert refused["L-none#1"].status == "failed"


def test_hubspot_answers_are_classified_per_record():
    call = Call("POST", "http://crm/x", ("a#1", "b#1", "c#1"))
    body = {
        "results": [{"id": "11", "objectWriteTraceId": "a#1"}],
        "errors": [{"category": "VALIDATION_ERROR", "errors": [{"code": "INVALID_EMAIL"}],
                    "context": {"objectWriteTraceId": ["b#1"]}}],
    }  # fmt: skip
    outcomes = hubspot.classify(call, Response(207, {}, body))
    assert outcomes["a#1"].status == "done" and outcomes["a#1"].crm_id == "11"
    assert outcomes["b#1"].status == "failed" and outcomes["b#1"].reason == "VALIDATION_ERROR INVALID_EMAIL"
    assert outcomes["c#1"].status == "retry"  # HubSpot said nothing about it
    daily = hubspot.classify(call, Response(429, {}, {"policyName": "DAILY"}))
    assert {o.status for o in daily.values()} == {"retry"} and daily["a#1"].retry_after == 3600
    told = hubspot.classify(call, Response(429, {"retry-after": "7"}, {"policyName": "TEN_SECONDLY_ROLLING"}))
    assert told["a#1"].retry_after == 7
    assert {o.status for o in hubspot.classify(call, Response(502, {}, None)).values()} == {"retry"}
    assert {o.status for o in hubspot.classify(call, Response(400, {}, {})).values()} == {"failed"}


def test_salesforce_results_are_classified_per_record_in_order():
    call = Call("PATCH", "/x", ("a#1", "b#1", "c#1"))
    body = [
        {"id": "00Q1", "success": True, "created": True, "errors": []},
        {"success": False, "errors": [{"statusCode": "UNABLE_TO_LOCK_ROW", "fields": []}]},
        {"success": False, "errors": [{"statusCode": "REQUIRED_FIELD_MISSING", "fields": ["LastName"]}]},
    ]
    outcomes = salesforce.classify(call, Response(200, {}, body))
    assert [outcomes[k].status for k in call.keys] == ["done", "retry", "failed"]
    assert outcomes["c#1"].reason == "REQUIRED_FIELD_MISSING (LastName)"
    expired = salesforce.classify(call, Response(401, {}, [{"errorCode": "INVALID_SESSION_ID"}]))
    assert "INVALID_SESSION_ID" in expired["a#1"].reason and expired["a#1"].status == "retry"
    limited = salesforce.classify(call, Response(403, {}, [{"errorCode": "REQUEST_LIMIT_EXCEEDED"}]))
    assert limited["a#1"].status == "retry" and limited["a#1"].retry_after


def test_the_token_bucket_never_lets_more_than_the_limit_through_any_window():
    now = [0.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    bucket = TokenBucket(100, 10.0, margin=0.25, clock=lambda: now[0], sleep=sleep)
    times = []
    for _ in range(250):
        bucket.take()
        times.append(now[0])
        now[0] += 0.01
    # any 10-second window holds at most 100 calls, and the bucket keeps sending at the limit
    assert max(sum(1 for t in times if start <= t < start + 10.0) for start in times) == 100
    assert times[-1] < 2 * 10.25 + 2


def test_backoff_has_full_jitter_and_honours_retry_after():
    waits = {backoff_seconds(3, None, base=2.0) for _ in range(200)}
    assert min(waits) >= 0 and max(waits) <= 16 and len(waits) > 5
    assert all(backoff_seconds(0, 30.0, base=2.0) >= 30 for _ in range(20))
    assert backoff_seconds(20, None, base=2.0) <= 900
    assert retry_after_seconds("120") == 120 and retry_after_seconds(None) is None


def test_only_a_new_qualification_or_a_watched_change_needs_a_push():
    config = parse({})
    target = config.targets["hubspot"]
    old = {**LEAD, "lifecycle_stage": "lead", "version": 2}
    assert needs_push(old, LEAD, target, config.push_stages)  # it just became an MQL
    assert not needs_push(LEAD, {**LEAD, "journey": {"status": "running"}, "version": 4}, target, config.push_stages)
    assert needs_push(LEAD, {**LEAD, "owner": {"id": "78"}, "version": 4}, target, config.push_stages)
    written_back = {**LEAD, "crm": {"hubspot": {"id": "11", "version": 3}}}
    assert not needs_push(LEAD, written_back, target, config.push_stages)  # the write-back's own record
    assert not needs_push(None, {**LEAD, "lifecycle_stage": "lead"}, target, config.push_stages)
    assert not needs_push(old, {**LEAD, "erasing": "2026-11-29T00:00:00Z"}, target, config.push_stages)


def test_erasure_calls_carry_ids_only_and_a_record_already_gone_counts_as_deleted(monkeypatch):
    from leadflow.crm import Erasure, webhook

    monkeypatch.setenv("LEADFLOW_HUBSPOT_API_URL", "https://hubspot.invalid")
    config = parse({})
    # HubSpot: a GDPR delete by contact id (never by email); without a known id there is nothing to send
    calls, refused = hubspot.build_erase_calls([Erasure("L1", "1001"), Erasure("L2")], config.targets["hubspot"])
    assert [(c.method, c.url, c.json_body) for c in calls] == [
        ("POST", "https://hubspot.invalid/crm/v3/objects/contacts/gdpr-delete", {"objectId": "1001"})
    ]
    assert refused["L2#erase"].status == "failed"
    # Salesforce: by record id, or by the external id (the lead id) when the id was never written back
    calls, _ = salesforce.build_erase_calls([Erasure("L1", "00Q1"), Erasure("L2")], config.targets["salesforce"])
    assert [c.url for c in calls] == [
        "/services/data/v60.0/sobjects/Lead/00Q1",
        "/services/data/v60.0/sobjects/Lead/LeadFlow_Id__c/L2",
    ]
    call = Call("DELETE", "/x", ("L1#erase",))
    for module in (hubspot, salesforce, webhook):
        assert module.classify_erase(call, Response(204, {}, None, 1.0))["L1#erase"].status == "done"
        assert module.classify_erase(call, Response(503, {}, None, 1.0))["L1#erase"].status == "retry"
    for module in (hubspot, salesforce):  # gone already: done
        assert module.classify_erase(call, Response(404, {}, None, 1.0))["L1#erase"].status == "done"


def test_a_target_configured_not_to_erase_gets_no_erasure():
    from leadflow.services.push import erasure_targets

    config = parse({"targets": {"salesforce": {"erase": False}}})
    assert erasure_targets({"hubspot": "1001", "salesforce": "00Q1", "webhook": None}, config) == {
        "hubspot": "1001",
        "webhook": None,
    }
