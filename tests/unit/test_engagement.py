"""Engagement events on a lead (pure): parsing, the bounded summary, suppression, rescoring and its history."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from leadflow.domain import engagement as e
from leadflow.scoring_model import default_model

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
YEAR = timedelta(days=365)
HOT = {
    "lead_id": "00000000-0000-0000-0000-000000000001",
    "email": "grace@navy-labs.io",
    "job_title": "VP Engineering",
    "country": "US",
    "attributes": {"company_size": "1000", "industry": "software"},
    "lifecycle_stage": "lead",
    "consent": {"email": {"granted": True, "captured_at": "2026-11-01T00:00:00.000Z", "source": "form"}},
}


@pytest.fixture(scope="module")
def model():
    return default_model()


def _event(kind: str, minutes_ago: float = 0, **properties) -> e.Event:
    parsed = e.parse_event(
        0,
        {
            "type": kind,
            "lead_id": HOT["lead_id"],
            "occurred_at": (NOW - timedelta(minutes=minutes_ago)).isoformat(),
            "properties": properties,
        },
        NOW,
        YEAR,
    )
    assert parsed.event is not None, parsed.errors
    return parsed.event


def test_a_body_may_be_one_event_an_array_or_an_events_object():
    one = {"type": "email_open"}
    assert e.event_list(one) == [one]
    assert e.event_list([one, one]) == [one, one]
    assert e.event_list({"events": [one]}) == [one]
    assert e.event_list({"events": "x"})[0].field == "events"


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ({"type": "email_open", "occurred_at": "2026-11-29T11:00:00Z"}, "email"),
        ({"type": "email_open", "email": "a@b.io", "lead_id": "ab", "occurred_at": "2026-11-29T11:00:00Z"}, "email"),
        ({"type": "email_open", "lead_id": "not/an/id", "occurred_at": "2026-11-29T11:00:00Z"}, "lead_id"),
        ({"type": "email_open", "email": "a@b.io", "occurred_at": "2026-11-29T11:00:00"}, "occurred_at"),  # no zone
        ({"type": "email_open", "email": "a@b.io", "occurred_at": "2026-11-29T12:06:00Z"}, "occurred_at"),
        ({"type": "email_open", "email": "a@b.io", "occurred_at": "2025-11-28T12:00:00Z"}, "occurred_at"),
        (
            {"type": "email_open", "email": "a@b.io", "occurred_at": "2026-11-29T11:00:00Z", "properties": []},
            "properties",
        ),
        ({"type": "email_open", "email": "a@b.io", "occurred_at": "2026-11-29T11:00:00Z", "id": 7}, "id"),
    ],
)
def test_each_bad_event_names_its_field(raw, field):
    parsed = e.parse_event(3, raw, NOW, YEAR)
    assert parsed.event is None and parsed.index == 3
    assert field in [error.field for error in parsed.errors]


def test_an_event_four_minutes_ahead_is_clock_skew_and_accepted():
    raw = {"type": "email_open", "email": " A@B.io ", "occurred_at": "2026-11-29T12:04:00+00:00"}
    event = e.parse_event(0, raw, NOW, YEAR).event
    assert event is not None and event.email == "a@b.io" and event.occurred_at == "2026-11-29T12:04:00.000Z"


def test_the_summary_keeps_only_what_scoring_reads_and_reads_back(model):
    event = _event("page_view", url="https://x.io/pricing", product="scoring", visitor="secret-cookie")
    entry = e.summary_entry(event, e.summarised_properties(model))
    assert "secret-cookie" not in entry
    assert e.summary_events([entry]) == [
        {
            "type": "page_view",
            "occurred_at": event.occurred_at,
            "properties": {"product": "scoring", "url": event.properties["url"]},
        }
    ]


def test_the_summary_drops_what_is_out_of_every_window_first_then_the_oldest(model):
    keep = e.summarised_properties(model)
    old = e.summary_entry(e.Event(0, "email_open", "2025-10-01T00:00:00.000Z", {}), keep)  # past every window
    recent = [e.summary_entry(_event("email_open", minutes_ago=n), keep) for n in range(e.MAX_ENGAGEMENT + 5)]
    capped = e.cap_engagement([old, *recent], model, NOW)
    assert old not in capped
    assert len(capped) == e.MAX_ENGAGEMENT
    assert capped == sorted(recent, reverse=True)[: e.MAX_ENGAGEMENT]  # the newest are kept
    long = [e.summary_entry(_event("page_view", minutes_ago=n, url="/p/" + "x" * 250), keep) for n in range(150)]
    assert sum(len(x) + 1 for x in e.cap_engagement(long, model, NOW)) <= e.MAX_ENGAGEMENT_BYTES


def test_events_qualify_a_hot_lead_once_with_score_and_stage_history(model):
    events = [_event("meeting_booked", 3), _event("webinar_attended", 2), _event("page_view", 1, url="/pricing")]
    outcome = e.apply_events(dict(HOT), events, model, NOW, "events")
    lead = outcome.lead
    assert lead["lifecycle_stage"] == "mql" and lead["mql_at"] == "2026-11-29T12:00:00.000Z"
    assert lead["score"]["behaviour"] == 30 + 15 + 10
    assert [kind for kind, _ in outcome.history] == ["score", "stage"]
    score = outcome.history[0][1]
    assert score["to"]["behaviour"] == 55 and score["source"] == "events"
    assert {"rule": "meeting_booked", "points": 30} in score["rules"]
    # And applying nothing new changes nothing: no history, still MQL
    again = e.rescore(lead, model, NOW, "again", "events")
    assert again.history == [] and again.lead["lifecycle_stage"] == "mql"


def test_unsubscribe_withdraws_consent_and_suppresses_once(model):
    first = e.apply_events(dict(HOT), [_event("unsubscribe", 5)], model, NOW, "events")
    lead = first.lead
    assert lead["consent"]["email"]["granted"] is False
    assert lead["suppressed"] == {"reason": "unsubscribe", "since": "2026-11-29T11:55:00.000Z", "source": "events"}
    assert ("suppression", {"reason": "unsubscribe", "since": "2026-11-29T11:55:00.000Z", "source": "events"}) in (
        first.history
    )
    second = e.apply_events(lead, [_event("complaint", 1)], model, NOW, "events")
    assert second.lead["suppressed"]["reason"] == "unsubscribe"  # kept from the first
    assert [kind for kind, _ in second.history if kind == "suppression"] == []
    assert second.lead["engagement"] == []  # suppression events score nothing
