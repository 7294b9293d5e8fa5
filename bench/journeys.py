"""Journey cost benchmark: state transitions per touch and per journey for the shipped journeys, measured by
running them (the real ASL in embedded AWS, the real task handler, journey time stepped), and the Step
Functions Standard cost per 1M nurtured leads.

`make bench` runs it. Each shipped journey runs once per path a lead can take through it: every event wait
timing out, and every event arriving right after the wait starts. Transitions are the execution history's
StateEntered events (what Step Functions bills; Retry attempts would add to them, none happen here).
Judged: ≤ 3 transitions per touch sent on the path (Wait or AwaitEvent, Touch, Route), the journey's one
end state (Finished) counted apart; a branch has no state of its own (the Touch task decides it). Exit
status 1 when missed. A deferred touch (cap, quiet hours) costs 3 more.

It also counts the DynamoDB requests the journey's own code makes for a lead (enrolment, every Touch task, the
events API's resume; not the bench's setup and reads) and prices them on demand, one request unit a request
(strongly consistent reads up to 4 KB, writes up to 1 KB; a larger lead item costs a write unit more per KB).
"""

from __future__ import annotations

import os
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
for path in (REPO / "layers" / "leadflow", REPO / "infra" / "local"):
    sys.path.insert(0, str(path))
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench")
os.environ["AWS_ACCOUNT_ID_ENDPOINT_MODE"] = "disabled"
os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")

PRICE_PER_TRANSITION = 25.0 / 1_000_000  # Step Functions Standard, $25 per 1M state transitions
PRICE_SOURCE = (
    "AWS Step Functions pricing, Standard, us-east-1; price as in shared/reference/performance.md, read 2026-11-29"
)
PRICE_PER_WRITE_UNIT = 0.625 / 1_000_000  # DynamoDB on demand, us-east-1
PRICE_PER_READ_UNIT = 0.125 / 1_000_000
DYNAMODB_PRICE_SOURCE = "DynamoDB on-demand, us-east-1; shared/reference/performance.md, read 2026-11-29"
READS = ("GetItem", "Query", "BatchGetItem")
WRITES = ("PutItem", "UpdateItem", "DeleteItem")
TARGET_PER_TOUCH = 3.0
END_STATES = 1  # Finished: the Succeed state a Choice must lead to, once per journey
START = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
CLICK_AFTER = timedelta(days=1)
# Journey days per real second: an event wait of 3 days lasts 150 ms, ample for the bench to click in time.
TIME_SCALE = 20 * 86400


class DynamoDBRequests:
    """Counts the DynamoDB requests made while `counting` (every thread: the Touch tasks run in moto's), but
    those of a thread that is `looking` (the bench reading the lead, not the journey)."""

    def __init__(self) -> None:
        import collections
        import threading

        import botocore.client

        self.counts: collections.Counter[str] = collections.Counter()
        self.counting = False
        self._bench = threading.local()
        original = botocore.client.BaseClient._make_api_call

        def counted(client, operation, params):
            looking = getattr(self._bench, "looking", False)
            if self.counting and not looking and client.meta.service_model.service_name == "dynamodb":
                self.counts[operation] += 1
            return original(client, operation, params)

        botocore.client.BaseClient._make_api_call = counted

    def look(self, read):
        """`read()` made by the bench in this thread, not counted."""
        self._bench.looking = True
        try:
            return read()
        finally:
            self._bench.looking = False

    def take(self) -> tuple[int, int]:
        """(reads, writes) counted since the last take; anything else is an error in the bench."""
        reads = sum(self.counts[op] for op in READS)
        writes = sum(self.counts[op] for op in WRITES)
        unknown = set(self.counts) - set(READS) - set(WRITES)
        if unknown:
            raise RuntimeError(f"price these DynamoDB operations too: {sorted(unknown)}")
        self.counts.clear()
        return reads, writes


