"""Where a shipped configuration comes from (leadflow.yaml_config.config_text): the packaged default when the
stage sets no SSM parameter (or the stack's placeholder `default`), the SSM parameter's text when it does (read
through Powertools, refreshed after the max age), a file when development names one."""

from __future__ import annotations

import boto3
import pytest
import yaml
from aws_lambda_powertools.utilities import parameters

from leadflow import yaml_config
from leadflow.errors import JourneyConfigInvalid, ScoringModelInvalid, UpstreamUnavailable
from leadflow.journey_config import configured_journeys
from leadflow.scoring_model import current_model
from leadflow.yaml_config import MAX_AGE_SECONDS, config_text
from tests.integration.test_config_refresh import Clock, _reset_parameter_caches

REPO_INFRA = yaml_config.REPOSITORY_INFRA
PARAMETER = "/leadflow/dev/scoring"
JOURNEYS_PARAMETER = "/leadflow/dev/journeys"


def _model(name: str, min_behaviour: int) -> str:
    doc = yaml.safe_load((REPO_INFRA / "scoring" / "default.yaml").read_text(encoding="utf-8"))
    doc["name"], doc["qualification"]["mql"]["min_behaviour"] = name, min_behaviour
    return yaml.safe_dump(doc, allow_unicode=True, sort_keys=False)


def _journeys(name: str) -> str:
    doc = yaml.safe_load((REPO_INFRA / "journeys" / "default.yaml").read_text(encoding="utf-8"))
    doc["journeys"][0]["name"] = name
    return yaml.safe_dump(doc, allow_unicode=True, sort_keys=False)


@pytest.fixture
def layer(tmp_path, monkeypatch):
    """The package as the built layer has it: leadflow/defaults/<name>/default.yaml (here with its own names, so
    a test can tell the packaged copy from the checkout's infra/ file), and no development file named."""
    packaged = tmp_path / "defaults"
    for name, text in (("scoring", _model("packaged", 77)), ("journeys", _journeys("packaged-nurture"))):
        (packaged / name).mkdir(parents=True)
        (packaged / name / "default.yaml").write_text(text, encoding="utf-8")
    monkeypatch.setattr(yaml_config, "PACKAGED_DEFAULTS", packaged)
    for variable in ("SCORING_MODEL_FILE", "SCORING_PARAMETER", "JOURNEYS_FILE", "JOURNEYS_PARAMETER"):
        monkeypatch.delenv(f"LEADFLOW_{variable}", raising=False)
    return packaged


@pytest.fixture
def ssm(aws, monkeypatch):
    client = boto3.client("ssm", region_name="us-east-1")
    clock = Clock()
    monkeypatch.setattr(parameters.base, "datetime", clock.datetime())
    _reset_parameter_caches()
    yield client, clock
    _reset_parameter_caches()


def test_without_a_parameter_the_functions_run_the_packaged_defaults(layer):
    # Given a deployed package (defaults inside it) and a stage that sets no SSM parameter
    # When the functions load the scoring model and the journeys
    model, journeys = current_model(), configured_journeys()
    # Then both are the packaged copies
    assert (model.name, model.mql_min_behaviour) == ("packaged", 77)
    assert list(journeys.journeys)[0] == "packaged-nurture"


def test_the_stacks_placeholder_parameter_means_the_packaged_default(layer, ssm, monkeypatch):
    # Given the parameter as `sam deploy` creates it: the placeholder `default` (no manual step after deploy)
    client, _ = ssm
    client.put_parameter(Name=PARAMETER, Type="String", Tier="Advanced", Value="default")
    monkeypatch.setenv("LEADFLOW_SCORING_PARAMETER", PARAMETER)
    # Then the model in force is the packaged default
    assert current_model().name == "packaged"


