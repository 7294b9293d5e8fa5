"""The `leadflow` command: the local runtime (`up`, `demo`) and operator commands (`leads`, `dlq`).

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


def _request(method: str, url: str) -> tuple[int, str]:
    headers: dict[str, str] = {}
    if urlsplit(url).scheme not in ("http", "https"):
        raise SystemExit(f"--url must be http(s): {url}")
    host = urlsplit(url).hostname or ""
    if host not in ("127.0.0.1", "localhost", "::1"):
        import boto3
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest

        session = boto3.Session()
        signed = AWSRequest(method=method, url=url)
        SigV4Auth(session.get_credentials(), "execute-api", session.region_name or "us-east-1").add_auth(signed)
        headers = dict(signed.headers)
    request = urllib.request.Request(url, method=method, headers=headers)  # noqa: S310 - scheme checked
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

    args = parser.parse_args(argv)
    if args.command == "dlq":
        return _dlq(args)
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
    if args.action == "find":
        return _print(*_request("GET", f"{base}/v1/leads?{urlencode({'email': args.email})}"))
    status, body = _request("DELETE", f"{base}/v1/leads/{quote(args.lead_id, safe='')}")
    if status == 204:
        print(f"erased {args.lead_id}")
        return 0
    return _print(status, body)


if __name__ == "__main__":
    sys.exit(main())
