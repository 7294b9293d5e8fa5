"""Load the scoring model from YAML text: schema and semantic checks, errors naming file, line and field.

The model is configuration, not code: `current_model()` reads it through `yaml_config.config_text`
("scoring"): `LEADFLOW_SCORING_MODEL_FILE`, else on AWS the SSM parameter `LEADFLOW_SCORING_PARAMETER`
(Powertools, max age five minutes; the stack's placeholder `default` means no override), else the shipped
`infra/scoring/default.yaml` (packaged in the layer as `leadflow/defaults/scoring/default.yaml`). A model is
compiled once per distinct text.

Errors read like a compiler's, one per problem, sorted by line:
    infra/scoring/default.yaml:42: fit.rules[3].points: 'ten' is not of type 'integer'
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
from pathlib import Path

from leadflow.domain.model import SUPPRESSION_EVENT_TYPES
from leadflow.domain.scoring_model import ModelProblems, ScoringModel, compile_model
from leadflow.errors import ScoringModelInvalid
from leadflow.yaml_config import MAX_AGE_SECONDS as MAX_AGE_SECONDS  # re-exported: tests advance clocks by it
from leadflow.yaml_config import (
    Problem,
    config_text,
    default_file,
    display,
    parse,
    read,
    render,
    schema_problems,
)

SCHEMA = "scoring_model.v1.json"
DEFAULT_MODEL_FILE = default_file("scoring")  # the layer's packaged copy, or infra/scoring/default.yaml


def load_model(text: str, source: str = "<scoring model>") -> ScoringModel:
    """The compiled model of YAML `text`, or ScoringModelInvalid listing every problem as `source:line: ...`."""
    return _load(text, source)


def load_model_file(path: str | Path) -> ScoringModel:
    path = Path(path)
    return load_model(read(path, display(path), ScoringModelInvalid), display(path))


def default_model() -> ScoringModel:
    """The shipped default model (`infra/scoring/default.yaml`, packaged in the layer)."""
    return load_model_file(default_file("scoring"))


def current_model() -> ScoringModel:
    """The model in force: LEADFLOW_SCORING_MODEL_FILE, else the SSM parameter LEADFLOW_SCORING_PARAMETER (on
    AWS; read through Powertools, cached MAX_AGE_SECONDS; `default` there means no override), else the shipped
    default (packaged in the layer).

    Raises ScoringModelInvalid (file/parameter, line, field) for a bad model and UpstreamUnavailable when the
    parameter cannot be read (the caller answers 503 with Retry-After).
    """
    text, source = config_text(
        "scoring", ScoringModelInvalid, "The scoring model could not be read", "LEADFLOW_SCORING_MODEL_FILE"
    )
    return load_model(text, source)


@lru_cache(maxsize=8)
def _load(text: str, source: str) -> ScoringModel:
    from leadflow.schemas import conforms

    node, document = parse(text, source, ScoringModelInvalid, "the model is empty")
    problems: list[tuple[tuple, str]] = []
    if conforms(SCHEMA, document) is not True:  # the stdlib fast path; jsonschema decides and explains the rest
        for error in _validator().iter_errors(document):
            problems.extend(_schema_problems(error))
    if not problems:
        try:
            return compile_model(document, digest=hashlib.sha256(text.encode("utf-8")).hexdigest()[:12])
        except ModelProblems as invalid:
            problems = invalid.problems
    raise ScoringModelInvalid(source, render(problems, node, source))


def _validator():
    from leadflow.schemas import validator

    return validator(SCHEMA)


def _schema_problems(error) -> list[Problem]:
    path = tuple(error.absolute_path)
    if error.validator == "enum" and path and path[-1] == "event" and error.instance in SUPPRESSION_EVENT_TYPES:
        return [(path, f"{error.instance!r} gives no points: unsubscribe, bounce and complaint set suppression")]
    return schema_problems(error)
