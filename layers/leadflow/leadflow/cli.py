"""The `leadflow` command: the local runtime (`up`, `demo`) and operator commands (`leads`, `dlq`, `quarantine`).

Operator commands talk to the HTTP API: a local stack (`--url http://127.0.0.1:3000`, the default) or a
deployed one (`--url https://<api>.execute-api.<region>.amazonaws.com`, requests signed with your AWS
credentials, since the operator routes use IAM authorisation).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.error
import urllib.request
from urllib.parse import quote, urlencode, urlsplit

DEFAULT_URL = os.environ.get("LEADFLOW_URL", "http://127.0.0.1:3000")


def _request(method: str, url: str, body: bytes | None = None) -> tuple[int, str]:
    headers: dict[str, str] = {"content-type": "application/json"} if body is not None else {}
    if urlsplit(url).scheme not in ("http", "https"):
        raise SystemExit(f"--url must be http(s): {url}")
    host = urlsplit(url).hostname or ""
    if host not in ("127.0.0.1", "localhost", "::1"):
        import boto3
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest

        session = boto3.Session()
        signed = AWSRequest(method=method, url=url, data=body, headers=headers)
        SigV4Auth(session.get_credentials(), "execute-api", session.region_name or "us-east-1").add_auth(signed)
        headers = dict(signed.headers)
    request = urllib.request.Request(url, data=body, method=method, headers=headers)  # noqa: S310 - scheme checked
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - operator-given URL
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def _print(status: int, body: str) -> int:
    if body:
        try:
            print(json.dumps(json.loads(body), indent=2, ensure_ascii=False))
        except ValueError:
            print(body)
    return 0 if status < 400 else 1


def _timeline(base: str, args) -> int:
    """One line per entry: time, kind, then the entry's detail (PII-free by construction of the API)."""
    cursor = args.cursor
    while True:
        query = {"limit": args.limit, **({"cursor": cursor} if cursor else {})}
        status, body = _request("GET", f"{base}/v1/leads/{quote(args.lead_id, safe='')}/timeline?{urlencode(query)}")
        if status != 200:
            return _print(status, body)
        page = json.loads(body)
        for item in page["items"]:
            detail = json.dumps(item["detail"], ensure_ascii=False, sort_keys=True, separators=(", ", ": "))
            print(f"{item['at']:<25} {item['kind']:<11} {detail}")
        cursor = page.get("next")
        if not cursor:
            return 0
        if not args.all:
            print(f"more: leadflow leads timeline {args.lead_id} --cursor {cursor}")
            return 0


# ---------------------------------------------------------------- dlq (SQS, with boto3 directly)
def _sqs_and_urls(args) -> tuple[object, str, str]:
    import boto3

    session = boto3.Session()
    region = session.region_name or "us-east-1"
    sqs = session.client("sqs", region_name=region, endpoint_url=args.endpoint_url or None)
    dlq_url = args.dlq_url or os.environ.get("LEADFLOW_FETCH_DLQ_URL")
    queue_url = args.queue_url or os.environ.get("LEADFLOW_FETCH_QUEUE_URL")
    if args.stack and not (dlq_url and queue_url):
        cloudformation = session.client("cloudformation", region_name=region)
        outputs = {
            o["OutputKey"]: o["OutputValue"]
            for o in cloudformation.describe_stacks(StackName=args.stack)["Stacks"][0].get("Outputs", [])
        }
        dlq_url = dlq_url or outputs.get("LeadFetchDeadLetterQueueUrl")
        queue_url = queue_url or outputs.get("LeadFetchQueueUrl")
    # `leadflow up` names queues by their logical id in template.yaml
    dlq_url = dlq_url or sqs.get_queue_url(QueueName="LeadFetchDeadLetterQueue")["QueueUrl"]
    queue_url = queue_url or sqs.get_queue_url(QueueName="LeadFetchQueue")["QueueUrl"]
    return sqs, dlq_url, queue_url


