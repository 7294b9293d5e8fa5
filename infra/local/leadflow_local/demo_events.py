"""The demo's engagement events (`POST /v1/events`, Standard Webhooks with the dev secret `events`).

Sent after the people exist: Ada (a CTO at a software company, grade A or B) views pricing twice, clicks an
email, attends a webinar and books a meeting, so she becomes an MQL; Emmy engages a little (scored, not
qualified); Marie unsubscribes (suppressed). One event arrives for a partner lead before that lead is captured
(kept anonymous, applied when the lead appears: `early_shots`). One delivery is redelivered and one batch
carries an event of an unknown type (rejected, the others accepted).
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta

EARLY_EMAIL = "lead2@northwind-traders.com"  # captured later by the generic webhook (demo.py, partner leads)


def _at(minutes_ago: float) -> str:
    return (datetime.now(UTC) - timedelta(minutes=minutes_ago)).isoformat(timespec="seconds")


def _shot(body: object, msg_id: str, kind: str = "submission"):
    from leadflow_local.demo import Shot, _secret, _standard_webhook

    raw = json.dumps(body).encode()
    return Shot("events", "POST", "/v1/events", raw, _standard_webhook(raw, _secret("events"), msg_id), kind)


def early_shots() -> list:
    """Before the partner leads are captured: engagement from an email no lead holds yet."""
    page = {"type": "page_view", "email": EARLY_EMAIL, "occurred_at": _at(30), "properties": {"url": "/pricing"}}
    return [_shot(page, f"evt_demo_early_{int(time.time())}")]


def shots() -> list:
    stamp = int(time.time())
    ada, emmy, marie = "ada@analytical-engines.co.uk", "emmy@invariant.de", "marie@radium-institute.fr"
    hot = [
        {"type": "page_view", "email": ada, "occurred_at": _at(50), "properties": {"url": "https://x.io/pricing"}},
        {"type": "email_click", "email": ada, "occurred_at": _at(40), "properties": {"campaign": "november-digest"}},
        {"type": "page_view", "email": ada, "occurred_at": _at(30), "properties": {"url": "https://x.io/pricing"}},
        {"type": "webinar_attended", "email": ada, "occurred_at": _at(20), "properties": {"product": "scoring"}},
    ]
    meeting = {"type": "meeting_booked", "email": ada, "occurred_at": _at(5)}
    warm = [
        {"type": "email_open", "email": emmy, "occurred_at": _at(15)},
        {"type": "content_download", "email": emmy, "occurred_at": _at(10), "properties": {"asset": "roi-guide"}},
        {"type": "email_teleport", "email": emmy, "occurred_at": _at(9)},  # unknown type: rejected alone
    ]
    unsubscribe = {"type": "unsubscribe", "email": marie, "occurred_at": _at(1)}
    redelivered = _shot(meeting, f"evt_demo_meeting_{stamp}")
    redelivered.kind = "redelivery"
    return [
        _shot({"events": hot}, f"evt_demo_hot_{stamp}"),
        _shot(meeting, f"evt_demo_meeting_{stamp}"),
        redelivered,
        _shot(warm, f"evt_demo_warm_{stamp}"),
        _shot(unsubscribe, f"evt_demo_unsub_{stamp}"),
    ]
