"""`leadflow up` routes qualified leads: the lead arrives in the local CRM with its owner's HubSpot owner id;
with the SLA scaled down (one hour of SLA time is two real seconds), an unanswered lead is reassigned to a
different owner by the local EventBridge Scheduler, the CRM gets the new owner, and the timeline says why."""

from __future__ import annotations

import json
import os
import time
import urllib.request

import pytest

from leadflow_local.runtime import LocalRuntime

pytestmark = pytest.mark.slow

RULES = """
owners:
  - {id: ann, name: Ann Lee, crm: {hubspot: "9001"}}
  - {id: bob, name: Bob Ray, crm: {hubspot: "9002"}}
  - {id: sdr, name: SDR queue, kind: queue, crm: {hubspot: "9100"}}
teams:
  - {id: us_sales, members: [ann, bob]}
rules:
  - name: us
    when: {country: [US]}
    assign: {team: us_sales}
  - name: default
    default: true
    assign: {queue: sdr}
sla:
  respond_within: {hours: 1}
  on_breach: reassign
  max_reassignments: 1
"""


@pytest.fixture
def stack(tmp_path):
    saved = dict(os.environ)
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES, encoding="utf-8")
    os.environ["LEADFLOW_ROUTING_FILE"] = str(rules)
    lines: list[str] = []
    runtime = LocalRuntime(port=0, crm_port=0, platforms_port=0, salesforce_port=0, time_scale=1800.0)
    runtime.emit = lines.append
    runtime.start()
    runtime.lines = lines
    try:
        yield runtime
    finally:
        runtime.stop()
        os.environ.clear()
        os.environ.update(saved)
        from leadflow import queues, schedules
        from leadflow.config import settings
        from leadflow.crm.config import crm_config
        from leadflow.store import models

        settings.cache_clear()
        crm_config.cache_clear()
        queues.reset()
        schedules.reset()
        models.bind()


def _json(method: str, url: str, body: dict | None = None) -> tuple[int, dict]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers={"content-type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as answer:  # noqa: S310 - loopback test URL
        return answer.status, json.loads(answer.read())


def _wait(predicate, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError("timed out")


def test_a_qualified_lead_reaches_the_crm_with_its_owner_and_is_reassigned_when_nobody_answers(stack):
    # Given a lead from the website form, qualified (an operator's stage move to mql)
    status, answer = _json(
        "POST", f"{stack.url}/v1/forms/website", {"email": "cto@globex.example.org", "country": "US"}
    )
    assert status == 202
    lead_id = answer["lead_id"]
    assert _json("POST", f"{stack.url}/v1/leads/{lead_id}/stage", {"stage": "mql", "reason": "demo request"})[0] == 200
    # Then it arrives in the local CRM with its owner's HubSpot owner id
    contact = _wait(
        lambda: (c := stack.crm.contact("cto@globex.example.org")) and c["properties"].get("hubspot_owner_id") and c
    )
    first = _json("GET", f"{stack.url}/v1/leads/{lead_id}")[1]["owner"]
    assert (first["team"], first["rule"]) == ("us_sales", "us")
    assert contact["properties"]["hubspot_owner_id"] == {"ann": "9001", "bob": "9002"}[first["id"]]
    # When nobody accepts it within the (scaled) hour
    second = _wait(
        lambda: (o := _json("GET", f"{stack.url}/v1/leads/{lead_id}")[1]["owner"])["id"] != first["id"] and o
    )
    # Then a different owner has it, the CRM follows, and the timeline says why
    assert second["previous"] == [first["id"]]
    _wait(
        lambda: (
            stack.crm.contact("cto@globex.example.org")["properties"]["hubspot_owner_id"]
            != contact["properties"]["hubspot_owner_id"]
        )
    )
    items = _json("GET", f"{stack.url}/v1/leads/{lead_id}/timeline?limit=100")[1]["items"]
    reassigned = next(i["detail"] for i in items if i["kind"] == "owner" and i["detail"].get("previous_owner"))
    assert reassigned["owner"] == second["id"]
    assert reassigned["reason"] == f"reassigned: no response from {first['id']} within 1 hour"
    # And the terminal said so, with ids only
    time.sleep(0.6)
    assert any(line.startswith("owner     lead " + lead_id) and "no response" in line for line in stack.lines)
    assert "@" not in " ".join(stack.lines)
