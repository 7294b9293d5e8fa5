"""The demo's form-tool traffic (leadflow_local.demo_forms_tools) is accepted and refused as it says."""

from __future__ import annotations

import random

from leadflow_local.demo_forms_tools import shots


def test_every_provider_shot_gets_the_answer_its_kind_expects(api):
    # Given the demo traffic for the five form-tool providers
    traffic = shots("http://127.0.0.1:3000", random.Random(7))
    assert {s.source for s in traffic} == {"typeform", "tally", "webflow", "hubspot-forms", "google-ads"}
    answers: dict[bytes, dict] = {}
    for shot in traffic:
        # When each is sent
        reply = api.request(shot.method, shot.path, shot.body, shot.headers)
        # Then signed deliveries are accepted, redeliveries answered the same, bad ones refused
        if shot.kind == "bad":
            assert reply.status in (401, 403), (shot.source, reply.status, reply.body)
        elif shot.kind == "redelivery":
            assert reply.status == 200, (shot.source, reply.body)
            assert reply.json == answers[shot.body], shot.source
        else:
            assert reply.status == 200, (shot.source, reply.body)
            assert reply.json["received"] == 1, shot.source
            answers[shot.body] = reply.json
