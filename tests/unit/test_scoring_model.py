"""The scoring model is configuration: a YAML file checked at load, refused with file, line and field."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from leadflow.domain.model import EVENT_TYPES, SUPPRESSION_EVENT_TYPES
from leadflow.errors import ConfigurationError, ScoringModelInvalid
from leadflow.scoring_model import DEFAULT_MODEL_FILE, default_model, load_model, load_model_file

ROOT = Path(__file__).resolve().parents[2]

# A small valid model; the tests below break it one line at a time (line numbers are 1-based).
MODEL = """\
version: 1
personas:
  default: unknown
  rules:
    - id: smb
      company_size: {max: 49}
    - id: mid_market
      company_size: {min: 50, max: 999}
    - id: enterprise
      company_size: {min: 1000}
fit:
  grades: {A: 60, B: 40, C: 20}
  rules:
    - id: title_senior
      field: job_title
      matches:
        - '\\bvp\\b'
        - 'head of'
      points: 20
    - id: icp
      persona: [mid_market, enterprise]
      points: 15
behaviour:
  rules:
    - id: pricing
      event: page_view
      properties: {url: ['/pricing']}
      points: 10
    - id: click
      event: email_click
      points: 5
qualification:
  mql: {min_grade: B, min_behaviour: 50}
"""


def line_of(text: str, fragment: str, nth: int = 1) -> int:
    """1-based line of the `nth` line containing `fragment`."""
    return [i for i, line in enumerate(text.splitlines(), 1) if fragment in line][nth - 1]


def refused(text: str, source: str = "models/test.yaml") -> list[str]:
    with pytest.raises(ScoringModelInvalid) as caught:
        load_model(text, source)
    assert caught.value.source == source
    return caught.value.problems


def test_the_small_model_loads():
    model = load_model(MODEL, "models/test.yaml")
    assert [p.id for p in model.personas] == ["smb", "mid_market", "enterprise"]
    assert [r.id for r in model.fit_rules] == ["title_senior", "icp"]
    assert [r.id for r in model.behaviour_rules] == ["pricing", "click"]


def test_a_value_of_the_wrong_type_names_file_line_and_field():
    # Given a model whose second fit rule gives 'ten' points
    text = MODEL.replace("      points: 15", "      points: ten")

    # When it is loaded, Then it is refused with the file, that line and the field path
    assert refused(text) == [
        f"models/test.yaml:{line_of(text, 'points: ten')}: fit.rules[1].points: 'ten' is not of type 'integer'"
    ]


def test_an_unknown_field_is_named_on_its_own_line():
    text = MODEL.replace("      points: 5\n", "      points: 5\n      pointz: 5\n")
    (problem,) = refused(text)
    assert problem.startswith(f"models/test.yaml:{line_of(text, 'pointz')}: behaviour.rules[1].pointz: unknown field")


def test_a_missing_field_names_the_object_that_lacks_it():
    text = MODEL.replace("      points: 10\n", "")
    assert refused(text) == [
        f"models/test.yaml:{line_of(text, '- id: pricing')}: behaviour.rules[0]: 'points' is a required property"
    ]


def test_an_invalid_regular_expression_names_the_pattern_line():
    text = MODEL.replace("'head of'", "'head (of'")
    (problem,) = refused(text)
    assert problem.startswith(
        f"models/test.yaml:{line_of(text, 'head (of')}: fit.rules[0].matches[1]: invalid regular expression:"
    )


def test_overlapping_persona_ranges_are_refused():
    text = MODEL.replace("{min: 1000}", "{min: 900}")
    assert refused(text) == [
        f"models/test.yaml:{line_of(text, '{min: 900}')}: personas.rules[2].company_size: overlaps persona "
        "'mid_market' (personas.rules[1].company_size): ≥ 900 and 50–999"
    ]


def test_a_persona_narrowed_by_title_may_sit_inside_a_size_range():
    text = MODEL.replace(
        "    - id: smb\n",
        "    - id: enterprise_exec\n      company_size: {min: 1000}\n      title: [chief]\n    - id: smb\n",
    )
    assert load_model(text).personas[0].id == "enterprise_exec"


def test_grades_that_do_not_descend_are_refused():
    text = MODEL.replace("{A: 60, B: 40, C: 20}", "{A: 60, B: 60, C: 20}")
    assert refused(text) == [
        f"models/test.yaml:{line_of(text, 'grades')}: fit.grades.B: must be below A (60): grades descend A > B > C"
    ]


def test_duplicate_rule_ids_are_refused_across_fit_and_behaviour():
    text = MODEL.replace("- id: click", "- id: icp")
    assert refused(text) == [
        f"models/test.yaml:{line_of(text, 'id: icp', nth=2)}: behaviour.rules[1].id: duplicate rule id 'icp' "
        "(also fit.rules[1])"
    ]


@pytest.mark.parametrize("event", SUPPRESSION_EVENT_TYPES)
def test_suppression_events_cannot_earn_points(event):
    text = MODEL.replace("event: email_click", f"event: {event}")
    assert refused(text) == [
        f"models/test.yaml:{line_of(text, f'event: {event}')}: behaviour.rules[1].event: '{event}' gives no "
        "points: unsubscribe, bounce and complaint set suppression"
    ]


def test_a_rule_after_a_catch_all_of_its_event_type_is_unreachable():
    text = MODEL.replace("      properties: {url: ['/pricing']}\n", "").replace(
        "event: email_click", "event: page_view"
    )
    (problem,) = refused(text)
    assert problem.startswith(
        f"models/test.yaml:{line_of(text, 'id: click') + 1}: behaviour.rules[1].event: unreachable"
    )


def test_unknown_list_and_persona_names_are_refused():
    text = MODEL.replace("persona: [mid_market, enterprise]", "persona: [mid_market, enterprize]\n      domains: free")
    problems = refused(text)
    line = line_of(text, "enterprize")
    assert problems[0].startswith(f"models/test.yaml:{line}: fit.rules[1].persona[1]: unknown persona 'enterprize'")
    assert problems[1] == (
        f"models/test.yaml:{line + 1}: fit.rules[1].domains: names no list under `lists` ('free'; lists: none defined)"
    )


def test_several_problems_are_all_reported_in_line_order():
    text = MODEL.replace("points: 20", "points: twenty").replace("min_behaviour: 50", "min_behaviour: lots")
    problems = refused(text)
    assert [p.split(": ")[0] for p in problems] == [
        f"models/test.yaml:{line_of(text, 'twenty')}",
        f"models/test.yaml:{line_of(text, 'lots')}",
    ]
    assert "fit.rules[0].points" in problems[0] and "qualification.mql.min_behaviour" in problems[1]


def test_yaml_syntax_errors_name_the_line():
    text = MODEL.replace("      points: 5\n", "      points: [5\n")
    (problem,) = refused(text)
    assert problem.startswith("models/test.yaml:") and "not valid YAML" in problem
    assert int(problem.split(":")[1]) >= line_of(text, "points: [5")


def test_a_duplicate_key_is_refused_rather_than_silently_overwritten():
    text = MODEL.replace("      points: 5\n", "      points: 5\n      points: 50\n")
    assert refused(text) == [
        f"models/test.yaml:{line_of(text, 'points: 50')}: behaviour.rules[1].points: "
        "duplicate key (only the last would count)"
    ]


def test_an_unquoted_country_code_no_is_caught():
    # YAML 1.1 reads NO (Norway) as false: the schema names it instead of scoring nobody from Norway
    text = MODEL.replace(
        "  rules:\n    - id: title_senior",
        "  rules:\n    - id: nordics\n      field: country\n      in: [SE, NO]\n      points: 5\n"
        "    - id: title_senior",
        1,
    )
    (problem,) = refused(text)
    assert problem.startswith(f"models/test.yaml:{line_of(text, 'in: [SE, NO]')}: fit.rules[0].in")


def test_an_empty_model_is_refused():
    assert refused("# nothing yet\n") == ["models/test.yaml:1: the model is empty"]


def test_a_bad_shipped_model_is_refused_naming_its_file(tmp_path, monkeypatch):
    # Given a copy of the shipped default with one rule's points mistyped
    text = DEFAULT_MODEL_FILE.read_text(encoding="utf-8")
    broken = text.replace("      points: 15\n", "      points: fifteen\n", 1)
    path = tmp_path / "infra" / "scoring" / "default.yaml"
    path.parent.mkdir(parents=True)
    path.write_text(broken, encoding="utf-8")
    monkeypatch.chdir(tmp_path)

    # When it is loaded from the file
    with pytest.raises(ScoringModelInvalid) as caught:
        load_model_file(path)

    # Then the message names the file relative to where the operator stands, the line and the field
    line = line_of(broken, "points: fifteen")
    index = _fit_rule_index(broken, line)
    assert caught.value.problems == [
        f"infra/scoring/default.yaml:{line}: fit.rules[{index}].points: 'fifteen' is not of type 'integer'"
    ]
    # and it is a configuration error (500 on a request path, an alarm), not the caller's fault
    assert isinstance(caught.value, ConfigurationError)
    assert str(path.relative_to(tmp_path)) in str(caught.value)


def _fit_rule_index(text: str, line: int) -> int:
    lines = text.splitlines()[: line - 1]
    start = next(i for i, ln in enumerate(lines) if ln.startswith("fit:"))
    return sum(1 for ln in lines[start:] if ln.startswith("    - id: ")) - 1


def test_an_unreadable_file_is_refused(tmp_path):
    with pytest.raises(ScoringModelInvalid, match="cannot be read"):
        load_model_file(tmp_path / "missing.yaml")


def test_the_shipped_default_model_loads_and_is_compiled_once():
    model = default_model()
    assert model is default_model()  # same text → the compiled model is reused
    assert len(model.digest) == 12
    assert {p.id for p in model.personas} == {"smb", "mid_market", "enterprise"}


def test_the_schema_scores_exactly_the_contracts_engagement_events():
    schema = json.loads((ROOT / "layers/leadflow/leadflow/schemas/scoring_model.v1.json").read_text(encoding="utf-8"))
    scored = schema["$defs"]["behaviour_rule"]["properties"]["event"]["enum"]
    assert set(scored) == set(EVENT_TYPES) - set(SUPPRESSION_EVENT_TYPES)


def test_importing_the_loader_does_not_import_yaml():
    # PyYAML is a runtime dependency, paid only by code that loads a model (cold starts of other functions)
    code = "import sys, leadflow.scoring_model, leadflow.domain.scoring; print('yaml' in sys.modules)"
    env = {"PYTHONPATH": str(ROOT / "layers" / "leadflow"), "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert out.stdout.strip() == "False"


def test_patterns_that_only_work_alone_are_refused_with_a_hint():
    text = MODEL.replace("properties: {url: ['/pricing']}", "properties: {url: ['(?i)/pricing', '/plans']}")
    (problem,) = refused(text)
    assert problem.startswith(f"models/test.yaml:{line_of(text, '(?i)')}: behaviour.rules[0].properties.url: patterns")
    assert problem.endswith("matching is already case-insensitive")
