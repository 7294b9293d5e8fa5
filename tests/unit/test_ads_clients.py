"""Each ad platform's answer classified per conversion: Google's per-row partial failures, Meta's whole-request
refusal resent event by event, Baidu's header status, Tencent's code; 429/5xx retried with Retry-After."""

from __future__ import annotations

from leadflow.ads import Call, Outcome, baidu, google_ads, meta, tencent
from leadflow.http import Response

KEYS = ("L1#sql", "L2#sql", "L3#sql", "L4#sql")


def row_error(index: int, code: str) -> dict:
    return {
        "errorCode": {"conversionUploadError": code},
        "message": "…",
        "location": {"fieldPathElements": [{"fieldName": "conversions", "index": index}]},
    }


def test_google_partial_failure_is_classified_row_by_row():
    # Given a 200 whose rows 1-3 failed with different codes
    call = Call("POST", "https://googleads/x", KEYS, {}, {})
    body = {
        "results": [{"gclid": "a"}, {}, {}, {}],
        "partialFailureError": {"code": 3, "details": [{"errors": [
            row_error(1, "EXPIRED_EVENT"), row_error(2, "ORDER_ID_ALREADY_IN_USE"), row_error(3, "CLICK_NOT_FOUND")]}]},
    }  # fmt: skip
    outcomes = google_ads.classify(call, Response(200, {}, body))
    # Then: sent, failed for good, already there (done), and retried later
    assert {k: o.status for k, o in outcomes.items()} == {
        "L1#sql": "done", "L2#sql": "failed", "L3#sql": "done", "L4#sql": "retry"}  # fmt: skip
    assert outcomes["L2#sql"].reason == "EXPIRED_EVENT"


def test_google_throttling_and_outages_are_retried_after_retry_after():
    call = Call("POST", "https://googleads/x", KEYS[:1], {}, {})
    for status in (429, 500, 503):
        [outcome] = google_ads.classify(call, Response(status, {"retry-after": "30"}, {})).values()
        assert outcome.status == "retry" and outcome.retry_after == 30.0


def test_meta_resends_events_alone_when_one_refuses_the_whole_request():
    # Given Meta refuses any request that carries the event of L2 (permanent 400)
    call = Call(
        "POST", "https://graph/x", KEYS[:3], {}, {"data": [{"event_id": k} for k in KEYS[:3]], "access_token": "t"}
    )
    sent: list[tuple[str, ...]] = []

    def send(one: Call, platform, classify) -> dict[str, Outcome]:
        sent.append(one.keys)
        bad = "L2#sql" in one.keys
        answer = Response(400, {}, {"error": {"code": 100}}) if bad else Response(200, {}, {"events_received": 1})
        return classify(one, answer)

    outcomes = meta.send_call(call, None, send, None)
    # Then only L2 fails; the others were resent alone and delivered
    assert sent == [KEYS[:3], ("L1#sql",), ("L2#sql",), ("L3#sql",)]
    assert {k: o.status for k, o in outcomes.items()} == {"L1#sql": "done", "L2#sql": "failed", "L3#sql": "done"}


def test_meta_transient_codes_and_token_errors_are_retried():
    call = Call("POST", "https://graph/x", KEYS[:1], {}, {})
    for code in (2, 4, 17, 190, 613):
        [outcome] = meta.classify(call, Response(400, {}, {"error": {"code": code}})).values()
        assert outcome.status == "retry", code


def test_baidu_and_tencent_read_their_status_codes():
    call = Call("POST", "https://x", KEYS[:2], {}, {})
    ok = baidu.classify(call, Response(200, {}, {"header": {"status": 0, "desc": "success"}}))
    refused = baidu.classify(call, Response(200, {}, {"header": {"status": 4, "errors": [{"code": 8}]}}))
    assert {o.status for o in ok.values()} == {"done"} and {o.reason for o in refused.values()} == {"status 4 8"}
    assert {o.status for o in tencent.classify(call, Response(200, {}, {"code": 0})).values()} == {"done"}
    assert {o.status for o in tencent.classify(call, Response(200, {}, {"code": 11002})).values()} == {"failed"}
    assert {o.status for o in tencent.classify(call, Response(503, {}, None)).values()} == {"retry"}
