"""Funnel report benchmark: report time and DynamoDB calls with 1,000 and with 100,000 leads' worth of counters.

Runs the real report handler (`GET /v1/reports/funnel`, payload 2.0) against moto in-process, tables built from
template.yaml. Each of two tables gets the counters of N generated leads over 90 days (sources, campaigns, owners drawn
from fixed vocabularies; stage entries, exits and time-in-stage as the stream would count them), written
directly through the store layer (`leadflow.store.funnel.write_counters`, the rebuild's path), so 100,000
leads' worth is built in seconds. The report of the 90 days, grouped by campaign (last touch), is then timed, the
sizes alternating round by round.

Target (exit status 1 when missed): report time at 100,000 leads / at 1,000 leads ≤ 1.5 (a report reads
counters by key range, so its cost does not grow with the number of leads), and the same number of DynamoDB
calls (never a Scan).

Knobs: BENCH_REPORT_ROUNDS (rounds, default 7; each times one report per size, back to back; the median of
the per-round ratios counts).
"""

from __future__ import annotations

import json
import os
import random
import statistics
import sys
import time
from collections import Counter, defaultdict
from datetime import date, timedelta
from pathlib import Path
from urllib.parse import urlencode

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

SIZES = (1_000, 100_000)
DAYS = 90
END = date(2026, 11, 29)
ROUNDS = int(os.environ.get("BENCH_REPORT_ROUNDS", "7"))
TARGET = 1.5
SOURCES = ["form:website", "meta", "google-ads", "linkedin", "tiktok", "generic", "hubspot-forms", "callback:baidu"]
UTM_SOURCES = ["google", "baidu", "zhihu", "baijiahao", "linkedin", "meta", "newsletter", "wechat", "bing", "tiktok"]
MEDIUMS = ["cpc", "social", "email", "content", "referral"]
CAMPAIGNS = [f"campaign-{i:02d}" for i in range(30)]
OWNERS = [f"u-{i:02d}" for i in range(20)]
TEAMS = ["emea", "apac", "amer", "partners"]
PATHS = [["lead"], ["lead", "mql"], ["lead", "mql", "sql"], ["lead", "mql", "sql", "opportunity", "customer"]]


def generated_counters(leads: int, seed: int = 1) -> dict[tuple[str, str, int], dict[str, Counter]]:
    """(dimension, day, shard) → value → counter → n, as the stream would count `leads` leads."""
    from leadflow.domain.funnel import bucket_of

    rng = random.Random(seed)
    out: dict[tuple[str, str, int], dict[str, Counter]] = defaultdict(lambda: defaultdict(Counter))
    for _ in range(leads):
        first_day = END - timedelta(days=rng.randrange(DAYS))
        touch = {
            "source": rng.choice(SOURCES),
            "utm_source": rng.choice(UTM_SOURCES),
            "utm_medium": rng.choice(MEDIUMS),
            "utm_campaign": rng.choice(CAMPAIGNS),
        }
        values = {f"{mode}.{k}": v for mode in ("first", "last") for k, v in touch.items()}
        owner = rng.choice(OWNERS)
        values.update(owner=owner, team=TEAMS[OWNERS.index(owner) % 4], variant=f"default:welcome={rng.choice('ab')}")
        values["all"] = "all"  # the trend dimension, as the stream counts it
        day, previous = first_day, None
        for stage in rng.choices(PATHS, weights=(55, 20, 17, 8))[0]:
            hours = rng.uniform(1, 200)
            if previous:
                day = min(END, day + timedelta(hours=hours))
            numbers = {f"in_{stage}": 1}
            if previous:
                numbers[f"out_{previous}"] = 1
                numbers[f"h_{stage}_{bucket_of(hours)}"] = 1
            shard = rng.randrange(4)
            for dimension, value in values.items():
                out[(dimension, day.isoformat(), shard)][value].update(numbers)
            previous = stage
    return out


