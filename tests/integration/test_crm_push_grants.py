"""The push functions' DynamoDB calls are all granted in template.yaml (the other half of least privilege,
as tests/integration/test_grants_cover_calls.py does for the capture functions)."""

from __future__ import annotations

import json

import pytest

from leadflow_local.local_crm import LocalCrm
from tests.integration.test_crm_push_webhook import receiver  # noqa: F401 - fixture
from tests.integration.test_grants_cover_calls import _assert_granted, recorder, template  # noqa: F401
from tests.support.push import push_rig, qualify

pytestmark = pytest.mark.slow


def test_hubspot_push_calls_only_granted_actions(api, aws, recorder, template, monkeypatch):  # noqa: F811
    crm = LocalCrm(port=0).start()
    monkeypatch.setenv("LEADFLOW_HUBSPOT_API_URL", crm.url)
    try:
        rig = push_rig(monkeypatch)
        ok = api.post_form("website", {"email": "grants@acme.example.org"}).json["lead_id"]
        bad = api.post_form("website", {"email": "grants2@acme.example.org"}).json["lead_id"]
        qualify(ok)
        qualify(bad, email="not-an-email")
        crm.set_faults(fail_next=1)  # a retry too
        rig.router.poll_once()
        # When the push function pushes, retries, writes back and dead-letters
        with recorder.calls() as called:
            for _ in range(5):
                rig.deliveries["hubspot"].drain()
        assert crm.contact("grants@acme.example.org")
        _assert_granted(template, "HubSpotPushFunction", called)
    finally:
        crm.stop()


def test_webhook_push_calls_only_granted_actions(api, aws, recorder, template, receiver, monkeypatch):  # noqa: F811
    rig = push_rig(monkeypatch, config={"targets": {"hubspot": {"enabled": False}, "webhook": {"enabled": True}}})
    receiver.script = [410]
    lead_id = api.post_form("website", {"email": "hook-grants@acme.example.org"}).json["lead_id"]
    qualify(lead_id)
    rig.router.poll_once()
    # When the webhook function meets a 410 (disables the target) and then a replayed lead (enables it)
    with recorder.calls() as called:
        rig.deliveries["webhook"].drain()
        replay = {"target": "webhook", "leads": [{"lead_id": lead_id}], "replay": True}
        rig.sqs.send_message(QueueUrl=rig.queue("webhook"), MessageBody=json.dumps(replay))
        rig.deliveries["webhook"].drain()
    assert [status for _, _, status in receiver.received] == [410, 200]
    _assert_granted(template, "WebhookPushFunction", called)
