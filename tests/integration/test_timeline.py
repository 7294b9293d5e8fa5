"""`GET /v1/leads/{lead_id}/timeline`: every touch, event and history entry of a lead, newest first, in pages
an operator can walk without duplicates or gaps; a bad cursor is a 400, an unknown lead a 404; no PII."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

import pytest

from leadflow.domain.attribution import iso
from leadflow.store.models import EventItem, HistoryItem, TouchItem, event_sk, history_sk, lead_pk
from tests.support.api import Api

EMAIL, PHONE, FIRST, LAST = "tilda.timeline@acme-example.com", "+14155550177", "Tilda", "Timelinova"
START = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


def given_a_lead(api: Api) -> str:
    reply = api.post_form(
        "website",
        {
            "email": EMAIL,
            "phone": PHONE,
            "first_name": FIRST,
            "last_name": LAST,
            "utm_source": "google",
            "utm_campaign": "spring-launch",
            "gclid": "Cj0KCQ-timeline-gclid",
            "page_url": f"https://www.example.com/demo?utm_source=google&email={EMAIL}",
        },
    )
    assert reply.status == 202, reply.body
    return reply.json["lead_id"]


def capture_entries(api: Api, lead_id: str) -> list[dict]:
    """The timeline a capture leaves: its touch and the lead's first score (capture scores the fit)."""
    entries = api.request("GET", f"/v1/leads/{lead_id}/timeline").json["items"]
    assert sorted(e["kind"] for e in entries) == ["score", "touch"]
    return entries


def seed_history(lead_id: str, count: int) -> list[tuple[str, str]]:
    """`count` stored entries one minute apart, rotating touch / event / score / stage; (at, kind) of each."""
    written = []
    for i in range(count):
        at = iso(START + timedelta(minutes=i))
        common = {"lead_id": lead_id, "created_at": at}
        if i % 4 == 0:
            TouchItem(
                lead_pk(lead_id),
                f"TOUCH#{at}#t{i:03d}",
                entity="touch",
                source="linkedin",
                touch={"source": "linkedin", "utm_medium": "paid_social", "li_fat_id": f"li-{i}", "captured_at": at},
                submitted={"email": EMAIL, "first_name": FIRST},
                **common,
            ).save()
            written.append((at, "touch"))
        elif i % 4 == 1:
            EventItem(
                lead_pk(lead_id),
                event_sk(at, f"e{i:03d}"),
                entity="event",
                type="page_view",
                occurred_at=at,
                properties={"url": f"https://www.example.com/pricing?ref={i}"},
                source="website",
                **common,
            ).save()
            written.append((at, "event"))
        else:
            kind = "score" if i % 4 == 2 else "stage"
            detail = {"rule": "pricing_page", "total": i} if kind == "score" else {"from": "lead", "to": "mql"}
            HistoryItem(
                lead_pk(lead_id),
                history_sk(at, kind, f"h{i:03d}"),
                entity="history",
                kind=kind,
                at=at,
                detail=detail,
                source="scoring",
                **common,
            ).save()
            written.append((at, kind))
    return written


def walk(api: Api, lead_id: str, limit: int) -> list[dict]:
    pages, cursor = [], None
    while True:
        url = f"/v1/leads/{lead_id}/timeline?limit={limit}" + (f"&cursor={quote(cursor)}" if cursor else "")
        reply = api.request("GET", url)
        assert reply.status == 200, reply.body
        pages.append(reply.json["items"])
        assert len(reply.json["items"]) <= limit
        cursor = reply.json["next"]
        if cursor is None:
            return pages
        assert len(pages) < 50, "the cursor never ends"


