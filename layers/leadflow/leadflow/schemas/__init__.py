"""JSON Schemas, loaded and compiled once per process (never `jsonschema.validate` on a hot path).

Two validators, one verdict. `conforms()` is a small checker of the keywords these schemas use; it imports
nothing but the standard library, so a valid document (nearly every request) never loads jsonschema and
its dependencies (referencing, rpds, attrs, jsonschema-specifications: ~100 ms of a cold start, plus
compiling the validator). It only ever answers "valid" when jsonschema would: on any keyword or format it
does not know it answers "don't know". Every other document goes to jsonschema's Draft 2020-12
validator, which decides and produces the error detail. tests/unit/test_schema_fast_path.py checks the
two agree on valid and invalid documents (hypothesis-generated) for every schema.
"""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path
from typing import Any

from leadflow.errors import FieldError, ValidationFailed

_DIR = Path(__file__).resolve().parent


@cache
def schema(name: str) -> dict:
    """The schema document `schemas/<name>` (parsed once)."""
    return json.loads((_DIR / name).read_text(encoding="utf-8"))


# --------------------------------------------------------------------------------------------------------
# fast path: True only when jsonschema would find no error; None when it cannot tell
# --------------------------------------------------------------------------------------------------------

_ANNOTATIONS = frozenset({"$schema", "$id", "$defs", "$comment", "title", "description", "default", "examples"})
_UNSURE = None


def _is_type(instance: Any, kind: str) -> bool:
    """JSON Schema types as jsonschema's Draft 2020-12 type checker sees them (bool is not a number)."""
    if kind == "string":
        return isinstance(instance, str)
    if kind == "object":
        return isinstance(instance, dict)
    if kind == "array":
        return isinstance(instance, list)
    if kind == "boolean":
        return isinstance(instance, bool)
    if kind == "null":
        return instance is None
    if isinstance(instance, bool):
        return False
    if kind == "integer":
        return isinstance(instance, int) or (isinstance(instance, float) and instance.is_integer())
    if kind == "number":
        return isinstance(instance, int | float)
    raise LookupError(kind)


def _equal(one: Any, two: Any) -> bool:
    """Equality as JSON Schema defines it for const/enum: true is not 1, [1] is not [True]."""
    if isinstance(one, bool) or isinstance(two, bool):
        return isinstance(one, bool) and isinstance(two, bool) and one == two
    if isinstance(one, dict) and isinstance(two, dict):
        return one.keys() == two.keys() and all(_equal(one[k], two[k]) for k in one)
    if isinstance(one, list) and isinstance(two, list):
        return len(one) == len(two) and all(_equal(a, b) for a, b in zip(one, two, strict=True))
    if isinstance(one, str) != isinstance(two, str):
        return False
    return one == two


@cache
def _pattern(pattern: str) -> re.Pattern:
    return re.compile(pattern)


def _format_ok(fmt: str, instance: Any) -> bool | None:
    if not isinstance(instance, str):
        return True  # formats apply to strings only
    if fmt == "date-time":
        try:
            from rfc3339_validator import validate_rfc3339  # what jsonschema's format checker uses
        except ImportError:  # pragma: no cover - then jsonschema does not check it either: let it decide
            return _UNSURE
        return bool(validate_rfc3339(instance.upper()))
    return _UNSURE


def _resolve(ref: str, root: dict) -> tuple[Any, dict]:
    document, _, pointer = ref.partition("#")
    target = schema(document) if document else root
    base = target
    for part in [p for p in pointer.split("/") if p]:
        target = target[part.replace("~1", "/").replace("~0", "~")]
    return target, base


