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


# ---------------------------------------------------------------- dlq (SQS, with boto3 directly)
def _sqs_and_urls(args) -> tuple[object, str, str]:
    import boto3

    session = boto3.Session()
    region = session.region_name or "us-east-1"
    sqs = session.client("sqs", region_name=region, endpoint_url=args.endpoint_url or None)
    dlq_url, queue_url = args.dlq_url, args.queue_url
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


def _dlq(args) -> int:
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="leadflow", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)

    up = commands.add_parser("up", help="run the whole system locally (no Docker, no AWS account)")
    up.add_argument("--host", default="127.0.0.1")
    up.add_argument("--port", type=int, default=3000)
    up.add_argument("--crm-port", type=int, default=3001)
    up.add_argument("--platforms-port", type=int, default=3002, help="local Meta/LinkedIn/TikTok lead APIs")
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
    stage = leads_commands.add_parser("stage", help="move a lead to a lifecycle stage (e.g. sql), with a reason")
    stage.add_argument("lead_id")
    stage.add_argument("stage")
    stage.add_argument("--reason", required=True, help="why (kept on the lead's timeline)")
    stage.add_argument("--url", default=DEFAULT_URL)
    find = leads_commands.add_parser("find", help="show the lead holding an email")
    find.add_argument("email")
    find.add_argument("--url", default=DEFAULT_URL)

    dlq = commands.add_parser("dlq", help="lead fetches that failed for good: list them, replay them")
    dlq_commands = dlq.add_subparsers(dest="action", required=True)
    dlq_list = dlq_commands.add_parser("list", help="provider, pointer id, failed_at and reason (no PII)")
    dlq_replay = dlq_commands.add_parser("replay", help="move messages back to the fetch queue")
    chosen = dlq_replay.add_mutually_exclusive_group(required=True)
    chosen.add_argument("--all", action="store_true", help="replay every message")
    chosen.add_argument("--id", action="append", help="a message id or pointer id (repeatable)")
    for sub in (dlq_list, dlq_replay):
        sub.add_argument("--stack", help="CloudFormation stack whose outputs name the queues (on AWS)")
        sub.add_argument("--dlq-url", default=os.environ.get("LEADFLOW_FETCH_DLQ_URL"))
        sub.add_argument("--queue-url", default=os.environ.get("LEADFLOW_FETCH_QUEUE_URL"))
        sub.add_argument("--endpoint-url", default=os.environ.get("AWS_ENDPOINT_URL"), help="embedded AWS locally")

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

    args = parser.parse_args(argv)
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
    if args.action == "find":
        return _print(*_request("GET", f"{base}/v1/leads?{urlencode({'email': args.email})}"))
    status, body = _request("DELETE", f"{base}/v1/leads/{quote(args.lead_id, safe='')}")
    if status == 204:
        print(f"erased {args.lead_id}")
        return 0
    return _print(status, body)


if __name__ == "__main__":
    sys.exit(main())