def test_a_parameter_set_by_the_stage_overrides_the_default_and_is_refreshed_after_the_max_age(layer, ssm, monkeypatch):
    # Given the stage names SSM parameters holding its own model and journeys
    client, clock = ssm
    client.put_parameter(Name=PARAMETER, Type="String", Tier="Advanced", Value=_model("from-ssm", 60))
    client.put_parameter(Name=JOURNEYS_PARAMETER, Type="String", Tier="Advanced", Value=_journeys("ssm-nurture"))
    monkeypatch.setenv("LEADFLOW_SCORING_PARAMETER", PARAMETER)
    monkeypatch.setenv("LEADFLOW_JOURNEYS_PARAMETER", JOURNEYS_PARAMETER)
    # When the functions load them, they are the parameters' texts, not the packaged files
    assert (current_model().name, current_model().mql_min_behaviour) == ("from-ssm", 60)
    assert list(configured_journeys().journeys)[0] == "ssm-nurture"
    # and an edit is read again only after the max age (Powertools' cache), then it is in force
    client.put_parameter(Name=PARAMETER, Value=_model("edited", 40), Overwrite=True)
    clock.advance(MAX_AGE_SECONDS - 5)
    assert current_model().name == "from-ssm"
    clock.advance(10)
    assert (current_model().name, current_model().mql_min_behaviour) == ("edited", 40)


def test_a_broken_parameter_is_refused_naming_the_parameter_line_and_field(layer, ssm, monkeypatch):
    client, _ = ssm
    broken = _journeys("x").replace("name: x", "name: ''", 1)
    client.put_parameter(Name=JOURNEYS_PARAMETER, Type="String", Tier="Advanced", Value=broken)
    monkeypatch.setenv("LEADFLOW_JOURNEYS_PARAMETER", JOURNEYS_PARAMETER)
    with pytest.raises(JourneyConfigInvalid) as refused:
        configured_journeys()
    line = broken.splitlines().index("- name: ''") + 1
    assert refused.value.problems[0].startswith(f"ssm:{JOURNEYS_PARAMETER}:{line}: journeys[0].name: ")


def test_a_parameter_that_cannot_be_read_is_upstream_unavailable_not_the_default(layer, ssm, monkeypatch):
    # Given the stage names a parameter that does not exist (deleted, or no grant)
    monkeypatch.setenv("LEADFLOW_SCORING_PARAMETER", "/leadflow/dev/missing")
    # Then loading fails as a retryable 503, rather than silently scoring with another model
    with pytest.raises(UpstreamUnavailable):
        current_model()


def test_a_development_file_wins_over_the_parameter_and_the_default(layer, tmp_path, monkeypatch):
    path = tmp_path / "mine.yaml"
    path.write_text(_model("mine", 10), encoding="utf-8")
    monkeypatch.setenv("LEADFLOW_SCORING_MODEL_FILE", str(path))
    monkeypatch.setenv("LEADFLOW_SCORING_PARAMETER", "/never/read")
    assert current_model().name == "mine"


def test_a_new_configuration_follows_the_same_pattern_by_its_name(layer, ssm, monkeypatch):
    # Given a configuration `routing` packaged like the others, and then an SSM override for it
    (layer / "routing").mkdir()
    (layer / "routing" / "default.yaml").write_text("rules: []\n", encoding="utf-8")
    monkeypatch.delenv("LEADFLOW_ROUTING_FILE", raising=False)
    monkeypatch.delenv("LEADFLOW_ROUTING_PARAMETER", raising=False)
    text, source = config_text("routing", ScoringModelInvalid, "The routing rules could not be read")
    assert (text, source.replace("\\", "/").endswith("defaults/routing/default.yaml")) == ("rules: []\n", True)
    client, _ = ssm
    client.put_parameter(Name="/leadflow/dev/routing", Type="String", Value="rules: [x]\n")
    monkeypatch.setenv("LEADFLOW_ROUTING_PARAMETER", "/leadflow/dev/routing")
    assert config_text("routing", ScoringModelInvalid, "unused") == ("rules: [x]\n", "ssm:/leadflow/dev/routing")
