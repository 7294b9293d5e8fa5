"""Operator use cases after a scoring-model change: `simulate` (what-if, writes nothing) and `rescore`.

Both walk a cohort of stored leads (created since a time, or all) page by page through the sparse
`LeadsByStage` index, read each lead and its events, and score them with `score_lead` at one `now`.
Test leads and leads being erased are left out.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from leadflow.domain import lifecycle
from leadflow.domain.attribution import iso
from leadflow.domain.replay import Outcome, WhatIf, first_touch_source, reached_mql, replay_stage
from leadflow.domain.scoring import score_lead
from leadflow.domain.scoring_model import ScoringModel
from leadflow.observability import logger
from leadflow.store import cohort
from leadflow.store.leads import WriteConflict

MAX_ATTEMPTS = 5  # per lead, when a capture or an event changes it between our read and our write


def _cohort(since: datetime | None):
    """Each lead of the cohort once, even when it changes stage (index partition) during the walk: a rescore
    moves leads to mql, captures and the CRM move them on. (A lead moved meanwhile into a stage already
    walked is missed; live scoring already uses the deployed model for it.)"""
    seen: set[str] = set()
    for page in cohort.lead_id_pages(iso(since) if since else None):
        fresh = [lead_id for lead_id in page if lead_id not in seen]
        seen.update(fresh)
        for lead in cohort.read_leads(fresh) if fresh else ():
            if not lead.get("is_test"):
                yield lead


def _outcome(lead: dict, events: list[dict], model: ScoringModel, now: datetime) -> Outcome:
    score = score_lead(lead, events, model, now)
    stage = replay_stage(lead.get("lifecycle_stage"), score.qualifies)
    return score.grade, stage, reached_mql(stage, lead.get("mql_at")), score.qualifies


def simulate(candidate: ScoringModel, current: ScoringModel, since: datetime | None, now: datetime) -> dict:
    """How the cohort's grades, stages and MQLs would change from `current` to `candidate`. Reads only."""
    what_if = WhatIf()
    for lead in _cohort(since):
        events = cohort.events_of(lead["lead_id"])
        before = _outcome(lead, events, current, now)
        after = _outcome(lead, events, candidate, now)
        what_if.add(first_touch_source(lead), before, after)
    return what_if.as_dict()


@dataclass
class RescoreResult:
    scanned: int = 0
    changed: int = 0
    qualified: int = 0
    conflicts: int = 0  # leads that kept changing under us (left for their next event to score)


def rescore(model: ScoringModel, since: datetime | None, now: datetime) -> RescoreResult:
    """Recompute and store score, grade and persona of the cohort's leads under `model`; a lead that now
    qualifies moves to `mql` (forward only). Each change is a `score` (and `stage`) history entry."""
    result = RescoreResult()
    for lead in _cohort(since):
        result.scanned += 1
        for _attempt in range(MAX_ATTEMPTS):
            try:
                changed, qualified = _rescore_one(lead, model, now)
            except WriteConflict:
                lead = cohort.read_lead(lead["lead_id"])
                if lead is None:  # erased meanwhile
                    changed = qualified = False
                    break
                continue
            break
        else:
            result.conflicts += 1
            logger.warning("rescore gave up on a busy lead", extra={"lead_id": lead["lead_id"]})
            continue
        result.changed += changed
        result.qualified += qualified
    return result


def _rescore_one(lead: dict, model: ScoringModel, now: datetime) -> tuple[bool, bool]:
    score = score_lead(lead, cohort.events_of(lead["lead_id"]), model, now)
    new_score = score.as_dict()
    old_score = lead.get("score") or {}
    changes: dict = {}
    entries: list[tuple[str, dict]] = []
    if new_score != old_score or score.persona != lead.get("persona"):
        changes["score"] = new_score
        changes["persona"] = score.persona
        entries.append(
            (
                "score",
                {
                    "reason": "rescore",
                    "model": model.name + (f"@{model.digest}" if model.digest else ""),
                    "from": {k: old_score.get(k) for k in ("fit", "behaviour", "total", "grade")},
                    "to": {k: new_score[k] for k in ("fit", "behaviour", "total", "grade")},
                    "persona": score.persona,
                    "breakdown": new_score["breakdown"],
                },
            )
        )
    move = lifecycle.qualify(lead.get("lifecycle_stage") or "lead", score, model, now, source="rescore")
    if move is not None:
        moved = lifecycle.apply_transition(lead, move)
        changes.update({k: moved[k] for k in ("lifecycle_stage", "stage_changed_at", "mql_at")})
        entries.append(("stage", {"from": move.from_stage, "to": move.to_stage, "reason": move.reason}))
    if not changes:
        return False, False
    cohort.save_rescore(lead, changes, entries, iso(now))
    return True, move is not None