def _conforms(node: Any, instance: Any, root: dict) -> bool | None:  # noqa: C901, PLR0911, PLR0912
    if node is True:
        return True
    if node is False:
        return False
    if not isinstance(node, dict):
        return _UNSURE
    verdict: bool | None = True
    for keyword, value in node.items():
        if keyword in _ANNOTATIONS:
            continue
        if keyword == "type":
            kinds = [value] if isinstance(value, str) else value
            try:
                ok: bool | None = any(_is_type(instance, kind) for kind in kinds)
            except LookupError:
                ok = _UNSURE
        elif keyword == "$ref":
            try:
                target, base = _resolve(value, root)
            except (KeyError, OSError, TypeError, ValueError):
                return _UNSURE
            ok = _conforms(target, instance, base)
        elif keyword == "const":
            ok = _equal(instance, value)
        elif keyword == "enum":
            ok = any(_equal(instance, option) for option in value)
        elif keyword in ("maxLength", "minLength"):
            ok = not isinstance(instance, str) or (
                len(instance) <= value if keyword == "maxLength" else len(instance) >= value
            )
        elif keyword == "pattern":
            ok = not isinstance(instance, str) or _pattern(value).search(instance) is not None
        elif keyword == "format":
            ok = _format_ok(value, instance)
        elif keyword in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
            number = isinstance(instance, int | float) and not isinstance(instance, bool)
            ok = (
                not number
                or {
                    "minimum": instance >= value,
                    "maximum": instance <= value,
                    "exclusiveMinimum": instance > value,
                    "exclusiveMaximum": instance < value,
                }[keyword]
            )
        elif keyword == "maxItems":
            ok = not isinstance(instance, list) or len(instance) <= value
        elif keyword == "minItems":
            ok = not isinstance(instance, list) or len(instance) >= value
        elif keyword == "uniqueItems":
            if not isinstance(instance, list) or not value:
                ok = True
            elif len(instance) > _MAX_UNIQUE_CHECK:
                return _UNSURE  # pairwise comparison (JSON equality: true is not 1) stays cheap for short lists
            else:
                ok = not any(
                    _equal(instance[i], instance[j]) for i in range(len(instance)) for j in range(i + 1, len(instance))
                )
        elif keyword == "items":
            if "prefixItems" in node:
                return _UNSURE
            ok = True
            if isinstance(instance, list):
                for item in instance:
                    ok = _and(ok, _conforms(value, item, root))
                    if ok is False:
                        break
        elif keyword == "maxProperties":
            ok = not isinstance(instance, dict) or len(instance) <= value
        elif keyword == "minProperties":
            ok = not isinstance(instance, dict) or len(instance) >= value
        elif keyword == "dependentRequired":
            ok = not isinstance(instance, dict) or all(
                all(other in instance for other in needed) for name, needed in value.items() if name in instance
            )
        elif keyword == "required":
            ok = not isinstance(instance, dict) or all(name in instance for name in value)
        elif keyword == "properties":
            ok = True
            if isinstance(instance, dict):
                for name, sub in value.items():
                    if name in instance:
                        ok = _and(ok, _conforms(sub, instance[name], root))
                        if ok is False:
                            break
        elif keyword == "additionalProperties":
            if "patternProperties" in node:
                return _UNSURE
            ok = True
            if isinstance(instance, dict):
                known = node.get("properties", {})
                for name, item in instance.items():
                    if name not in known:
                        ok = _and(ok, _conforms(value, item, root))
                        if ok is False:
                            break
        elif keyword == "propertyNames":
            ok = True
            if isinstance(instance, dict):
                for name in instance:
                    ok = _and(ok, _conforms(value, name, root))
                    if ok is False:
                        break
        elif keyword == "anyOf":
            results = [_conforms(sub, instance, root) for sub in value]
            ok = True if True in results else (False if all(r is False for r in results) else _UNSURE)
        elif keyword == "oneOf":
            results = [_conforms(sub, instance, root) for sub in value]
            if results.count(True) > 1:
                ok = False
            elif None in results:
                ok = _UNSURE
            else:
                ok = results.count(True) == 1
        elif keyword == "if":
            condition = _conforms(value, instance, root)
            if condition is None:
                return _UNSURE
            branch = node.get("then" if condition else "else", True)
            ok = _conforms(branch, instance, root)
        elif keyword in ("then", "else"):
            continue  # applied with `if`
        else:
            return _UNSURE  # a keyword this checker does not know: jsonschema decides
        verdict = _and(verdict, ok)
        if verdict is False:
            return False
    return verdict


_MAX_UNIQUE_CHECK = 64


def _and(one: bool | None, two: bool | None) -> bool | None:
    if one is False or two is False:
        return False
    if one is None or two is None:
        return _UNSURE
    return True


def conforms(name: str, document: Any) -> bool | None:
    """True: jsonschema would accept `document`; False: it would not; None: only jsonschema can tell."""
    root = schema(name)
    return _conforms(root, document, root)


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

    document = schema(name)
    Draft202012Validator.check_schema(document)
    return Draft202012Validator(document, registry=_registry(), format_checker=Draft202012Validator.FORMAT_CHECKER)


def _path(parts) -> str:
    return ".".join(str(p) for p in parts)


def field_errors(name: str, document: Any, prefix: str = "", rename: dict[str, str] | None = None) -> list[FieldError]:
    """Every violation of schema `name` as FieldError(field path, message), most specific first."""
    if conforms(name, document):
        return []  # jsonschema would find nothing: it is not even imported
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
