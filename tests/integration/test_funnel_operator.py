"""Operator commands of funnel analytics: spend import, the report table and page, and the rebuild."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from leadflow.cli import main
from leadflow.config import settings
from tests.integration.test_funnel_report import deliver
from tests.support.funnel import Traffic, stream_records


@pytest.fixture
def via_api(api, monkeypatch):
    """`leadflow report funnel --url …` answered by the real handlers (no server needed)."""

    def request(method, url, body=None):
        reply = api.request(method, url.split("127.0.0.1:3000", 1)[1])
        return reply.status, reply.body

    monkeypatch.setattr("leadflow.cli._request", request)
    return api


def _today() -> str:
    return datetime.now(UTC).date().isoformat()


def test_spend_import_then_cost_per_mql_and_the_table(aws, via_api, tmp_path, capsys):
    # Given leads from two channels, one of them an MQL
    day = _today()
    for i, source in enumerate(["zhihu", "zhihu", "baidu"]):
        reply = via_api.post_form("website", {"email": f"p{i}@acme{i}.io", "utm_source": source})
        lead_id = reply.json["lead_id"]
        if i == 0:
            from leadflow.services import leads

            leads.set_stage(lead_id, "mql", "qualified by sales", source="test")
    deliver(stream_records(settings().table_name))
    # And a spend file in two currencies (USD converted at the configured rate)
    spend = tmp_path / "spend.csv"
    spend.write_text(f"date,channel,campaign,cost,currency\n{day},zhihu,q4,1000,CNY\n{day},baidu,brand,100,USD\n")

    # When the operator imports it (twice: the second import replaces the first)
    assert main(["spend", "import", str(spend)]) == 0
    assert main(["spend", "import", str(spend)]) == 0
    assert "imported 2 spend rows" in capsys.readouterr().out

    # Then the report costs each channel's leads and MQLs
    report = via_api.request("GET", f"/v1/reports/funnel?group_by=utm_source&from={day}&to={day}").json
    rows = {r["group"]: r for r in report["rows"]}
    assert rows["zhihu"]["spend"] == 1000.0 and rows["zhihu"]["cost_per"]["lead"] == 500.0
    assert rows["zhihu"]["cost_per"]["mql"] == 1000.0
    assert rows["baidu"]["spend"] == 710.0 and rows["baidu"]["cost_per"]["mql"] is None
    assert report["totals"]["spend"] == 1710.0

    # And `leadflow report funnel` prints the same numbers as a table
    assert main(["report", "funnel", "--group-by", "utm_source", "--from", day, "--to", day]) == 0
    out = capsys.readouterr().out.splitlines()
    zhihu = next(line for line in out if line.startswith("zhihu"))
    assert zhihu.split()[1:3] == ["2", "1"]  # leads, MQLs
    assert "50.0%^" in zhihu and "1,000" in zhihu  # Lead→MQL above the 30-40 % band; cost per MQL


def test_a_bad_spend_file_names_each_line_and_imports_nothing(aws, via_api, tmp_path, capsys):
    spend = tmp_path / "spend.csv"
    spend.write_text(
        "date,source,campaign,cost,currency\n2026-11-02,zhihu,q4,12,CNY\nyesterday,zhihu,q4,1,CNY\n"
        "2026-11-02,baidu,q4,-5,CNY\n2026-11-02,baidu,q4,5,GBP\n"
    )
    assert main(["spend", "import", str(spend)]) == 2
    err = capsys.readouterr().err
    assert f"{spend}:3: date" in err and f"{spend}:4: cost" in err and f"{spend}:5: currency" in err
    report = via_api.request("GET", "/v1/reports/funnel?from=2026-11-01&to=2026-11-30").json
    assert report["totals"]["spend"] == 0


def test_rebuild_recounts_from_stored_leads_with_todays_utm_rules(aws, via_api, tmp_path, monkeypatch, capsys):
    # Given leads captured while no UTM rule existed (a Zhihu visitor is just a referrer then)
    monkeypatch.setenv("LEADFLOW_FUNNEL_CONFIG_FILE", str(tmp_path / "none.yaml"))
    (tmp_path / "none.yaml").write_text("currency: CNY\n")
    traffic = Traffic(via_api, leads=10, seed=5).run()
    deliver(stream_records(settings().table_name))
    first = (traffic.today - timedelta(days=1)).date().isoformat()
    last = (traffic.today + timedelta(days=5)).date().isoformat()
    url = f"/v1/reports/funnel?group_by=utm_source&attribution=first&from={first}&to={last}"
    before = via_api.request("GET", url).json
    assert "zhihu" not in {r["group"] for r in before["rows"]}

    # When the rules are configured and the operator rebuilds the counters
    monkeypatch.delenv("LEADFLOW_FUNNEL_CONFIG_FILE")
    assert main(["report", "rebuild"]) == 0
    assert "rebuilt the funnel counters from 10 leads" in capsys.readouterr().out

    # Then the counts match the test's own count per first-touch source, Zhihu named by its rule
    after = via_api.request("GET", url).json
    got = {r["group"]: +Counter(r["counts"]) for r in after["rows"]}
    assert got == {g: +c for g, c in traffic.expected("first.utm_source", first, last).items()}
    assert "zhihu" in got
    assert after["totals"]["counts"] == before["totals"]["counts"]
