"""template.yaml is the one source of the deployed shape; read here the way the local runtime reads it."""

from __future__ import annotations

import ast
import json
import re
import tomllib
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from leadflow_local.template import (
    create_tables,
    dynamodb_tables,
    function_properties,
    http_routes,
    load_template,
    table_ttl_attribute,
)

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def template() -> dict:
    return load_template(ROOT / "template.yaml")


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "UTC")
    monkeypatch.setenv("AWS_ACCOUNT_ID_ENDPOINT_MODE", "disabled")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_PROFILE", raising=False)


def _functions(template: dict) -> list[str]:
    return [name for name, r in template["Resources"].items() if r["Type"] == "AWS::Serverless::Function"]


def test_leads_table_built_in_moto_has_the_templates_keys_stream_and_ttl(template, aws_env):
    # Given the template's tables
    with mock_aws():
        client = boto3.client("dynamodb")

        # When the local runtime creates them
        names = create_tables(client, template, prefix="test-")

        # Then the leads table has pk/sk, a NEW_AND_OLD_IMAGES stream and TTL on expires_at
        assert names == {"LeadsTable": "test-LeadsTable", "FunnelTable": "test-FunnelTable"}
        table = client.describe_table(TableName=names["LeadsTable"])["Table"]
        assert {(k["AttributeName"], k["KeyType"]) for k in table["KeySchema"]} == {
            ("pk", "HASH"),
            ("sk", "RANGE"),
        }
        assert table["StreamSpecification"] == {"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"}
        assert table["LatestStreamArn"]
        ttl = client.describe_time_to_live(TableName=names["LeadsTable"])["TimeToLiveDescription"]
        assert ttl["TimeToLiveStatus"] == "ENABLED"
        assert ttl["AttributeName"] == "expires_at"


def test_table_kwargs_are_on_demand_and_ttl_accessor_reads_the_template(template):
    # Given the template / When its tables are read
    tables = dynamodb_tables(template)

    # Then every table is on demand locally and the TTL attribute comes from the template
    assert set(tables) == {"LeadsTable", "FunnelTable"}
    assert {t["BillingMode"] for t in tables.values()} == {"PAY_PER_REQUEST"}
    assert table_ttl_attribute(template, "LeadsTable") == "expires_at"
    # and the funnel counters' table has no stream (no reader follows counters), and a TTL that removes the
    # per-record markers (leadflow.store.funnel writes them with expires_at)
    assert "StreamSpecification" not in tables["FunnelTable"]
    assert table_ttl_attribute(template, "FunnelTable") == "expires_at"


def test_every_function_has_code_with_its_handler(template):
    # Given every function of the template
    for name in _functions(template):
        props = function_properties(template, name)
        module, attribute = props["Handler"].rsplit(".", 1)

        # When its CodeUri is opened
        source = ROOT / props["CodeUri"] / f"{module}.py"

        # Then the handler module exists and defines the handler at module level
        assert source.is_file(), f"{name}: {source} is missing"
        tree = ast.parse(source.read_text(encoding="utf-8"))
        defined = {n.name for n in tree.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)}
        defined |= {t.id for n in tree.body if isinstance(n, ast.Assign) for t in n.targets if isinstance(t, ast.Name)}
        defined |= {a.asname or a.name for n in tree.body if isinstance(n, ast.ImportFrom) for a in n.names}
        assert attribute in defined, f"{name}: {source} does not define {attribute}"


CONTRACT_ROUTES = {
    ("GET", "/health"): None,
    ("POST", "/v1/forms/{form_id}"): None,
    ("OPTIONS", "/v1/forms/{form_id}"): None,
    ("POST", "/v1/webhooks/{provider}"): None,
    ("GET", "/v1/leads/{lead_id}"): "AWS_IAM",
    ("GET", "/v1/leads"): "AWS_IAM",
    ("DELETE", "/v1/leads/{lead_id}"): "AWS_IAM",
}


def test_contract_routes_are_served_with_the_contracts_authentication(template):
    # Given the routes of the template
    routes = {(method, path): authorizer for method, path, _, _, authorizer in http_routes(template)}

    # When compared with the contract's routes for this wave
    missing = set(CONTRACT_ROUTES) - set(routes)

    # Then each is there, operator routes behind IAM and capture routes open
    assert not missing
    for route, authorizer in CONTRACT_ROUTES.items():
        assert routes[route] == authorizer, route


