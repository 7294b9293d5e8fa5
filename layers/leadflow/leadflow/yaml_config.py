"""Configuration files shared by the scoring model, the journeys and every configuration that follows them.

**Where a configuration comes from** (`config_text`), for a configuration `<name>` shipped as
`infra/<name>/default.yaml`:
1. the file named by its `LEADFLOW_<NAME>_FILE` environment variable (development, tests, `leadflow up`);
2. on AWS, the SSM parameter named by its `LEADFLOW_<NAME>_PARAMETER` variable (template.yaml sets it per
   stage), read through Powertools parameters and cached `MAX_AGE_SECONDS`, so an edit reaches warm
   functions within five minutes without a deploy; a parameter holding the placeholder `default` (what the
   stack writes: the shipped file is larger than a stack parameter may be) means "no override";
3. the packaged default: `default_file(<name>)`, i.e. `leadflow/defaults/<name>/default.json` in the built
   layer (layers/leadflow/Makefile copies every `infra/*/default.yaml` there at `make build` and writes its
   JSON twin with compile_defaults.py), or `infra/<name>/default.yaml` itself in a checkout. So a stack
   deployed with no override runs the default, and a cold start reads it without importing PyYAML.

A new configuration (routing, CRM reasons, UTM rules, targets, ...) needs no code of its own for this:

    from leadflow.yaml_config import config_text, parse, render, schema_problems

    def current_routing() -> RoutingConfig:
        text, source = config_text("routing", RoutingConfigInvalid, "The routing rules could not be read")
        return load_routing(text, source)       # lru_cached on (text, source): compiled once per text

with `infra/routing/default.yaml` in the repository (packaged by the Makefile without a change to it), and on
AWS `LEADFLOW_ROUTING_PARAMETER` plus an `ssm:GetParameter` grant on that parameter for the functions that
read it. `source` names the file or `ssm:<parameter>` in errors.

**Reading YAML with line numbers**: `parse` composes the node tree (for line numbers) and builds the document
from it in one parse, refusing duplicate keys and broken YAML; a text that is plain JSON (the layer's packaged
defaults, or an SSM override written as JSON) is read by `json` instead, and its node tree is composed only if
a problem must be placed on a line (JSON is YAML, so the lines are the same); `schema_problems` turns a jsonschema error
into (path, message) pairs; `render` turns those into `source:line: field.path: message` lines, sorted by
line. The caller's error type (ScoringModelInvalid, JourneyConfigInvalid) carries them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

Problem = tuple[tuple, str]
Invalid = Callable[[str, list[str]], Exception]  # (source, problem lines) → the error to raise

MAX_AGE_SECONDS = 300  # an edited SSM parameter is picked up within five minutes, without a deploy
PLACEHOLDER = "default"  # the value the stack writes into a configuration parameter: no override
_PACKAGE = Path(__file__).resolve().parent
PACKAGED_DEFAULTS = _PACKAGE / "defaults"  # in the built layer (layers/leadflow/Makefile copies them there)
REPOSITORY_INFRA = _PACKAGE.parents[2] / "infra"  # layers/leadflow/leadflow → the checkout's infra/


def default_file(name: str) -> Path:
    """The shipped default of configuration `name`: the layer's packaged copy (its JSON twin when the build
    wrote one), else the checkout's `infra/<name>/default.yaml` (development, tests)."""
    for packaged in (PACKAGED_DEFAULTS / name / "default.json", PACKAGED_DEFAULTS / name / "default.yaml"):
        if packaged.is_file():
            return packaged
    return REPOSITORY_INFRA / name / "default.yaml"


def config_text(name: str, invalid: Invalid, unavailable: str, file_variable: str | None = None) -> tuple[str, str]:
    """(text, source) of configuration `name` in force: `LEADFLOW_<NAME>_FILE` (or `file_variable`), else the
    SSM parameter named by `LEADFLOW_<NAME>_PARAMETER` unless it holds the placeholder, else the packaged
    default (module doc).

    An unreadable file raises `invalid(source, ["source: cannot be read: ..."])`; an SSM parameter that cannot
    be read raises UpstreamUnavailable(`unavailable`) (answered 503 with Retry-After: senders retry).
    """
    import os

    variable = name.upper()
    path = os.environ.get(file_variable or f"LEADFLOW_{variable}_FILE")
    if path:
        return read(Path(path), display(Path(path)), invalid), display(Path(path))
    parameter = os.environ.get(f"LEADFLOW_{variable}_PARAMETER")
    if parameter:
        text = parameter_text(parameter, unavailable)
        if text.strip() != PLACEHOLDER:
            return text, f"ssm:{parameter}"
    default = default_file(name)
    return read(default, display(default), invalid), display(default)


