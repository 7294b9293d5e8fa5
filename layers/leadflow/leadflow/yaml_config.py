"""YAML configuration read with line numbers: the scoring model and the journeys share it.

`parse` composes the node tree (for line numbers) and builds the document from it in one parse, refusing
duplicate keys and broken YAML; `schema_problems` turns a jsonschema error into (path, message) pairs;
`render` turns those into `source:line: field.path: message` lines, sorted by line. The caller's error type
(ScoringModelInvalid, JourneyConfigInvalid) carries them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

Problem = tuple[tuple, str]
Invalid = Callable[[str, list[str]], Exception]  # (source, problem lines) → the error to raise


def read(path: Path, source: str, invalid: Invalid) -> str:
    """The file's UTF-8 text; `invalid(source, ["source: cannot be read: ..."])` is raised otherwise."""
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise invalid(source, [f"{source}: cannot be read: {error}"]) from None


def parse(text: str, source: str, invalid: Invalid, empty: str) -> tuple[Any, Any]:
    """The composed node tree and the document built from it; `invalid(source, lines)` is raised otherwise
    (`empty` is the message for a text without a document)."""
    import yaml  # lazy: only the code that loads a configuration pays for PyYAML

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

    lines = []
    for path, message in problems:
        where = format_path(path)
        lines.append((line_of(root, path), f"{where}: {message}" if where else message))
    lines.sort(key=lambda item: item[0])
    return [f"{source}:{line}: {text}" for line, text in lines]


def line_of(node, path: tuple) -> int:
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
