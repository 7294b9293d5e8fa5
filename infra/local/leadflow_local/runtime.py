"""`leadflow up`: the whole system on one machine, no Docker, no AWS account.

Embedded AWS (moto's server) is provisioned from template.yaml itself, the HTTP API serves the template's
routes with the real handlers, and lead activity is printed from the table's stream.
"""

from __future__ import annotations

import os
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
PUSH_QUEUES = {"hubspot": "HubSpotPush", "salesforce": "SalesforcePush", "webhook": "WebhookPush"}
PUSH_FUNCTIONS = ("HubSpotPushFunction", "SalesforcePushFunction", "WebhookPushFunction")
ROUTING_GROUP = "RoutingScheduleGroup"  # local schedule group (named by its logical id, like the queues)
LOCAL_ARN = "arn:aws"
# conversions out: platform → queue prefix in template.yaml (each drained by <prefix>Function)
CONVERSION_QUEUES = {
    "google-ads": "GoogleAdsConversion",
    "meta": "MetaConversion",
    "baidu": "BaiduConversion",
    "tencent": "TencentConversion",
}
QUEUE_FUNCTIONS = (*PUSH_FUNCTIONS, "CrmFeedbackRetryFunction")  # kept CRM events applied after a write-back


@dataclass
class LocalRuntime:
    host: str = "127.0.0.1"
    port: int = 3000
    crm_port: int = 3001
    platforms_port: int = 3002
    salesforce_port: int = 0  # `leadflow up` serves it on 3003 (--salesforce-port); 0 = a free port
    time_scale: float = 86400.0
    aws_port: int = 0
    quiet: bool = False
    tables: dict[str, str] = field(default_factory=dict)
    queues: dict[str, str] = field(default_factory=dict)

    def _environment(self, endpoint: str) -> None:
        defaults = {
            "TZ": "UTC",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": "local",
            "AWS_SECRET_ACCESS_KEY": "local",
            "POWERTOOLS_SERVICE_NAME": "leadflow",
            "POWERTOOLS_METRICS_NAMESPACE": "LeadFlow",
            "POWERTOOLS_DEV": "true",
            "POWERTOOLS_LOG_LEVEL": "WARNING",
            "POWERTOOLS_TRACE_DISABLED": "true",
            "POWERTOOLS_METRICS_DISABLED": "true",
            "LEADFLOW_SECRETS_FILE": str(REPO / "infra" / "local" / "secrets.json"),
            "LEADFLOW_FORMS_FILE": str(REPO / "infra" / "local" / "forms.json"),
            "LEADFLOW_HUBSPOT_API_URL": f"http://127.0.0.1:{self.crm_port}",
            # Meta/LinkedIn/TikTok leads are read from the local platform API unless one is named already
            "LEADFLOW_META_GRAPH_URL": self.platforms.url,
            "LEADFLOW_LINKEDIN_API_URL": self.platforms.url,
            "LEADFLOW_TIKTOK_API_URL": self.platforms.url,
            # CRM push: HubSpot (the local CRM above) and the local Salesforce endpoint, per infra/local/crm.json
            "LEADFLOW_SALESFORCE_LOGIN_URL": self.salesforce.url,
            "LEADFLOW_CRM_FILE": str(REPO / "infra" / "local" / "crm.json"),
            "LEADFLOW_PUSH_BACKOFF_SECONDS": "1",
            # conversions out: every platform on (infra/local/conversions.yaml), sent to the local stand-ins
            "LEADFLOW_CONVERSIONS_FILE": str(REPO / "infra" / "local" / "conversions.yaml"),
            "LEADFLOW_GOOGLE_ADS_API_URL": self.platforms.url,
            "LEADFLOW_GOOGLE_OAUTH_URL": self.platforms.url,
            "LEADFLOW_BAIDU_OCPC_URL": self.platforms.url,
            "LEADFLOW_TENCENT_ADS_URL": self.platforms.url,
        }
        for name, value in defaults.items():
            os.environ.setdefault(name, value)
        # The Logger reads its level when it is created; a module imported before this point (the CLI, the push
        # caches) may already have created it at the default INFO, so apply the level the terminal wants now.
        from leadflow.observability import logger

        logger.setLevel(os.environ["POWERTOOLS_LOG_LEVEL"])
        os.environ["AWS_ACCOUNT_ID_ENDPOINT_MODE"] = "disabled"
        os.environ["LEADFLOW_LOCAL"] = "1"
        os.environ["AWS_ENDPOINT_URL"] = endpoint
        os.environ["AWS_ENDPOINT_URL_DYNAMODB"] = endpoint
        os.environ["LEADFLOW_TABLE_NAME"] = self.tables["LeadsTable"]
        os.environ["LEADFLOW_FUNNEL_TABLE_NAME"] = self.tables["FunnelTable"]  # counters off the leads stream
        os.environ["LEADFLOW_FETCH_QUEUE_URL"] = self.queues["LeadFetchQueue"]
        os.environ["LEADFLOW_FETCH_DLQ_URL"] = self.queues["LeadFetchDeadLetterQueue"]
        for target, prefix in PUSH_QUEUES.items():
            os.environ[f"LEADFLOW_{target.upper()}_QUEUE_URL"] = self.queues[f"{prefix}Queue"]
            os.environ[f"LEADFLOW_{target.upper()}_DLQ_URL"] = self.queues[f"{prefix}DeadLetterQueue"]
        # Routing: MQLs without an owner go through the routing queue; SLA checks are one-time schedules that
        # the local scheduler fires with the time scale (the ARNs only name the target: it runs in process).
        os.environ["LEADFLOW_ROUTING_QUEUE_URL"] = self.queues["RoutingQueue"]
        os.environ["LEADFLOW_ROUTING_SCHEDULE_GROUP"] = ROUTING_GROUP
        os.environ["LEADFLOW_ROUTING_SLA_FUNCTION_ARN"] = (
            f"{LOCAL_ARN}:lambda:us-east-1:123456789012:function:RoutingSla"
        )
        os.environ["LEADFLOW_ROUTING_SCHEDULER_ROLE_ARN"] = f"{LOCAL_ARN}:iam::123456789012:role/RoutingScheduler"
        for platform, prefix in CONVERSION_QUEUES.items():
            env = platform.upper().replace("-", "_")
            os.environ[f"LEADFLOW_{env}_CONVERSION_QUEUE_URL"] = self.queues[f"{prefix}Queue"]
            os.environ[f"LEADFLOW_{env}_CONVERSION_DLQ_URL"] = self.queues[f"{prefix}DeadLetterQueue"]
        os.environ["LEADFLOW_CRM_FEEDBACK_QUEUE_URL"] = self.queues["CrmFeedbackRetryQueue"]
        if "JourneyStateMachine" in getattr(self, "state_machines", {}):
            os.environ["LEADFLOW_JOURNEY_STATE_MACHINE_ARN"] = self.state_machines["JourneyStateMachine"]

    def start(self) -> LocalRuntime:
        import warnings

        from leadflow.config import settings
        from leadflow.store import models
        from leadflow_local.http_adapter import LocalApi
        from leadflow_local.journeys import start_journeys
        from leadflow_local.local_crm import LocalCrm
        from leadflow_local.local_platforms import LocalPlatforms, dev_tokens
        from leadflow_local.local_salesforce import LocalSalesforce
        from leadflow_local.moto_server import EmbeddedAws
        from leadflow_local.sqs_delivery import SqsDelivery
        from leadflow_local.stream_delivery import start_stream_delivery
        from leadflow_local.streams import ActivityPrinter, StreamReader
        from leadflow_local.template import create_queues, create_tables, load_template

        warnings.filterwarnings("ignore", message="POWERTOOLS_DEV")
        template = load_template()
        self.aws = EmbeddedAws(port=self.aws_port).start()
        dynamodb, sqs = self.aws.client("dynamodb"), self.aws.client("sqs")
        self.tables = create_tables(dynamodb, template)
        self.queues = create_queues(sqs, template)
        # Journeys: the template's state machines run in embedded AWS, Lambda tasks call the real handlers,
        # Wait states last journey seconds / --time-scale (nothing to do while the template has none).
        # Journey time runs --time-scale times faster than real time, for the Waits and the handlers alike.
        from datetime import UTC, datetime

        from leadflow.services import journeys as journey_service
        from leadflow_local.journeys import ScaledClock

        clock = ScaledClock(datetime.now(UTC), self.time_scale)
        self.state_machines = start_journeys(
            self.aws.client("stepfunctions"),
            template,
            time_scale=self.time_scale,
            tables=self.tables,
            queues=self.queues,
            endpoint=self.aws.endpoint,
            clock=clock,
            base=REPO,  # DefinitionUri, like CodeUri, is a path in the repository
        )
        journey_service.set_clock(clock)
        if "JourneyStateMachine" in self.state_machines:
            from leadflow.journey_config import configured_journeys

            sender = configured_journeys().email.get("from")
            if sender:  # SES sends only from a verified identity
                self.aws.client("ses").verify_email_identity(EmailAddress=sender)
        self.crm = LocalCrm("127.0.0.1", self.crm_port).start()
        self.crm_port = self.crm.port  # --crm-port 0 picks a free port; the env var below must name it
        secrets_file = os.environ.get("LEADFLOW_SECRETS_FILE") or REPO / "infra" / "local" / "secrets.json"
        self.platforms = LocalPlatforms("127.0.0.1", self.platforms_port, dev_tokens(secrets_file)).start()
        self.salesforce = LocalSalesforce("127.0.0.1", self.salesforce_port).start()
        self._environment(self.aws.endpoint)
        settings.cache_clear()
        models.bind()
        # clients and caches of an earlier stack in this process (tests) must not outlive it
        from leadflow import channels, queues
        from leadflow.crm.config import crm_config
        from leadflow.services import conversions, push

        channels._client.cache_clear()  # SES, SNS and Step Functions clients made for an earlier stack
        queues.reset()
        crm_config.cache_clear()
        push.reset()
        from leadflow import schedules

        schedules.reset()
        conversions.reset()
        self.api = LocalApi(self.host, self.port, on_request=self._on_request).start()
        # CRM feedback: HubSpot signs the URL it calls; the local CRM calls this one (set before it is used)
        # (a URL you set, e.g. a tunnel's for a real HubSpot app, is kept; the stack's own is removed at stop)
        if not os.environ.get("LEADFLOW_HUBSPOT_WEBHOOK_URL"):
            self._own_webhook_url = os.environ["LEADFLOW_HUBSPOT_WEBHOOK_URL"] = self.api.url + "/v1/crm/hubspot/events"
        self.crm.webhook_url = self.api.url + "/v1/crm/hubspot/events"
        self.crm.signed_url = os.environ["LEADFLOW_HUBSPOT_WEBHOOK_URL"]  # what HubSpot would have called
        # Pointer-style webhooks (meta, linkedin, tiktok): the fetch function polls its queue as Lambda would;
        # a failed fetch comes back after a second (not the deployed 30 s backoff, so retries show quickly).
        self.fetch_delivery = SqsDelivery.from_template(sqs, "FetchLeadsFunction", self.queues, retry_delay=1.0).start()
        # CRM pushes: each target's function drains its own queue (retries come back after their backoff)
        self.push_deliveries = [
            SqsDelivery.from_template(sqs, name, self.queues, retry_delay=1.0).start(idle_sleep=1.0)
            for name in (*QUEUE_FUNCTIONS, *(f"{prefix}Function" for prefix in CONVERSION_QUEUES.values()))
        ]
        # Routing: the routing function drains its queue; the SLA function runs when its schedule is due (scaled)
        self.routing_delivery = SqsDelivery.from_template(sqs, "RouteLeadsFunction", self.queues, retry_delay=1.0)
        self.routing_delivery.start(idle_sleep=0.5)
        self.scheduler = self._start_scheduler(template)
        # Stream functions get their DynamoDB events the way Lambda's event source mapping delivers them.
        self.stream_deliveries = start_stream_delivery(self.aws.endpoint, self.tables, emit=self.emit)
        self.printer = None
        if not self.quiet:
            arn = dynamodb.describe_table(TableName=self.tables["LeadsTable"])["Table"]["LatestStreamArn"]
            reader = StreamReader(self.aws.client("dynamodbstreams"), arn)
            self.printer = ActivityPrinter(reader, self.emit).start()
        return self

    def _start_scheduler(self, template: dict):
        from leadflow_local.apigw import LambdaContext, load_function
        from leadflow_local.scheduler import LocalScheduler
        from leadflow_local.template import function_properties

        client = self.aws.client("scheduler")
        client.create_schedule_group(Name=ROUTING_GROUP)
        module, attribute = load_function(str(function_properties(template, "RoutingSlaFunction")["CodeUri"]))
        handler = getattr(module, attribute)

        def run_sla_check(event: dict) -> None:  # its reassignment or recycling prints from the stream
            handler(event, LambdaContext("RoutingSla", timeout_seconds=30.0))

        return LocalScheduler(client, ROUTING_GROUP, run_sla_check, time_scale=self.time_scale).start()

    @property
    def url(self) -> str:
        return self.api.url

    _print_lock = threading.Lock()

    def emit(self, line: str) -> None:
        if self.quiet:
            return
        with self._print_lock:
            print(f"  {line}", flush=True)

    def _on_request(self, method: str, path: str, status: int, ms: float) -> None:
        if status >= 400 and not path.startswith("/health"):
            self.emit(f"{status}       {method} {path} ({ms:.0f} ms)")

    def banner(self) -> str:
        secrets = os.environ.get("LEADFLOW_SECRETS_FILE")
        return "\n".join(
            [
                "LeadFlow is running locally (no Docker, no AWS account).",
                f"  HTTP API        {self.url}   (routes of template.yaml)",
                f"  embedded AWS    {self.aws.endpoint}   (tables: {', '.join(self.tables.values())})",
                f"  local CRM       {self.crm.url}   (HubSpot contacts API; Bearer = crm/hubspot access_token)",
                f"  local Salesforce {self.salesforce.url}  (OAuth client credentials + sObject Collections upsert)",
                f"  ad platforms    {self.platforms.url}   (Meta Graph, LinkedIn, TikTok lead APIs; "
                "POST /__leads/<platform> registers a lead;",
                "                  conversions in: Google Ads, Meta CAPI, Baidu OCPC, Tencent Ads stand-ins)",
                *self._platform_overrides(),
                f"  dev secrets     {secrets}",
                f"  try             curl -s {self.url}/health",
                f"                  curl -s -X POST {self.url}/v1/forms/website -H 'content-type: application/json' "
                '-d \'{"email":"you@yourcompany.com","utm_source":"curl"}\'',
                "",
            ]
        )

    def _platform_overrides(self) -> list[str]:
        names = ("LEADFLOW_META_GRAPH_URL", "LEADFLOW_LINKEDIN_API_URL", "LEADFLOW_TIKTOK_API_URL",
                 "LEADFLOW_GOOGLE_ADS_API_URL", "LEADFLOW_BAIDU_OCPC_URL", "LEADFLOW_TENCENT_ADS_URL")  # fmt: skip
        return [
            f"                  {name}={os.environ[name]} (from your environment)"
            for name in names
            if os.environ.get(name, self.platforms.url) != self.platforms.url
        ]

    def stop(self) -> None:
        if self.printer:
            self.printer.stop()
        for delivery in getattr(self, "stream_deliveries", []):
            delivery.stop()
        if getattr(self, "fetch_delivery", None):
            self.fetch_delivery.stop()
        for delivery in getattr(self, "push_deliveries", []):
            delivery.stop()
        if getattr(self, "routing_delivery", None):
            self.routing_delivery.stop()
        if getattr(self, "scheduler", None):
            self.scheduler.stop()
        self.api.stop()
        if (
            getattr(self, "_own_webhook_url", None)
            and os.environ.get("LEADFLOW_HUBSPOT_WEBHOOK_URL") == self._own_webhook_url
        ):
            del os.environ["LEADFLOW_HUBSPOT_WEBHOOK_URL"]
        self.crm.stop()
        self.platforms.stop()
        self.salesforce.stop()
        self.aws.stop()


def run(args) -> int:
    runtime = LocalRuntime(
        host=args.host,
        port=args.port,
        crm_port=args.crm_port,
        platforms_port=getattr(args, "platforms_port", 3002),
        salesforce_port=getattr(args, "salesforce_port", 3003),
        time_scale=args.time_scale,
    ).start()
    print(runtime.banner(), flush=True)
    stop = threading.Event()
    try:
        if args.demo:
            from leadflow_local.demo import run_demo

            run_demo(runtime.url, out=sys.stdout, platforms_url=runtime.platforms.url, crm_url=runtime.crm.url)
            print("\nThe stack keeps serving: point a form or webhook at it, Ctrl-C to stop.", flush=True)
        stop.wait()
    except KeyboardInterrupt:
        print("\nstopping", flush=True)
    finally:
        runtime.stop()
    return 0