def _receive_all(sqs, url: str, hold_seconds: int = 30) -> list[dict]:
    """Every visible message of a queue, hidden for `hold_seconds` while the caller decides."""
    found: dict[str, dict] = {}
    while True:
        batch = sqs.receive_message(
            QueueUrl=url,
            MaxNumberOfMessages=10,
            VisibilityTimeout=hold_seconds,
            MessageAttributeNames=["All"],
            AttributeNames=["All"],
        ).get("Messages", [])
        new = [m for m in batch if m["MessageId"] not in found]
        if not new:
            return list(found.values())
        found.update({m["MessageId"]: m for m in new})


def _attribute(message: dict, name: str) -> str:
    return (message.get("MessageAttributes") or {}).get(name, {}).get("StringValue", "")


PUSH_QUEUES = {"hubspot": "HubSpotPush", "salesforce": "SalesforcePush", "webhook": "WebhookPush"}
# conversions out: `--target <platform>` names the platform's conversion queue and DLQ
CONVERSION_QUEUES = {
    "google-ads": "GoogleAdsConversion",
    "meta": "MetaConversion",
    "baidu": "BaiduConversion",
    "tencent": "TencentConversion",
}


def _push_queue_urls(args) -> tuple[object, str, str]:
    """The target's push queue and DLQ: given, from the stack's resources (AWS), or by logical id (local)."""
    import boto3

    session = boto3.Session()
    region = session.region_name or "us-east-1"
    sqs = session.client("sqs", region_name=region, endpoint_url=args.endpoint_url or None)
    prefix = {**PUSH_QUEUES, **CONVERSION_QUEUES}[args.target]
    urls = {"Queue": args.queue_url, "DeadLetterQueue": args.dlq_url}
    for suffix, url in urls.items():
        if url:
            continue
        if args.stack:
            cloudformation = session.client("cloudformation", region_name=region)
            urls[suffix] = cloudformation.describe_stack_resource(
                StackName=args.stack, LogicalResourceId=prefix + suffix
            )["StackResourceDetail"]["PhysicalResourceId"]
        else:
            urls[suffix] = sqs.get_queue_url(QueueName=prefix + suffix)["QueueUrl"]
    return sqs, urls["DeadLetterQueue"], urls["Queue"]


def _push_refs(message: dict) -> list[str]:
    """The lead ids a push DLQ message names (one dead letter, or a whole message moved by the redrive)."""
    try:
        body = json.loads(message["Body"])
    except ValueError:
        return []
    if body.get("lead_id"):
        return [str(body["lead_id"])]
    refs = (body.get("leads") or []) + (body.get("erase") or [])
    return [str(ref.get("lead_id")) for ref in refs if isinstance(ref, dict)]


def _erasures(message: dict) -> list[dict]:
    """The erasures (lead id, CRM record id) a push DLQ message carries: the lead is gone, so a replay resends
    the deletion itself rather than the lead."""
    try:
        erase = json.loads(message["Body"]).get("erase")
    except (ValueError, AttributeError):
        return []
    return [ref for ref in erase or [] if isinstance(ref, dict) and ref.get("lead_id")]


