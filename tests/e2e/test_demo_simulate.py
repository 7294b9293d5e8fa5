"""`leadflow score simulate` on the demo's own data (issue 9, "What must be shown"): after `leadflow demo`
against `leadflow up`, a stricter candidate model qualifies fewer leads than the shipped one, and the what-if
writes nothing to the table."""

from __future__ import annotations

import io
import json
import threading

import botocore.client
import pytest

from leadflow.cli import main
from leadflow.scoring_model import DEFAULT_MODEL_FILE
from leadflow_local.demo import run_demo
from tests.e2e.test_local_runtime import stack  # noqa: F401 - the running `leadflow up` fixture

WRITES = {"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"}


@pytest.mark.slow
def test_simulate_on_the_demo_data_shows_fewer_qualified_under_a_stricter_model_and_writes_nothing(
    stack,  # noqa: F811
    tmp_path,
    capsys,
    monkeypatch,
):
    # Given the demo's traffic sent to a running stack (some of its leads qualify under the shipped model)
    run_demo(stack.url, out=io.StringIO(), platforms_url=stack.platforms.url)
    stricter = tmp_path / "stricter.yaml"
    text = DEFAULT_MODEL_FILE.read_text(encoding="utf-8")
    assert "min_behaviour: 50" in text
    stricter.write_text(text.replace("min_behaviour: 50", "min_behaviour: 400"), encoding="utf-8")

    # When the operator simulates the stricter model (the DynamoDB calls of this thread are recorded; the
    # stack's own stream and journey threads keep working meanwhile)
    made: list[str] = []
    original = botocore.client.BaseClient._make_api_call
    me = threading.get_ident()

    def recording(self, operation_name, api_params):
        if threading.get_ident() == me and self.meta.service_model.service_name == "dynamodb":
            made.append(operation_name)
        return original(self, operation_name, api_params)

    monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", recording)
    capsys.readouterr()
    code = main(["score", "simulate", "--model", str(stricter), "--json", "--table", stack.tables["LeadsTable"]])
    report = json.loads(capsys.readouterr().out)

    # Then the stricter model would qualify fewer of the demo's leads by their score (none: no demo lead has 400
    # behaviour points), by source too. (The demo's MQLs went on to sql and customer by the CRM's feedback and an
    # operator's stage move, stages a replay keeps: their MQL count cannot drop, and must not rise.)
    totals = report["totals"]
    assert code == 0
    assert totals["leads"] >= 10
    assert totals["qualified_before"] >= 1 and totals["qualified_after"] < totals["qualified_before"]
    assert sum(row["qualified_before"] for row in report["by_source"].values()) == totals["qualified_before"]
    assert totals["mql_before"] >= 1 and totals["mql_after"] <= totals["mql_before"]
    assert totals["lead_to_mql_after"] <= totals["lead_to_mql_before"]
    assert sum(row["mql_before"] for row in report["by_source"].values()) == totals["mql_before"]
    # and the what-if read the table (pages of the stage index, the leads, their events) without writing or scanning
    assert made and not WRITES & set(made) and "Scan" not in made
