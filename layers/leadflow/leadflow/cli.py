"""The `leadflow` command: the local runtime (`up`, `demo`) and operator commands (`leads`).

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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="leadflow", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)

    up = commands.add_parser("up", help="run the whole system locally (no Docker, no AWS account)")
    up.add_argument("--host", default="127.0.0.1")
    up.add_argument("--port", type=int, default=3000)
    up.add_argument("--crm-port", type=int, default=3001)
    up.add_argument("--time-scale", type=float, default=86400.0, help="journey seconds per real second")
    up.add_argument("--demo", action="store_true", help="send demo traffic once the stack is up")

    demo = commands.add_parser("demo", help="send realistic demo traffic to a running stack")
    demo.add_argument("--url", default=DEFAULT_URL)

    leads = commands.add_parser("leads", help="operator commands on leads")
    leads_commands = leads.add_subparsers(dest="action", required=True)
    for action, help_text in (("get", "show a lead by id"), ("erase", "erase a lead and every trace of it")):
        sub = leads_commands.add_parser(action, help=help_text)
        sub.add_argument("lead_id")
        sub.add_argument("--url", default=DEFAULT_URL)
    find = leads_commands.add_parser("find", help="show the lead holding an email")
    find.add_argument("email")
    find.add_argument("--url", default=DEFAULT_URL)

    args = parser.parse_args(argv)
    if args.command == "up":
        from leadflow_local.runtime import run

        return run(args)
    if args.command == "demo":
        from leadflow_local.demo import run_demo

        run_demo(args.url)
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
