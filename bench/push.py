"""CRM push benchmark: HubSpot's 100 calls / 10 s limit with injected latency, in one run.

`make bench` runs it (about 40 s: the 10-second windows are real). Against the local HubSpot-compatible CRM
(rolling limit 100 requests / 10 s, 150 ms latency a call) it measures:

1. records/s with LeadFlow's push (batch upsert of ≤100 leads a call, client-side token bucket, 4 calls in
   flight, retries of what the CRM refused) over 3 full windows, against one call per lead, sequential
   (the naive integration), measured on a fresh CRM in the same run             target ≥ 100×
2. records/s as a share of the limit's ceiling (100 calls × 100 records / 10 s)  target ≥ 90 %
3. share of 429 answers among the CRM calls                                      target < 5 %
4. CRM calls per 1,000 leads delivered (retries included)

Each run uses the real `leadflow.services.push.deliver` and `leadflow.crm.hubspot` (the queue and the
table around them are not measured: they are the same for both ways). Exit status 1 when a target is missed.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
for path in (REPO / "layers" / "leadflow", REPO / "infra" / "local"):
    sys.path.insert(0, str(path))
os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
os.environ.setdefault("POWERTOOLS_SERVICE_NAME", "leadflow")
os.environ.setdefault("LEADFLOW_SECRETS_FILE", str(REPO / "infra" / "local" / "secrets.json"))

from leadflow.crm import push_key  # noqa: E402
from leadflow.crm.config import parse  # noqa: E402
from leadflow.services import push  # noqa: E402
from leadflow_local.local_crm import LocalCrm  # noqa: E402

# Metrics are Powertools EMF lines on stdout, flushed every 100 values: the bench's thousands of calls would
# print them all. Emitting them costs the same in both series, so they are left out of this process.
push.metrics.add_metric = lambda *args, **kwargs: None

WINDOW = 10.0
WINDOWS = int(os.environ.get("BENCH_WINDOWS", "3"))
LATENCY_MS = float(os.environ.get("BENCH_LATENCY_MS", "150"))
IN_FLIGHT = 4
NAIVE_SECONDS = float(os.environ.get("BENCH_NAIVE_SECONDS", "6"))
CEILING = 100 * 100 / WINDOW  # records/s at 100 calls of 100 records per 10 s
TARGETS = {"speedup": 100.0, "share": 0.90, "429": 0.05}


def leads(prefix: str, count: int) -> list[tuple[str, dict, bool]]:
    out = []
    for i in range(count):
        lead = {"lead_id": f"{prefix}-{i}", "email": f"{prefix}{i}@bench.example.org", "first_name": "Bench",
                "company": "Bench Inc", "lifecycle_stage": "mql", "version": 1, "crm": {}}  # fmt: skip
        out.append((push_key(lead["lead_id"], 1), lead, True))
    return out


def crm_stats(crm: LocalCrm) -> tuple[int, int]:
    statuses = [r["status"] for r in crm.requests() if r["path"].startswith("/crm/")]
    return len(statuses), statuses.count(429)


def naive(target) -> float:
    """One call per lead, one after the other, for NAIVE_SECONDS: records/s."""
    crm = LocalCrm(port=0, latency_ms=LATENCY_MS).start()
    os.environ["LEADFLOW_HUBSPOT_API_URL"] = crm.url
    push.reset()
    single = parse({"targets": {"hubspot": {"batch_size": 1}}}).targets["hubspot"]
    done = 0
    started = time.monotonic()
    for item in leads("naive", 100_000):
        if time.monotonic() - started >= NAIVE_SECONDS:
            break
        done += sum(o.status == "done" for o in push.deliver(single, [item]).values())
    elapsed = time.monotonic() - started
    crm.stop()
    return done / elapsed


def batched(target) -> dict[str, float]:
    """LeadFlow's push for WINDOWS full windows: workers take 100 leads at a time, retries go back in line."""
    crm = LocalCrm(port=0, latency_ms=LATENCY_MS).start()
    os.environ["LEADFLOW_HUBSPOT_API_URL"] = crm.url
    push.reset()
    pending = leads("batch", int(CEILING * WINDOW * (WINDOWS + 1)))
    lock = threading.Lock()
    delivered: list[float] = []  # when the call that delivered each record returned
    started = time.monotonic()
    deadline = started + WINDOWS * WINDOW

    def worker() -> None:
        while True:
            with lock:
                if not pending or time.monotonic() >= deadline:
                    return
                chunk, pending[:] = pending[:100], pending[100:]
            outcomes = push.deliver(target, chunk)  # waits for a token of the bucket, then calls the CRM
            finished = time.monotonic()
            with lock:
                delivered.extend(finished for o in outcomes.values() if o.status == "done")
                pending[:0] = [item for item in chunk if item[0] not in outcomes or outcomes[item[0]].status != "done"]

    threads = [threading.Thread(target=worker) for _ in range(IN_FLIGHT)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    calls, throttled = crm_stats(crm)
    crm.stop()
    in_windows = sum(1 for t in delivered if t < deadline)  # only calls completed within the windows count
    return {
        "records_per_s": in_windows / (WINDOWS * WINDOW),
        "calls": calls,
        "throttled": throttled,
        "delivered": len(delivered),
    }


def main() -> int:
    target = parse({}).targets["hubspot"]
    print(f"push bench: local HubSpot CRM, limit 100 calls / {WINDOW:.0f} s, {LATENCY_MS:.0f} ms a call", flush=True)
    one_by_one = naive(target)
    result = batched(target)
    speedup = result["records_per_s"] / one_by_one
    share = result["records_per_s"] / CEILING
    throttled = result["throttled"] / max(result["calls"], 1)
    per_thousand = result["calls"] / max(result["delivered"], 1) * 1000
    rows = [
        ("one call per lead (sequential)", f"{one_by_one:8.1f} records/s", ""),
        (f"batch upsert ×100, {IN_FLIGHT} in flight", f"{result['records_per_s']:8.1f} records/s", ""),
        ("speedup", f"{speedup:8.0f}×", f"target ≥ {TARGETS['speedup']:.0f}×"),
        ("share of the limit's ceiling", f"{share:8.1%}", f"target ≥ {TARGETS['share']:.0%} of {CEILING:.0f}/s"),
        (
            "429 answers",
            f"{throttled:8.2%}",
            f"target < {TARGETS['429']:.0%} ({result['throttled']} of {result['calls']})",
        ),
        ("CRM calls per 1,000 leads", f"{per_thousand:8.1f}", "(one call per lead: 1,000)"),
    ]
    for name, value, note in rows:
        print(f"  {name:<36}{value:>18}  {note}")
    ok = speedup >= TARGETS["speedup"] and share >= TARGETS["share"] and throttled < TARGETS["429"]
    print("push bench: " + ("all targets met" if ok else "TARGET MISSED"), flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
