"""`leadflow up` pushes qualified leads: a signed webhook makes a lead, qualification (what scoring does,
set here through the store until the events route lands), the contact appears in the local HubSpot CRM and
the local Salesforce, and the CRM ids appear in `GET /v1/leads/{id}`; the terminal says `pushed hubspot`."""

from __future__ import annotations

import json
import os
import time
import urllib.request

import pytest

from leadflow_local.runtime import LocalRuntime
from tests.support.signing import dev_secret, standard_webhook_headers

pytestmark = pytest.mark.slow


@pytest.fixture
def stack():
    saved = dict(os.environ)
    lines: list[str] = []
    runtime = LocalRuntime(port=0, crm_port=0, platforms_port=0, salesforce_port=0, quiet=False)
    runtime.emit = lines.append  # the terminal lines, captured
    runtime.start()
    runtime.lines = lines
    try:
        yield runtime
    finally:
        runtime.stop()
        os.environ.clear()
        os.environ.update(saved)
        from leadflow import queues
        from leadflow.config import settings
        from leadflow.crm.config import crm_config
        from leadflow.store import models

        settings.cache_clear()
        crm_config.cache_clear()
        queues.reset()  # its SQS client named this stack's embedded AWS
        models.bind()


def _json(method: str, url: str, body: bytes | None = None, headers: dict | None = None) -> tuple[int, dict]:
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    with urllib.request.urlopen(request, timeout=30) as answer:  # noqa: S310 - loopback test URL
        return answer.status, json.loads(answer.read())


def test_a_qualified_lead_reaches_both_local_crms_and_its_ids_show_on_the_lead(stack):
    # Given a lead captured from a signed webhook over HTTP
    body = json.dumps(
        {"type": "lead.submitted", "data": {"email": "cto@initech.example.org", "first_name": "Ada",
                                             "last_name": "Lovelace", "company": "Initech"}}
    ).encode()  # fmt: skip
    status, answer = _json("POST", stack.url + "/v1/webhooks/generic", body,
                           standard_webhook_headers(body, dev_secret("webhooks/generic"), "msg_push_e2e"))  # fmt: skip
    assert status == 200
    lead_id = answer["leads"][0]["lead_id"]
    # When the lead qualifies (stage mql) and is routed to an owner
    from leadflow.store.models import LEAD_SK, LeadItem, lead_pk

    item = LeadItem.get(lead_pk(lead_id), LEAD_SK, consistent_read=True)
    item.lifecycle_stage = "mql"
    item.owner = {"id": "4711", "name": "Sam"}
    item.save()
    # Then within seconds the contact is in the local HubSpot CRM and the lead is in the local Salesforce
    deadline = time.monotonic() + 20
    lead: dict = {}
    while time.monotonic() < deadline:
        lead = _json("GET", f"{stack.url}/v1/leads/{lead_id}")[1]
        if {"hubspot", "salesforce"} <= set(lead.get("crm") or {}):
            break
        time.sleep(0.2)
    contact = stack.crm.contact("cto@initech.example.org")
    assert contact is not None and contact["properties"]["hubspot_owner_id"] == "4711"
    assert lead["crm"]["hubspot"]["id"] == contact["id"]
    assert lead["crm"]["salesforce"]["id"] == stack.salesforce.record(lead_id)["Id"]
    # And the terminal said so, with ids only
    time.sleep(0.8)
    pushed = [line for line in stack.lines if line.startswith("pushed hubspot")]
    assert pushed and lead_id in pushed[0] and "@" not in " ".join(stack.lines)
