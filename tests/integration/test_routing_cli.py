"""`leadflow route explain --lead ID` and `leadflow route simulate --rules new.yaml` against the table (moto),
and `leadflow leads accept` over the operator API route it calls."""

from __future__ import annotations

import json

from leadflow.cli import main
from leadflow.services import routing
from tests.integration.test_score_replay import dump

RULES = """
territories:
  dach: {countries: [DE, AT, CH]}
owners:
  - {id: ann, name: Ann Lee}
  - {id: bob, name: Bob Ray}
  - {id: dora, name: Dora Fink}
  - {id: sdr, name: SDR queue, kind: queue}
teams:
  - {id: us_sales, members: [ann, bob]}
rules:
  - name: dach
    when: {territory: [dach]}
    assign: {owner: dora}
  - name: us
    when: {country: [US]}
    assign: {team: us_sales}
  - name: default
    default: true
    assign: {queue: sdr}
"""


def seed(api, monkeypatch, tmp_path) -> dict[str, str]:
    current = tmp_path / "current.yaml"
    current.write_text(RULES, encoding="utf-8")
    monkeypatch.setenv("LEADFLOW_ROUTING_FILE", str(current))
    ids = {}
    for name, country in (("us1", "US"), ("us2", "US"), ("de", "DE"), ("br", "BR")):
        reply = api.post_form("website", {"email": f"{name}@initech.example.org", "country": country})
        ids[name] = reply.json["lead_id"]
        stage = api.request("POST", f"/v1/leads/{ids[name]}/stage", json.dumps({"stage": "mql", "reason": "hot"}))
        assert stage.status == 200
    return ids


def run(capsys, monkeypatch, *argv: str) -> tuple[int, str, str]:
    monkeypatch.setenv("LEADFLOW_TABLE_NAME", "LeadsTable")
    capsys.readouterr()
    code = main(["route", *argv, "--table", "LeadsTable"])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_explain_shows_the_matching_rule_and_why_each_earlier_rule_did_not(api, aws, capsys, monkeypatch, tmp_path):
    ids = seed(api, monkeypatch, tmp_path)
    routing.assign_lead(ids["us1"])
    code, out, _ = run(capsys, monkeypatch, "explain", "--lead", ids["us1"])
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == f"lead {ids['us1']} (stage mql)"
    assert lines[1].startswith("owner now: ann by rule us at ")
    assert lines[2:] == [
        "- dach: US is in none of the territories [dach]",
        "+ us: country US is in [US] -> team us_sales in turn: bob",  # ann had the last turn
        "-> bob (Bob Ray, team us_sales)",
    ]
    assert "@" not in out  # no PII


def test_simulate_shows_how_recent_mqls_would_be_distributed_and_writes_nothing(
    api, aws, capsys, monkeypatch, tmp_path
):
    seed(api, monkeypatch, tmp_path)
    candidate = tmp_path / "new.yaml"
    candidate.write_text(RULES.replace("countries: [DE, AT, CH]", "countries: [DE, AT, CH, BR]"), encoding="utf-8")
    before = dump(aws)
    code, out, _ = run(capsys, monkeypatch, "simulate", "--rules", str(candidate), "--json")
    assert code == 0
    report = json.loads(out)
    assert report["leads"] == 4
    assert report["current"]["by_owner"] == {"ann": 1, "bob": 1, "dora": 1, "sdr": 1}
    assert report["candidate"]["by_owner"] == {"ann": 1, "bob": 1, "dora": 2}
    assert report["changed"] == 1
    assert dump(aws) == before  # nothing written
    # And for people: a table by owner and by rule
    code, out, _ = run(capsys, monkeypatch, "simulate", "--rules", str(candidate))
    assert code == 0 and out.rstrip().endswith("1 of 4 leads would get another owner; nothing was written")
    assert any(line.split() == ["dora", "1", "2"] for line in out.splitlines())


def test_an_invalid_candidate_is_refused_naming_file_line_and_field(api, aws, capsys, monkeypatch, tmp_path):
    seed(api, monkeypatch, tmp_path)
    candidate = tmp_path / "bad.yaml"
    candidate.write_text(RULES.replace("assign: {owner: dora}", "assign: {owner: doro}"), encoding="utf-8")
    code, _, err = run(capsys, monkeypatch, "simulate", "--rules", str(candidate))
    assert code == 2
    assert f"{candidate}:14: rules[0].assign.owner: no owner 'doro'" in err
