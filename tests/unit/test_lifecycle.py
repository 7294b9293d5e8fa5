"""Lifecycle: every allowed and forbidden stage move, qualification to MQL, and what a move records."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from leadflow.domain.lifecycle import apply_transition, qualify, transition
from leadflow.domain.model import LIFECYCLE_STAGES
from leadflow.domain.scoring import score_lead
from leadflow.errors import StageTransitionForbidden, ValidationFailed
from leadflow.scoring_model import default_model
from leadflow.web import problem

NOW = datetime(2026, 11, 29, 9, 30, tzinfo=UTC)

# Row = from, column = to; x = allowed. Forward through the funnel (skipping allowed), any stage to recycled or
# disqualified, and recycled back to lead.
MATRIX = """
              subscriber lead mql sql opportunity customer recycled disqualified
subscriber        -       x    x   x       x         x        x          x
lead              -       -    x   x       x         x        x          x
mql               -       -    -   x       x         x        x          x
sql               -       -    -   -       x         x        x          x
opportunity       -       -    -   -       -         x        x          x
customer          -       -    -   -       -         -        x          x
recycled          -       x    -   -       -         -        -          x
disqualified      -       -    -   -       -         -        x          -
"""


def _matrix() -> list[tuple[str, str, bool]]:
    header, *rows = [line.split() for line in MATRIX.strip().splitlines()]
    return [(row[0], target, mark == "x") for row in rows for target, mark in zip(header, row[1:], strict=True)]


def test_the_matrix_covers_every_pair_of_the_contracts_stages():
    assert {(a, b) for a, b, _ in _matrix()} == {(a, b) for a in LIFECYCLE_STAGES for b in LIFECYCLE_STAGES}


@pytest.mark.parametrize(("current", "target", "allowed"), _matrix())
def test_every_stage_transition(current, target, allowed):
    if allowed:
        # When an allowed move is asked, Then it is recorded with its time, reason and source
        move = transition(current, target, "CRM deal stage changed", "crm:hubspot", NOW)
        assert move.as_dict() == {
            "from": current,
            "to": target,
            "at": "2026-11-29T09:30:00.000Z",
            "reason": "CRM deal stage changed",
            "source": "crm:hubspot",
        }
    else:
        # When a forbidden move is asked, Then it is refused as a conflict (409), with why
        with pytest.raises(StageTransitionForbidden) as caught:
            transition(current, target, "operator says so", "operator", NOW)
        assert caught.value.status == 409
        assert current in caught.value.detail and target in caught.value.detail


def test_a_forbidden_move_is_answered_as_problem_json_409():
    with pytest.raises(StageTransitionForbidden) as caught:
        transition("sql", "lead", "back to nurture", "operator", NOW)
    response = problem(caught.value)
    body = json.loads(response["body"])
    assert response["statusCode"] == 409
    assert response["headers"]["content-type"] == "application/problem+json"
    assert body["title"] == "Stage transition not allowed"
    assert body["detail"] == (
        "A lead in stage sql cannot move to lead: the funnel only moves forward (or to recycled / disqualified)."
    )


def test_an_unknown_stage_or_a_missing_reason_is_a_validation_error():
    with pytest.raises(ValidationFailed) as caught:
        transition("lead", "hot", "", "operator", NOW)
    assert [e.field for e in caught.value.errors] == ["stage", "reason"]
    assert caught.value.status == 422
    with pytest.raises(ValidationFailed):
        transition("lead", "sql", "qualified by phone", " ", NOW)
    with pytest.raises(ValidationFailed):
        transition("lead", "sql", "x" * 501, "operator", NOW)


# --- qualification ----------------------------------------------------------------------------------------


def _event(kind: str, days: float, **properties) -> dict:
    return {"type": kind, "occurred_at": (NOW - timedelta(days=days)).isoformat(), "properties": properties}


HOT_LEAD = {
    "email": "vp@acme-software.example",
    "job_title": "VP Sales",
    "country": "DE",
    "attributes": {"company_size": "201-500", "industry": "SaaS"},
}
HOT_EVENTS = [
    _event("page_view", 1, url="/pricing"),
    _event("email_click", 2),
    _event("webinar_attended", 5),
    _event("meeting_booked", 1),
]


def hot_score():
    return score_lead(HOT_LEAD, HOT_EVENTS, default_model(), NOW)


def cold_score():
    return score_lead(HOT_LEAD, [_event("email_open", 3)], default_model(), NOW)


@pytest.mark.parametrize("stage", ["lead", "subscriber", None])
def test_a_lead_meeting_the_criteria_becomes_mql(stage):
    move = qualify(stage, hot_score(), default_model(), NOW)
    assert move is not None
    assert (move.from_stage, move.to_stage, move.source) == (stage or "lead", "mql", "scoring")
    assert move.reason.startswith("grade A, behaviour ")
    assert move.reason.endswith("(grade ≥ B and behaviour ≥ 50)")


def test_a_lead_below_the_criteria_stays_a_lead():
    assert cold_score().grade == "A"  # fits well, but has not engaged enough
    assert qualify("lead", cold_score(), default_model(), NOW) is None


@pytest.mark.parametrize("stage", ["mql", "sql", "opportunity", "customer", "recycled", "disqualified"])
def test_qualify_never_moves_a_lead_backwards_or_out_of_an_exit(stage):
    assert qualify(stage, hot_score(), default_model(), NOW) is None
    assert qualify(stage, cold_score(), default_model(), NOW) is None


def test_moving_to_mql_sets_mql_at_and_later_moves_keep_it():
    lead = {"lead_id": "l-1", "lifecycle_stage": "lead"}
    mql = apply_transition(lead, qualify("lead", hot_score(), default_model(), NOW))
    assert mql["lifecycle_stage"] == "mql"
    assert mql["mql_at"] == mql["stage_changed_at"] == "2026-11-29T09:30:00.000Z"
    later = NOW + timedelta(days=2)
    sql = apply_transition(mql, transition("mql", "sql", "accepted by sales", "crm:hubspot", later))
    assert sql["lifecycle_stage"] == "sql"
    assert sql["mql_at"] == "2026-11-29T09:30:00.000Z"
    assert sql["stage_changed_at"] == "2026-12-01T09:30:00.000Z"
    assert lead == {"lead_id": "l-1", "lifecycle_stage": "lead"}  # pure: the input is not changed


def test_a_move_decided_on_a_stale_stage_is_refused():
    move = transition("lead", "mql", "score", "scoring", NOW)
    with pytest.raises(StageTransitionForbidden):
        apply_transition({"lifecycle_stage": "disqualified"}, move)