def test_routes_are_unique_and_point_at_existing_code(template):
    # Given the routes / When listed / Then no route is declared twice and each names a real folder
    routes = http_routes(template)
    keys = [(method, path) for method, path, *_ in routes]
    assert len(keys) == len(set(keys))
    for _, _, function, code_uri, _ in routes:
        assert function in template["Resources"]
        assert (ROOT / code_uri).is_dir()


def test_every_function_is_traced_and_logs_to_its_own_group_with_retention(template):
    # Given every function
    resources = template["Resources"]
    for name in _functions(template):
        # When its effective properties are read (Globals merged)
        props = function_properties(template, name)

        # Then tracing is active and it logs JSON to a log group of this stack that expires
        assert props["Tracing"] == "Active", name
        logging = props["LoggingConfig"]
        assert logging["LogFormat"] == "JSON", name
        group = resources[logging["LogGroup"]["Ref"]]
        assert group["Type"] == "AWS::Logs::LogGroup"
        assert group["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}


def _requirement_key(line: str) -> str:
    return re.sub(r"\s+", "", line).lower().replace("_", "-")


def test_layer_requirements_pin_the_runtime_dependencies_of_pyproject():
    # Given pyproject's runtime dependencies (boto3 comes from the Lambda runtime)
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    expected = {_requirement_key(d) for d in project["dependencies"] if not re.match(r"^boto3\b", d.strip(), re.I)}

    # When the layer's requirements are read
    lines = (ROOT / "layers/leadflow/requirements.txt").read_text(encoding="utf-8").splitlines()
    pinned = {_requirement_key(line) for line in lines if line.strip() and not line.lstrip().startswith("#")}

    # Then they are the same pins
    assert pinned == expected


def test_dev_samconfig_ships_the_example_form_registry():
    # Given the example registry and the dev deploy configuration
    registry = json.loads((ROOT / "infra/forms/dev.json").read_text(encoding="utf-8"))
    config = tomllib.loads((ROOT / "infra/samconfig.toml").read_text(encoding="utf-8"))

    # When the FormsRegistry override of the default (dev) environment is read
    overrides = config["default"]["deploy"]["parameters"]["parameter_overrides"]
    (value,) = [o.split("=", 1)[1] for o in overrides if o.startswith("FormsRegistry=")]

    # Then it is the same registry, and the website form the contract describes is in it
    assert json.loads(value.strip("'")) == registry
    assert "website" in registry["forms"]


def test_quarantined_deliveries_page_the_operator(template):
    # Given the template, when a signed delivery is quarantined (acknowledged, so the provider never retries it)
    alarms = [
        r["Properties"]
        for r in template["Resources"].values()
        if r["Type"] == "AWS::CloudWatch::Alarm"
        and any("Quarantined" in str(m.get("Expression", "")) for m in r["Properties"].get("Metrics", []))
    ]
    # Then one alarm watches the Quarantined metric of every provider and tells the alarm topic on the first one
    assert len(alarms) == 1
    (alarm,) = alarms
    assert alarm["Threshold"] == 1 and alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    assert alarm["AlarmActions"] == [{"Ref": "AlarmTopic"}]
    assert "quarantine replay" in str(alarm["AlarmDescription"])


def test_a_journey_an_event_could_not_resume_pages_the_operator(template):
    # Given the template, when an accepted event fails to resume the journey waiting for it
    alarms = [
        r["Properties"]
        for r in template["Resources"].values()
        if r["Type"] == "AWS::CloudWatch::Alarm"
        and any("JourneyResumeFailed" in str(m.get("Expression", "")) for m in r["Properties"].get("Metrics", []))
    ]
    # Then one alarm watches the metric the events service counts it as, and tells the alarm topic the first time
    assert len(alarms) == 1
    (alarm,) = alarms
    assert alarm["Threshold"] == 1 and alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    assert alarm["AlarmActions"] == [{"Ref": "AlarmTopic"}]