def _dlq_push(args) -> int:
    """`leadflow dlq list|replay --target X [--lead ID]`: failed CRM pushes; a replay sends the lead's current
    version (already pushed → nothing is written), and re-enables a webhook target disabled by a 410."""
    sqs, dlq_url, queue_url = _push_queue_urls(args)
    messages = _receive_all(sqs, dlq_url)
    wanted = set(args.lead or [])
    chosen: list[dict] = []
    for message in messages:
        refs = _push_refs(message)
        if args.action == "list":
            if not wanted or wanted & set(refs):
                reason = _attribute(message, "failure_reason") or "redriven"
                version = _attribute(message, "version")  # "erase": the deletion of an erased lead in the CRM
                version = version if version == "erase" else f"v{version}"
                print(
                    f"{message['MessageId']}  {args.target:<10} {','.join(refs):<36} {version:<5} "
                    f"{_attribute(message, 'failed_at'):<24} {reason}"
                )
                chosen.append(message)
        elif not wanted or wanted & set(refs) or args.all or message["MessageId"] in (args.id or []):
            chosen.append(message)
            continue
        sqs.change_message_visibility(QueueUrl=dlq_url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0)
    if args.action == "list":
        print(f"{len(chosen)} failed push(es) for {args.target}")
        return 0
    erasures = [ref for message in chosen for ref in _erasures(message)]
    if erasures:
        body = {"target": args.target, "erase": erasures, "attempt": 0, "replay": True}
        sqs.send_message(QueueUrl=queue_url, MessageBody=json.dumps(body))
    lead_ids = list(dict.fromkeys(ref for message in chosen if not _erasures(message) for ref in _push_refs(message)))
    for start in range(0, len(lead_ids), 100):
        body = {"target": args.target, "leads": [{"lead_id": i} for i in lead_ids[start : start + 100]], "attempt": 0,
                "replay": True}  # fmt: skip
        sqs.send_message(QueueUrl=queue_url, MessageBody=json.dumps(body))
    for message in chosen:
        sqs.delete_message(QueueUrl=dlq_url, ReceiptHandle=message["ReceiptHandle"])
    print(f"replayed {len(lead_ids)} lead(s) and {len(erasures)} erasure(s) to the {args.target} push queue")
    return 0


def _dlq_conversions(args) -> int:
    """`leadflow dlq list|replay --target <platform> [--lead ID]`: conversions that failed for good. A replay
    sends each again with its own claim, so a conversion that was sent meanwhile is not sent twice."""
    sqs, dlq_url, queue_url = _push_queue_urls(args)
    wanted = set(args.lead or [])
    chosen: list[tuple[dict, dict]] = []
    for message in _receive_all(sqs, dlq_url):
        try:
            ref = json.loads(message["Body"]).get("conversion") or {}
        except ValueError:
            ref = {}
        mine = not wanted or ref.get("lead_id") in wanted
        if args.action == "list" and mine:
            print(
                f"{message['MessageId']}  {args.target:<10} {ref.get('lead_id', ''):<36} {ref.get('stage', ''):<11} "
                f"{_attribute(message, 'failed_at'):<24} {_attribute(message, 'failure_reason') or 'redriven'}"
            )
            chosen.append((message, ref))
            continue
        if args.action == "replay" and ref and (mine or message["MessageId"] in (args.id or [])):
            chosen.append((message, ref))
            continue
        sqs.change_message_visibility(QueueUrl=dlq_url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0)
    if args.action == "list":
        for message, _ in chosen:
            sqs.change_message_visibility(QueueUrl=dlq_url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0)
        print(f"{len(chosen)} failed conversion(s) for {args.target}")
        return 0
    for message, ref in chosen:
        body = {"platform": args.target, "conversions": [ref], "attempt": 0, "replay": True}
        sqs.send_message(QueueUrl=queue_url, MessageBody=json.dumps(body))
        sqs.delete_message(QueueUrl=dlq_url, ReceiptHandle=message["ReceiptHandle"])
    print(f"replayed {len(chosen)} conversion(s) to the {args.target} conversion queue")
    return 0


def _dlq(args) -> int:
    if args.target in CONVERSION_QUEUES:
        return _dlq_conversions(args)
    if args.target:
        return _dlq_push(args)
    if args.action == "replay" and not (args.all or args.id):
        raise SystemExit("leadflow dlq replay: --all or --id is needed (or --target for CRM pushes)")
    sqs, dlq_url, queue_url = _sqs_and_urls(args)
    messages = _receive_all(sqs, dlq_url)
    replayed = 0
    for message in messages:
        pointer = _attribute(message, "pointer_id")
        if args.action == "list":
            print(
                f"{message['MessageId']}  {_attribute(message, 'provider'):<10} {pointer:<24} "
                f"{_attribute(message, 'failed_at'):<21} {_attribute(message, 'failure_reason')}"
            )
        elif args.all or message["MessageId"] in args.id or pointer in args.id:
            provider = _attribute(message, "provider")
            attributes = {"provider": {"DataType": "String", "StringValue": provider}} if provider else {}
            sqs.send_message(QueueUrl=queue_url, MessageBody=message["Body"], MessageAttributes=attributes)
            sqs.delete_message(QueueUrl=dlq_url, ReceiptHandle=message["ReceiptHandle"])
            replayed += 1
            continue
        sqs.change_message_visibility(QueueUrl=dlq_url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0)
    if args.action == "list":
        print(f"{len(messages)} message(s) in the dead-letter queue")
    else:
        print(f"replayed {replayed} message(s) to the fetch queue")
    return 0


