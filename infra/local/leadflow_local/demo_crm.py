"""The demo's CRM feedback: the CRM's verdicts come back once the qualified lead is in the local CRM.

Ada (the demo's MQL, pushed to the local HubSpot) is marked a sales-qualified lead by HubSpot, then her deal is
won with its amount: the local CRM sends HubSpot's signed webhooks (`POST /__webhooks/contact|deal`). Emmy
(never pushed) is reported lost by another CRM through the generic route (Standard Webhooks, `crm/generic`)
with the reason "No need now": recycled, and the win-back journey scheduled 30 days later. The terminal lines
are `crm sql`, `won` and `recycled → journey winback`.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime
from typing import IO, Any

ADA, EMMY = "ada@analytical-engines.co.uk", "emmy@invariant.de"


def _post(url: str, body: dict) -> tuple[int, Any]:
    request = urllib.request.Request(  # noqa: S310 - the local CRM's URL, given by the runtime or operator
        url, data=json.dumps(body).encode(), headers={"content-type": "application/json"}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:  # noqa: S310
            return answer.status, json.loads(answer.read() or b"null")
    except (urllib.error.URLError, OSError, ValueError) as error:
        return getattr(error, "code", 0) or 0, None


def _pushed(url: str, email: str, wait: float) -> bool:
    """Whether the lead of `email` has been pushed to HubSpot (the write-back is on it) within `wait` s."""
    from leadflow_local.demo import _lookup

    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        status, lead = _lookup(url, email)
        if status == 200 and ((lead or {}).get("crm") or {}).get("hubspot", {}).get("id"):
            return True
        time.sleep(0.5)
    return False


def send_crm_feedback(url: str, crm_url: str | None, out: IO[str], wait: float = 45.0) -> dict[str, int]:
    """Send the demo's CRM stage changes; the CRM answers' statuses by what was sent."""
    from leadflow_local.demo import Shot, _secret, _send, _standard_webhook

    sent: dict[str, int] = {}
    started = time.monotonic()
    if crm_url and _pushed(url, ADA, wait):
        if time.monotonic() - started > 5:
            print(f"demo: the qualified lead reached the local CRM after {time.monotonic() - started:.0f} s", file=out)
        for name, path, order in (
            (
                "hubspot sql",
                "/__webhooks/contact",
                {"email": ADA, "property": "lifecyclestage", "value": "salesqualifiedlead"},
            ),
            (
                "hubspot won",
                "/__webhooks/deal",
                {"email": ADA, "deal_id": "5001", "stage": "closedwon", "amount": 24000},
            ),
        ):
            status, answer = _post(crm_url.rstrip("/") + path, order)
            sent[name] = (answer or {}).get("status", status) if isinstance(answer, dict) else status
            time.sleep(0.3)  # the activity lines of one change before the next
    else:
        print("demo: the qualified lead was not pushed to the local CRM in time: no HubSpot stage change", file=out)
    data = {
        "crm": "pipedrive",
        "email": EMMY,
        "outcome": "lost",
        "reason": "No need now",
        "occurred_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    body = json.dumps({"type": "crm.outcome", "timestamp": int(time.time()), "data": data}).encode()
    headers = _standard_webhook(body, _secret("crm/generic"), f"crm_demo_{int(time.time())}")
    status, _, _ = _send(url, Shot("crm", "POST", "/v1/crm/generic/events", body, headers))
    sent["generic lost"] = status
    return sent
