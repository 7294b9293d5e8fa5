"""Every state machine of template.yaml, checked statically: substitutions match both ways, every Task
retries and catches, every Wait reads its time from the state (a *Path), logging leaves execution data out."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from leadflow_local.template import load_template

ROOT = Path(__file__).resolve().parents[2]


def _machines() -> list[tuple[str, dict, str]]:
    template = load_template(ROOT / "template.yaml")
    found = []
    for logical_id, resource in template["Resources"].items():
        if resource["Type"] == "AWS::Serverless::StateMachine":
            props = resource["Properties"]
            found.append((logical_id, props, (ROOT / props["DefinitionUri"]).read_text(encoding="utf-8")))
    return found


MACHINES = _machines()


def _states(definition: dict):
    for name, state in definition["States"].items():
        yield name, state
        for branch in state.get("Branches", []):
            yield from _states(branch)
        if "ItemProcessor" in state:
            yield from _states(state["ItemProcessor"])


def test_the_journey_state_machine_is_in_the_template():
    assert [m[0] for m in MACHINES] == ["JourneyStateMachine"]
    assert all(p.get("Type", "STANDARD") == "STANDARD" for _, p, _ in MACHINES)


@pytest.mark.parametrize(("logical_id", "props", "text"), MACHINES, ids=[m[0] for m in MACHINES])
def test_every_substitution_is_used_and_every_placeholder_substituted(logical_id, props, text):
    used = set(re.findall(r"\$\{([^}]+)\}", text))
    given = set(props.get("DefinitionSubstitutions", {}))
    assert used - given == set(), f"{logical_id}: placeholders without a substitution"
    assert given - used == set(), f"{logical_id}: substitutions the definition never uses"


@pytest.mark.parametrize(("logical_id", "props", "text"), MACHINES, ids=[m[0] for m in MACHINES])
def test_no_arn_is_written_into_the_definition(logical_id, props, text):
    definition = json.loads(text)
    for name, state in _states(definition):
        function = (state.get("Parameters") or {}).get("FunctionName", "${}")
        assert function.startswith("${"), f"{logical_id}.{name}: FunctionName {function} is not a substitution"
        resource = state.get("Resource", "")
        assert not resource or resource.startswith(("${", "arn:aws:states:::")), f"{logical_id}.{name}: {resource}"


@pytest.mark.parametrize(("logical_id", "props", "text"), MACHINES, ids=[m[0] for m in MACHINES])
def test_every_task_retries_and_catches_and_every_wait_uses_a_path(logical_id, props, text):
    for name, state in _states(json.loads(text)):
        if state["Type"] == "Task":
            assert state.get("Retry"), f"{logical_id}.{name}: a Task without Retry"
            assert state.get("Catch"), f"{logical_id}.{name}: a Task without Catch"
        if state["Type"] == "Wait":
            assert set(state) & {"TimestampPath", "SecondsPath"}, f"{logical_id}.{name}: a Wait without a *Path"
            assert not set(state) & {"Seconds", "Timestamp"}, f"{logical_id}.{name}: a fixed Wait"


@pytest.mark.parametrize(("logical_id", "props", "text"), MACHINES, ids=[m[0] for m in MACHINES])
def test_execution_logging_leaves_execution_data_out(logical_id, props, text):
    logging = props.get("Logging") or {}
    assert logging.get("IncludeExecutionData") is False
    assert logging.get("Destinations"), f"{logical_id}: logging without a destination"
