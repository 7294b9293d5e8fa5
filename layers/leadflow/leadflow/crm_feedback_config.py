"""Load the CRM feedback configuration (outcome mapping, reasons → next actions) from YAML text.

`configured_feedback()` reads it through `yaml_config.config_text` ("crm_feedback"): `LEADFLOW_CRM_FEEDBACK_FILE`,
else on AWS the SSM parameter named by `LEADFLOW_CRM_FEEDBACK_PARAMETER` (Powertools, max age five minutes; the
stack's placeholder `default` means no override), else the shipped `infra/crm_feedback/default.yaml` (packaged
in the layer as `leadflow/defaults/crm_feedback/default.yaml`).
Schema `schemas/crm_feedback.v1.json`; errors name file, line and field like the journeys' and the scoring
model's (`infra/crm_feedback/default.yaml:31: reasons[0].action.after_days: -1 is less than the minimum of 0`).
Compiled once per text.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

from leadflow.domain.crm_feedback import Action, FeedbackConfig, ReasonRule
from leadflow.errors import CrmFeedbackConfigInvalid
from leadflow.yaml_config import config_text, default_file, parse, read, render, schema_problems

SCHEMA = "crm_feedback.v1.json"
DEFAULT_FILE = default_file("crm_feedback")  # the layer's packaged copy, or infra/crm_feedback/default.yaml


def load_feedback_config(text: str, source: str = "<crm feedback>") -> FeedbackConfig:
    """The compiled configuration of YAML `text`, or CrmFeedbackConfigInvalid listing every problem by line."""
    return _load(text, source)


def load_feedback_file(path: str | Path) -> FeedbackConfig:
    path = Path(path)
    return load_feedback_config(read(path, str(path), CrmFeedbackConfigInvalid), str(path))


def configured_feedback() -> FeedbackConfig:
    """The configuration this process applies: `LEADFLOW_CRM_FEEDBACK_FILE`, else the SSM parameter of
    `LEADFLOW_CRM_FEEDBACK_PARAMETER` (unless it holds the placeholder), else the shipped default.
    UpstreamUnavailable when the parameter cannot be read (answered 503: the CRM retries)."""
    unavailable = "The CRM feedback configuration could not be read"
    return load_feedback_config(*config_text("crm_feedback", CrmFeedbackConfigInvalid, unavailable))


@lru_cache(maxsize=8)
def _load(text: str, source: str) -> FeedbackConfig:
    from leadflow.schemas import conforms, validator

    node, document = parse(text, source, CrmFeedbackConfigInvalid, "the configuration is empty")
    problems: list[tuple[tuple, str]] = []
    if conforms(SCHEMA, document) is not True:
        for error in validator(SCHEMA).iter_errors(document):
            problems.extend(schema_problems(error))
    if not problems:
        problems = _semantic_problems(document)
    if problems:
        raise CrmFeedbackConfigInvalid(source, render(problems, node, source))
    return _compile(document)


def _semantic_problems(document: dict[str, Any]) -> list[tuple[tuple, str]]:
    problems: list[tuple[tuple, str]] = []
    seen: set[str] = set()
    for i, rule in enumerate(document.get("reasons") or []):
        if rule["id"] in seen:
            problems.append((("reasons", i, "id"), f"{rule['id']!r} is used by an earlier rule"))
        seen.add(rule["id"])
        action = rule["action"]
        if not action:
            problems.append((("reasons", i, "action"), "names nothing to do (stage, journey or suppress_days)"))
        if action.get("after_days") is not None and not action.get("journey"):
            problems.append((("reasons", i, "action", "after_days"), "needs a journey to start"))
        if action.get("stage") == "disqualified" and action.get("journey"):
            problems.append((("reasons", i, "action", "journey"), "a disqualified lead is never nurtured"))
    return problems


def _action(raw: dict[str, Any] | None) -> Action:
    raw = raw or {}
    return Action(
        stage=raw.get("stage"),
        journey=raw.get("journey"),
        after_days=raw.get("after_days"),
        suppress_days=raw.get("suppress_days"),
    )


def _compile(document: dict[str, Any]) -> FeedbackConfig:
    hubspot = document.get("hubspot") or {}
    return FeedbackConfig(
        contact_properties={k: dict(v) for k, v in (hubspot.get("contact_properties") or {}).items()},
        deal_properties={k: dict(v) for k, v in (hubspot.get("deal_properties") or {}).items()},
        reason_properties=tuple(hubspot.get("reason_properties") or ()),
        value_property=hubspot.get("value_property"),
        reasons=tuple(
            ReasonRule(r["id"], tuple(r["match"]), _action(r["action"])) for r in document.get("reasons") or []
        ),
        default_lost_action=_action(document.get("default_lost_action") or {"stage": "recycled"}),
    )
