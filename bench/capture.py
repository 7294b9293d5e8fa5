"""Capture benchmark: LeadFlow's overhead as ratios against a floor measured in the same run.

`make bench` runs it. Absolute times depend on the machine and, for the warm part, mostly on moto's
server; only the ratios are judged (see bench/README.md):

(The cold start, import and first request of every function, is bench/cold_start.py.)

warm capture of a new lead (the real handler, payload-2.0 event, signed delivery) vs the same body
   parsed with `json.loads` plus the same DynamoDB calls (1 BatchGetItem + 1 TransactWriteItems with the
   same actions and item sizes) made bare with one boto3 client against the same endpoint   target ≤ 1.5×

Exit status 1 when a target is missed.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import os
import statistics
import sys
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LAYER = REPO / "layers" / "leadflow"
FUNCTIONS = ("capture_form", "capture_webhook")
TABLE = "LeadsTable"

WARM_TARGET = 1.5
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "5"))
CALLS = int(os.environ.get("BENCH_CALLS", "40"))  # per series per round
BLOCK = 20  # calls per series prepared at once (events are signed shortly before they are delivered)
WARMUP = 10  # quadruples before the timed rounds

# The deployed functions log at INFO (template.yaml); Powertools' Logger and the EMF metrics both write to
# stdout, which the bench points at /dev/null while it times (the work of formatting them is still done).
LOG_LEVEL = os.environ.get("BENCH_LOG_LEVEL", "INFO")


def bench_env(endpoint: str) -> dict[str, str]:
    """The environment of a capture function (as tests/support/aws.py configures it), for this process
    (set before anything of leadflow is imported)."""
    return {
        "LEADFLOW_TABLE_NAME": TABLE,
        "LEADFLOW_SECRETS_FILE": str(REPO / "infra" / "local" / "secrets.json"),
        "LEADFLOW_FORMS_FILE": str(REPO / "infra" / "local" / "forms.json"),
        "AWS_ENDPOINT_URL_DYNAMODB": endpoint,
        "TZ": "UTC",
        "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_METRICS_NAMESPACE": "LeadFlow",
        "POWERTOOLS_SERVICE_NAME": "leadflow",
        "POWERTOOLS_LOG_LEVEL": LOG_LEVEL,
        "POWERTOOLS_DEV": "false",
    }


def out(*args: object) -> None:
    print(*args, flush=True)


@contextlib.contextmanager
def stdout_to_devnull():
    """fd 1 → /dev/null: what Logger and Metrics print is written (as on Lambda), just not shown."""
    sys.stdout.flush()
    saved = os.dup(1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.close(devnull)
    try:
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


# --------------------------------------------------------------------------------------------------------
# 2. warm capture
# --------------------------------------------------------------------------------------------------------


def sign(body: bytes, secret: str, msg_id: str, timestamp: int) -> dict[str, str]:
    """Standard Webhooks 1.0, as a provider signs (independent of the code under test)."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signature = base64.b64encode(hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest())
    return {
        "content-type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": f"v1,{signature.decode()}",
    }


def lead_fields(n: int, tag: str) -> dict:
    """A realistic new lead: unique email and phone for every call (so every call creates a lead)."""
    return {
        "email": f"Grace.Hopper.{tag}{n:05d}@Navy-Labs.io",
        "phone": f"+1 415 2{n // 10000 % 10}{n // 1000 % 10} {n % 1000:04d}",
        "first_name": " Grace ",
        "last_name": "Hopper",
        "company": "Navy Labs",
        "job_title": "Rear Admiral",
        "company_size": "1,000+",
        "industry": "Defense",
        "country": "United States",
        "utm_source": "newsletter",
        "utm_medium": "email",
        "utm_campaign": "cobol-launch",
        "gclid": "EAIaIQobChMI-Case_Sensitive",
        "page_url": "https://www.navy-labs.io/pricing?utm_content=hero&fbclid=IwAR_MixedCase",
        "referrer": "https://news.example.org/",
        "consent_email": True,
    }


