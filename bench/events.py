"""Events benchmark: DynamoDB calls and write units per engagement event (`POST /v1/events`), printed.

Runs the real handler (payload-2.0 events) against moto in-process, with tables built from template.yaml,
and records every DynamoDB call. Targets (exit status 1 when missed): an event by lead id costs at most 2 calls
(1 BatchGetItem + 1 TransactWriteItems), whatever how many events the lead already has, and nothing ever
Scans. Write units are computed from what each TransactWriteItems writes, as DynamoDB bills it: 2 WCU per
started KB of each item put or deleted in a transaction, and 2 per condition check (moto does not report
consumed capacity). The lead item's size is printed as its engagement summary fills up (capped at
MAX_ENGAGEMENT entries / MAX_ENGAGEMENT_BYTES).

Knob: BENCH_EVENTS (events sent to one lead, default 250: past the summary cap).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import math
import os
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
for path in (REPO / "layers" / "leadflow", REPO / "infra" / "local", REPO):
    sys.path.insert(0, str(path))
os.environ.setdefault("TZ", "UTC")
os.environ["AWS_ACCOUNT_ID_ENDPOINT_MODE"] = "disabled"
for name, value in (("AWS_DEFAULT_REGION", "us-east-1"), ("AWS_ACCESS_KEY_ID", "x"), ("AWS_SECRET_ACCESS_KEY", "x")):
    os.environ.setdefault(name, value)
os.environ["POWERTOOLS_METRICS_DISABLED"] = "true"
os.environ["POWERTOOLS_DEV"] = "false"
os.environ["POWERTOOLS_LOG_LEVEL"] = "ERROR"
os.environ["LEADFLOW_SECRETS_FILE"] = str(REPO / "infra" / "local" / "secrets.json")
os.environ["LEADFLOW_FORMS_FILE"] = str(REPO / "infra" / "local" / "forms.json")

EVENTS = int(os.environ.get("BENCH_EVENTS", "250"))
MAX_CALLS = 2


class Calls:
    def __init__(self) -> None:
        self.made: list[tuple[str, dict]] = []

    def install(self) -> None:
        import botocore.client

        original = botocore.client.BaseClient._make_api_call
        calls = self

        def recording(client, operation, params):
            if client.meta.service_model.service_name == "dynamodb":
                calls.made.append((operation, params))
            return original(client, operation, params)

        botocore.client.BaseClient._make_api_call = recording

    def take(self) -> list[tuple[str, dict]]:
        made, self.made = self.made, []
        return made


def _size(item: dict) -> int:
    """An item's billed size: attribute names plus values (JSON as a close stand-in for DynamoDB's encoding)."""
    return sum(len(name) + len(json.dumps(value, separators=(",", ":"))) for name, value in item.items())


def write_units(made: list[tuple[str, dict]]) -> int:
    units = 0
    for operation, params in made:
        if operation == "TransactWriteItems":
            for entry in params["TransactItems"]:
                ((kind, body),) = entry.items()
                if kind == "Put":
                    units += 2 * math.ceil(_size(body["Item"]) / 1024)
                else:  # Delete, ConditionCheck: an item up to 1 KB
                    units += 2
        elif operation in ("PutItem", "DeleteItem", "UpdateItem"):
            units += 1 + (_size(params.get("Item", {})) // 1024)
    return units


def signed(body: object, msg_id: str) -> tuple[bytes, dict]:
    raw = json.dumps(body).encode()
    secret = json.loads((REPO / "infra" / "local" / "secrets.json").read_text())["events"]
    key = base64.b64decode(secret.removeprefix("whsec_"))
    ts = int(time.time())
    sig = base64.b64encode(hmac.new(key, f"{msg_id}.{ts}.".encode() + raw, hashlib.sha256).digest()).decode()
    headers = {"content-type": "application/json", "webhook-id": msg_id, "webhook-timestamp": str(ts)}
    return raw, {**headers, "webhook-signature": f"v1,{sig}"}


def main() -> int:
    import boto3
    from moto import mock_aws

    from leadflow.config import settings
    from leadflow.store import models
    from leadflow_local.apigw import LambdaContext, build_event, load_function
    from leadflow_local.moto_server import install
    from leadflow_local.template import create_tables, load_template

    install()
    calls = Calls()
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        table = create_tables(client, load_template())["LeadsTable"]
        os.environ["LEADFLOW_TABLE_NAME"] = table
        settings.cache_clear()
        models.bind()
        form = getattr(*load_function("functions/capture_form/"))
        events = getattr(*load_function("functions/capture_events/"))
        calls.install()

        def post(handler, path: str, raw: bytes, headers: dict) -> dict:
            route, params = ("/v1/forms/{form_id}", {"form_id": "website"}) if "forms" in path else (path, {})
            event = build_event(
                "POST", path, route_key=f"POST {route}", path_parameters=params, headers=headers, body=raw
            )
            reply = handler(event, LambdaContext("bench"))
            assert reply["statusCode"] < 400, reply
            return json.loads(reply["body"])

        lead = {"email": "bench@acme-software.com", "job_title": "VP Sales", "company_size": "500", "industry": "SaaS"}
        lead_id = post(form, "/v1/forms/website", json.dumps(lead).encode(), {"content-type": "application/json"})[
            "lead_id"
        ]
        calls.take()
        now = datetime.now(UTC)
        per_event: list[list[tuple[str, dict]]] = []
        first: dict = {}
        started = time.perf_counter()
        types = ["page_view", "email_click", "email_open", "content_download", "webinar_registered"]
        for n in range(EVENTS):
            event = {
                "type": types[n % len(types)],
                "lead_id": lead_id,
                "occurred_at": (now - timedelta(minutes=EVENTS - n)).isoformat(),
                "properties": {"url": f"https://www.acme.io/{['pricing', 'docs', 'blog'][n % 3]}?utm_campaign=c{n}"},
            }
            first = first if n else event
            result = post(events, "/v1/events", *signed(event, f"bench_{n}"))
            assert result["results"][0]["status"] == "accepted", result
            per_event.append(calls.take())
        elapsed = time.perf_counter() - started
        redelivery = post(events, "/v1/events", *signed(first, "bench_0"))  # the same delivery again
        assert redelivery["results"][0]["status"] == "accepted"
        redelivered = calls.take()
        by_email = {"type": "email_click", "email": lead["email"], "occurred_at": now.isoformat()}
        post(events, "/v1/events", *signed(by_email, "bench_email"))
        email_calls = calls.take()
        anonymous = {"type": "email_click", "email": "nobody@acme-software.com", "occurred_at": now.isoformat()}
        post(events, "/v1/events", *signed(anonymous, "bench_anon"))
        anonymous_calls = calls.take()
        item = client.get_item(TableName=table, Key={"pk": {"S": f"LEAD#{lead_id}"}, "sk": {"S": "LEAD"}})["Item"]

    counts = Counter(len(made) for made in per_event)
    operations = Counter(op for made in per_event for op, _ in made)
    units = [write_units(made) for made in per_event]
    worst = max(len(made) for made in per_event)
    scans = sum(1 for made in (*per_event, redelivered, email_calls, anonymous_calls) for op, _ in made if op == "Scan")
    print(f"events benchmark: {EVENTS} events to one lead through POST /v1/events (moto in-process)")
    print(f"  calls per event by lead id   {dict(sorted(counts.items()))} (target ≤ {MAX_CALLS}); {dict(operations)}")
    print(
        f"  write units per event        first {units[0]}, median {sorted(units)[len(units) // 2]}, max {max(units)}"
        " (2 per KB of the lead item, which every event rewrites, + event, delivery, history)"
    )
    print(f"  event by email               {len(email_calls)} calls: {[op for op, _ in email_calls]}")
    print(f"  anonymous event              {len(anonymous_calls)} calls: {[op for op, _ in anonymous_calls]}")
    print(f"  redelivery                   {len(redelivered)} call(s): {[op for op, _ in redelivered]}")
    print(f"  Scan calls                   {scans}")
    entries = len(item["engagement"]["L"])
    print(f"  lead item after {EVENTS} events  {_size(item) / 1024:.1f} KB, {entries} summary entries")
    print(f"  time per event (moto)        {1000 * elapsed / EVENTS:.1f} ms")
    ok = worst <= MAX_CALLS and scans == 0
    print("PASS" if ok else "FAIL: an event cost more than 2 calls or something scanned")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