# ---------------------------------------------------------------- quarantine (the leads table, LeadFlow's own code)
def _quarantine(args) -> int:
    """List or replay quarantined deliveries. Replay runs capture in this process against the stack's table."""
    table, queue_url, webhooks_parameter = args.table, args.queue_url, None
    if args.stack:
        import boto3

        session = boto3.Session()
        cloudformation = session.client("cloudformation", region_name=session.region_name or "us-east-1")
        stack = cloudformation.describe_stacks(StackName=args.stack)["Stacks"][0]
        outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
        parameters = {p["ParameterKey"]: p.get("ParameterValue", "") for p in stack.get("Parameters", [])}
        if parameters.get("DefaultPhoneRegion"):  # phones are read as the functions read them
            os.environ["LEADFLOW_DEFAULT_PHONE_REGION"] = parameters["DefaultPhoneRegion"]
        table = table or outputs.get("LeadsTableName")
        queue_url = queue_url or outputs.get("LeadFetchQueueUrl")
        # the provider configuration (e.g. Webflow labels) a replay maps with, as the functions read it
        webhooks_parameter = cloudformation.describe_stack_resource(
            StackName=args.stack, LogicalResourceId="WebhooksConfigParameter"
        )["StackResourceDetail"]["PhysicalResourceId"]
    if args.endpoint_url:  # `leadflow up`: embedded AWS, tables and queues named by their logical ids
        os.environ["AWS_ENDPOINT_URL"] = args.endpoint_url
        os.environ.pop("AWS_ENDPOINT_URL_DYNAMODB", None)
    os.environ["LEADFLOW_TABLE_NAME"] = table or "LeadsTable"
    if webhooks_parameter:
        os.environ["LEADFLOW_WEBHOOKS_PARAMETER"] = webhooks_parameter
    if args.action == "replay" and not queue_url and args.endpoint_url:
        import boto3

        sqs = boto3.client("sqs", region_name=boto3.Session().region_name or "us-east-1")
        queue_url = sqs.get_queue_url(QueueName="LeadFetchQueue")["QueueUrl"]
    if queue_url:
        os.environ["LEADFLOW_FETCH_QUEUE_URL"] = queue_url

    from leadflow.config import settings
    from leadflow.store import models

    settings.cache_clear()
    models.bind()
    from leadflow.services import quarantine

    items = quarantine.list_quarantine()
    if args.action == "list":
        for item in items:
            reason = "; ".join(f"{r['field']}: {r['message']}" for r in item["reason"]) or "-"
            print(f"{item['quarantine_id']}  {item['source']:<12} {item['kind']:<8} {item['received_at']:<25} {reason}")
        print(f"{len(items)} quarantined delivery(ies)")
        return 0
    chosen = [item["quarantine_id"] for item in items] if args.all else list(args.id)
    outcomes: dict[str, int] = {}
    from leadflow.errors import LeadFlowError

    for quarantine_id in chosen:
        try:
            result = quarantine.replay(quarantine_id)
        except LeadFlowError as error:  # e.g. the store or the fetch queue is unreachable: the item is unchanged
            result = {"outcome": "failed", "reason": [{"field": error.kind, "message": error.detail}]}
        outcomes[result["outcome"]] = outcomes.get(result["outcome"], 0) + 1
        detail = ", ".join(f"{r['field']}: {r['message']}" for r in result.get("reason", []))
        leads = " ".join(f"{a['lead_id']} ({a['status']})" for a in result.get("leads", []))
        print(f"{quarantine_id}  {result['outcome']}  {leads or detail}".rstrip())
    from leadflow.observability import metrics

    metrics.clear_metrics()  # capture counted its leads; an operator's shell is not where metrics are published
    print("replayed " + (", ".join(f"{n} {outcome}" for outcome, n in sorted(outcomes.items())) or "nothing"))
    return 1 if outcomes.get("missing") or outcomes.get("failed") else 0