class Workload:
    """Builds the events of the measured side and the bare calls of the floor side, before timing."""

    def __init__(self, secret: str) -> None:
        from leadflow_local.apigw import LambdaContext, build_event

        self._build_event = build_event
        self._context = LambdaContext
        self.secret = secret
        self.counter = 0
        self.shapes: dict[str, list[tuple[dict, bool]]] = {}  # series → [(item, conditional)] of one capture

    def next_n(self) -> int:
        self.counter += 1
        return self.counter

    def webhook(self, n: int) -> tuple[dict, object, bytes]:
        data = {**lead_fields(n, "w"), "attributes": {"budget": "50k", "timeline": "Q1"}}
        body = json.dumps({"type": "lead.submitted", "timestamp": "2026-11-22T10:00:00Z", "data": data}).encode()
        msg_id = f"msg_{uuid.uuid4().hex}"
        event = self._build_event(
            "POST",
            "/v1/webhooks/generic",
            route_key="POST /v1/webhooks/{provider}",
            path_parameters={"provider": "generic"},
            headers=sign(body, self.secret, msg_id, int(time.time())),
            body=body,
        )
        return event, self._context("capture_webhook"), body

    def form(self, n: int) -> tuple[dict, object, bytes]:
        fields = lead_fields(n, "f")
        fields.update(consent_email="on", message="Please call me", _hp="")
        body = json.dumps(fields).encode()
        event = self._build_event(
            "POST",
            "/v1/forms/website",
            route_key="POST /v1/forms/{form_id}",
            path_parameters={"form_id": "website"},
            headers={"content-type": "application/json", "origin": "http://localhost:8080"},
            body=body,
        )
        return event, self._context("capture_form"), body

    def learn_shape(self, series: str, client, answer: dict) -> None:
        """The items one real capture wrote, in transaction order: lead, identities, touch, delivery, history
        (the score entry); its transaction also checks that no anonymous-events marker of the email appeared."""
        items = client.scan(TableName=TABLE, ConsistentRead=True)["Items"]
        by_entity: dict[str, list[dict]] = {}
        for item in items:
            by_entity.setdefault(item["entity"]["S"], []).append(item)
        lead_id = answer["lead_id"]
        assert by_entity["lead"][0]["lead_id"]["S"] == lead_id, "the scan must hold exactly one capture"
        order = [(item, True) for item in by_entity["lead"]]
        order += [(item, True) for item in by_entity["identity"]]
        order += [(item, False) for item in by_entity["touch"]]
        order += [(item, True) for item in by_entity["delivery"]]
        order += [(item, False) for item in by_entity.get("history", [])]
        assert len(order) == len(items), f"unexpected items in a new-lead capture: {sorted(by_entity)}"
        self.shapes[series] = order

    def floor_call(self, series: str, n: int) -> dict:
        """The bare calls for one capture: same actions, item sizes within a few bytes, fresh keys."""
        shape = self.shapes[series]
        lead_id = str(uuid.uuid4())
        tag = f"{series[0]}{n:07d}"
        puts = []
        keys = []
        for item, conditional in shape:
            fresh = json.loads(json.dumps(item))
            entity = fresh["entity"]["S"]
            if entity in ("lead", "touch", "history"):
                fresh["pk"] = {"S": f"LEAD#{lead_id}"}
            else:  # identity / delivery items: a unique key of the same length
                pk = fresh["pk"]["S"]
                fresh["pk"] = {"S": pk[: -len(tag)] + tag}
                keys.append({"pk": fresh["pk"], "sk": fresh["sk"]})
            if "lead_id" in fresh:
                fresh["lead_id"] = {"S": lead_id}
            put = {"TableName": TABLE, "Item": fresh}
            if conditional:
                put["ConditionExpression"] = "attribute_not_exists(pk)"
            puts.append({"Put": put})
        # The email's anonymous-events marker: read with the keys, checked absent in the transaction.
        marker = {"pk": {"S": f"ANON#{tag}@bench.example"}, "sk": {"S": "MARKER"}}
        check = {"TableName": TABLE, "Key": marker, "ConditionExpression": "attribute_not_exists(pk)"}
        return {
            "get": {"RequestItems": {TABLE: {"Keys": [*keys, marker], "ConsistentRead": True}}},
            "write": {"TransactItems": [{"ConditionCheck": check}, *puts]},
        }


def reset_table(client) -> None:
    from leadflow_local.template import create_tables, load_template

    with contextlib.suppress(client.exceptions.ResourceNotFoundException):
        client.delete_table(TableName=TABLE)
    create_tables(client, load_template())


def moto_table():
    """The embedded server's table object (same process): emptied, untimed, before every timed call.

    Both sides then find and write the same state (nothing there: the new-lead path), and moto's costs
    that grow with what a table holds (its stream records, and the whole-table copy of moto's own
    TransactWriteItems when the adapter in leadflow_local.moto_server is not installed) stay constant, so
    the ratio does not drift with the length of the run.
    """
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.dynamodb.models import dynamodb_backends

    return dynamodb_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].tables[TABLE]


def empty(table) -> None:
    table.items.clear()
    if table.stream_shard is not None:
        table.stream_shard.items.clear()