class Calls:
    def __init__(self) -> None:
        self.made: list[str] = []
        self.items = 0  # items DynamoDB returned (counters and spend)
        self.numbers = 0  # numbers in them, attributes and list elements (the counter cells read)

    def install(self) -> None:
        import botocore.client

        original = botocore.client.BaseClient._make_api_call
        calls = self

        def recording(client, operation, params):
            answer = original(client, operation, params)
            if client.meta.service_model.service_name == "dynamodb":
                calls.made.append(operation)
                items = [i for batch in (answer.get("Responses") or {}).values() for i in batch]
                items += answer.get("Items") or []
                calls.items += len(items)
                calls.numbers += sum(
                    1 if "N" in typed else sum(1 for n in typed.get("L", ()) if "N" in n)
                    for item in items
                    for typed in item.values()
                )
            return answer

        botocore.client.BaseClient._make_api_call = recording


def main() -> int:
    import boto3
    from moto import mock_aws

    from leadflow.config import settings
    from leadflow.store import funnel as store
    from leadflow.store import models
    from leadflow_local.apigw import LambdaContext, build_event, load_function
    from leadflow_local.moto_server import install
    from leadflow_local.template import create_tables, load_template

    install()
    calls = Calls()
    calls.install()
    module, attribute = load_function("functions/report_funnel/")
    handler = getattr(module, attribute)
    first = (END - timedelta(days=DAYS - 1)).isoformat()
    query = {"group_by": "utm_campaign", "attribution": "last", "from": first, "to": END.isoformat()}
    url = "/v1/reports/funnel?" + urlencode(query)
    event = build_event("GET", url, route_key="GET /v1/reports/funnel")
    tables, built = {}, {}

    def use(size: int) -> None:
        os.environ["LEADFLOW_TABLE_NAME"] = tables[size]
        settings.cache_clear()
        models.bind()

    def report(size: int) -> tuple[float, Counter, int, int, dict]:
        use(size)
        calls.made.clear()
        calls.items = calls.numbers = 0
        started = time.perf_counter()
        answer = handler(event, LambdaContext(function_name="report_funnel"))
        elapsed = time.perf_counter() - started
        assert answer["statusCode"] == 200, answer["body"]
        return elapsed, Counter(calls.made), calls.items, calls.numbers, json.loads(answer["body"])

    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        template = load_template()
        for size in SIZES:
            tables[size] = create_tables(client, template, prefix=f"r{size}-")["LeadsTable"]
            use(size)
            started = time.perf_counter()
            counters = generated_counters(size)
            written = store.write_counters((d, day, shard, v) for (d, day, shard), v in counters.items())
            built[size] = (written, time.perf_counter() - started)
            _, _, _, _, body = report(size)  # warms the handler and the configuration
            assert body["totals"]["counts"]["lead"] == size, body["totals"]["counts"]
        # rounds alternate the sizes, so load on the machine at a given moment lands on both alike
        times: dict[int, list[float]] = {size: [] for size in SIZES}
        ratios, last = [], {}
        for _ in range(ROUNDS):
            for size in SIZES:
                elapsed, made, items, numbers, _body = report(size)
                times[size].append(elapsed)
                last[size] = (made, items, numbers)
            ratios.append(times[SIZES[1]][-1] / times[SIZES[0]][-1])
    results = {}
    for size in SIZES:
        made, items, numbers = last[size]
        results[size] = (statistics.median(times[size]), made)
        print(
            f"{size:>7} leads: {built[size][0]} counter items written in {built[size][1]:.1f} s; report median "
            f"{results[size][0] * 1000:.1f} ms, DynamoDB calls per report {dict(made)}, "
            f"{items} items / {numbers} numbers read"
        )
    small, large = results[SIZES[0]], results[SIZES[1]]
    ratio = statistics.median(ratios)  # of the per-round ratios (each pair measured back to back)
    same_calls = small[1] == large[1] and "Scan" not in small[1]
    print(
        f"report time at {SIZES[1]:,} / {SIZES[0]:,} leads: {ratio:.2f}x (target <= {TARGET}) "
        f"{'met' if ratio <= TARGET else 'MISSED'}; calls per report {sum(large[1].values())} "
        f"({'the same, no Scan' if same_calls else 'DIFFERENT'})"
    )
    return 0 if ratio <= TARGET and same_calls else 1


if __name__ == "__main__":
    sys.exit(main())
