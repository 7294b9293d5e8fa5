"""A configuration written as JSON (the layer's packaged defaults, or an SSM override pasted as JSON) is read by
`json`, not PyYAML, and is checked exactly like its YAML: same document, same errors on the same lines."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from leadflow.errors import ScoringModelInvalid
from leadflow.scoring_model import load_model
from tests.unit.test_scoring_model import MODEL

ROOT = Path(__file__).resolve().parents[2]


def _as_json(document: dict) -> str:
    return json.dumps(document, indent=1)


def test_a_json_model_compiles_to_the_same_model_as_its_yaml():
    # Given the same model written in YAML and in JSON
    text = _as_json(yaml.safe_load(MODEL))
    # When both are loaded, Then they are the same model (personas, grades, fit and behaviour rules)
    from_json, from_yaml = load_model(text, "m.json"), load_model(MODEL, "m.yaml")
    for part in ("personas", "grades", "fit_rules", "behaviour_rules", "default_persona", "size_field"):
        assert getattr(from_json, part) == getattr(from_yaml, part), part


def test_a_problem_in_a_json_model_names_its_line_and_field():
    # Given a JSON model with points of the wrong type
    document = yaml.safe_load(MODEL)
    document["fit"]["rules"][1]["points"] = "fifteen"
    text = _as_json(document)
    # When it is loaded, Then the error names the JSON file's line of that field
    with pytest.raises(ScoringModelInvalid) as refused:
        load_model(text, "m.json")
    line = next(i for i, row in enumerate(text.splitlines(), 1) if '"fifteen"' in row)
    assert refused.value.problems[0].startswith(f"m.json:{line}: fit.rules[1].points: 'fifteen' is not of type")


def test_a_duplicate_key_in_json_is_refused_as_in_yaml():
    # Given a JSON text with a key twice (json alone would keep the last silently)
    text = '{\n "version": 1,\n "version": 1\n}\n'
    # When it is loaded, Then it is refused naming the duplicate on its line
    with pytest.raises(ScoringModelInvalid) as refused:
        load_model(text, "m.json")
    assert refused.value.problems == ["m.json:3: version: duplicate key (only the last would count)"]


def test_reading_a_json_model_does_not_import_pyyaml():
    # Given a fresh interpreter with the layer on its path, When it loads a valid JSON model
    probe = (
        "import sys, json; sys.path.insert(0, sys.argv[1])\n"
        "from leadflow.scoring_model import load_model\n"
        "load_model(sys.stdin.read(), 'm.json')\n"
        "print(json.dumps('yaml' in sys.modules))\n"
    )
    answer = subprocess.run(
        [sys.executable, "-c", probe, str(ROOT / "layers" / "leadflow")],
        input=_as_json(yaml.safe_load(MODEL)),
        capture_output=True,
        text=True,
        check=True,
    )
    # Then PyYAML was never imported (its ~12 ms are not paid by a cold start)
    assert json.loads(answer.stdout) is False
