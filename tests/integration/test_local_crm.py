"""The local CRM (leadflow_local.local_crm) speaks HubSpot's contacts API over real HTTP."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request

import pytest

from leadflow_local.local_crm import LocalCrm
from tests.support.signing import dev_secret

TOKEN = dev_secret("crm/hubspot")["access_token"]
UPSERT = "/crm/v3/objects/contacts/batch/upsert"


class Reply:
    def __init__(self, status: int, headers, raw: bytes):
        self.status, self.headers = status, headers
        self.json = json.loads(raw) if raw else None


def call(crm: LocalCrm, method: str, path: str, body=None, token: str | None = TOKEN) -> Reply:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(crm.url + path, data=data, method=method)
    request.add_header("content-type", "application/json")
    if token is not None:
        request.add_header("authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return Reply(response.status, response.headers, response.read())
    except urllib.error.HTTPError as error:
        return Reply(error.code, error.headers, error.read())


def upsert(crm: LocalCrm, *records: tuple[str, dict], traces: list[str] | None = None) -> Reply:
    inputs = [
        {"idProperty": "email", "id": email, "properties": props, "objectWriteTraceId": (traces or [])[i]}
        if traces
        else {"idProperty": "email", "id": email, "properties": props}
        for i, (email, props) in enumerate(records)
    ]
    return call(crm, "POST", UPSERT, {"inputs": inputs})


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def crm():
    server = LocalCrm(port=0).start()
    yield server
    server.stop()


def test_upsert_creates_then_updates_the_same_contact(crm):
    # Given no contact for ada@example.com
    # When she is upserted twice with different properties
    first = upsert(crm, ("ada@example.com", {"firstname": "Ada", "lifecyclestage": "lead"}), traces=["lead-1#1"])
    second = upsert(crm, ("ada@example.com", {"lastname": "Lovelace"}), traces=["lead-1#2"])
    # Then the first call creates her and the second updates the same record
    assert first.status == 200 and second.status == 200
    created, updated = first.json["results"][0], second.json["results"][0]
    assert first.json["status"] == "COMPLETE" and "startedAt" in first.json and "completedAt" in first.json
    assert created["new"] is True and updated["new"] is False
    assert created["id"] == updated["id"] == created["properties"]["hs_object_id"]
    assert created["objectWriteTraceId"] == "lead-1#1"
    assert created["archived"] is False and created["createdAt"] and created["updatedAt"]
    for name in ("email", "createdate", "lastmodifieddate", "hs_object_id", "firstname"):
        assert name in created["properties"]
    assert "errors" not in first.json
    # And the CRM holds one contact with both writes
    [contact] = crm.contacts()
    assert contact["properties"]["firstname"] == "Ada"
    assert contact["properties"]["lastname"] == "Lovelace"
    assert contact["properties"]["lifecyclestage"] == "lead"


def test_email_is_matched_case_insensitively(crm):
    # Given a contact upserted with a mixed-case email
    made = upsert(crm, ("Grace.Hopper@Navy.MIL", {"firstname": "Grace"})).json["results"][0]
    # When the same address arrives in another case
    again = upsert(crm, ("grace.hopper@navy.mil", {"company": "Navy"})).json["results"][0]
    # Then it is the same contact, stored lower-cased
    assert again["new"] is False and again["id"] == made["id"]
    assert made["properties"]["email"] == "grace.hopper@navy.mil"
    assert len(crm.contacts()) == 1
    # And reading by email works in any case
    assert call(crm, "GET", "/crm/v3/objects/contacts/GRACE.HOPPER@navy.mil?idProperty=email").status == 200


def test_more_than_100_inputs_is_refused_whole(crm):
    # Given a batch of 101 valid inputs
    records = [(f"p{i}@example.com", {}) for i in range(101)]
    # When it is sent
    reply = upsert(crm, *records)
    # Then HubSpot's 400 error body comes back and nothing is written
    assert reply.status == 400
    assert reply.json["status"] == "error"
    assert reply.json["category"] == "VALIDATION_ERROR"
    assert reply.json["correlationId"] and reply.json["message"]
    assert crm.contacts() == []
    # While exactly 100 are accepted
    assert upsert(crm, *records[:100]).status == 200


def test_invalid_email_fails_only_its_own_record(crm):
    # Given a batch with one invalid email between two good ones
    reply = upsert(
        crm,
        ("good.one@example.com", {}),
        ("not-an-email", {"firstname": "Bad"}),
        ("good.two@example.com", {}),
        traces=["t-1", "t-2", "t-3"],
    )
    # Then the answer is a multi-status with the failure tied to its trace id
    assert reply.status == 207
    assert reply.json["numErrors"] == 1
    [error] = reply.json["errors"]
    assert error["status"] == "error" and error["category"] == "VALIDATION_ERROR"
    assert error["context"]["objectWriteTraceId"] == ["t-2"]
    assert error["errors"][0]["code"] == "INVALID_EMAIL"
    # And the others were written
    assert sorted(r["objectWriteTraceId"] for r in reply.json["results"]) == ["t-1", "t-3"]
    assert sorted(c["properties"]["email"] for c in crm.contacts()) == ["good.one@example.com", "good.two@example.com"]


def test_get_by_email_and_by_id_and_404(crm):
    # Given one contact
    made = upsert(crm, ("lin@example.com", {"firstname": "Lin"})).json["results"][0]
    # When it is read by email and by id
    by_email = call(crm, "GET", "/crm/v3/objects/contacts/lin@example.com?idProperty=email")
    by_id = call(crm, "GET", f"/crm/v3/objects/contacts/{made['id']}?properties=firstname,lifecyclestage")
    # Then both return it
    assert by_email.status == 200 and by_email.json["id"] == made["id"]
    assert by_email.json["properties"]["firstname"] == "Lin"
    assert by_id.status == 200 and by_id.json["properties"]["firstname"] == "Lin"
    assert by_id.json["properties"]["lifecyclestage"] is None  # asked for, never set
    # And an unknown email or id is a 404 with HubSpot's error body
    for path in ("/crm/v3/objects/contacts/nobody@example.com?idProperty=email", "/crm/v3/objects/contacts/99999"):
        missing = call(crm, "GET", path)
        assert missing.status == 404
        assert missing.json["status"] == "error" and missing.json["category"] == "OBJECT_NOT_FOUND"
        assert missing.json["correlationId"]


def test_list_pages_with_after(crm):
    # Given 25 contacts
    upsert(crm, *[(f"c{i:02d}@example.com", {"firstname": f"C{i}"}) for i in range(25)])
    # When they are listed 10 at a time following paging.next.after
    seen, after, pages = [], None, 0
    while True:
        reply = call(crm, "GET", "/crm/v3/objects/contacts?limit=10" + (f"&after={after}" if after else ""))
        assert reply.status == 200
        seen += [r["properties"]["email"] for r in reply.json["results"]]
        pages += 1
        if "paging" not in reply.json:
            break
        after = reply.json["paging"]["next"]["after"]
    # Then every contact is seen once, in three pages
    assert pages == 3
    assert sorted(seen) == sorted(f"c{i:02d}@example.com" for i in range(25))
    assert len(set(seen)) == 25
    # And a limit above 100 is refused
    assert call(crm, "GET", "/crm/v3/objects/contacts?limit=101").status == 400


def test_requests_without_the_dev_token_get_401(crm):
    # When a request carries no token, or the wrong one
    for token in (None, "pat-na1-not-the-dev-token"):
        reply = upsert_with_token(crm, token)
        # Then HubSpot's 401 body comes back and nothing is written
        assert reply.status == 401
        assert reply.json["status"] == "error"
        assert reply.json["category"] == "INVALID_AUTHENTICATION"
    assert crm.contacts() == []


def upsert_with_token(crm: LocalCrm, token: str | None) -> Reply:
    body = {"inputs": [{"idProperty": "email", "id": "x@example.com", "properties": {}}]}
    return call(crm, "POST", UPSERT, body, token=token)


def test_the_101st_request_in_ten_seconds_gets_hubspots_429():
    # Given a CRM with HubSpot's 100 requests / 10 s window and a clock the test controls
    clock = FakeClock()
    crm = LocalCrm(port=0, clock=clock).start()
    try:
        # When 100 requests are made within the window
        replies = [call(crm, "GET", "/crm/v3/objects/contacts?limit=1") for _ in range(100)]
        # Then all succeed, and the headers count down
        assert {r.status for r in replies} == {200}
        assert replies[0].headers["X-HubSpot-RateLimit-Max"] == "100"
        assert replies[0].headers["X-HubSpot-RateLimit-Interval-Milliseconds"] == "10000"
        assert replies[0].headers["X-HubSpot-RateLimit-Remaining"] == "99"
        assert replies[-1].headers["X-HubSpot-RateLimit-Remaining"] == "0"
        assert replies[0].headers["X-HubSpot-RateLimit-Daily"] == "250000"
        assert replies[-1].headers["X-HubSpot-RateLimit-Daily-Remaining"] == str(250000 - 100)
        # And the 101st, 9.9 s later, is refused with HubSpot's body and headers
        clock.now += 9.9
        refused = call(crm, "GET", "/crm/v3/objects/contacts?limit=1")
        assert refused.status == 429
        body = refused.json
        assert body["status"] == "error"
        assert body["message"] == "You have reached your ten_secondly_rolling limit."
        assert body["errorType"] == "RATE_LIMIT"
        assert body["policyName"] == "TEN_SECONDLY_ROLLING"
        assert body["correlationId"] and body["requestId"]
        assert refused.headers["X-HubSpot-RateLimit-Remaining"] == "0"
        assert refused.headers["X-HubSpot-RateLimit-Max"] == "100"
        # And once the window has rolled past the first requests, calls succeed again
        clock.now += 0.2
        assert call(crm, "GET", "/crm/v3/objects/contacts?limit=1").status == 200
    finally:
        crm.stop()


def test_injected_latency_5xx_and_429_behave_as_configured(crm):
    # Given 150 ms of latency injected through the control API
    control = call(crm, "POST", "/__faults", {"latency_ms": 150}, token=None)
    assert control.status == 200 and control.json["latency_ms"] == 150
    started = time.perf_counter()
    assert call(crm, "GET", "/crm/v3/objects/contacts").status == 200
    # Then the answer is delayed by it
    assert time.perf_counter() - started >= 0.15
    assert call(crm, "DELETE", "/__faults", token=None).status == 200

    # Given the next two requests set to fail
    crm.set_faults(fail_next=2, fail_status=502)
    # Then exactly two 502s come back, and the failed upserts wrote nothing
    statuses = [upsert(crm, ("eve@example.com", {})).status for _ in range(3)]
    assert statuses == [502, 502, 200]
    assert [c["properties"]["email"] for c in crm.contacts()] == ["eve@example.com"]

    # Given a 5xx rate of 1 (always) then 0 (never)
    crm.set_faults(status_5xx_rate=1.0)
    assert call(crm, "GET", "/crm/v3/objects/contacts").status == 502  # fail_status is still 502
    crm.set_faults(status_5xx_rate=0.0)
    assert call(crm, "GET", "/crm/v3/objects/contacts").status == 200

    # Given every third request answered 429
    crm.clear_faults()
    crm.reset()
    call(crm, "POST", "/__faults", {"status_429_every": 3}, token=None)
    replies = [call(crm, "GET", "/crm/v3/objects/contacts") for _ in range(6)]
    # Then the 3rd and 6th are HubSpot's rolling-limit 429
    assert [r.status for r in replies] == [200, 200, 429, 200, 200, 429]
    assert replies[2].json["policyName"] == "TEN_SECONDLY_ROLLING"
    assert "X-HubSpot-RateLimit-Remaining" in replies[2].headers


def test_received_requests_can_be_inspected_without_the_token(crm):
    # Given one upsert
    upsert(crm, ("sam@example.com", {"firstname": "Sam"}), traces=["lead-9#1"])
    # When the control API lists what was received
    listed = call(crm, "GET", "/__requests", token=None).json["requests"]
    # Then the request is there with its body and answer, and the token is not
    [request] = listed
    assert request["method"] == "POST" and request["path"] == UPSERT and request["status"] == 200
    assert request["body"]["inputs"][0]["objectWriteTraceId"] == "lead-9#1"
    assert TOKEN not in json.dumps(listed)
    # And reset() forgets everything
    crm.reset()
    assert crm.contacts() == [] and crm.requests() == []
