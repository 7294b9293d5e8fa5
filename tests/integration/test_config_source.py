"""Where a shipped configuration comes from (leadflow.yaml_config.config_text): the packaged default when the
stage sets no SSM parameter (or the stack's placeholder `default`), the SSM parameter's text when it does (read
through Powertools, refreshed after the max age), a file when development names one."""

from __future__ import annotations

import boto3
import pytest
import yaml
from aws_lambda_powertools.utilities import parameters

from leadflow import yaml_config
from leadflow.ads.config import conversion_config
from leadflow.crm_feedback_config import configured_feedback
from leadflow.errors import JourneyConfigInvalid, RoutingConfigInvalid, ScoringModelInvalid, UpstreamUnavailable
from leadflow.funnel_config import current_config as funnel_config
from leadflow.journey_config import configured_journeys
from leadflow.routing_config import configured_routing
from leadflow.scoring_model import current_model
from leadflow.yaml_config import MAX_AGE_SECONDS, config_text
from tests.integration.test_config_refresh import Clock, _reset_parameter_caches

REPO_INFRA = yaml_config.REPOSITORY_INFRA
PARAMETER = "/leadflow/dev/scoring"
JOURNEYS_PARAMETER = "/leadflow/dev/journeys"
ROUTING_PARAMETER = "/leadflow/dev/routing"
CONVERSIONS_PARAMETER = "/leadflow/dev/conversions"
FEEDBACK_PARAMETER = "/leadflow/dev/crm-feedback"
FUNNEL_PARAMETER = "/leadflow/dev/funnel"
SETTINGS = ("FILE", "PARAMETER")


def _model(name: str, min_behaviour: int) -> str:
    doc = yaml.safe_load((REPO_INFRA / "scoring" / "default.yaml").read_text(encoding="utf-8"))
    doc["name"], doc["qualification"]["mql"]["min_behaviour"] = name, min_behaviour
    return yaml.safe_dump(doc, allow_unicode=True, sort_keys=False)


def _journeys(name: str) -> str:
    doc = yaml.safe_load((REPO_INFRA / "journeys" / "default.yaml").read_text(encoding="utf-8"))
    doc["journeys"][0]["name"] = name
    return yaml.safe_dump(doc, allow_unicode=True, sort_keys=False)


def _routing(desk: str) -> str:
    """The shipped routing rules with the enterprise desk renamed (so a test can tell which copy loaded)."""
    doc = yaml.safe_load((REPO_INFRA / "routing" / "default.yaml").read_text(encoding="utf-8"))
    (owner,) = [o for o in doc["owners"] if o["id"] == "enterprise_lead"]
    owner["name"] = desk
    return yaml.safe_dump(doc, allow_unicode=True, sort_keys=False)


def _conversions(meta_enabled: bool, window_days: int) -> str:
    doc = yaml.safe_load((REPO_INFRA / "conversions" / "default.yaml").read_text(encoding="utf-8"))
    doc["platforms"]["meta"].update(enabled=meta_enabled, window_days=window_days)
    return yaml.safe_dump(doc, allow_unicode=True, sort_keys=False)


def _feedback(value_property: str) -> str:
    doc = yaml.safe_load((REPO_INFRA / "crm_feedback" / "default.yaml").read_text(encoding="utf-8"))
    doc["hubspot"]["value_property"] = value_property
    return yaml.safe_dump(doc, allow_unicode=True, sort_keys=False)


def _funnel(customer_value: int) -> str:
    doc = yaml.safe_load((REPO_INFRA / "funnel" / "default.yaml").read_text(encoding="utf-8"))
    doc["customer_value"] = customer_value
    return yaml.safe_dump(doc, allow_unicode=True, sort_keys=False)


@pytest.fixture
def layer_only(tmp_path, monkeypatch):
    """A deployed layer and nothing else: routing, conversions and CRM feedback defaults packaged (with their own
    values), no checkout's infra/ to fall back on, no development file named."""
    packaged = tmp_path / "defaults"
    shipped = {"routing": _routing("Packaged desk"), "conversions": _conversions(True, 3)}
    for name, text in {**shipped, "crm_feedback": _feedback("packaged_amount"), "funnel": _funnel(4321)}.items():
        (packaged / name).mkdir(parents=True)
        (packaged / name / "default.yaml").write_text(text, encoding="utf-8")
    monkeypatch.setattr(yaml_config, "PACKAGED_DEFAULTS", packaged)
    monkeypatch.setattr(yaml_config, "REPOSITORY_INFRA", tmp_path / "no-checkout" / "infra")
    monkeypatch.delenv("LEADFLOW_FUNNEL_CONFIG_FILE", raising=False)
    for name in ("ROUTING", "CONVERSIONS", "CRM_FEEDBACK", "FUNNEL"):
        for setting in SETTINGS:
            monkeypatch.delenv(f"LEADFLOW_{name}_{setting}", raising=False)
    return packaged


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


