"""Routing benchmark: DynamoDB calls and write units per assignment (`leadflow.services.routing.assign_lead`).

Runs the real service against moto in-process, tables from template.yaml and the shipped rules
(infra/routing/default.yaml), and records every DynamoDB call of each assignment. An assignment to a team
member reads the lead and the routing state (2 GetItem) and writes twice: the routing state (1 PutItem at
its version: turn and daily count) and the lead (1 TransactWriteItems: the lead's `owner`, as an Update at
its version, and the `owner` timeline entry); an assignment to a queue has no state to write. Write units
are computed as DynamoDB bills them (moto does not report consumed capacity): a standard write 1 WCU per
started KB of the item, a transactional write 2 per started KB of each item it writes (an Update is billed on
the item's size). Targets (exit status 1 when missed): at most 2 write requests per assignment, no Scan,
no Query. Sequential here: under contention a lost state write is read and written again (see
tests/integration/test_routing_concurrency.py).

Knob: BENCH_ROUTING_LEADS (assignments measured, default 100).
"""

from __future__ import annotations

import json
import math
import os
import sys
from collections import Counter
from datetime import UTC, datetime
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
os.environ.pop("LEADFLOW_ROUTING_FILE", None)  # the shipped rules
for name in ("LEADFLOW_ROUTING_SCHEDULE_GROUP", "LEADFLOW_ROUTING_SLA_FUNCTION_ARN"):
    os.environ.pop(name, None)  # DynamoDB only: the SLA schedule is one Scheduler call, not measured here

LEADS = int(os.environ.get("BENCH_ROUTING_LEADS", "100"))
MAX_WRITES = 2
WRITES = {"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"}


def _size(item: dict) -> int:
    """An item's billed size: attribute names plus values (JSON as a close stand-in for DynamoDB's encoding)."""
    return sum(len(name) + len(json.dumps(value, separators=(",", ":"))) for name, value in item.items())


def main() -> int:
    import boto3
    import botocore.client
    from moto import mock_aws

    from leadflow.config import settings
    from leadflow.store import models
    from leadflow.store.models import LEAD_SK, LeadItem, lead_pk
    from leadflow_local.moto_server import install
    from leadflow_local.template import create_tables, load_template

    install()
    made: list[tuple[str, dict]] = []
    original = botocore.client.BaseClient._make_api_call

    def recording(client, operation, params):
        if client.meta.service_model.service_name == "dynamodb":
            made.append((operation, params))
        return original(client, operation, params)

    botocore.client.BaseClient._make_api_call = recording
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        create_tables(client, load_template())
        settings.cache_clear()
        models.bind()
        from leadflow.services import routing

        stamp = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        countries = ["US", "CA", "US", "BR"]  # 3 of 4 to the North America team, 1 to the SDR queue

        def item_size(lead_id: str) -> int:
            raw = client.get_item(
                TableName=settings().table_name, Key={"pk": {"S": lead_pk(lead_id)}, "sk": {"S": LEAD_SK}}
            )
            return _size(raw["Item"])

        per_kind: dict[str, list[dict]] = {"team member": [], "queue": []}
        for n in range(LEADS):
            lead_id = f"00000000-0000-4000-8000-{n:012d}"
            LeadItem(
                lead_pk(lead_id), LEAD_SK, entity="lead", lead_id=lead_id, lifecycle_stage="mql", mql_at=stamp,
                country=countries[n % 4], attributes={"company_size": "51-200", "industry": "software"},
                score={"grade": "A", "total": 80, "fit": 50, "behaviour": 30, "breakdown": []},
                created_at=stamp, updated_at=stamp,
            ).save()  # fmt: skip
            made.clear()
            owner = routing.assign_lead(lead_id)
            calls = list(made)
            lead_kb = math.ceil(item_size(lead_id) / 1024)
            units = 0
            for operation, params in calls:
                if operation == "PutItem":
                    units += math.ceil(_size(params["Item"]) / 1024)
                elif operation == "TransactWriteItems":
                    for entry in params["TransactItems"]:
                        ((kind, body),) = entry.items()
                        units += 2 * (lead_kb if kind == "Update" else math.ceil(_size(body.get("Item", {})) / 1024))
            kind = "queue" if owner and owner["kind"] == "queue" else "team member"
            per_kind[kind].append(
                {
                    "calls": Counter(op for op, _ in calls),
                    "writes": sum(1 for op, _ in calls if op in WRITES),
                    "items": sum(
                        len(p["TransactItems"]) if op == "TransactWriteItems" else 1 for op, p in calls if op in WRITES
                    ),
                    "units": units,
                }
            )
    botocore.client.BaseClient._make_api_call = original

    print(f"routing: {LEADS} assignments with the shipped rules (DynamoDB calls per assignment, moto in-process)")
    worst = 0
    forbidden = 0
    for kind, rows in per_kind.items():
        if not rows:
            continue
        calls = sum((r["calls"] for r in rows), Counter())
        mean = ", ".join(f"{op} {count / len(rows):.2f}" for op, count in sorted(calls.items()))
        writes = max(r["writes"] for r in rows)
        worst = max(worst, writes)
        forbidden += calls.get("Scan", 0) + calls.get("Query", 0)
        items = sum(r["items"] for r in rows) / len(rows)
        units = sum(r["units"] for r in rows) / len(rows)
        print(
            f"  to a {kind:<11} ({len(rows):>3}): {mean}; write requests {writes} (target <= {MAX_WRITES}), "
            f"items written {items:.1f}, write units {units:.1f}"
        )
    ok = worst <= MAX_WRITES and forbidden == 0
    print(f"  scans or queries: {forbidden}")
    print("routing: " + ("target met" if ok else "TARGET MISSED"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
