"""What a scoring model would make of stored leads (pure): the stage a replay gives, and the what-if summary.

A replay asks "what would the funnel look like had this model been in place": stages that scoring owns
(`subscriber`, `lead`, `mql`) are decided again by the model (a lead that qualifies is `mql`; an `mql` lead
that does not is back to `lead`), while stages the CRM or an operator set (`sql` and later, `recycled`,
`disqualified`) are kept as stored. A lead reached MQL when its replayed stage is `mql` or later in the
funnel, or, for `recycled` / `disqualified`, when it was an MQL before (`mql_at`).

Since the CRM and operators move qualified leads on (kept as stored), the MQL counts of a cohort whose MQLs
all went on to `sql` and later cannot change with the model; `qualified_before` / `qualified_after` count the
leads each model's MQL criteria accept (their score), whatever stage they are in now: what scoring decides.
"""

from __future__ import annotations

from dataclasses import dataclass, field

SCORING_STAGES = ("subscriber", "lead", "mql")
PAST_MQL = ("mql", "sql", "opportunity", "customer")
Outcome = tuple[str, str, bool, bool]  # a lead under one model: grade, replayed stage, reached MQL, score qualifies


def replay_stage(stored_stage: str | None, qualifies: bool) -> str:
    stage = stored_stage or "lead"
    if stage not in SCORING_STAGES:
        return stage
    if qualifies:
        return "mql"
    return "lead" if stage == "mql" else stage


def reached_mql(stage: str, mql_at: str | None) -> bool:
    return stage in PAST_MQL or (stage in ("recycled", "disqualified") and bool(mql_at))


@dataclass
class Tally:
    leads: int = 0
    mql_before: int = 0
    mql_after: int = 0
    qualified_before: int = 0
    qualified_after: int = 0
    grade_changed: int = 0
    stage_changed: int = 0

    def add(self, before: Outcome, after: Outcome) -> None:
        """One lead's (grade, stage, reached MQL, score qualifies) under the current and the candidate model."""
        self.leads += 1
        self.mql_before += before[2]
        self.mql_after += after[2]
        self.qualified_before += before[3]
        self.qualified_after += after[3]
        self.grade_changed += before[0] != after[0]
        self.stage_changed += before[1] != after[1]

    def as_dict(self) -> dict:
        return {
            "leads": self.leads,
            "grade_changed": self.grade_changed,
            "stage_changed": self.stage_changed,
            "mql_before": self.mql_before,
            "mql_after": self.mql_after,
            "lead_to_mql_before": _rate(self.mql_before, self.leads),
            "lead_to_mql_after": _rate(self.mql_after, self.leads),
            "qualified_before": self.qualified_before,
            "qualified_after": self.qualified_after,
        }


def _rate(part: int, whole: int) -> float:
    return round(part / whole, 4) if whole else 0.0


@dataclass
class WhatIf:
    """The summary of a simulation: totals and one tally per first-touch source."""

    total: Tally = field(default_factory=Tally)
    by_source: dict[str, Tally] = field(default_factory=dict)

    def add(self, source: str, before: Outcome, after: Outcome) -> None:
        self.total.add(before, after)
        self.by_source.setdefault(source, Tally()).add(before, after)

    def as_dict(self) -> dict:
        return {
            "totals": self.total.as_dict(),
            "by_source": {source: tally.as_dict() for source, tally in sorted(self.by_source.items())},
        }


def first_touch_source(lead: dict) -> str:
    first = ((lead.get("attribution") or {}).get("first_touch")) or {}
    return str(first.get("source") or lead.get("source") or "unknown")
