"""Cold start as a user pays it: a fresh interpreter that imports a function AND serves its first request.

`make bench` runs it (then bench/capture.py, the warm measures). For every function in template.yaml that
serves HTTP or a queue/stream, read from the template so a new function is measured automatically:

- **first request**: a fresh interpreter (bench/cold_child.py) imports the function's `app` from its
  folder, with the layer's code first on sys.path as the build packages it (layers/leadflow/Makefile
  `layer-code`: the package, its configuration defaults and their JSON twins; the locked dependencies come
  from the virtualenv) and the function's environment from the template, and serves
  one realistic event (a new lead, a signed delivery, a click, an SQS record...) against the embedded AWS
  (moto's server) and, for lead fetches, the local platform API (leadflow_local.local_platforms);
- **its floor**: a fresh interpreter that runs `import boto3`, makes one DynamoDB client and makes the same
  AWS calls bare (the items the function wrote, copied with fresh keys), plus the same HTTP request made
  with urllib when the function calls a platform API;
- **import only** (second column): `import app` alone vs `import boto3` + one client.

Targets: first request ≤ 1.3× its floor for the capture functions (`capture_*`), ≤ 1.5× for the others.
The cases run interleaved (function, its floor, its import, ... then the next round); the times shown are
medians over the rounds and the ratio judged is the median of the per-round ratios (each first request
next to its floor), so load on the machine lands on both sides. Exit status 1 when a target is missed or
a function has no event here.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

REPO = Path(__file__).resolve().parents[1]
LAYER = REPO / "layers" / "leadflow"
CHILD = Path(__file__).resolve().parent / "cold_child.py"
HUBSPOT_WEBHOOK_URL = "https://crm.bench.example/v1/crm/hubspot/events"  # the target URL HubSpot would sign
SECRETS = json.loads((REPO / "infra" / "local" / "secrets.json").read_text())

CAPTURE_TARGET = 1.3
OTHER_TARGET = 1.5
RUNS = int(os.environ.get("BENCH_COLD_RUNS", "7"))
NOISY = 0.15  # per-round ratios whose interquartile range exceeds 15 % of their median are reported as noisy
LOG_LEVEL = os.environ.get("BENCH_LOG_LEVEL", "INFO")
ONLY = {name.strip() for name in os.environ.get("BENCH_ONLY", "").split(",") if name.strip()}
SERVING_EVENTS = {"HttpApi", "Api", "SQS", "Kinesis", "DynamoDB", "MSK", "MQ"}  # HTTP, queues and streams
# Functions of template.yaml this bench leaves out on purpose, and why (printed with every run).
NOT_MEASURED = {
    "run_journey": "a Step Functions task of JourneyStateMachine: no HTTP, queue or stream event, its cold start"
    " is not on a caller's path (bench/journeys.py measures journeys)",
}


def out(*args: object) -> None:
    print(*args, flush=True)


class WebhookReceiver:
    """The push webhook target: answers 204 to every POST and keeps nothing (stdlib, a free port)."""

    def __init__(self) -> None:
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                self.rfile.read(int(self.headers.get("content-length") or 0))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:  # the body carries a lead: print nothing
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def start(self) -> WebhookReceiver:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def target_for(name: str) -> float:
    return CAPTURE_TARGET if name.startswith("capture_") else OTHER_TARGET


# --------------------------------------------------------------------------------------------------------
# the functions, as template.yaml declares them
# --------------------------------------------------------------------------------------------------------


def standard_webhook_headers(body: bytes, secret: str) -> dict[str, str]:
    """Headers of a Standard Webhooks delivery of `body`, signed now with the dev secret `secret`."""
    msg_id, timestamp = f"msg_{uuid.uuid4().hex}", int(time.time())
    key = base64.b64decode(SECRETS[secret].removeprefix("whsec_"))
    signature = base64.b64encode(hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest())
    return {
        "content-type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": f"v1,{signature.decode()}",
    }


@dataclass
class Function:
    logical_id: str
    name: str  # the CodeUri folder, e.g. capture_webhook
    variables: dict[str, Any]  # Environment.Variables, Globals merged (intrinsics unresolved)
    events: set[str]


def serving_functions() -> list[Function]:
    from leadflow_local.template import _resources, function_properties, load_template

    template = load_template()
    found = []
    for logical_id in _resources(template, "AWS::Serverless::Function"):
        props = function_properties(template, logical_id)
        events = {str(e.get("Type")) for e in (props.get("Events") or {}).values()}
        if events & SERVING_EVENTS:
            name = Path(str(props["CodeUri"])).name
            found.append(Function(logical_id, name, dict(props.get("Environment", {}).get("Variables", {})), events))
    return found


def function_env(function: Function, local: dict[str, str]) -> dict[str, str]:
    """The function's environment from the template, each !Ref resolved to its local stand-in.

    Secrets, the form registry and the provider configuration come from the development files (as under
    `leadflow up`); a reference this bench cannot resolve is left out, like an unset variable.
    """
    env: dict[str, str] = {}
    for key, value in function.variables.items():
        if isinstance(value, str | int | float):
            env[key] = str(value)
        elif isinstance(value, dict) and "Ref" in value and value["Ref"] in local:
            env[key] = local[value["Ref"]]
    for key in ("LEADFLOW_FORMS_PARAMETER", "LEADFLOW_WEBHOOKS_PARAMETER", "LEADFLOW_SECRETS_PREFIX"):
        env.pop(key, None)
    return env


# --------------------------------------------------------------------------------------------------------
# realistic events, one per function (built fresh for every run: a new lead each time)
# --------------------------------------------------------------------------------------------------------


@dataclass
class Case:
    event: dict
    expect_status: int | None = 200
    expect_no_failures: bool = False
    floor_http: list[dict] = field(default_factory=list)  # platform API calls the floor makes with urllib
    record: bool = False  # the floor is the AWS and HTTP calls this function's first request made (recorded)


class Events:
    def __init__(self, platforms_url: str, client: Any = None, table: str = "") -> None:
        from leadflow_local.apigw import build_event

        self.build_event = build_event
        self.platforms_url = platforms_url
        self.client = client  # DynamoDB, to read a captured lead and store qualified copies of it
        self.table = table
        self.counter = 0
        self.lead_id: str | None = None  # a stored lead for the operator route (set after a capture)

    def n(self) -> int:
        self.counter += 1
        return self.counter

    @staticmethod
    def lead_fields(n: int, tag: str) -> dict:
        salt = uuid.uuid4().hex[:6]  # every run of every bench is a new lead, whatever the table holds
        return {
            "email": f"Grace.Hopper.{tag}{n:04d}{salt}@Navy-Labs.io",
            "phone": f"+1 415 2{n // 10000 % 10}{n // 1000 % 10} {int(salt, 16) % 10000:04d}",
            "first_name": " Grace ",
            "last_name": "Hopper",
            "company": "Navy Labs",
            "job_title": "Rear Admiral",
            "country": "United States",
            "utm_source": "newsletter",
            "utm_medium": "email",
            "utm_campaign": "cobol-launch",
            "gclid": "EAIaIQobChMI-Case_Sensitive",
            "page_url": "https://www.navy-labs.io/pricing?utm_content=hero",
            "consent_email": True,
        }

    def capture_webhook(self) -> Case:
        data = {**self.lead_fields(self.n(), "w"), "attributes": {"budget": "50k"}}
        body = json.dumps({"type": "lead.submitted", "timestamp": "2026-11-22T10:00:00Z", "data": data}).encode()
        headers = standard_webhook_headers(body, "webhooks/generic")
        event = self.build_event(
            "POST",
            "/v1/webhooks/generic",
            route_key="POST /v1/webhooks/{provider}",
            path_parameters={"provider": "generic"},
            headers=headers,
            body=body,
        )
        return Case(event)

    def capture_form(self) -> Case:
        fields = {**self.lead_fields(self.n(), "f"), "consent_email": "on", "message": "Please call me", "_hp": ""}
        event = self.build_event(
            "POST",
            "/v1/forms/website",
            route_key="POST /v1/forms/{form_id}",
            path_parameters={"form_id": "website"},
            headers={"content-type": "application/json", "origin": "http://localhost:8080"},
            body=json.dumps(fields).encode(),
        )
        return Case(event, expect_status=202)

    def capture_callback(self) -> Case:
        query = urlencode(
            {
                "token": SECRETS["callbacks/tencent"]["token"],
                "click_id": f"clk{uuid.uuid4().hex[:16]}",
                "click_time": str(int(time.time())),
                "account_id": "25610",
                "campaign_id": "102043154",
                "adgroup_id": "228691429",
                "ad_id": "251986746",
                "request_id": "req-8d3ebd3654fb46a2",
                "callback": "http://tracking.e.qq.com/conv?cb=MTIzYWJjNDU2ZGVm&conv_id=12345678",
            }
        )
        event = self.build_event(
            "GET",
            f"/v1/callbacks/tencent?{query}",
            route_key="GET /v1/callbacks/{platform}",
            path_parameters={"platform": "tencent"},
            headers={"host": "leads-api.example.com", "x-forwarded-proto": "https"},
        )
        return Case(event)

    def fetch_leads(self) -> Case:
        """An SQS record of the fetch queue naming one Meta lead, which the local Graph API serves."""
        import urllib.request

        leadgen_id = str(10**15 + self.n() * 7919 + int(uuid.uuid4().int % 10**6))
        fields = self.lead_fields(self.n(), "m")
        lead = {
            "id": leadgen_id,
            "created_time": "2026-11-22T10:00:00+0000",
            "ad_id": "120210000000001",
            "form_id": "120210000000002",
            "field_data": [
                {"name": "email", "values": [fields["email"]]},
                {"name": "phone_number", "values": [fields["phone"]]},
                {"name": "full_name", "values": ["Grace Hopper"]},
                {"name": "company_name", "values": ["Navy Labs"]},
                {"name": "budget", "values": ["50k"]},
            ],
        }
        register = urllib.request.Request(  # noqa: S310 - loopback
            f"{self.platforms_url}/__leads/meta", data=json.dumps({leadgen_id: lead}).encode(), method="POST"
        )
        urllib.request.urlopen(register, timeout=10).close()  # noqa: S310
        pointer = {"id": leadgen_id, "page_id": "1000001", "form_id": "120210000000002"}
        body = {"provider": "meta", "pointers": [pointer], "received_at": "2026-11-22T10:00:01Z"}
        record = {
            "messageId": str(uuid.uuid4()),
            "receiptHandle": "bench",
            "body": json.dumps(body),
            "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": str(int(time.time() * 1000))},
            "messageAttributes": {"provider": {"stringValue": "meta", "dataType": "String"}},
            "md5OfBody": "",
            "eventSource": "aws:sqs",
            "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:LeadFetchQueue",
            "awsRegion": "us-east-1",
        }
        fields_param = "created_time,field_data,ad_id,adset_id,campaign_id,form_id,is_organic,platform"
        operations = [{"method": "GET", "relative_url": f"v21.0/{leadgen_id}?fields={fields_param}"}]
        graph_call = {
            "op": "http",
            "method": "POST",
            "url": self.platforms_url + "/",
            "data": urlencode(
                {
                    "batch": json.dumps(operations, separators=(",", ":")),
                    "include_headers": "false",
                    "access_token": SECRETS["webhooks/meta"]["access_token"],
                }
            ),
            "headers": {"Accept": "application/json", "Content-Type": "application/x-www-form-urlencoded"},
        }
        return Case({"Records": [record]}, expect_status=None, expect_no_failures=True, floor_http=[graph_call])

    def manage_leads(self) -> Case:
        assert self.lead_id, "a capture runs first and stores the lead the operator reads"
        event = self.build_event(
            "GET",
            f"/v1/leads/{self.lead_id}",
            route_key="GET /v1/leads/{lead_id}",
            path_parameters={"lead_id": self.lead_id},
        )
        return Case(event)

    def health(self) -> Case:
        return Case(self.build_event("GET", "/health", route_key="GET /health"))

    # ---- added with POST /v1/events, the lead stage and timeline routes, CRM push and journeys: their floors
    # are the calls the function's first request made, recorded in the learning run (Case.record)

    def manage_leads_stage(self) -> Case:
        """POST /v1/leads/{id}/stage: an operator moves an MQL (a copy of the lead a capture just stored, so
        every run moves a lead of its own, whichever case ran before) to SQL."""
        assert self.lead_id, "a capture runs first"
        lead_id = self._qualified_copy()[1]["lead_id"]["S"]
        event = self.build_event(
            "POST",
            f"/v1/leads/{lead_id}/stage",
            route_key="POST /v1/leads/{lead_id}/stage",
            path_parameters={"lead_id": lead_id},
            headers={"content-type": "application/json"},
            body=json.dumps({"stage": "sql", "reason": "booked a demo on the phone"}).encode(),
        )
        return Case(event, record=True)

    def manage_leads_timeline(self) -> Case:
        assert self.lead_id, "a capture runs first"
        event = self.build_event(
            "GET",
            f"/v1/leads/{self.lead_id}/timeline",
            route_key="GET /v1/leads/{lead_id}/timeline",
            path_parameters={"lead_id": self.lead_id},
        )
        return Case(event, record=True)

    def report_funnel(self) -> Case:
        """GET /v1/reports/funnel: the operator's funnel report by source (counters of the leads captured)."""
        event = self.build_event("GET", "/v1/reports/funnel?group_by=source", route_key="GET /v1/reports/funnel")
        return Case(event, record=True)

    def capture_events(self) -> Case:
        """A signed delivery (Standard Webhooks, secret `events`) of two engagement events of a stored lead."""
        assert self.lead_id, "a capture runs first"
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        events = [
            {"type": "email_click", "lead_id": self.lead_id, "occurred_at": now, "properties": {"campaign": "c1"}},
            {"type": "page_view", "lead_id": self.lead_id, "occurred_at": now, "properties": {"url": "/pricing"}},
        ]
        body = json.dumps({"events": events}).encode()
        headers = standard_webhook_headers(body, "events")
        event = self.build_event("POST", "/v1/events", route_key="POST /v1/events", headers=headers, body=body)
        return Case(event, expect_status=202, record=True)

    def _stored_lead(self) -> dict:
        assert self.lead_id, "a capture runs first"
        key = {"pk": {"S": f"LEAD#{self.lead_id}"}, "sk": {"S": "LEAD"}}
        return self.client.get_item(TableName=self.table, Key=key, ConsistentRead=True)["Item"]

    def _qualified_copy(self) -> tuple[dict, dict]:
        """(before, after): a copy of the last captured lead under a new id, stored as an MQL (the lead item
        the stream would show when scoring qualifies it)."""
        before = self._stored_lead()
        lead_id = str(uuid.uuid4())
        before = {**before, "pk": {"S": f"LEAD#{lead_id}"}, "lead_id": {"S": lead_id}}
        version = int(before.get("version", {"N": "1"})["N"])
        after = {**before, "lifecycle_stage": {"S": "mql"}, "version": {"N": str(version + 1)}}
        self.client.put_item(TableName=self.table, Item=after)
        return before, after

    @staticmethod
    def _stream_record(name: str, new: dict, old: dict | None) -> dict:
        change: dict[str, Any] = {
            "ApproximateCreationDateTime": int(time.time()),
            "Keys": {"pk": new["pk"], "sk": new["sk"]},
            "NewImage": new,
            "SequenceNumber": str(10**20 + int(uuid.uuid4().int % 10**12)),
            "SizeBytes": len(json.dumps(new)),
            "StreamViewType": "NEW_AND_OLD_IMAGES",
        }
        if old is not None:
            change["OldImage"] = old
        return {
            "eventID": uuid.uuid4().hex,
            "eventName": name,
            "eventVersion": "1.1",
            "eventSource": "aws:dynamodb",
            "awsRegion": "us-east-1",
            "dynamodb": change,
            "eventSourceARN": "arn:aws:dynamodb:us-east-1:123456789012:table/leads/stream/2026-11-22T10:00:00.000",
        }

    def route_crm_pushes(self) -> Case:
        """A stream record of a lead qualified to MQL (old image: the captured lead)."""
        before, after = self._qualified_copy()
        record = self._stream_record("MODIFY", after, before)
        return Case({"Records": [record]}, expect_status=None, expect_no_failures=True, record=True)

    def route_journeys(self) -> Case:
        """A stream record of a new lead (INSERT), the image a capture writes: the router decides its enrolment."""
        lead = self._stored_lead()
        return Case(
            {"Records": [self._stream_record("INSERT", lead, None)]},
            expect_status=None,
            expect_no_failures=True,
            record=True,
        )

    def _push(self, target: str) -> Case:
        """An SQS message of the target's push queue naming one MQL lead (as the router queues it)."""
        _, after = self._qualified_copy()
        body = {"target": target, "leads": [{"lead_id": after["lead_id"]["S"], "version": int(after["version"]["N"])}]}
        record = {
            "messageId": str(uuid.uuid4()),
            "receiptHandle": "bench",
            "body": json.dumps(body),
            "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": str(int(time.time() * 1000))},
            "messageAttributes": {"target": {"stringValue": target, "dataType": "String"}},
            "md5OfBody": "",
            "eventSource": "aws:sqs",
            "eventSourceARN": f"arn:aws:sqs:us-east-1:123456789012:{target}-push",
            "awsRegion": "us-east-1",
        }
        return Case({"Records": [record]}, expect_status=None, expect_no_failures=True, record=True)

    def route_leads(self) -> Case:
        """An SQS message of the routing queue naming one MQL without an owner (as the push router queues it)."""
        _, after = self._qualified_copy()
        record = {
            "messageId": str(uuid.uuid4()),
            "receiptHandle": "bench",
            "body": json.dumps({"leads": [{"lead_id": after["lead_id"]["S"]}]}),
            "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": str(int(time.time() * 1000))},
            "messageAttributes": {"target": {"stringValue": "routing", "dataType": "String"}},
            "md5OfBody": "",
            "eventSource": "aws:sqs",
            "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:routing",
            "awsRegion": "us-east-1",
        }
        return Case({"Records": [record]}, expect_status=None, expect_no_failures=True, record=True)

    def push_hubspot(self) -> Case:
        return self._push("hubspot")

    def push_salesforce(self) -> Case:
        return self._push("salesforce")

    def push_webhook(self) -> Case:
        return self._push("webhook")

    def _conversion(self, platform: str, stage: str) -> Case:
        """An SQS message of the platform's conversion queue (as the router queues it) naming a copy of the last
        captured lead that came from an ad click carrying every platform's click id, now in `stage`."""
        _, after = self._qualified_copy()
        now = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())
        landing = "https://www.example.com/?gclid=Cj0KBench&bd_vid=BDBench&qz_gdt=QZBench"
        touch = {"source": {"S": "form:website"}, "captured_at": {"S": now}, "landing_url": {"S": landing},
                 "gclid": {"S": "Cj0KBench"}, "bd_vid": {"S": "BDBench"}, "qz_gdt": {"S": "QZBench"},
                 "fbc": {"S": "fb.1.1700000000000.Bench"}}  # fmt: skip
        after = {**after, "lifecycle_stage": {"S": stage},
                 "attribution": {"M": {"first_touch": {"M": touch}, "last_touch": {"M": touch}}}}  # fmt: skip
        self.client.put_item(TableName=self.table, Item=after)
        ref = {"lead_id": after["lead_id"]["S"], "stage": stage, "at": now, "claim": uuid.uuid4().hex}
        record = {
            "messageId": str(uuid.uuid4()),
            "receiptHandle": "bench",
            "body": json.dumps({"platform": platform, "conversions": [ref], "attempt": 0}),
            "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": str(int(time.time() * 1000))},
            "messageAttributes": {"platform": {"stringValue": platform, "dataType": "String"}},
            "md5OfBody": "",
            "eventSource": "aws:sqs",
            "eventSourceARN": f"arn:aws:sqs:us-east-1:123456789012:{platform}-conversions",
            "awsRegion": "us-east-1",
        }
        return Case({"Records": [record]}, expect_status=None, expect_no_failures=True, record=True)

    def send_conversions_google_ads(self) -> Case:
        return self._conversion("google-ads", "sql")

    def send_conversions_meta(self) -> Case:
        return self._conversion("meta", "sql")

    def send_conversions_baidu(self) -> Case:
        return self._conversion("baidu", "sql")

    def send_conversions_tencent(self) -> Case:
        return self._conversion("tencent", "lead")

    # ---- added with CRM feedback in

    def _link(self, record_id: str) -> None:
        """A pushed MQL (a copy of the last captured lead, so the operator's stage move keeps its own lead) as
        HubSpot contact `record_id` (the link item the push writes back)."""
        _, pushed = self._qualified_copy()
        lead_id = pushed["lead_id"]["S"]
        item = {"pk": {"S": f"CRMID#hubspot#{record_id}"}, "sk": {"S": "IDENTITY"}, "lead_id": {"S": lead_id}}
        item["entity"] = {"S": "crm_link"}
        self.client.put_item(TableName=self.table, Item=item)

    def crm_events(self) -> Case:
        """A HubSpot webhook (signature v3) saying the stored lead's contact became an SQL."""
        record_id = str(self.n())
        self._link(record_id)
        now_ms = int(time.time() * 1000)
        change = {"eventId": self.n(), "portalId": 62515, "occurredAt": now_ms, "objectId": int(record_id)}
        change.update(subscriptionType="contact.propertyChange", propertyName="lifecyclestage")
        body = json.dumps([{**change, "propertyValue": "salesqualifiedlead"}]).encode()
        signed = ("POST" + HUBSPOT_WEBHOOK_URL).encode() + body + str(now_ms).encode()
        secret = SECRETS["crm/hubspot"]["client_secret"].encode()
        headers = {
            "content-type": "application/json",
            "x-hubspot-request-timestamp": str(now_ms),
            "x-hubspot-signature-v3": base64.b64encode(hmac.new(secret, signed, hashlib.sha256).digest()).decode(),
        }
        event = self.build_event(
            "POST",
            "/v1/crm/hubspot/events",
            route_key="POST /v1/crm/{crm}/events",
            path_parameters={"crm": "hubspot"},
            headers=headers,
            body=body,
        )
        return Case(event, record=True)

    def retry_crm_feedback(self) -> Case:
        """A retry-queue message naming the kept events of a contact the push has just linked to the lead."""
        record_id = str(self.n())
        self._link(record_id)
        pending = f"CRMPENDING#hubspot#record#{record_id}"
        event = {
            "crm": {"S": "hubspot"},
            "event_id": {"S": f"62515:{record_id}:{record_id}:1"},
            "occurred_at": {"S": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())},
            "kind": {"S": "outcome"},
            "object_type": {"S": "contact"},
            "object_id": {"S": record_id},
            "outcome": {"S": "sql"},
        }
        item = {"pk": {"S": pending}, "sk": {"S": f"EVENT#{record_id}"}, "event": {"M": event}}
        item["entity"] = {"S": "crm_pending"}
        self.client.put_item(TableName=self.table, Item=item)
        record = {
            "messageId": str(uuid.uuid4()),
            "receiptHandle": "bench",
            "body": json.dumps({"pending": pending}),
            "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": str(int(time.time() * 1000))},
            "messageAttributes": {},
            "md5OfBody": "",
            "eventSource": "aws:sqs",
            "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:crm-feedback-retry",
            "awsRegion": "us-east-1",
        }
        return Case({"Records": [record]}, expect_status=None, expect_no_failures=True, record=True)


