"""JSON Schemas, loaded and compiled once per process (never `jsonschema.validate` on a hot path)."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from leadflow.errors import FieldError, ValidationFailed

_DIR = Path(__file__).resolve().parent


@cache
def _registry():
    from referencing import Registry, Resource

    resources = []
    for path in sorted(_DIR.glob("*.json")):
        schema = json.loads(path.read_text(encoding="utf-8"))
        resources.append((path.name, Resource.from_contents(schema)))
    return Registry().with_resources(resources)


@cache
def validator(name: str):
    """The compiled validator of `schemas/<name>` (e.g. 'lead_input.v1.json')."""
    from jsonschema import Draft202012Validator

    schema = json.loads((_DIR / name).read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, registry=_registry(), format_checker=Draft202012Validator.FORMAT_CHECKER)


def _path(parts) -> str:
    return ".".join(str(p) for p in parts)


def field_errors(name: str, document: Any, prefix: str = "", rename: dict[str, str] | None = None) -> list[FieldError]:
    """Every violation of schema `name` as FieldError(field path, message), most specific first."""
    errors = []
    for error in validator(name).iter_errors(document):
        if error.validator in ("anyOf", "oneOf") and error.context:
            from jsonschema.exceptions import best_match  # prefers the branch whose type fits the value

            # a branch whose type fits the value explains best (an array told its item limit, not "not a string")
            fitting = [e for e in error.context if e.validator != "type"]
            best = best_match(fitting or error.context)
        else:
            best = error
        path = list(best.absolute_path)
        message = best.message
        if best.validator == "required":
            missing = best.message.split("'")[1] if "'" in best.message else ""
            path.append(missing)
            message = "is required"
        elif best.validator == "additionalProperties":
            extras = sorted(set(best.instance) - set(best.schema.get("properties", {})))
            for extra in extras:
                errors.append(FieldError(prefix + _path([*path, extra]), "is not a known field"))
            continue
        else:
            message = _short(best)
        field = _path(path)
        if rename and field in rename:
            field = rename[field]
        errors.append(FieldError(prefix + field if field else (prefix.rstrip(".") or "body"), message))
    return sorted(set(errors), key=lambda e: e.field)


def _short(error) -> str:
    """A message that does not echo the submitted value back (it may be personal data)."""
    v, s = error.validator, error.validator_value
    if v == "type":
        return "must be of type " + (s if isinstance(s, str) else " or ".join(s))
    if v == "enum":
        return "must be one of " + ", ".join(map(str, s))
    templates = {
        "maxLength": "must be at most {} characters",
        "minLength": "must be at least {} characters",
        "format": "must be a valid {}",
        "const": "must be {!r}",
        "maxProperties": "must have at most {} entries",
        "maxItems": "must have at most {} items",
        "minimum": "must be at least {}",
        "maximum": "must be at most {}",
        "pattern": "has an invalid format",
    }
    return templates[v].format(s) if v in templates else "is not valid"


def check(name: str, document: Any, prefix: str = "", rename: dict[str, str] | None = None) -> None:
    errors = field_errors(name, document, prefix, rename)
    if errors:
        raise ValidationFailed(errors)