@pytest.mark.parametrize("limit", [5, 1, 7])
def test_pages_cover_every_entry_once_newest_first(api, limit):
    # Given a lead captured by a form and 23 older touches, events, score and stage entries
    lead_id = given_a_lead(api)
    fresh = capture_entries(api, lead_id)
    written = seed_history(lead_id, 23)

    # When an operator walks the timeline `limit` entries at a time
    pages = walk(api, lead_id, limit)

    # Then there are full pages then the rest, and together they are every entry once, newest first
    entries = [entry for page in pages for entry in page]
    total = len(fresh) + 23
    assert [len(page) for page in pages] == [limit] * (total // limit) + ([total % limit] if total % limit else [])
    assert entries[: len(fresh)] == fresh  # the form's touch and first score, just now
    assert any(e["kind"] == "touch" and e["detail"]["source"] == "form:website" for e in fresh)
    assert [(e["at"], e["kind"]) for e in entries[len(fresh) :]] == sorted(written, reverse=True)
    assert all(a["at"] > b["at"] for a, b in zip(entries[len(fresh) - 1 :], entries[len(fresh) :], strict=False))
    # And each kind says what happened
    kinds = {e["kind"]: e["detail"] for e in entries[len(fresh) :]}
    assert kinds["event"]["type"] == "page_view"
    assert kinds["event"]["properties"]["url"] == "https://www.example.com/pricing"
    assert kinds["score"]["rule"] == "pricing_page"
    assert kinds["stage"] == {"from": "lead", "to": "mql", "source": "scoring"}
    assert kinds["touch"] == {"source": "linkedin", "utm_medium": "paid_social", "click_ids": ["li_fat_id"]}


def test_default_page_is_fifty_and_a_short_timeline_has_no_next(api):
    # Given a lead with 60 stored entries and another with just its form touch
    lead_id = given_a_lead(api)
    seed_history(lead_id, 60)
    other = api.post_form("website", {"email": "other.timeline@acme-example.com"}).json["lead_id"]

    # When both timelines are read without a limit
    first = api.request("GET", f"/v1/leads/{lead_id}/timeline").json
    short = api.request("GET", f"/v1/leads/{other}/timeline").json

    # Then the first page holds 50 entries and a cursor; the short one is complete
    assert len(first["items"]) == 50 and first["next"]
    assert sorted(e["kind"] for e in short["items"]) == ["score", "touch"] and short["next"] is None


def test_a_touch_in_the_timeline_carries_no_personal_data(api):
    # Given a lead whose form submission held an email, a phone, names and an email in the page URL
    lead_id = given_a_lead(api)

    # When its timeline is read
    reply = api.request("GET", f"/v1/leads/{lead_id}/timeline")

    # Then the touch says where it came from (campaign, click id by name), never who
    assert reply.status == 200
    (touch,) = [e for e in reply.json["items"] if e["kind"] == "touch"]
    assert touch["kind"] == "touch"
    assert touch["detail"] == {
        "source": "form:website",
        "utm_source": "google",
        "utm_campaign": "spring-launch",
        "click_ids": ["gclid"],
        "landing_page": "https://www.example.com/demo",
    }
    for secret in (EMAIL, PHONE, FIRST, LAST, "Cj0KCQ-timeline-gclid", "tilda"):
        assert secret.lower() not in reply.body.lower()


def _cursor(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


@pytest.mark.parametrize(
    "cursor",
    [
        "not-a-cursor!",
        "%%%",
        "eyJub3QiOiJqc29uIg",  # base64 of broken JSON
        _cursor([1, 2]),
        _cursor({"l": "LEAD", "p": {"TOUCH#": "TOUCH#2026-03-01T09:00:00.000Z#t000"}}),  # another lead's
        _cursor({"l": "SELF", "p": {"TOUCH#": "CONFLICT#EMAIL#x"}}),  # another item kind under the prefix
        _cursor({"l": "SELF", "p": {"LEAD": "LEAD"}}),
        _cursor({"l": "SELF", "p": {"EVENT#": 42}}),
        _cursor({"l": "SELF", "p": {"HIST#": "HIST#\u0000#x"}}),
        _cursor({"l": "SELF", "p": {"TOUCH#": "", "EVENT#": "", "HIST#": ""}}),
        "A" * 5000,
    ],
)
def test_a_malformed_or_forged_cursor_is_a_400(api, cursor):
    # Given a lead with a timeline
    lead_id = given_a_lead(api)
    seed_history(lead_id, 3)
    if "SELF" in _decoded(cursor):  # a cursor naming this very lead
        cursor = _cursor(json.loads(_decoded(cursor).replace("SELF", lead_id)))

    # When the timeline is asked for with a cursor the API never issued for it
    reply = api.request("GET", f"/v1/leads/{lead_id}/timeline?cursor={quote(cursor)}")

    # Then it is refused as a bad request, with a problem document
    assert reply.status == 400, reply.body
    assert reply.headers["content-type"] == "application/problem+json"
    assert reply.json["status"] == 400


def _decoded(cursor: str) -> str:
    try:
        return base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except ValueError:
        return ""


def test_a_cursor_of_one_lead_is_refused_for_another(api):
    # Given two leads, the first with more than a page of history
    first = given_a_lead(api)
    seed_history(first, 8)
    second = api.post_form("website", {"email": "second.timeline@acme-example.com"}).json["lead_id"]
    cursor = api.request("GET", f"/v1/leads/{first}/timeline?limit=3").json["next"]

    # When the first lead's cursor is used on the second lead
    reply = api.request("GET", f"/v1/leads/{second}/timeline?cursor={quote(cursor)}")

    # Then it is refused
    assert reply.status == 400


@pytest.mark.parametrize("limit", ["0", "101", "-1", "ten", "1.5"])
def test_a_limit_out_of_range_is_a_400(api, limit):
    lead_id = given_a_lead(api)
    reply = api.request("GET", f"/v1/leads/{lead_id}/timeline?limit={limit}")
    assert reply.status == 400 and reply.headers["content-type"] == "application/problem+json"


def test_unknown_and_erased_leads_are_404(api):
    # Given a lead that was erased, and an id that never existed
    erased = given_a_lead(api)
    assert api.request("DELETE", f"/v1/leads/{erased}").status == 204

    # When their timelines are asked for
    for lead_id in (erased, "00000000-0000-4000-8000-000000000000", "not-an-id"):
        reply = api.request("GET", f"/v1/leads/{lead_id}/timeline")

        # Then there is no such lead
        assert reply.status == 404, reply.body
        assert reply.headers["content-type"] == "application/problem+json"


def test_an_erasing_lead_is_404(api, aws):
    # Given a lead whose erasure has started (marked, not yet finished)
    lead_id = given_a_lead(api)
    from leadflow.store.models import LeadItem

    lead = LeadItem.get(lead_pk(lead_id), "LEAD")
    lead.update(actions=[LeadItem.erasing.set("2026-11-29T00:00:00.000Z")])

    # When its timeline is asked for / Then it is gone for readers
    assert api.request("GET", f"/v1/leads/{lead_id}/timeline").status == 404


def test_the_cli_prints_the_whole_timeline_without_personal_data(api, monkeypatch, capsys):
    # Given a lead with more than one page of history, and the CLI pointed at the API
    from leadflow import cli

    lead_id = given_a_lead(api)
    fresh = len(capture_entries(api, lead_id))
    written = seed_history(lead_id, 7)

    def through_api(method: str, url: str) -> tuple[int, str]:
        assert url.startswith("http://127.0.0.1:3000/")
        reply = api.request(method, url.removeprefix("http://127.0.0.1:3000"))
        return reply.status, reply.body

    monkeypatch.setattr(cli, "_request", through_api)
    capsys.readouterr()

    # When the operator prints it 3 entries a page, following every page
    code = cli.main(["leads", "timeline", lead_id, "--limit", "3", "--all"])

    # Then one line per entry, newest first, and no personal data
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert code == 0 and len(lines) == fresh + 7
    assert [line.split()[:2] for line in lines[fresh:]] == [[at, kind] for at, kind in sorted(written, reverse=True)]
    assert any("form:website" in line and "gclid" in line for line in lines[:fresh])
    for secret in (EMAIL, PHONE, FIRST, LAST, "Cj0KCQ-timeline-gclid"):
        assert secret not in out

    # When only the first page is asked for / Then it says how to go on
    cli.main(["leads", "timeline", lead_id, "--limit", "3"])
    first = capsys.readouterr().out.splitlines()
    assert len(first) == 4 and first[-1].startswith(f"more: leadflow leads timeline {lead_id} --cursor ")

    # When the lead does not exist / Then the problem is printed and the command fails
    assert cli.main(["leads", "timeline", "00000000-0000-4000-8000-000000000000"]) == 1


def test_a_cursor_resumes_after_entries_with_unusual_ids(api):
    # Given events whose ids are not plain ASCII (a sender's own ids), at the same instant
    lead_id = given_a_lead(api)
    fresh = [e["kind"] for e in capture_entries(api, lead_id)]
    at = iso(START)
    for event_id in ("évènement-1", "事件-2", "id with spaces-3"):
        EventItem(
            lead_pk(lead_id),
            event_sk(at, event_id),
            entity="event",
            lead_id=lead_id,
            type="email_open",
            occurred_at=at,
            created_at=at,
        ).save()

    # When the timeline is walked one entry at a time / Then every entry comes once
    entries = [e for page in walk(api, lead_id, 1) for e in page]
    assert [e["kind"] for e in entries] == [*fresh, "event", "event", "event"]
