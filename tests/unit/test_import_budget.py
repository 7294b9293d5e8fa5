"""What a capture function's cold start loads: its import and its first request, in a fresh interpreter.

The cold-start bench (bench/cold_start.py) measures the time; this test pins what it is spent on. A fresh
interpreter imports `functions/<name>/app.py` (the layer first on sys.path, as on Lambda) and serves one
new lead against the embedded AWS (moto's server, in this test's process, so nothing of moto or boto3 is
preloaded in the child); then every top-level package it loaded must be on the allow list below. A new
heavy dependency on the capture path (boto3 next to botocore, jsonschema for a valid body, the X-Ray SDK,
phonenumbers' geocoding tables) fails here instead of silently adding to every visitor's first request.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

import leadflow
from tests.support.aws import FORMS_FILE, SECRETS_FILE
from tests.support.signing import dev_secret, standard_webhook_headers

# Third-party top-level packages a capture cold start may load (the standard library is always allowed).
ALLOWED = {
    "app",  # the function's own module
    "leadflow",
    "aws_lambda_powertools",  # Logger and Metrics
    "pynamodb",
    "botocore",  # pynamodb's client (the runtime's botocore)
    "urllib3",  # botocore's HTTP
    "dateutil",  # botocore
    "jmespath",  # botocore
    "six",  # python-dateutil
    "certifi",  # botocore's CA bundle
    "blinker",  # pynamodb's signals, when installed (not in the layer)
    "typing_extensions",  # aws_lambda_powertools
    "phonenumbers",  # phone numbers, metadata per region on first use
    # capture scores the lead's fit: the scoring model is YAML (PyYAML's C loader is a Cython module); the
    # model is checked by the stdlib schema fast path, so jsonschema stays out while the model is valid
    "yaml",
    "_cython_3_3_1",
    "cython_runtime",
}
# Submodules that must not load either (their top-level package is allowed for other reasons).
FORBIDDEN_MODULES = ("phonenumbers.geodata",)  # 19 MB of place names the capture never asks for

LAYER = Path(leadflow.__file__).resolve().parents[1]  # the checkout whose leadflow the tests import
FUNCTIONS = LAYER.parents[1] / "functions"

CHILD = """
import json, sys
before = set(sys.modules)
layer, folder, event = sys.argv[1], sys.argv[2], json.loads(sys.stdin.read())
sys.path[:0] = [layer, folder]
import app

class Context:
    function_name = "budget"
    function_version = "$LATEST"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:budget"
    aws_request_id = "00000000-0000-4000-8000-000000000002"

    def get_remaining_time_in_millis(self):
        return 10000

result = app.handler(event, Context())
loaded = sorted(set(sys.modules) - before)
sys.stderr.write("BUDGET " + json.dumps({"status": result["statusCode"], "body": result.get("body"), "loaded": loaded}))
"""


@pytest.fixture(scope="module")
def embedded_aws():
    from leadflow_local.moto_server import EmbeddedAws
    from leadflow_local.template import create_tables, load_template

    with EmbeddedAws(port=0) as aws:
        tables = create_tables(aws.client("dynamodb"), load_template())
        yield aws.endpoint, tables["LeadsTable"]


def lead(tag: str) -> dict:
    n = uuid.uuid4().int
    return {
        "email": f"budget.{tag}.{n % 10**8}@example.io",
        "phone": f"+1 415 555 {n % 10000:04d}",
        "first_name": "Ada",
        "company": "Analytical Engines",
        "country": "United Kingdom",  # a country by name: the country-name table, not phonenumbers' geodata
        "utm_source": "newsletter",
        "consent_email": True,
    }


def webhook_event() -> dict:
    from leadflow_local.apigw import build_event

    body = json.dumps({"type": "lead.submitted", "data": lead("webhook")}).encode()
    headers = standard_webhook_headers(body, dev_secret("webhooks/generic"), f"msg_{uuid.uuid4().hex}")
    return build_event(
        "POST",
        "/v1/webhooks/generic",
        route_key="POST /v1/webhooks/{provider}",
        path_parameters={"provider": "generic"},
        headers=headers,
        body=body,
    )


def form_event() -> dict:
    from leadflow_local.apigw import build_event

    return build_event(
        "POST",
        "/v1/forms/website",
        route_key="POST /v1/forms/{form_id}",
        path_parameters={"form_id": "website"},
        headers={"content-type": "application/json", "origin": "http://localhost:8080"},
        body=json.dumps({**lead("form"), "consent_email": "on", "_hp": ""}).encode(),
    )


def cold_start(function: str, event: dict, endpoint: str, table: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "LEADFLOW_", "POWERTOOLS_"))}
    env.pop("PYTHONPATH", None)  # only the layer and the function folder, as on Lambda
    env.update(
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_REGION="us-east-1",
        AWS_ENDPOINT_URL=endpoint,
        AWS_ACCOUNT_ID_ENDPOINT_MODE="disabled",
        TZ="UTC",
        LEADFLOW_TABLE_NAME=table,
        LEADFLOW_SECRETS_FILE=str(SECRETS_FILE),
        LEADFLOW_FORMS_FILE=str(FORMS_FILE),
        POWERTOOLS_SERVICE_NAME="leadflow",
        POWERTOOLS_METRICS_NAMESPACE="LeadFlow",
        POWERTOOLS_LOG_LEVEL="INFO",
    )
    done = subprocess.run(  # noqa: S603 - our own interpreter and script
        [sys.executable, "-c", CHILD, str(LAYER), str(FUNCTIONS / function)],
        input=json.dumps(event),
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stderr.rsplit("BUDGET ", 1)[1])


@pytest.mark.slow
@pytest.mark.parametrize(
    ("function", "event", "status"), [("capture_webhook", webhook_event, 200), ("capture_form", form_event, 202)]
)
def test_a_capture_cold_start_loads_only_allowed_packages(embedded_aws, function, event, status):
    endpoint, table = embedded_aws
    # Given a fresh interpreter with nothing but the layer and the function's folder
    # When it imports the function and serves one new lead
    outcome = cold_start(function, event(), endpoint, table)
    assert outcome["status"] == status, outcome["body"]
    assert "created" in outcome["body"]
    # Then every top-level package it loaded is the standard library or on the allow list
    top_level = {name.split(".", 1)[0] for name in outcome["loaded"]}
    unexpected = sorted(top_level - ALLOWED - set(sys.stdlib_module_names) - {"__main__"})
    assert unexpected == [], f"{function}'s cold start now loads {unexpected}: measure it (make bench) first"
    # And none of the submodules known to cost seconds
    assert [m for m in outcome["loaded"] if m.startswith(FORBIDDEN_MODULES)] == []


def test_every_model_and_the_capture_transaction_share_one_botocore_client(monkeypatch):
    from leadflow.store import leads as store
    from leadflow.store.models import ALL_MODELS
    from tests.support.aws import local_aws

    # Given the store bound to a (moto) table
    with local_aws(monkeypatch):
        # When every model and the capture's transaction ask for their DynamoDB client
        clients = {id(model._get_connection().connection.client) for model in ALL_MODELS}
        clients.add(id(store._connection().client))
    # Then there is one: pynamodb alone builds a session and client per model class (~100 ms each, cold)
    assert len(clients) == 1