def warm_capture() -> dict[str, dict[str, float]]:
    from leadflow_local.moto_server import EmbeddedAws

    aws = EmbeddedAws(port=0).start()
    os.environ.update(bench_env(aws.endpoint))  # before anything of leadflow is imported
    import boto3

    from leadflow_local.apigw import load_function

    client = boto3.client("dynamodb", endpoint_url=aws.endpoint, region_name="us-east-1")
    reset_table(client)
    handlers = {
        "webhook": getattr(*load_function("functions/capture_webhook")),
        "form": getattr(*load_function("functions/capture_form")),
    }
    secret = json.loads((REPO / "infra" / "local" / "secrets.json").read_text())["webhooks/generic"]
    work = Workload(secret)
    builders = {"webhook": work.webhook, "form": work.form}

    def measured(series: str, prepared) -> float:
        event, context, _ = prepared
        start = time.perf_counter()
        result = handlers[series](event, context)
        elapsed = time.perf_counter() - start
        if result["statusCode"] not in (200, 202):
            raise SystemExit(f"{series} capture failed: {result}")
        return elapsed

    def floor(prepared_body: bytes, call: dict) -> float:
        start = time.perf_counter()
        json.loads(prepared_body)
        client.batch_get_item(**call["get"])
        client.transact_write_items(**call["write"])
        return time.perf_counter() - start

    # Learn each path's items from one real capture on an empty table, and check it is the new-lead path.
    for series in ("webhook", "form"):
        reset_table(client)
        event, context, _ = builders[series](work.next_n())
        with stdout_to_devnull():
            result = handlers[series](event, context)
        body = json.loads(result["body"])
        answer = body["leads"][0] if series == "webhook" else body
        assert answer["status"] == "created", result
        work.learn_shape(series, client, answer)
    shape_note = {series: [item["entity"]["S"] for item, _ in work.shapes[series]] for series in work.shapes}
    out(
        f"new-lead path: 1 BatchGetItem + 1 TransactWriteItems of {shape_note['webhook']} (webhook), "
        f"{shape_note['form']} (form)"
    )

    samples: dict[str, list[float]] = {f"{s}:{side}": [] for s in ("webhook", "form") for side in ("real", "floor")}
    round_medians: dict[str, list[float]] = {key: [] for key in samples}

    table = moto_table()

    def block(count: int, record: bool) -> None:
        """`count` interleaved quadruples: webhook, its floor, form, its floor, each on an emptied table."""
        prepared = []
        for _ in range(count):
            for series in ("webhook", "form"):
                n = work.next_n()
                built = builders[series](n)
                prepared.append((series, built, work.floor_call(series, n)))
        with stdout_to_devnull():
            for series, built, call in prepared:
                empty(table)
                real = measured(series, built)
                empty(table)
                bare = floor(built[2], call)
                if record:
                    samples[f"{series}:real"].append(real)
                    samples[f"{series}:floor"].append(bare)

    block(WARMUP, record=False)
    for _ in range(ROUNDS):
        before = {key: len(values) for key, values in samples.items()}
        for _ in range(CALLS // BLOCK):
            block(BLOCK, record=True)
        for key, values in samples.items():
            round_medians[key].append(statistics.median(values[before[key] :]) * 1000)
    aws.stop()

    results = {}
    for series in ("webhook", "form"):
        real = statistics.median(samples[f"{series}:real"]) * 1000
        bare = statistics.median(samples[f"{series}:floor"]) * 1000
        ratio = real / bare
        results[series] = {"ms": real, "floor_ms": bare, "ratio": ratio, "target": WARM_TARGET}
        spread = ", ".join(
            f"{r:.2f}/{f:.2f}"
            for r, f in zip(round_medians[f"{series}:real"], round_medians[f"{series}:floor"], strict=True)
        )
        out(
            f"warm capture ({series}): {real:.2f} ms/lead vs floor {bare:.2f} ms/lead → ratio {ratio:.2f} "
            f"(target ≤ {WARM_TARGET})"
        )
        out(f"  per-round medians real/floor ms: {spread}")
    return results


def main() -> int:
    started = time.perf_counter()
    version = sys.version.split()[0]
    out(f"LeadFlow capture bench ({os.cpu_count()} cores, Python {version}, log level {LOG_LEVEL})")
    out(f"\n== warm capture ({ROUNDS} rounds × {CALLS} new leads per path, interleaved with the floor) ==")
    warm = warm_capture()

    rows = [(f"warm capture {series}", r) for series, r in warm.items()]
    out("\n== summary ==")
    out(f"{'measure':<28} {'LeadFlow':>10} {'floor':>10} {'ratio':>7} {'target':>8}  result")
    missed = 0
    for label, r in rows:
        ok = r["ratio"] <= r["target"]
        missed += not ok
        unit = "ms/lead"
        out(
            f"{label:<28} {r['ms']:>7.2f} {unit[:2]} {r['floor_ms']:>7.2f} {unit[:2]} {r['ratio']:>7.2f} "
            f"{'≤ ' + str(r['target']):>8}  {'ok' if ok else 'MISSED'}"
        )
    out(f"(bench took {time.perf_counter() - started:.0f} s)")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