def parameter_text(parameter: str, unavailable: str) -> str:
    """The SSM parameter's text through Powertools (cached MAX_AGE_SECONDS), or UpstreamUnavailable."""
    from aws_lambda_powertools.utilities import parameters  # lazy: only a function that reads one pays for it

    from leadflow.errors import UpstreamUnavailable

    try:
        return str(parameters.get_parameter(parameter, max_age=MAX_AGE_SECONDS))
    except parameters.exceptions.GetParameterError as exc:
        raise UpstreamUnavailable(f"{unavailable}; retry shortly.") from exc


def display(path: Path) -> str:
    """A file as errors name it: relative to the working directory when it is below it."""
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def read(path: Path, source: str, invalid: Invalid) -> str:
    """The file's UTF-8 text; `invalid(source, ["source: cannot be read: ..."])` is raised otherwise."""
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise invalid(source, [f"{source}: cannot be read: {error}"]) from None


def parse(text: str, source: str, invalid: Invalid, empty: str) -> tuple[Any, Any]:
    """The composed node tree and the document built from it; `invalid(source, lines)` is raised otherwise
    (`empty` is the message for a text without a document). A plain JSON object is read by `json`; its node
    tree is then a `Deferred`, composed by `line_of` only when a problem is rendered."""
    document = _json_document(text)
    if document is not None:
        return Deferred(text), document
    import yaml  # lazy: only a configuration written in YAML pays for PyYAML (~12 ms of imports)

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)(text)  # libyaml when the wheel has it: ~2x faster
    try:
        node = loader.get_single_node()
        if node is None:
            raise invalid(source, [f"{source}:1: {empty}"])
        duplicates = list(duplicate_keys(node, ()))
        if duplicates:
            raise invalid(source, render(duplicates, node, source))
        return node, loader.construct_document(node)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line = mark.line + 1 if mark else 1
        raise invalid(source, [f"{source}:{line}: not valid YAML: {error.problem or error}"]) from None
    except yaml.YAMLError as error:
        raise invalid(source, [f"{source}: not valid YAML: {error}"]) from None
    finally:
        loader.dispose()


class _NotPlainJson(ValueError):
    pass


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [key for key, _ in pairs]
    if len(set(keys)) != len(keys):
        raise _NotPlainJson("duplicate key")  # YAML's reading names the duplicate and its line
    return dict(pairs)


def _constant(name: str) -> Any:
    raise _NotPlainJson(name)  # NaN and Infinity are not JSON: YAML reads them its own way


def _json_document(text: str) -> dict | None:
    """The JSON object `text` holds, or None when it is anything else (YAML, broken, duplicate keys): then the
    YAML reading decides, and names the line of any problem."""
    if not text.lstrip().startswith("{"):
        return None
    import json

    try:
        document = json.loads(text, object_pairs_hook=_unique_keys, parse_constant=_constant)
    except ValueError:
        return None
    return document if isinstance(document, dict) else None


class Deferred:
    """The node tree of a text read as JSON: composed (by PyYAML, lines and all) only when it is needed."""

    def __init__(self, text: str) -> None:
        self.text = text

    def compose(self):
        import yaml

        return yaml.compose(self.text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))


def duplicate_keys(node, path: tuple) -> Iterator[Problem]:
    """PyYAML keeps the last of two equal keys silently; in configuration that is a mistake worth naming."""
    import yaml

    if isinstance(node, yaml.MappingNode):
        seen = set()
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode):
                if key.value in seen:
                    yield (*path, key.value), "duplicate key (only the last would count)"
                seen.add(key.value)
            yield from duplicate_keys(value, (*path, key.value))
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            yield from duplicate_keys(item, (*path, i))


def schema_problems(error) -> list[Problem]:
    """A jsonschema error as (path, message) pairs; an unknown field is named with the known ones."""
    path = tuple(error.absolute_path)
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        known = set(error.schema.get("properties", {}))
        extras = sorted(str(k) for k in error.instance if k not in known)
        allowed = ", ".join(sorted(known))
        return [((*path, extra), f"unknown field (known here: {allowed})") for extra in extras]
    return [(path, error.message)]


def render(problems: list[Problem], root, source: str) -> list[str]:
    from leadflow.domain.scoring_model import format_path  # only a broken file is rendered (~7 ms of imports)

    if isinstance(root, Deferred):
        root = root.compose()  # once for all the problems
    lines = []
    for path, message in problems:
        where = format_path(path)
        lines.append((line_of(root, path), f"{where}: {message}" if where else message))
    lines.sort(key=lambda item: item[0])
    return [f"{source}:{line}: {text}" for line, text in lines]


def line_of(node, path: tuple) -> int:
    """The line of the field at `path`: its key's line in a mapping, the item's line in a list."""
    import yaml

    if isinstance(node, Deferred):
        node = node.compose()
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