# --------------------------------------------------------------------------------------------------------
# floors: the same AWS calls, learnt from what the function did, made bare with one boto3 client
# --------------------------------------------------------------------------------------------------------


class Floors:
    """What each function's first request did to the table, as bare calls with fresh keys."""

    def __init__(self, client: Any, table: str) -> None:
        self.client = client
        self.table = table
        self.shapes: dict[str, list[tuple[dict, bool]]] = {}
        self.recorded: dict[str, list[dict]] = {}  # case → the calls its first request made (Case.record)

    def replay(self, name: str) -> list[dict]:
        """The recorded calls, each item written with attribute_not_exists given a fresh key of the same
        length (so the floor writes it too instead of failing the check). Other calls are made as recorded:
        a version condition that no longer holds fails on the floor's side after the same round trip."""
        tag = uuid.uuid4().hex[:12]
        calls = json.loads(json.dumps(self.recorded.get(name, [])))
        for call in calls:
            if call["op"] != "aws" or call["service"] != "dynamodb":
                continue
            args = call["args"]
            puts = [args] if call["operation"] == "PutItem" else []
            puts += [item["Put"] for item in args.get("TransactItems", []) if "Put" in item]
            for put in puts:
                if "attribute_not_exists" in put.get("ConditionExpression", ""):
                    pk = put["Item"]["pk"]["S"]
                    put["Item"]["pk"] = {"S": pk[: -len(tag)] + tag}
        return calls

    def _items(self) -> list[dict]:
        pages = self.client.get_paginator("scan").paginate(TableName=self.table, ConsistentRead=True)
        return [item for page in pages for item in page["Items"]]

    def snapshot(self) -> set[tuple[str, str]]:
        return {(item["pk"]["S"], item["sk"]["S"]) for item in self._items()}

    def learn(self, name: str, before: set[tuple[str, str]]) -> list[str]:
        """Read back the items one first request wrote (in transaction order)."""
        items = [item for item in self._items() if (item["pk"]["S"], item["sk"]["S"]) not in before]
        order = {"lead": 0, "identity": 1, "touch": 2, "conflict": 3, "delivery": 4, "click": 5}
        items.sort(key=lambda item: order.get(item["entity"]["S"], 9))
        conditional = {"lead", "identity", "delivery", "click"}  # written with attribute_not_exists(pk)
        self.shapes[name] = [(item, item["entity"]["S"] in conditional) for item in items]
        return [item["entity"]["S"] for item in items]

    def calls(self, name: str, lead_id: str | None) -> list[dict]:
        shape = self.shapes.get(name) or []
        if name == "manage_leads":
            return [
                {
                    "op": "get_item",
                    "args": {
                        "TableName": self.table,
                        "Key": {"pk": {"S": f"LEAD#{lead_id}"}, "sk": {"S": "LEAD"}},
                        "ConsistentRead": True,
                    },
                },
                {
                    "op": "query",
                    "args": {
                        "TableName": self.table,
                        "KeyConditionExpression": "pk = :pk AND begins_with(sk, :conflict)",
                        "ExpressionAttributeValues": {":pk": {"S": f"LEAD#{lead_id}"}, ":conflict": {"S": "CONFLICT#"}},
                    },
                },
            ]
        if not shape:
            return []
        fresh_lead = str(uuid.uuid4())
        tag = uuid.uuid4().hex[:12]
        puts, keys = [], []
        for item, conditional in shape:
            fresh = json.loads(json.dumps(item))
            entity = fresh["entity"]["S"]
            if entity in ("lead", "touch", "conflict"):
                fresh["pk"] = {"S": f"LEAD#{fresh_lead}"}
            else:  # identity / delivery / click items: a unique key of the same length
                pk = fresh["pk"]["S"]
                fresh["pk"] = {"S": pk[: -len(tag)] + tag}
                keys.append({"pk": fresh["pk"], "sk": fresh["sk"]})
            if "lead_id" in fresh:
                fresh["lead_id"] = {"S": fresh_lead}
            put: dict[str, Any] = {"TableName": self.table, "Item": fresh}
            if conditional:
                put["ConditionExpression"] = "attribute_not_exists(pk)"
            puts.append(put)
        if len(puts) == 1:  # one conditional PutItem (a click)
            return [{"op": "put_item", "args": puts[0]}]
        return [
            {"op": "batch_get_item", "args": {"RequestItems": {self.table: {"Keys": keys, "ConsistentRead": True}}}},
            {"op": "transact_write_items", "args": {"TransactItems": [{"Put": p} for p in puts]}},
        ]


