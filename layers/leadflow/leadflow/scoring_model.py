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
from typing import Any

from leadflow.domain.model import SUPPRESSION_EVENT_TYPES
from leadflow.domain.scoring_model import ModelProblems, ScoringModel, compile_model, format_path
from leadflow.errors import ScoringModelInvalid

SCHEMA = "scoring_model.v1.json"
# layers/leadflow/leadflow/scoring_model.py → the repository root is three folders up.
DEFAULT_MODEL_FILE = Path(__file__).resolve().parents[3] / "infra" / "scoring" / "default.yaml"


def load_model(text: str, source: str = "<scoring model>") -> ScoringModel:
    """The compiled model of YAML `text`, or ScoringModelInvalid listing every problem as `source:line: ...`."""
    return _load(text, source)


def load_model_file(path: str | Path) -> ScoringModel:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise ScoringModelInvalid(_display(path), [f"{_display(path)}: cannot be read: {error}"]) from None
    return load_model(text, _display(path))


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

    node, document = _parse(text, source)
    problems: list[tuple[tuple, str]] = []
    if conforms(SCHEMA, document) is not True:  # the stdlib fast path; jsonschema decides and explains the rest
        for error in _validator().iter_errors(document):
            problems.extend(_schema_problems(error))
    if not problems:
        try:
            return compile_model(document, digest=hashlib.sha256(text.encode("utf-8")).hexdigest()[:12])
        except ModelProblems as invalid:
            problems = invalid.problems
    raise ScoringModelInvalid(source, _render(problems, node, source))


def _validator():
    from leadflow.schemas import validator

    return validator(SCHEMA)


def _parse(text: str, source: str) -> tuple[Any, Any]:
    """The composed node tree (for line numbers) and the document built from it, in one parse."""
    import yaml  # lazy: only the code that loads a model pays for PyYAML

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)(text)  # libyaml when the wheel has it: ~2x faster
    try:
        node = loader.get_single_node()
        if node is None:
            raise ScoringModelInvalid(source, [f"{source}:1: the model is empty"])
        duplicates = list(_duplicate_keys(node, ()))
        if duplicates:
            raise ScoringModelInvalid(source, _render(duplicates, node, source))
        return node, loader.construct_document(node)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line = mark.line + 1 if mark else 1
        raise ScoringModelInvalid(source, [f"{source}:{line}: not valid YAML: {error.problem or error}"]) from None
    except yaml.YAMLError as error:
        raise ScoringModelInvalid(source, [f"{source}: not valid YAML: {error}"]) from None
    finally:
        loader.dispose()


def _duplicate_keys(node, path: tuple):
    """PyYAML keeps the last of two equal keys silently; in a model that is a mistake worth naming."""
    import yaml

    if isinstance(node, yaml.MappingNode):
        seen = set()
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode):
                if key.value in seen:
                    yield (*path, key.value), "duplicate key (only the last would count)"
                seen.add(key.value)
            yield from _duplicate_keys(value, (*path, key.value))
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            yield from _duplicate_keys(item, (*path, i))


def _schema_problems(error) -> list[tuple[tuple, str]]:
    path = tuple(error.absolute_path)
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        known = set(error.schema.get("properties", {}))
        extras = sorted(str(k) for k in error.instance if k not in known)
        allowed = ", ".join(sorted(known))
        return [((*path, extra), f"unknown field (known here: {allowed})") for extra in extras]
    if error.validator == "enum" and path and path[-1] == "event" and error.instance in SUPPRESSION_EVENT_TYPES:
        return [(path, f"{error.instance!r} gives no points: unsubscribe, bounce and complaint set suppression")]
    return [(path, error.message)]


def _render(problems: list[tuple[tuple, str]], root, source: str) -> list[str]:
    lines = []
    for path, message in problems:
        where = format_path(path)
        lines.append((_line(root, path), f"{where}: {message}" if where else message))
    lines.sort(key=lambda item: item[0])
    return [f"{source}:{line}: {text}" for line, text in lines]


def _line(node, path: tuple) -> int:
    """The line of the field at `path`: its key's line in a mapping, the item's line in a list."""
    import yaml

    line = node.start_mark.line + 1
    for part in path:
        if isinstance(node, yaml.MappingNode):
            for key, value in reversed(node.value):  # the last of duplicate keys is the one that counts
                if key.value == str(part):
                    line, node = key.start_mark.line + 1, value
                    break
            else:
                break
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            break
    return line