def test_the_placeholder_runs_the_packaged_defaults_without_a_checkout(layer_only, ssm, monkeypatch):
    # Given the stage's parameters as `sam deploy` writes them (the placeholder `default`) and only the layer
    client, _ = ssm
    client.put_parameter(Name=ROUTING_PARAMETER, Type="String", Tier="Advanced", Value="default")
    client.put_parameter(Name=CONVERSIONS_PARAMETER, Type="String", Tier="Advanced", Value="default\n")
    client.put_parameter(Name=FEEDBACK_PARAMETER, Type="String", Tier="Advanced", Value="default")
    client.put_parameter(Name=FUNNEL_PARAMETER, Type="String", Tier="Advanced", Value="default")
    monkeypatch.setenv("LEADFLOW_ROUTING_PARAMETER", ROUTING_PARAMETER)
    monkeypatch.setenv("LEADFLOW_CONVERSIONS_PARAMETER", CONVERSIONS_PARAMETER)
    monkeypatch.setenv("LEADFLOW_CRM_FEEDBACK_PARAMETER", FEEDBACK_PARAMETER)
    monkeypatch.setenv("LEADFLOW_FUNNEL_PARAMETER", FUNNEL_PARAMETER)

    # When the routing, conversions, CRM feedback and funnel functions load their configuration
    routing, conversions, feedback = configured_routing(), conversion_config(), configured_feedback()
    funnel = funnel_config()

    # Then they run the packaged copies (no manual step after the deploy, no "holds the placeholder" failure)
    assert routing.owners["enterprise_lead"].name == "Packaged desk"
    assert routing.rules[-1].default
    assert (conversions.platforms["meta"].enabled, conversions.platforms["meta"].window_days) == (True, 3)
    assert feedback.value_property == "packaged_amount"
    assert funnel.settings.customer_value == 4321 and funnel.utm_rules


def test_routing_and_conversions_parameters_override_the_packaged_defaults(layer_only, ssm, monkeypatch):
    # Given the stage's parameters hold the operator's own routing rules and conversions configuration
    client, clock = ssm
    client.put_parameter(Name=ROUTING_PARAMETER, Type="String", Tier="Advanced", Value=_routing("SSM desk"))
    client.put_parameter(Name=CONVERSIONS_PARAMETER, Type="String", Tier="Advanced", Value=_conversions(False, 5))
    monkeypatch.setenv("LEADFLOW_ROUTING_PARAMETER", ROUTING_PARAMETER)
    monkeypatch.setenv("LEADFLOW_CONVERSIONS_PARAMETER", CONVERSIONS_PARAMETER)

    # Then those are in force, not the packaged copies
    assert configured_routing().owners["enterprise_lead"].name == "SSM desk"
    assert conversion_config().platforms["meta"].window_days == 5
    assert not conversion_config().platforms["meta"].enabled
    client.put_parameter(Name=FEEDBACK_PARAMETER, Type="String", Tier="Advanced", Value=_feedback("deal_value"))
    monkeypatch.setenv("LEADFLOW_CRM_FEEDBACK_PARAMETER", FEEDBACK_PARAMETER)
    assert configured_feedback().value_property == "deal_value"
    client.put_parameter(Name=FUNNEL_PARAMETER, Type="String", Tier="Advanced", Value=_funnel(999))
    monkeypatch.setenv("LEADFLOW_FUNNEL_PARAMETER", FUNNEL_PARAMETER)
    assert funnel_config().settings.customer_value == 999

    # and an edit reaches the warm function after the max age, without a deploy
    client.put_parameter(Name=ROUTING_PARAMETER, Value=_routing("Edited desk"), Overwrite=True)
    clock.advance(MAX_AGE_SECONDS - 5)
    assert configured_routing().owners["enterprise_lead"].name == "SSM desk"
    clock.advance(10)
    assert configured_routing().owners["enterprise_lead"].name == "Edited desk"


def test_a_broken_routing_parameter_is_refused_naming_the_parameter_line_and_field(layer_only, ssm, monkeypatch):
    # Given routing rules in SSM whose team names an owner that does not exist
    client, _ = ssm
    broken = _routing("Desk").replace("members:\n  - ava\n", "members:\n  - nobody\n", 1)
    assert broken != _routing("Desk")
    client.put_parameter(Name=ROUTING_PARAMETER, Type="String", Tier="Advanced", Value=broken)
    monkeypatch.setenv("LEADFLOW_ROUTING_PARAMETER", ROUTING_PARAMETER)

    # When the routing function loads them, they are refused with the parameter, line and field
    with pytest.raises(RoutingConfigInvalid) as refused:
        configured_routing()
    line = broken.splitlines().index("  - nobody") + 1
    assert refused.value.problems == [f"ssm:{ROUTING_PARAMETER}:{line}: teams[0].members[0]: no owner 'nobody'"]


def test_a_configuration_parameter_that_cannot_be_read_is_upstream_unavailable(layer_only, ssm, monkeypatch):
    # Given the stage names parameters that do not exist (deleted, or no grant)
    monkeypatch.setenv("LEADFLOW_ROUTING_PARAMETER", "/leadflow/dev/missing-routing")
    monkeypatch.setenv("LEADFLOW_CONVERSIONS_PARAMETER", "/leadflow/dev/missing-conversions")
    monkeypatch.setenv("LEADFLOW_CRM_FEEDBACK_PARAMETER", "/leadflow/dev/missing-crm-feedback")
    # Then loading fails as retryable, rather than silently running the packaged default
    with pytest.raises(UpstreamUnavailable, match="routing rules could not be read"):
        configured_routing()
    with pytest.raises(UpstreamUnavailable, match="conversions configuration could not be read"):
        conversion_config()
    with pytest.raises(UpstreamUnavailable, match="CRM feedback configuration could not be read"):
        configured_feedback()
