"""`leadflow score simulate` (what-if under a candidate model, writes nothing) and `leadflow score rescore`
(stores the recomputed score, grade, persona and MQL move, with a history entry), over stored leads and events
paged through the sparse LeadsByStage index."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from leadflow.cli import main
from leadflow.domain.attribution import iso
from leadflow.scoring_model import DEFAULT_MODEL_FILE, default_model, load_model
from leadflow.services import score_replay
from leadflow.store import cohort
from leadflow.store.leads import WriteConflict
from leadflow.store.models import LEAD_SK, EventItem, LeadItem, event_sk, lead_pk
from tests.support.api import Api

NOW = datetime.now(UTC)
HOT = {"job_title": "VP Marketing", "company_size": "500", "industry": "software", "country": "US"}
# meeting 30 + webinar 15 + 2 clicks 10 = 55 behaviour (a day old: a little less after decay, still ≥ 50)
WARM_EVENTS = ["meeting_booked", "webinar_attended", "email_click", "email_click"]
BLAZING_EVENTS = ["meeting_booked", "meeting_booked", "webinar_attended", "webinar_attended"] + ["email_click"] * 3


def stricter_model_file(tmp_path) -> str:
    """The shipped model with grade A at 70 fit (was 60) and MQL at 80 behaviour (was 50)."""
    text = DEFAULT_MODEL_FILE.read_text(encoding="utf-8")
    assert "    A: 60\n" in text and "min_behaviour: 50" in text
    text = text.replace("    A: 60\n", "    A: 70\n").replace("min_behaviour: 50", "min_behaviour: 80")
    path = tmp_path / "stricter.yaml"
    path.write_text(text.replace("name: default", "name: stricter"), encoding="utf-8")
    return str(path)


def add_events(lead_id: str, types: list[str], at: datetime) -> None:
    for i, kind in enumerate(types):
        occurred = iso(at - timedelta(minutes=i))
        EventItem(
            lead_pk(lead_id),
            event_sk(occurred, uuid.uuid4().hex[:12]),
            entity="event",
            lead_id=lead_id,
            type=kind,
            occurred_at=occurred,
            properties={"campaign": "spring"},
            source="test",
            created_at=occurred,
        ).save()


def seed(api: Api) -> dict[str, str]:
    """Two warm website leads, one blazing generic-webhook lead, a cold free-mail student; lead ids by role."""
    ids = {}
    for name in ("warm1", "warm2"):
        reply = api.post_form("website", {"email": f"{name}@acme-example.com", **HOT})
        ids[name] = reply.json["lead_id"]
        add_events(ids[name], WARM_EVENTS, NOW - timedelta(days=1))
    blazing = api.post_generic({"email": "blazing@globex-example.com", **HOT}, "msg-blazing")
    ids["blazing"] = blazing.json["leads"][0]["lead_id"]
    add_events(ids["blazing"], BLAZING_EVENTS, NOW - timedelta(days=1))
    cold = api.post_form("website", {"email": "kid@gmail.com", "job_title": "Student"})
    ids["cold"] = cold.json["lead_id"]
    return ids


def dump(client) -> list[dict]:
    """Every item of the table (a test may Scan; the code under test may not)."""
    items = []
    for page in client.get_paginator("scan").paginate(TableName="LeadsTable", ConsistentRead=True):
        items += page["Items"]
    return sorted(items, key=lambda item: (item["pk"]["S"], item["sk"]["S"]))


def run_cli(capsys, monkeypatch, *argv: str) -> tuple[int, str]:
    monkeypatch.setenv("LEADFLOW_TABLE_NAME", "LeadsTable")  # restored after the test, whatever the CLI sets
    capsys.readouterr()  # what the seeding printed (the handlers' logs and metrics)
    code = main(["score", *argv, "--table", "LeadsTable"])
    return code, capsys.readouterr().out


def test_a_stricter_model_shows_fewer_mqls_and_writes_nothing(api, aws, tmp_path, capsys, monkeypatch):
    # Given stored leads and events: 3 qualify under the shipped model, one of them by a wide margin
    ids = seed(api)
    source_of = {
        role: api.request("GET", f"/v1/leads/{i}").json["attribution"]["first_touch"]["source"]
        for role, i in ids.items()
    }
    before = dump(aws)

    # When the operator simulates a stricter model
    code, out = run_cli(capsys, monkeypatch, "simulate", "--model", stricter_model_file(tmp_path), "--json")

    # Then fewer leads would be MQLs (only the blazing one stays), by source, and the table is unchanged
    assert code == 0
    report = json.loads(out)
    totals = report["totals"]
    assert totals["leads"] == 4
    assert (totals["mql_before"], totals["mql_after"]) == (3, 1)
    assert (totals["lead_to_mql_before"], totals["lead_to_mql_after"]) == (0.75, 0.25)
    assert totals["stage_changed"] == 2  # the warm ones: mql → lead
    assert totals["grade_changed"] == 3  # fit 65: A under the shipped model, B under the stricter one
    website, generic = source_of["warm1"], source_of["blazing"]
    assert set(report["by_source"]) == {website, generic}
    assert report["by_source"][website]["mql_before"] == 2 and report["by_source"][website]["mql_after"] == 0
    assert report["by_source"][website]["leads"] == 3
    assert report["by_source"][generic]["mql_before"] == 1 and report["by_source"][generic]["mql_after"] == 1
    assert dump(aws) == before


def test_simulate_prints_a_table_by_source(api, aws, tmp_path, capsys, monkeypatch):
    # Given the seeded leads
    seed(api)

    # When the what-if is printed for people
    code, out = run_cli(capsys, monkeypatch, "simulate", "--model", stricter_model_file(tmp_path))

    # Then each source and the total show MQLs and the Lead→MQL rate now and under the candidate
    assert code == 0
    total = next(line for line in out.splitlines() if line.startswith("total"))
    assert "3 -> 1" in total and "75.0% -> 25.0%" in total
    assert out.rstrip().endswith("nothing was written")
    assert "acme-example" not in out and "gmail" not in out  # no PII


def test_since_limits_the_cohort_to_recent_leads(api, aws, tmp_path, capsys, monkeypatch):
    # Given the seeded leads, one of the warm ones created 200 days ago
    ids = seed(api)
    old = LeadItem.get(lead_pk(ids["warm1"]), LEAD_SK)
    old.update(actions=[LeadItem.created_at.set(iso(NOW - timedelta(days=200)))])

    # When the simulation covers the last 90 days
    code, out = run_cli(
        capsys, monkeypatch, "simulate", "--model", stricter_model_file(tmp_path), "--since", "90d", "--json"
    )

    # Then the old lead is not in it
    assert code == 0
    assert json.loads(out)["totals"]["leads"] == 3
    assert json.loads(out)["totals"]["mql_before"] == 2


def test_leads_are_listed_in_pages_without_a_scan(api, aws, monkeypatch):
    # Given 5 leads in two stages
    ids = seed(api)
    extra = api.post_form("website", {"email": "fifth@acme-example.com"}).json["lead_id"]
    LeadItem.get(lead_pk(extra), LEAD_SK).update(actions=[LeadItem.lifecycle_stage.set("sql")])
    calls = []
    import botocore.client

    original = botocore.client.BaseClient._make_api_call

    def recording(client, operation, params):
        calls.append(operation)
        return original(client, operation, params)

    monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", recording)

    # When they are listed two at a time
    pages = list(cohort.lead_id_pages(None, page_size=2))

    # Then every lead comes exactly once, in pages of at most two, through Queries only
    listed = [lead_id for page in pages for lead_id in page]
    assert sorted(listed) == sorted([*ids.values(), extra])
    assert all(len(page) <= 2 for page in pages)
    assert "Scan" not in calls and "Query" in calls


def test_rescore_stores_scores_moves_qualified_leads_and_records_history(api, aws):
    # Given stored leads (capture scored their fit) and events written straight to the table, never scored
    ids = seed(api)
    model = default_model()

    # When the operator rescores every lead
    result = score_replay.rescore(model, None, NOW)

    # Then every lead has a score, grade and persona; the three qualified ones are MQLs since now
    # (the cold lead has no events: the fit score capture stored is already what the model says)
    assert (result.scanned, result.changed, result.qualified, result.conflicts) == (4, 3, 3, 0)
    for role in ("warm1", "warm2", "blazing"):
        lead = api.request("GET", f"/v1/leads/{ids[role]}").json
        assert lead["lifecycle_stage"] == "mql"
        assert lead["score"]["grade"] == "A" and lead["score"]["behaviour"] >= 50
        stored = LeadItem.get(lead_pk(ids[role]), LEAD_SK)
        assert stored.persona == "mid_market" and stored.mql_at == iso(NOW)
    cold = api.request("GET", f"/v1/leads/{ids['cold']}").json
    assert cold["lifecycle_stage"] == "lead" and cold["score"]["grade"] == "D"
    # And the timeline of a qualified lead shows the rescore and the stage move, with the rules
    timeline = api.request("GET", f"/v1/leads/{ids['warm1']}/timeline").json["items"]
    kinds = {entry["kind"]: entry["detail"] for entry in timeline}
    assert kinds["score"]["reason"] == "rescore" and kinds["score"]["to"]["grade"] == "A"
    assert {"rule": "meeting_booked"}.items() <= next(
        b for b in kinds["score"]["breakdown"] if b["rule"] == "meeting_booked"
    ).items()
    assert kinds["stage"]["from"] == "lead" and kinds["stage"]["to"] == "mql"

    # When it runs again at the same moment / Then nothing changes and nothing is written
    before = dump(aws)
    again = score_replay.rescore(model, None, NOW)
    assert (again.scanned, again.changed, again.qualified) == (4, 0, 0)
    assert dump(aws) == before


def test_rescore_under_a_stricter_model_changes_grades_but_never_demotes(api, aws, tmp_path, capsys, monkeypatch):
    # Given leads rescored (and qualified) under the shipped model
    ids = seed(api)
    score_replay.rescore(default_model(), None, NOW)

    # When the operator rescores with the stricter model from the command line
    code, out = run_cli(capsys, monkeypatch, "rescore", "--model", stricter_model_file(tmp_path))

    # Then grades follow the new model, while MQLs stay MQLs (the funnel moves forward only)
    assert code == 0 and "4 read" in out and "0 moved to mql" in out
    warm = api.request("GET", f"/v1/leads/{ids['warm1']}").json
    assert warm["score"]["grade"] == "B" and warm["lifecycle_stage"] == "mql"


def test_rescore_rereads_a_lead_that_changed_under_it(api, aws, monkeypatch):
    # Given a warm lead that a capture updates while the rescore is computing its score
    ids = seed(api)
    original = cohort.events_of
    raced = []

    def events_then_a_capture(lead_id):
        events = original(lead_id)
        if lead_id == ids["warm1"] and not raced:
            raced.append(lead_id)
            assert api.post_form("website", {"email": "warm1@acme-example.com", "company": "Acme"}).status == 202
        return events

    monkeypatch.setattr(cohort, "events_of", events_then_a_capture)
    refused = []
    save = cohort.save_rescore

    def recording_save(lead, *args, **kwargs):
        try:
            return save(lead, *args, **kwargs)
        except WriteConflict:
            refused.append(lead["lead_id"])
            raise

    monkeypatch.setattr(cohort, "save_rescore", recording_save)

    # When the rescore runs
    result = score_replay.rescore(default_model(), None, NOW)

    # Then the lead is scored once, on top of the capture (nothing of either is lost)
    assert refused == [ids["warm1"]]  # the write at the stale version was refused, then done again
    assert raced and result.conflicts == 0 and result.qualified == 3
    lead = api.request("GET", f"/v1/leads/{ids['warm1']}").json
    assert lead["company"] == "Acme" and lead["lifecycle_stage"] == "mql" and lead["touches"]["count"] == 2
    timeline = api.request("GET", f"/v1/leads/{ids['warm1']}/timeline").json["items"]
    rescored = [e for e in timeline if e["kind"] == "score" and e["detail"].get("reason") == "rescore"]
    assert len(rescored) == 1


def test_an_invalid_candidate_model_is_refused_naming_file_and_line(api, aws, tmp_path, capsys, monkeypatch):
    # Given a candidate model with a mistake
    path = tmp_path / "broken.yaml"
    path.write_text(DEFAULT_MODEL_FILE.read_text(encoding="utf-8").replace("min_behaviour: 50", "min_behaviour: x"))

    # When it is simulated / Then nothing runs and the error names the file and the field
    code = main(["score", "simulate", "--model", str(path), "--table", "LeadsTable"])
    assert code == 2
    assert "broken.yaml:" in capsys.readouterr().err and "min_behaviour" in load_error(path)


def load_error(path) -> str:
    with pytest.raises(Exception) as raised:
        load_model(path.read_text(encoding="utf-8"), str(path))
    return str(raised.value)