def _run(world: dict, lead_id: str, click: bool) -> tuple[list[str], int, int]:
    from leadflow.services import journeys
    from leadflow.store.models import LEAD_SK, LeadItem, lead_pk

    LeadItem(
        lead_pk(lead_id),
        LEAD_SK,
        entity="lead",
        lead_id=lead_id,
        email=f"{lead_id.lower()}@example.org",
        consent={"email": True},
        lifecycle_stage="lead",
        created_at="2026-03-02T10:00:00Z",
        updated_at="2026-03-02T10:00:00Z",
    ).save()
    requests = world["dynamodb"]
    requests.counting = True
    name = journeys.enrol(lead_id)
    arn = world["arn"].replace(":stateMachine:", ":execution:") + ":" + name
    sfn = world["sfn"]
    deadline = time.monotonic() + 30
    while sfn.describe_execution(executionArn=arn)["status"] == "RUNNING" and time.monotonic() < deadline:
        if click:
            waiting = (requests.look(lambda: journeys.store.get_lead(lead_id)).get("journey") or {}).get("waiting_for")
            if waiting:  # the lead clicks a journey day into the wait (a click at once would meet the daily cap)
                world["clock"].advance_to(journeys.now() + CLICK_AFTER)
                journeys.resume_on_event(lead_id, waiting)
        time.sleep(0.002)
    requests.counting = False
    events = sfn.get_execution_history(executionArn=arn, maxResults=1000)["events"]
    states = [e["stateEnteredEventDetails"]["name"] for e in events if "stateEnteredEventDetails" in e]
    entries = journeys.store.history(lead_id)
    resumed = sum(1 for e in entries if e["outcome"] == "resumed")
    sent = sum(1 for e in entries if e["outcome"] == "sent")
    return states, resumed, sent


def main() -> int:
    import boto3
    from moto import mock_aws

    from leadflow.config import settings
    from leadflow.journey_config import configured_journeys
    from leadflow.services import journeys
    from leadflow.store import models
    from leadflow_local.journeys import SteppedClock, start_journeys
    from leadflow_local.moto_server import install
    from leadflow_local.template import create_tables, load_template

    install()
    clock = SteppedClock(START)
    config = configured_journeys()
    failed = False
    print(f"price: ${PRICE_PER_TRANSITION * 1e6:.2f} per 1M state transitions ({PRICE_SOURCE})")
    print(
        f"price: ${PRICE_PER_WRITE_UNIT * 1e6:.3f} per 1M write units, ${PRICE_PER_READ_UNIT * 1e6:.3f} per 1M read "
        f"units ({DYNAMODB_PRICE_SOURCE})"
    )
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        template = load_template(REPO / "template.yaml")
        names = create_tables(boto3.client("dynamodb"), template)
        os.environ["LEADFLOW_TABLE_NAME"] = names["LeadsTable"]
        settings.cache_clear()
        models.bind()
        boto3.client("ses").verify_email_identity(EmailAddress=config.email["from"])
        sfn = boto3.client("stepfunctions")
        arns = start_journeys(sfn, template, time_scale=TIME_SCALE, tables=names, clock=clock, base=REPO)
        os.environ["LEADFLOW_JOURNEY_STATE_MACHINE_ARN"] = arns["JourneyStateMachine"]
        journeys.set_clock(clock)
        world = {"sfn": sfn, "arn": arns["JourneyStateMachine"], "dynamodb": DynamoDBRequests(), "clock": clock}
        for journey in config.journeys.values():
            if not journey.default:
                continue  # only the default journey is entered by the shipped configuration
            paths = {"every event wait times out": False, "every awaited event arrives a day into its wait": True}
            for i, (label, click) in enumerate(paths.items()):
                states, resumed, touches = _run(world, f"BENCH-{journey.name}-{i}", click)
                reads, writes = world["dynamodb"].take()
                # per touch sent on this path: a branch sends some of the journey's touches, not all
                per_touch = (len(states) - END_STATES) / max(1, touches)
                cost = len(states) * PRICE_PER_TRANSITION * 1_000_000
                storage = (reads * PRICE_PER_READ_UNIT + writes * PRICE_PER_WRITE_UNIT) * 1_000_000
                ok = per_touch <= TARGET_PER_TOUCH
                failed |= not ok
                print(
                    f"{journey.name} ({touches} touches), {label} ({resumed} resumed by the event): "
                    f"{len(states)} transitions a journey = {per_touch:.2f} per touch + {END_STATES} to finish "
                    f"(target ≤ {TARGET_PER_TOUCH:g} per touch) {'ok' if ok else 'MISSED'}; "
                    f"${cost:,.0f} per 1M nurtured leads"
                )
                print(
                    f"  DynamoDB: {reads} reads + {writes} writes a lead = ${storage:,.2f} per 1M nurtured leads "
                    f"(${cost + storage:,.2f} with the transitions)"
                )
                print("  " + " → ".join(states))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
