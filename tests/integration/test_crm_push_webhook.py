"""Qualified leads are posted to the configured endpoint as Standard Webhooks signed events (real HTTP)."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from leadflow import cli
from leadflow.sources.base import verify_standard_webhook
from tests.support.push import lead_item, push_history, push_rig, qualify
from tests.support.signing import SECRETS_FILE

pytestmark = pytest.mark.slow
WEBHOOK_ONLY = {"targets": {"hubspot": {"enabled": False}, "webhook": {"enabled": True}}}


class Receiver:
    """An endpoint that answers the scripted statuses in turn (then 200) and keeps what it received."""

    def __init__(self) -> None:
        self.script: list[int] = []
        self.received: list[tuple[dict[str, str], bytes, int]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                status = receiver.script.pop(0) if receiver.script else 200
                receiver.received.append(({k.lower(): v for k, v in self.headers.items()}, body, status))
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/leads"


@pytest.fixture
def receiver(tmp_path, monkeypatch):
    endpoint = Receiver()
    secrets = json.loads(SECRETS_FILE.read_text())
    secrets["crm/webhook"]["url"] = endpoint.url
    path = tmp_path / "secrets.json"
    path.write_text(json.dumps(secrets))
    monkeypatch.setenv("LEADFLOW_SECRETS_FILE", str(path))
    yield endpoint
    endpoint.server.shutdown()


@pytest.fixture
def rig(aws, receiver, monkeypatch):
    return push_rig(monkeypatch, config=WEBHOOK_ONLY)


def capture(api, email: str) -> str:
    reply = api.post_form("website", {"email": email, "company": "Acme"})
    return reply.json["lead_id"]


def test_a_qualified_lead_is_posted_signed_with_a_stable_id_across_retries(api, receiver, rig):
    # Given an endpoint that fails once with 503, then accepts
    receiver.script = [503]
    lead_id = capture(api, "hook@acme.example.org")
    version = qualify(lead_id)
    rig.settle()
    # Then it was posted twice, both times with webhook-id lead_id#version and a valid signature
    assert [status for _, _, status in receiver.received] == [503, 200]
    secret = json.loads(SECRETS_FILE.read_text())["crm/webhook"]["secret"]
    for headers, body, _ in receiver.received:
        assert headers["webhook-id"] == f"{lead_id}#{version}"
        assert verify_standard_webhook(headers, body, [secret], time.time(), 300) == f"{lead_id}#{version}"
        event = json.loads(body)
        assert event["type"] == "lead.qualified" and event["data"]["lead_id"] == lead_id
        assert event["data"]["lifecycle_stage"] == "mql"
    assert int(lead_item(lead_id).crm["webhook"]["version"]) == version
    assert [h["outcome"] for h in push_history(lead_id)] == ["retry", "pushed"]


def test_410_disables_the_target_until_a_replay_after_the_fix(api, receiver, rig, capsys):
    # Given an endpoint that answers 410 Gone
    receiver.script = [410]
    first = capture(api, "gone1@acme.example.org")
    qualify(first)
    rig.settle()
    # Then the lead is dead-lettered with the reason and the target disabled: the next lead is not even posted
    second = capture(api, "gone2@acme.example.org")
    qualify(second)
    rig.settle()
    assert len(receiver.received) == 1
    dead = {d["lead_id"]: d["failure_reason"] for d in rig.dead_letters("webhook")}
    assert "410" in dead[first] and "disabled" in dead[second]
    # When the operator fixed the endpoint and replays the target's DLQ
    args = ["--target", "webhook", "--dlq-url", rig.dlq("webhook"), "--queue-url", rig.queue("webhook")]
    assert cli.main(["dlq", "replay", *args]) == 0
    rig.settle()
    # Then both leads are delivered and the target is enabled again
    posted = {json.loads(body)["data"]["lead_id"] for _, body, status in receiver.received if status == 200}
    assert posted == {first, second}
    assert rig.dead_letters("webhook") == []
