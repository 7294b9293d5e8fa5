"""The lifecycle of a lead through the funnel (pure: `now` is passed in).

The funnel moves forward only: subscriber → lead → mql → sql → opportunity → customer (a stage may be
skipped, e.g. the CRM reports an opportunity for a lead). The explicit moves are the exceptions: any stage
may go to `recycled` or `disqualified`, and `recycled` goes back to `lead` (nowhere else, so a disqualified
lead is requalified by recycling it first). Every move is a `Transition` with its time, reason and source,
for the lead's timeline. Scoring moves a lead to `mql` (`qualify`); `sql` and later stages come from the
CRM or an operator.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from leadflow.domain.attribution import iso
from leadflow.domain.model import LIFECYCLE_STAGES
from leadflow.domain.scoring import Score
from leadflow.domain.scoring_model import ScoringModel
from leadflow.errors import FieldError, StageTransitionForbidden, ValidationFailed

FUNNEL = ("subscriber", "lead", "mql", "sql", "opportunity", "customer")
EXITS = ("recycled", "disqualified")  # reachable from any stage
QUALIFIABLE = ("subscriber", "lead")  # stages scoring may move to mql
MAX_REASON = 500


@dataclass(frozen=True)
class Transition:
    from_stage: str
    to_stage: str
    at: str
    reason: str
    source: str

    def as_dict(self) -> dict:
        return {
            "from": self.from_stage,
            "to": self.to_stage,
            "at": self.at,
            "reason": self.reason,
            "source": self.source,
        }


def is_allowed(current: str, target: str) -> bool:
    """Whether the funnel allows `current` → `target` (both known stages)."""
    if current == target:
        return False
    if target in EXITS:
        return True
    if current == "recycled":
        return target == "lead"
    if current == "disqualified":
        return False
    return FUNNEL.index(target) > FUNNEL.index(current)


def transition(lead_stage: str, target: str, reason: str, source: str, now: datetime) -> Transition:
    """The move `lead_stage` → `target`, or StageTransitionForbidden (409) when the funnel does not allow it."""
    errors = []
    if target not in LIFECYCLE_STAGES:
        errors.append(FieldError("stage", "must be one of " + ", ".join(LIFECYCLE_STAGES)))
    if not (reason or "").strip():
        errors.append(FieldError("reason", "is required"))
    elif len(reason) > MAX_REASON:
        errors.append(FieldError("reason", f"must be at most {MAX_REASON} characters"))
    if not (source or "").strip():
        errors.append(FieldError("source", "is required"))
    if errors:
        raise ValidationFailed(errors)
    current = lead_stage or "lead"
    if current not in LIFECYCLE_STAGES:
        raise ValidationFailed([FieldError("lifecycle_stage", f"is not a stage ({current!r})")])
    if current == target:
        raise StageTransitionForbidden(f"The lead is already in stage {target}.")
    if not is_allowed(current, target):
        raise StageTransitionForbidden(f"A lead in stage {current} cannot move to {target}: {_why(current)}")
    return Transition(current, target, iso(now), reason.strip(), source.strip())


def _why(current: str) -> str:
    if current == "recycled":
        return "a recycled lead goes back to lead first."
    if current == "disqualified":
        return "a disqualified lead is recycled first, then moved back to lead."
    return "the funnel only moves forward (or to recycled / disqualified)."


def qualify(
    lead_stage: str, score: Score, model: ScoringModel, now: datetime, source: str = "scoring"
) -> Transition | None:
    """lead (or subscriber) → mql when the score meets the model's MQL criteria; never a move backwards.

    None when nothing changes: the criteria are not met, or the lead is already MQL or beyond, recycled
    (an operator moves it back to lead first) or disqualified.
    """
    current = lead_stage or "lead"
    if current not in QUALIFIABLE or not model.qualifies(score.grade, score.behaviour):
        return None
    reason = f"grade {score.grade}, behaviour {score.behaviour} ({model.mql_criteria()})"
    return transition(current, "mql", reason, source, now)


def apply_transition(lead: dict, move: Transition) -> dict:
    """The lead after `move` (a new dict): its stage, when it changed, and `mql_at` on each move into mql.

    `mql_at` is kept when the lead moves on (sql, customer, recycled): it is when the lead last became an MQL.
    """
    if (lead.get("lifecycle_stage") or "lead") != move.from_stage:
        raise StageTransitionForbidden(
            f"The lead is in stage {lead.get('lifecycle_stage')}, not {move.from_stage}: decide the move again."
        )
    updated = dict(lead)
    updated["lifecycle_stage"] = move.to_stage
    updated["stage_changed_at"] = move.at
    if move.to_stage == "mql":
        updated["mql_at"] = move.at
    return updated
