"""`leadflow outbox [--lead ID]`: what the journeys sent locally, to whom (masked) and when.

With --lead: the lead's journey timeline (sends, deferrals, skips, exits) from the table, one Query.
Without: every email and SMS embedded AWS (SES v2, SNS) accepted, from moto's model data, recipients masked;
then every webhook touch sent (no AWS service takes those: the tool's URL does), from the leads' send ledgers:
the leads listed through `LeadsByStage` (one Query per stage, never a Scan), one Query of each one's `SEND#`
items; the URL's host is shown, never the person.
"""

from __future__ import annotations

import json
import os
import urllib.request
from typing import Any, TextIO

from leadflow.observability import mask_email, mask_phone


def _line(entry: dict[str, Any]) -> str:
    what = f"{entry.get('journey')}/{entry.get('touch')}" if entry.get("touch") else str(entry.get("journey"))
    extra = []
    if entry.get("outcome") == "sent":
        extra.append(f"{entry.get('channel')} to {entry.get('to')}")
        if entry.get("variant"):
            extra.append(f"variant {entry['variant']}")
        extra.append(f"message {entry.get('message_id')}")
    if entry.get("reason"):
        extra.append(str(entry["reason"]) + (f" until {entry['until']}" if entry.get("until") else ""))
    return f"{entry['at']}  {entry.get('outcome', ''):<9} {what:<28} {', '.join(extra)}".rstrip()


def lead_outbox(lead_id: str, out: TextIO) -> int:
    from leadflow.store.journeys import history

    entries = history(lead_id)
    for entry in entries:
        out.write(_line(entry) + "\n")
    out.write(f"{sum(1 for e in entries if e.get('outcome') == 'sent')} sent to lead {lead_id}\n")
    return 0


def all_outbox(endpoint: str, out: TextIO) -> int:
    with urllib.request.urlopen(endpoint.rstrip("/") + "/moto-api/data.json", timeout=10) as response:  # noqa: S310
        data = json.load(response)
    return list_outbox(data, out)


def webhook_sends() -> list[dict[str, Any]]:
    """Every webhook touch the journeys sent, oldest first, with its lead id."""
    from leadflow.store.cohort import lead_id_pages
    from leadflow.store.journeys import sends

    found = [
        {**entry, "lead_id": lead_id}
        for page in lead_id_pages()
        for lead_id in page
        for entry in sends(lead_id)
        if entry["channel"] == "webhook" and entry["status"] == "sent"
    ]
    return sorted(found, key=lambda entry: (entry["at"], entry["lead_id"]))


def list_outbox(data: dict[str, Any], out: TextIO) -> int:
    """The sends of embedded AWS's model data (`/moto-api/data.json`), then the webhook sends of the table."""
    emails = (data.get("ses") or {}).get("Message") or []
    texts = (data.get("sns") or {}).get("SMS") or []
    for message in emails:
        to = ", ".join(
            filter(None, (mask_email(a) for a in (message.get("destinations") or {}).get("ToAddresses", [])))
        )
        out.write(f"email  {message.get('id')}  to {to}  {message.get('subject')!r}\n")
    for message in texts:
        out.write(f"sms    {message.get('message_id')}  to {mask_phone(message.get('phone_number'))}\n")
    hooks = webhook_sends()
    for entry in hooks:
        touch = f"{entry['journey']}/{entry['touch']}"  # the message id is the webhook-id: <lead>-<journey>-…
        out.write(f"webhook {entry['message_id']}  to {entry['to']}  at {entry['at']}  {touch}\n")
    out.write(f"{len(emails)} email(s), {len(texts)} SMS in embedded AWS; {len(hooks)} webhook(s) sent\n")
    return 0


def run(args: Any, out: TextIO) -> int:
    endpoint = args.endpoint_url or os.environ.get("AWS_ENDPOINT_URL")
    if not endpoint:
        out.write("leadflow outbox reads a local stack: pass --endpoint-url (printed by `leadflow up`)\n")
        return 2
    os.environ["AWS_ENDPOINT_URL"] = endpoint
    os.environ.pop("AWS_ENDPOINT_URL_DYNAMODB", None)
    os.environ["LEADFLOW_TABLE_NAME"] = args.table or "LeadsTable"
    from leadflow.config import settings
    from leadflow.store import models

    settings.cache_clear()
    models.bind()
    return lead_outbox(args.lead, out) if args.lead else all_outbox(endpoint, out)