# ---------------------------------------------------------------- score (the leads table, in this process)
def _bind_table(args) -> None:
    """Point the store at the stack's table (`--stack`/`--table`) or at `leadflow up` (`--endpoint-url`)."""
    table, funnel_table = args.table, os.environ.get("LEADFLOW_FUNNEL_TABLE_NAME")
    if args.stack and not table:
        import boto3

        session = boto3.Session()
        cloudformation = session.client("cloudformation", region_name=session.region_name or "us-east-1")
        outputs = cloudformation.describe_stacks(StackName=args.stack)["Stacks"][0].get("Outputs", [])
        named = {o["OutputKey"]: o["OutputValue"] for o in outputs}
        table, funnel_table = named.get("LeadsTableName"), named.get("FunnelTableName") or funnel_table
    if args.endpoint_url:  # `leadflow up`: embedded AWS, tables named by their logical ids
        os.environ["AWS_ENDPOINT_URL"] = args.endpoint_url
        os.environ.pop("AWS_ENDPOINT_URL_DYNAMODB", None)
    os.environ["LEADFLOW_TABLE_NAME"] = table or "LeadsTable"
    # the counters (report rebuild, spend import): the stack's FunnelTable, `leadflow up`'s, else the table named
    if not funnel_table:
        funnel_table = "FunnelTable" if args.endpoint_url else os.environ["LEADFLOW_TABLE_NAME"]
    os.environ["LEADFLOW_FUNNEL_TABLE_NAME"] = funnel_table
    from leadflow.config import settings
    from leadflow.store import models

    settings.cache_clear()
    models.bind()


def _since(text: str | None, now):
    """`90d`, `12h`, `2w` before now, or an ISO date/time; None for every lead."""
    import re
    from datetime import UTC, datetime, timedelta

    if not text:
        return None
    match = re.fullmatch(r"(\d+)([hdw])", text.strip())
    if match:
        hours = int(match.group(1)) * {"h": 1, "d": 24, "w": 168}[match.group(2)]
        return now - timedelta(hours=hours)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise SystemExit(f"--since must be like 90d, 12h, 2w or an ISO date: {text!r}") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _score(args) -> int:
    from datetime import UTC, datetime

    from leadflow.errors import ScoringModelInvalid
    from leadflow.scoring_model import DEFAULT_MODEL_FILE, load_model_file

    now = datetime.now(UTC)
    since = _since(args.since, now)
    try:
        current = load_model_file(args.current or DEFAULT_MODEL_FILE)
        candidate = load_model_file(args.model) if args.model else current
    except ScoringModelInvalid as error:
        print(error.detail, file=sys.stderr)
        return 2
    _bind_table(args)
    from leadflow.services import score_replay

    cohort = f"leads created since {since.isoformat(timespec='seconds')}" if since else "every lead"
    if args.action == "rescore":
        result = score_replay.rescore(candidate, since, now)
        print(
            f"rescored {cohort} with model {candidate.name}: {result.scanned} read, {result.changed} changed, "
            f"{result.qualified} moved to mql, {result.conflicts} left busy"
        )
        return 1 if result.conflicts else 0
    report = score_replay.simulate(candidate, current, since, now)
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"what-if for {cohort}: model {current.name} (now) -> {candidate.name} (candidate)")
    print(
        f"{'source':<22} {'leads':>6} {'grade changes':>14} {'stage changes':>14} {'MQL now->then':>14} "
        f"{'Lead->MQL rate':>18} {'scoring qualifies':>18}"
    )
    rows = [*report["by_source"].items(), ("total", report["totals"])]
    for source, row in rows:
        mql = f"{row['mql_before']} -> {row['mql_after']}"
        rate = f"{row['lead_to_mql_before']:.1%} -> {row['lead_to_mql_after']:.1%}"
        qualified = f"{row['qualified_before']} -> {row['qualified_after']}"
        print(
            f"{source:<22} {row['leads']:>6} {row['grade_changed']:>14} {row['stage_changed']:>14} {mql:>14} {rate:>18}"
            f" {qualified:>18}"
        )
    print("nothing was written")
    return 0


