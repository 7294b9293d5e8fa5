"""Load the scoring model from YAML text: schema and semantic checks, errors naming file, line and field.

The model is configuration, not code: locally `infra/scoring/default.yaml` in the repository; on AWS the
same YAML text comes from SSM Parameter Store or AppConfig (a later step reads it and calls `load_model`
with the text and the parameter's name as `source`). A model is compiled once per distinct text.

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
from leadflow.yaml_config import Problem, parse, read, render, schema_problems

SCHEMA = "scoring_model.v1.json"
# layers/leadflow/leadflow/scoring_model.py → the repository root is three folders up.
DEFAULT_MODEL_FILE = Path(__file__).resolve().parents[3] / "infra" / "scoring" / "default.yaml"


def load_model(text: str, source: str = "<scoring model>") -> ScoringModel:
    """The compiled model of YAML `text`, or ScoringModelInvalid listing every problem as `source:line: ...`."""
    return _load(text, source)


def load_model_file(path: str | Path) -> ScoringModel:
    path = Path(path)
    return load_model(read(path, _display(path), ScoringModelInvalid), _display(path))


def default_model() -> ScoringModel:
    """The shipped default model (`infra/scoring/default.yaml`)."""
    return load_model_file(DEFAULT_MODEL_FILE)


MAX_AGE_SECONDS = 300  # an edited SSM model is picked up within five minutes, without a deploy


def current_model() -> ScoringModel:
    """The model in force: LEADFLOW_SCORING_MODEL_FILE, else the SSM parameter LEADFLOW_SCORING_PARAMETER (on
    AWS; read through Powertools, cached MAX_AGE_SECONDS), else the shipped default file.

    Raises ScoringModelInvalid (file/parameter, line, field) for a bad model and UpstreamUnavailable when the
    parameter cannot be read (the caller answers 503 with Retry-After).
    """
    from leadflow.config import settings

    config = settings()
    if config.scoring_model_file:
        return load_model_file(config.scoring_model_file)
    if config.scoring_parameter:
        from aws_lambda_powertools.utilities import parameters  # lazy: only on AWS

        from leadflow.errors import UpstreamUnavailable

        try:
            text = parameters.get_parameter(config.scoring_parameter, max_age=MAX_AGE_SECONDS)
        except parameters.exceptions.GetParameterError as exc:
            raise UpstreamUnavailable("The scoring model could not be read; retry shortly.") from exc
        source = f"ssm:{config.scoring_parameter}"
        if str(text).strip() == "default":  # the stack's placeholder: the model is larger than a stack parameter
            if DEFAULT_MODEL_FILE.exists():
                return default_model()
            hint = (
                "put the model YAML there (aws ssm put-parameter --overwrite --value file://infra/scoring/default.yaml)"
            )
            raise ScoringModelInvalid(source, [f"{source}:1: holds the placeholder 'default': {hint}"])
        return load_model(str(text), source)
    return default_model()


def _display(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


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