# --------------------------------------------------------------------------------------------------------
# running the fresh interpreters
# --------------------------------------------------------------------------------------------------------


class Runner:
    def __init__(self, workdir: Path, base_env: dict[str, str]) -> None:
        self.workdir = workdir
        self.base_env = base_env
        self.count = 0

    def run(self, mode: str, job: dict, env: dict[str, str], *flags: str) -> tuple[dict, str]:
        self.count += 1
        job_path = self.workdir / f"job{self.count}.json"
        result_path = self.workdir / f"result{self.count}.json"
        job_path.write_text(json.dumps(job))
        done = subprocess.run(  # noqa: PLW1510 - checked below
            [sys.executable, *flags, str(CHILD), mode, str(job_path), str(result_path)],
            env={**self.base_env, **env},
            cwd=str(self.workdir),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        if os.environ.get("BENCH_KEEP_JOBS"):
            (self.workdir.parent / f"bench-{mode}-{job.get('name')}.json").write_text(json.dumps(job))
        if done.returncode != 0:
            raise SystemExit(f"{mode} {job.get('name')} failed:\n{done.stderr[-3000:]}")
        result = json.loads(result_path.read_text())
        job_path.unlink()
        result_path.unlink()
        return result, done.stderr


def import_rows(stderr: str) -> list[tuple[float, float, int, str]]:
    """`-X importtime` lines → (cumulative ms, self ms, nesting depth, module)."""
    rows = []
    for line in stderr.splitlines():
        if not line.startswith("import time:") or "imported package" in line:
            continue
        self_us, cumulative_us, name = line[len("import time:") :].split("|", 2)
        depth = (len(name) - len(name.lstrip())) // 2
        rows.append((int(cumulative_us) / 1000, int(self_us) / 1000, depth, name.strip()))
    return rows


def spread(values: list[float]) -> float:
    """Interquartile range over median (0 with fewer than 4 values)."""
    if len(values) < 4:
        return 0.0
    q1, _, q3 = statistics.quantiles(values, n=4)
    return (q3 - q1) / statistics.median(values)


def main() -> int:
    started = time.perf_counter()
    sys.path[:0] = [str(REPO / "infra" / "local"), str(LAYER)]
    import boto3

    from leadflow_local.journeys import provision_state_machines
    from leadflow_local.local_crm import LocalCrm
    from leadflow_local.local_platforms import LocalPlatforms
    from leadflow_local.local_salesforce import LocalSalesforce
    from leadflow_local.moto_server import EmbeddedAws
    from leadflow_local.template import create_queues, create_tables, load_template

    out(f"LeadFlow cold-start bench ({os.cpu_count()} cores, Python {sys.version.split()[0]}, log level {LOG_LEVEL})")
    functions = serving_functions()
    out("functions serving HTTP, queues or streams (template.yaml): " + ", ".join(f.name for f in functions))
    for name, why in NOT_MEASURED.items():
        out(f"not measured: {name} ({why})")

    aws = EmbeddedAws(port=0).start()
    platforms = LocalPlatforms().start()  # the dev tokens of infra/local/secrets.json
    crm = LocalCrm(port=0).start()  # HubSpot's contacts API, as under `leadflow up`
    salesforce = LocalSalesforce(port=0).start()
    receiver = WebhookReceiver().start()  # the push webhook target: answers 204, keeps nothing
    creds = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}
    os.environ.update(creds)
    client = boto3.client("dynamodb", endpoint_url=aws.endpoint, region_name="us-east-1")
    sqs = boto3.client("sqs", endpoint_url=aws.endpoint, region_name="us-east-1")
    template = load_template()
    tables = create_tables(client, template)
    queues = create_queues(sqs, template)
    machines = provision_state_machines(
        boto3.client("stepfunctions", endpoint_url=aws.endpoint, region_name="us-east-1"),
        template,
        tables=tables,
        queues=queues,
        base=REPO,
    )
    local = {
        "Stage": "dev",
        "DefaultPhoneRegion": "US",
        "HubSpotWebhookUrl": HUBSPOT_WEBHOOK_URL,
        **{logical: name for logical, name in tables.items()},
        **{logical: url for logical, url in queues.items()},
        **machines,
    }
    table = tables["LeadsTable"]
    base_env = {key: value for key, value in os.environ.items() if not key.startswith(("AWS_", "POWERTOOLS_"))}
    base_env.pop("PYTHONDONTWRITEBYTECODE", None)  # .pyc files are written once and used, as a built layer
    base_env.pop("PYTHONPATH", None)  # the child puts the layer and the function folder on sys.path itself
    base_env.update(
        creds,
        AWS_REGION="us-east-1",
        AWS_ENDPOINT_URL=aws.endpoint,  # every AWS client of either side, DynamoDB and SQS alike
        AWS_ACCOUNT_ID_ENDPOINT_MODE="disabled",
        TZ="UTC",
        LEADFLOW_SECRETS_FILE=str(REPO / "infra" / "local" / "secrets.json"),
        LEADFLOW_FORMS_FILE=str(REPO / "infra" / "local" / "forms.json"),
        LEADFLOW_WEBHOOKS_FILE=str(REPO / "infra" / "local" / "webhooks.json"),
        LEADFLOW_META_GRAPH_URL=platforms.url,
        LEADFLOW_FETCH_BACKOFF_SECONDS="0",
        LEADFLOW_HUBSPOT_API_URL=crm.url,
        LEADFLOW_SALESFORCE_LOGIN_URL=salesforce.url,
        LEADFLOW_PUSH_BACKOFF_SECONDS="1",
        # conversions out: every platform on (as under `leadflow up`), reported to the local stand-ins
        LEADFLOW_CONVERSIONS_FILE=str(REPO / "infra" / "local" / "conversions.yaml"),
        LEADFLOW_GOOGLE_ADS_API_URL=platforms.url,
        LEADFLOW_GOOGLE_OAUTH_URL=platforms.url,
        LEADFLOW_BAIDU_OCPC_URL=platforms.url,
        LEADFLOW_TENCENT_ADS_URL=platforms.url,
    )
    events = Events(platforms.url, client, table)
    floors = Floors(client, table)
    builders: dict[str, Callable[[], Case]] = {
        name: getattr(events, name.replace(" ", "_"))
        for name in (
            "capture_webhook",
            "capture_form",
            "capture_callback",
            "capture_events",
            "fetch_leads",
            "route_crm_pushes",
            "push_hubspot",
            "push_salesforce",
            "push_webhook",
            "send_conversions_google_ads",
            "send_conversions_meta",
            "send_conversions_baidu",
            "send_conversions_tencent",
            "route_journeys",
            "route_leads",
            "crm_events",
            "retry_crm_feedback",
            "manage_leads",
            "manage_leads timeline",
            "manage_leads stage",
            "report_funnel",
            "health",
        )
    }
    # The cases: one per function, more for a function with more routes (the operator's); captures first,
    # the others read or qualify a lead they stored.
    missing = [f.name for f in functions if f.name not in builders]
    by_folder = {f.name: f for f in functions}
    cases = [(label, by_folder[label.split(" ")[0]]) for label in builders if label.split(" ")[0] in by_folder]
    if ONLY:  # a few cases only (their prerequisites, the captures, still run first)
        cases = [(label, f) for label, f in cases if label in ONLY or label.startswith("capture_")]
    envs = {f.name: {**function_env(f, local), "POWERTOOLS_LOG_LEVEL": LOG_LEVEL} for f in functions}

    with tempfile.TemporaryDirectory(prefix="leadflow-cold-") as tmp:
        # the layer's code as `sam build` packages it (what a function imports on Lambda from /opt/python)
        subprocess.run(
            ["make", "-s", "-C", str(LAYER), "layer-code", f"ARTIFACTS_DIR={tmp}/layer", f"PYTHON={sys.executable}"],
            check=True,
        )
        built_layer = Path(tmp) / "layer" / "python"
        # the development secrets and CRM configuration, with the push webhook target enabled and pointed at
        # the bench's receiver (the file's own URL names `leadflow up`'s port)
        secrets = json.loads(json.dumps(SECRETS))
        secrets["crm/webhook"]["url"] = receiver.url + "/webhook"
        (Path(tmp) / "secrets.json").write_text(json.dumps(secrets))
        crm_file = json.loads((REPO / "infra" / "local" / "crm.json").read_text())
        crm_file["targets"]["webhook"]["enabled"] = True
        (Path(tmp) / "crm.json").write_text(json.dumps(crm_file))
        base_env.update(
            LEADFLOW_SECRETS_FILE=str(Path(tmp) / "secrets.json"), LEADFLOW_CRM_FILE=str(Path(tmp) / "crm.json")
        )
        runner = Runner(Path(tmp), base_env)

        def job(function: Function, case: Case | None = None) -> dict:
            return {
                "name": function.name,
                "layer": str(built_layer),
                "function_dir": str(REPO / "functions" / function.name),
                "event": case.event if case else None,
                "expect_status": case.expect_status if case else None,
                "expect_no_failures": case.expect_no_failures if case else False,
                "record": bool(case and case.record),
            }

        def remember_lead(result: dict) -> None:
            with contextlib.suppress(KeyError, TypeError, ValueError, IndexError):
                body = json.loads(result["result"]["body"])
                events.lead_id = body.get("lead_id") or body["leads"][0]["lead_id"]

        # Warm-up, one per case: .pyc files written, page cache filled; and each floor learnt from what the
        # function's first request wrote.
        out("\nlearning each floor from what one first request wrote (or, for the newer cases, called):")
        for label, function in cases:
            before = floors.snapshot()
            case = builders[label]()
            result, _ = runner.run("first", job(function, case), envs[function.name])
            remember_lead(result)
            entities = floors.learn(label, before)
            if case.record:
                floors.recorded[label] = result.get("calls", [])
                calls = floors.replay(label)
                ops = [c.get("operation") or f"{c['method']} {c['url'].split('?')[0]}" for c in calls]
                out(f"  {label:<21} called → floor: {ops or 'no calls'}")
            else:
                calls = floors.calls(label, events.lead_id)
                ops = [c["op"] for c in case.floor_http] + [c["op"] for c in calls]
                if label == "manage_leads":
                    entities = ["(reads the lead)"]
                out(f"  {label:<21} wrote {entities or 'nothing'} → floor: {ops or 'no calls'}")
            runner.run("floor", {**job(function, builders[label]()), "floor": case.floor_http + calls}, {})
            runner.run("import", job(function), envs[function.name])
        runner.run("floor-import", {"name": "floor"}, {})

        samples: dict[str, list[float]] = {}

        def record(key: str, value: float) -> None:
            samples.setdefault(key, []).append(value)

        out(f"\ntiming: {RUNS} rounds, each: every function's first request, its floor and its import, interleaved")
        for _ in range(RUNS):
            record("floor-import", runner.run("floor-import", {"name": "floor"}, {})[0]["import_ms"])
            for label, function in cases:
                case = builders[label]()
                result, _ = runner.run("first", job(function, case), envs[function.name])
                remember_lead(result)
                record(f"{label}:first", result["total_ms"])
                floor_case = builders[label]()  # a fresh event for the floor's body (parsed)
                floor_case.record = False
                learnt = floors.replay(label) if case.record else floors.calls(label, events.lead_id)
                calls = floor_case.floor_http + learnt
                record(
                    f"{label}:floor",
                    runner.run("floor", {**job(function, floor_case), "floor": calls}, {})[0]["total_ms"],
                )
                record(f"{label}:import", runner.run("import", job(function), envs[function.name])[0]["import_ms"])

        floor_import = statistics.median(samples["floor-import"])
        rows = []
        for label, _function in cases:
            firsts, floors_ms = samples[f"{label}:first"], samples[f"{label}:floor"]
            # Each first request ran right before its floor: the ratio of each pair cancels the load of
            # that moment, and the median of those ratios is the figure judged.
            paired = [a / b for a, b in zip(firsts, floors_ms, strict=True)]
            imports = [a / b for a, b in zip(samples[f"{label}:import"], samples["floor-import"], strict=True)]
            rows.append(
                (
                    label,
                    statistics.median(firsts),
                    statistics.median(floors_ms),
                    statistics.median(paired),
                    statistics.median(samples[f"{label}:import"]),
                    statistics.median(imports),
                    spread(paired),
                )
            )

        if os.environ.get("BENCH_IMPORTTIME", "1") != "0":
            out("\nwhat a first request imports (-X importtime, one run each; top modules by cumulative ms):")
            for label, function in cases:
                case = builders[label]()
                case.record = False
                result, stderr = runner.run("first", job(function, case), envs[function.name], "-X", "importtime")
                remember_lead(result)  # the operator's stage move needs a lead a capture of this pass stored
                rows_ = import_rows(stderr.split("bench clock started\n", 1)[-1])
                total = sum(r[0] for r in rows_ if r[2] == 0)
                # what app imports itself and what the request imports later (depth ≤ 1), biggest first
                near = [r for r in rows_ if r[2] <= 1 and r[3] != "app"]
                listed = ", ".join(f"{m} {c:.0f}" for c, _, _, m in sorted(near, reverse=True)[:8] if c >= 2)
                out(f"  {label} ({total:.0f} ms of imports): {listed}")

    for server in (receiver, salesforce, crm, platforms):
        server.stop()
    aws.stop()

    out("\n== cold start: import + first request (medians of interleaved fresh interpreters) ==")
    out(
        f"{'function':<21} {'first req':>9} {'floor':>7} {'ratio':>6} {'target':>7}  {'result':<7}"
        f" {'import':>7} {'floor':>7} {'ratio':>6}  noise"
    )
    missed = 0
    for name, first, floor, ratio, imported, import_ratio, noise in rows:
        target = target_for(name)
        ok = ratio <= target
        missed += not ok
        out(
            f"{name:<21} {first:7.0f}ms {floor:5.0f}ms {ratio:6.2f} {'≤ ' + str(target):>7}  "
            f"{'met' if ok else 'MISSED':<7} {imported:5.0f}ms {floor_import:5.0f}ms {import_ratio:6.2f}  "
            f"{'HIGH ' if noise > NOISY else ''}{noise * 100:.0f}%"
        )
    for name in missing:
        missed += 1
        out(f"{name:<21} MISSED: no event for it in bench/cold_start.py (Events.{name})")
    out(
        "first req: a fresh interpreter's `import app` + one handler call; floor: `import boto3`, one client and the"
        " same AWS calls bare.\nimport: `import app` alone vs `import boto3` + one client. ratio: the median of the"
        " per-round ratios (each run next to its floor); ms: medians.\nnoise: interquartile range / median of the"
        " per-round first-request ratios."
    )
    _layer_size()
    out(f"(cold-start bench took {time.perf_counter() - started:.0f} s)")
    return 1 if missed else 0


def _layer_size() -> None:
    """The deployed layer's unzipped size, from the last `make build` (the build is not part of the bench: it
    downloads the arm64 wheels)."""
    layer = REPO / ".aws-sam" / "build" / "LeadflowLayer"
    if not layer.is_dir():
        out("layer size: no build yet (`make build` builds the layer and prints its unzipped size)")
        return
    subprocess.run([sys.executable, str(REPO / "infra" / "packaging" / "layer_size.py"), str(layer)], check=False)


if __name__ == "__main__":
    sys.exit(main())
