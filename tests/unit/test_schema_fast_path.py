"""leadflow.schemas.conforms (the fast path that never imports jsonschema) agrees with jsonschema.

For every schema: documents shaped by the schema (values on both sides of each limit, required fields
missing or present, unknown fields, wrong types) and arbitrary JSON are judged by both. Whenever the fast
path answers, it answers what jsonschema's Draft 2020-12 validator (with its format checker) answers;
and on a valid document it answers by itself, so a valid request never needs jsonschema.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, find, given, settings
from hypothesis import strategies as st

from leadflow.schemas import _resolve, conforms, schema, validator

SCHEMAS = sorted(
    p.name for p in (Path(__file__).resolve().parents[2] / "layers/leadflow/leadflow/schemas").glob("*.json")
)

JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-5, 5)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=6),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=6,
)


def shaped(node, root, depth: int = 0):  # noqa: C901 - one branch per keyword
    """Documents that follow `node` loosely: mostly valid, often just across one of its limits."""
    if not isinstance(node, dict) or depth > 5:
        return JSON
    if "$ref" in node:
        target, base = _resolve(node["$ref"], root)
        return shaped(target, base, depth + 1)
    options = []
    if "const" in node:
        options.append(st.just(node["const"]))
    if "enum" in node:
        options.append(st.sampled_from(node["enum"]))
    for branch in node.get("anyOf", []):
        options.append(shaped(branch, root, depth + 1))
    kinds = node.get("type", [])
    for kind in [kinds] if isinstance(kinds, str) else kinds:
        if kind == "string":
            low = max(0, node.get("minLength", 0) - 1)
            high = min(node.get("maxLength", 12) + 1, 40)
            options.append(st.text(min_size=low, max_size=max(low, high)))
            if "maxLength" in node and node["maxLength"] > 40:
                options.append(st.just("x" * node["maxLength"]) | st.just("x" * (node["maxLength"] + 1)))
            if "pattern" in node:
                options.append(st.from_regex(node["pattern"]))
            if node.get("format") == "date-time":
                options.append(st.datetimes().map(lambda d: d.isoformat() + "Z"))
                options.append(st.sampled_from(["2026-02-30T10:00:00Z", "2026-11-22T10:00:00+01:00", "2026-11-22"]))
        elif kind in ("integer", "number"):
            low = node.get("minimum", -10) - 1
            high = node.get("maximum", 10**6) + 1
            options.append(st.integers(low, high))
            if kind == "number":
                options.append(st.floats(low, high, allow_nan=False))
            else:
                options.append(st.sampled_from([float(low + 1), low + 1.5]))
        elif kind == "boolean":
            options.append(st.booleans())
        elif kind == "null":
            options.append(st.none())
        elif kind == "array":
            limit = min(node.get("maxItems", 3) + 1, 4)
            options.append(st.lists(shaped(node.get("items", True), root, depth + 1), max_size=limit))
        elif kind == "object":
            properties = node.get("properties", {})
            required = [name for name in node.get("required", []) if name in properties]
            optional = {name: shaped(sub, root, depth + 1) for name, sub in properties.items() if name not in required}
            fixed = {name: shaped(properties[name], root, depth + 1) for name in required}
            base = st.fixed_dictionaries(fixed, optional=optional)
            extra = st.dictionaries(
                st.text(max_size=8) | st.from_regex(r"^[a-z_]{1,8}$", fullmatch=True), JSON, max_size=2
            )
            options.append(base)
            options.append(st.tuples(base, extra).map(lambda pair: {**pair[1], **pair[0]}))
            options.append(
                st.tuples(base, st.sampled_from(required or [""])).map(
                    lambda p: {k: v for k, v in p[0].items() if k != p[1]}
                )
            )
    return st.one_of(options) if options else JSON


def jsonschema_accepts(name: str, document) -> bool:
    return next(iter(validator(name).iter_errors(document)), None) is None


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::hypothesis.errors.HypothesisWarning")
@pytest.mark.parametrize("name", SCHEMAS)
@settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_the_fast_path_answers_what_jsonschema_answers(name, data):
    # Given a document shaped by the schema (or arbitrary JSON)
    document = data.draw(shaped(schema(name), schema(name)) | JSON, label="document")
    # When both validators judge it
    fast = conforms(name, document)
    # Then the fast path either defers (None) or agrees
    if fast is not None:
        assert fast == jsonschema_accepts(name, document)


@pytest.mark.slow
@pytest.mark.parametrize("name", SCHEMAS)
def test_the_fast_path_accepts_a_valid_document_by_itself(name):
    # Given a valid document of the schema that fills several fields
    root = schema(name)
    document = find(
        shaped(root, root),
        lambda doc: (
            jsonschema_accepts(name, doc)
            and (not isinstance(doc, dict) or len(doc) >= min(2, len(root.get("properties", {}))))
        ),
        settings=settings(max_examples=1000, database=None, deadline=None, suppress_health_check=list(HealthCheck)),
    )
    # Then the fast path says valid without jsonschema
    assert conforms(name, document) is True


@pytest.mark.slow
@pytest.mark.parametrize("name", SCHEMAS)
def test_the_fast_path_rejects_an_invalid_document_by_itself(name):
    # Given a document jsonschema refuses
    root = schema(name)
    document = find(
        shaped(root, root),
        lambda doc: not jsonschema_accepts(name, doc),
        settings=settings(max_examples=1000, database=None, deadline=None, suppress_health_check=list(HealthCheck)),
    )
    # Then the fast path refuses it too (check() then asks jsonschema for the detail)
    assert conforms(name, document) is False