# ---------------------------------------------------------------- route (the leads table, in this process)
def _route(args) -> int:
    from leadflow.errors import LeadFlowError, RoutingConfigInvalid
    from leadflow.routing_config import configured_routing, load_routing_file

    try:
        current = load_routing_file(args.current) if args.current else configured_routing()
        candidate = load_routing_file(args.rules) if args.rules else current
    except RoutingConfigInvalid as error:
        print(error.detail, file=sys.stderr)
        return 2
    _bind_table(args)
    from leadflow.services import routing

    if args.action == "explain":
        try:
            lines = routing.explain(args.lead, candidate)
        except LeadFlowError as error:
            print(error.detail, file=sys.stderr)
            return 1
        print("\n".join(lines))
        return 0
    report = routing.simulate(candidate, current, limit=args.limit)
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"the {report['leads']} most recent MQLs: current rules -> candidate rules ({args.rules})")
    for title, key in (("owner", "by_owner"), ("rule", "by_rule")):
        names = sorted(set(report["current"][key]) | set(report["candidate"][key]))
        print(f"{title:<24} {'current':>8} {'candidate':>10}")
        for name in names:
            print(f"{name:<24} {report['current'][key].get(name, 0):>8} {report['candidate'][key].get(name, 0):>10}")
    print(f"{report['changed']} of {report['leads']} leads would get another owner; nothing was written")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="leadflow", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)

    up = commands.add_parser("up", help="run the whole system locally (no Docker, no AWS account)")
    up.add_argument("--host", default="127.0.0.1")
    up.add_argument("--port", type=int, default=3000)
    up.add_argument("--crm-port", type=int, default=3001)
    up.add_argument("--platforms-port", type=int, default=3002, help="local Meta/LinkedIn/TikTok lead APIs")
    up.add_argument("--salesforce-port", type=int, default=3003, help="local Salesforce-compatible endpoint")
    up.add_argument("--time-scale", type=float, default=86400.0, help="journey seconds per real second")
    up.add_argument("--demo", action="store_true", help="send demo traffic once the stack is up")

    demo = commands.add_parser("demo", help="send realistic demo traffic to a running stack")
    demo.add_argument("--url", default=DEFAULT_URL)
    demo.add_argument(
        "--platforms-url",
        default="http://127.0.0.1:3002",
        help="local platform API where Meta/LinkedIn/TikTok demo leads are registered before their webhooks",
    )

    leads = commands.add_parser("leads", help="operator commands on leads")
    leads_commands = leads.add_subparsers(dest="action", required=True)
    for action, help_text in (("get", "show a lead by id"), ("erase", "erase a lead and every trace of it")):
        sub = leads_commands.add_parser(action, help=help_text)
        sub.add_argument("lead_id")
        sub.add_argument("--url", default=DEFAULT_URL)
    timeline = leads_commands.add_parser("timeline", help="a lead's touches, events and changes, newest first")
    timeline.add_argument("lead_id")
    timeline.add_argument("--url", default=DEFAULT_URL)
    timeline.add_argument("--limit", type=int, default=50, help="entries per page (1-100)")
    timeline.add_argument("--cursor", help="continue from the `next` cursor a previous page printed")
    timeline.add_argument("--all", action="store_true", help="follow the pages to the lead's first touch")
    stage = leads_commands.add_parser("stage", help="move a lead to a lifecycle stage (e.g. sql), with a reason")
    stage.add_argument("lead_id")
    stage.add_argument("stage")
    stage.add_argument("--reason", required=True, help="why (kept on the lead's timeline)")
    stage.add_argument("--url", default=DEFAULT_URL)
    accept = leads_commands.add_parser("accept", help="the owner accepts the lead (its response-time SLA is met)")
    accept.add_argument("lead_id")
    accept.add_argument("--url", default=DEFAULT_URL)
    find = leads_commands.add_parser("find", help="show the lead holding an email")
    find.add_argument("email")
    find.add_argument("--url", default=DEFAULT_URL)

    dlq = commands.add_parser(
        "dlq", help="lead fetches (or, with --target, CRM pushes) that failed for good: list them, replay them"
    )
    dlq_commands = dlq.add_subparsers(dest="action", required=True)
    dlq_list = dlq_commands.add_parser("list", help="provider, pointer id, failed_at and reason (no PII)")
    dlq_replay = dlq_commands.add_parser("replay", help="move messages back to the fetch queue")
    chosen = dlq_replay.add_mutually_exclusive_group()
    chosen.add_argument("--all", action="store_true", help="replay every message")
    chosen.add_argument("--id", action="append", help="a message id or pointer id (repeatable)")
    for sub in (dlq_list, dlq_replay):
        sub.add_argument("--stack", help="CloudFormation stack whose outputs name the queues (on AWS)")
        sub.add_argument("--dlq-url", help="default: LEADFLOW_FETCH_DLQ_URL (fetches), the target's DLQ (pushes)")
        sub.add_argument("--queue-url", help="default: LEADFLOW_FETCH_QUEUE_URL (fetches), the target's queue")
        sub.add_argument("--endpoint-url", default=os.environ.get("AWS_ENDPOINT_URL"), help="embedded AWS locally")
        sub.add_argument("--target", choices=sorted(PUSH_QUEUES) + sorted(CONVERSION_QUEUES),
                         help="a CRM push target's or an ad platform's (conversions) DLQ instead")  # fmt: skip
        sub.add_argument("--lead", action="append", help="only this lead's failed pushes (repeatable; with --target)")

    quarantine = commands.add_parser(
        "quarantine", help="signed deliveries validation refused: list them, replay them after a mapping fix"
    )
    quarantine_commands = quarantine.add_subparsers(dest="action", required=True)
    quarantine_list = quarantine_commands.add_parser("list", help="id, source, kind, received_at, fields (no PII)")
    quarantine_replay = quarantine_commands.add_parser("replay", help="run them through capture again")
    chosen_q = quarantine_replay.add_mutually_exclusive_group(required=True)
    chosen_q.add_argument("--all", action="store_true", help="replay every quarantined delivery")
    chosen_q.add_argument("--id", action="append", help="a quarantine id (repeatable)")
    for sub in (quarantine_list, quarantine_replay):
        sub.add_argument("--stack", help="CloudFormation stack whose outputs name the table (on AWS)")
        sub.add_argument("--table", default=os.environ.get("LEADFLOW_TABLE_NAME"))
        sub.add_argument("--queue-url", default=os.environ.get("LEADFLOW_FETCH_QUEUE_URL"))
        sub.add_argument("--endpoint-url", default=os.environ.get("AWS_ENDPOINT_URL"), help="embedded AWS locally")

    score = commands.add_parser("score", help="after a scoring-model change: what-if, then rescore")
    score_commands = score.add_subparsers(dest="action", required=True)
    simulate = score_commands.add_parser("simulate", help="replay stored leads under a candidate model; no writes")
    simulate.add_argument("--model", required=True, help="the candidate model (YAML)")
    simulate.add_argument("--json", action="store_true", help="print the report as JSON")
    rescore = score_commands.add_parser("rescore", help="recompute and store every lead's score (in batches)")
    rescore.add_argument("--model", help="the model to score with (default: the current one)")
    for sub in (simulate, rescore):
        sub.add_argument("--since", help="only leads created since: 90d, 12h, 2w or an ISO date (default: all)")
        sub.add_argument("--current", help="the current model (default: infra/scoring/default.yaml)")
        sub.add_argument("--stack", help="CloudFormation stack whose outputs name the table (on AWS)")
        sub.add_argument("--table", default=os.environ.get("LEADFLOW_TABLE_NAME"))
        sub.add_argument("--endpoint-url", default=os.environ.get("AWS_ENDPOINT_URL"), help="embedded AWS locally")

    route = commands.add_parser("route", help="routing rules: why a lead went to its owner; what-if for new rules")
    route_commands = route.add_subparsers(dest="action", required=True)
    explain = route_commands.add_parser("explain", help="which rule matches the lead and why earlier ones do not")
    explain.add_argument("--lead", required=True, help="the lead id")
    explain.add_argument("--rules", help="rules to explain with (default: the rules in force)")
    route_simulate = route_commands.add_parser("simulate", help="how recent MQLs would be distributed; no writes")
    route_simulate.add_argument("--rules", required=True, help="the candidate rules (YAML)")
    route_simulate.add_argument("--limit", type=int, default=200, help="how many of the most recent MQLs")
    route_simulate.add_argument("--json", action="store_true", help="print the report as JSON")
    for sub in (explain, route_simulate):
        sub.add_argument("--current", help="the rules in force (default: LEADFLOW_ROUTING_FILE or the shipped rules)")
        sub.add_argument("--stack", help="CloudFormation stack whose outputs name the table (on AWS)")
        sub.add_argument("--table", default=os.environ.get("LEADFLOW_TABLE_NAME"))
        sub.add_argument("--endpoint-url", default=os.environ.get("AWS_ENDPOINT_URL"), help="embedded AWS locally")

    outbox = commands.add_parser("outbox", help="what the journeys sent locally: to whom (masked) and when")
    outbox.add_argument("--lead", help="one lead's journey timeline (sends, deferrals, exits)")
    outbox.add_argument("--table", default=os.environ.get("LEADFLOW_TABLE_NAME"))
    outbox.add_argument("--endpoint-url", default=os.environ.get("AWS_ENDPOINT_URL"), help="embedded AWS locally")

    from leadflow.cli_report import add_commands as add_report_commands

    add_report_commands(commands, DEFAULT_URL)  # report funnel|rebuild, spend import (leadflow/cli_report.py)

    args = parser.parse_args(argv)
    if args.command in ("report", "spend"):
        from leadflow.cli_report import run as report_run

        return report_run(args)
    if args.command == "score":
        return _score(args)
    if args.command == "route":
        return _route(args)
    if args.command == "outbox":
        from leadflow_local.outbox import run as outbox_run

        return outbox_run(args, sys.stdout)
    if args.command == "dlq":
        return _dlq(args)
    if args.command == "quarantine":
        return _quarantine(args)
    if args.command == "up":
        from leadflow_local.runtime import run

        return run(args)
    if args.command == "demo":
        from leadflow_local.demo import run_demo

        run_demo(args.url, platforms_url=args.platforms_url)
        return 0
    base = args.url.rstrip("/")
    if args.action == "get":
        return _print(*_request("GET", f"{base}/v1/leads/{quote(args.lead_id, safe='')}"))
    if args.action == "stage":
        body = json.dumps({"stage": args.stage, "reason": args.reason}).encode()
        return _print(*_request("POST", f"{base}/v1/leads/{quote(args.lead_id, safe='')}/stage", body))
    if args.action == "accept":
        return _print(*_request("POST", f"{base}/v1/leads/{quote(args.lead_id, safe='')}/accept", b"{}"))
    if args.action == "find":
        return _print(*_request("GET", f"{base}/v1/leads?{urlencode({'email': args.email})}"))
    if args.action == "timeline":
        return _timeline(base, args)
    status, body = _request("DELETE", f"{base}/v1/leads/{quote(args.lead_id, safe='')}")
    if status == 204:
        print(f"erased {args.lead_id}")
        return 0
    return _print(status, body)


if __name__ == "__main__":
    sys.exit(main())
