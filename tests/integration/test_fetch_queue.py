"""The lead fetch queue: retries with the template's event source settings, the dead-letter queue with the
failure reason, and `leadflow dlq list|replay` (Meta deliveries against a fake Graph API)."""

from __future__ import annotations

import json

import pytest

from leadflow import cli
from tests.integration.test_provider_meta import graph_lead, leadgen_delivery, meta_headers
from tests.support.fake_graph import FakeGraph
from tests.support.fetch import fetch_queues
from tests.support.signing import dev_secret

META = dev_secret("webhooks/meta")


@pytest.fixture
def graph(monkeypatch):
    fake = FakeGraph(access_token=META["access_token"])
    monkeypatch.setenv("LEADFLOW_META_GRAPH_URL", fake.url)
    yield fake
    fake.stop()


@pytest.fixture
def fetch(aws, monkeypatch):
    return fetch_queues(monkeypatch)


def deliver(api, *leadgen_ids: str):
    body = leadgen_delivery(*leadgen_ids)
    reply = api.request("POST", "/v1/webhooks/meta", body, meta_headers(body))
    assert reply.status == 200
    return reply


def dlq_cli(fetch, *args: str) -> int:
    return cli.main(["dlq", *args, "--dlq-url", fetch.dlq_url, "--queue-url", fetch.queue_url])


def test_a_fetch_that_fails_twice_then_succeeds_ends_as_one_lead(api, graph, fetch):
    # Given the Graph API answers 500 twice for a lead, then the lead
    graph.add_lead("910000000000001", graph_lead("retry@example.com"), script=[500, 500, 200])
    deliver(api, "910000000000001")
    # When the queue is drained (failed records come back, as Lambda's partial batch responses do)
    fetch.drain()
    # Then the lead exists once, after three reads, and nothing is dead-lettered
    lead = api.get_lead_by_email("retry@example.com").json
    assert lead["touches"]["count"] == 1
    assert graph.fetches_of("910000000000001") == 3
    assert fetch.count(fetch.dlq_url) == 0
    assert fetch.count(fetch.queue_url) == 0


def test_a_fetch_that_always_fails_is_dead_lettered_with_the_reason_and_replayed(api, graph, fetch, capsys):
    # Given a lead the Graph API cannot serve (HTTP 500 on every try)
    graph.add_lead("910000000000002", graph_lead("outage@example.com"), script=[500])
    deliver(api, "910000000000002")
    # When the queue is drained
    fetch.drain()
    # Then it was tried the configured number of times (4) and sits in the DLQ with why, when and what
    assert graph.fetches_of("910000000000002") == 4
    [message] = fetch.messages(fetch.dlq_url)
    attributes = {name: value["StringValue"] for name, value in message["MessageAttributes"].items()}
    assert attributes["provider"] == "meta"
    assert attributes["failure_reason"] == "meta API: HTTP 500 (error code 2)"
    assert attributes["failed_at"]
    assert attributes["pointer_id"] == "910000000000002"
    assert json.loads(message["Body"])["pointer"]["id"] == "910000000000002"
    assert api.get_lead_by_email("outage@example.com").status == 404
    # and `leadflow dlq list` shows it, without PII
    assert dlq_cli(fetch, "list") == 0
    listed = capsys.readouterr().out
    assert "910000000000002" in listed and "HTTP 500" in listed and "outage@example.com" not in listed

    # When the Graph API recovers and the operator replays the DLQ
    graph.script["910000000000002"] = [200]
    assert dlq_cli(fetch, "replay", "--all") == 0
    assert fetch.count(fetch.dlq_url) == 0
    fetch.drain()
    # Then the lead is captured
    assert api.get_lead_by_email("outage@example.com").status == 200
    assert fetch.count(fetch.dlq_url) == 0


def test_a_permanent_refusal_goes_to_the_dlq_at_once_without_holding_back_the_others(api, graph, fetch, capsys):
    # Given one delivery naming a lead the Page token may not read (403) and one it may
    graph.add_lead("910000000000003", graph_lead("hidden@example.com"), script=[403])
    graph.add_lead("910000000000004", graph_lead("visible@example.com"))
    deliver(api, "910000000000003", "910000000000004")
    # When the queue is drained
    fetch.drain()
    # Then the readable lead is captured, and the refused one is dead-lettered after one try (no retries)
    assert api.get_lead_by_email("visible@example.com").status == 200
    assert graph.fetches_of("910000000000003") == 1
    [message] = fetch.messages(fetch.dlq_url)
    assert message["MessageAttributes"]["failure_reason"]["StringValue"].startswith("meta API: HTTP 403")
    # and replaying one message by its pointer id puts exactly that one back
    assert dlq_cli(fetch, "replay", "--id", "910000000000003") == 0
    assert "replayed 1" in capsys.readouterr().out
    assert fetch.count(fetch.queue_url) == 1


def test_a_graph_outage_for_the_whole_batch_call_is_retried(api, graph, fetch, monkeypatch):
    # Given the Graph API is unreachable for the first read (connection refused)
    graph.add_lead("910000000000005", graph_lead("late@example.com"))
    deliver(api, "910000000000005")
    monkeypatch.setenv("LEADFLOW_META_GRAPH_URL", "http://127.0.0.1:9")
    fetch.delivery.deliver_once()
    assert api.get_lead_by_email("late@example.com").status == 404
    # When it is reachable again and the queue is drained
    monkeypatch.setenv("LEADFLOW_META_GRAPH_URL", graph.url)
    fetch.drain()
    # Then the lead is captured
    assert api.get_lead_by_email("late@example.com").status == 200
    assert fetch.count(fetch.dlq_url) == 0
