"""One cold start, in the fresh interpreter bench/cold_start.py starts for it (never imported by anything).

    python bench/cold_child.py <mode> <job.json> <result.json>

mode `first`: import the function's `app` from its folder (the layer first on sys.path, as on Lambda) and
serve the job's event once; `import`: only the import. mode `floor`: `import boto3`, one DynamoDB client
and the job's AWS calls made bare (an `http` call is a plain urllib request); `floor-import`: only
`import boto3` and the client. The times are taken here, from the first line of this script, so the
interpreter's own start (the same for both sides) is left out; they go to <result.json>, because the
function's logs and metrics are written to stdout (the parent points it at /dev/null).

Only the standard library modules that every side needs anyway are imported before the clock starts.
"""

import time

_T0 = time.perf_counter()

import json  # noqa: E402 - after the clock: both sides pay it
import sys  # noqa: E402

sys.stderr.write("bench clock started\n")  # -X importtime lines after this one are the cold start's


class Context:
    """The attributes of the Lambda context that handlers and Powertools read (no dataclasses: no imports)."""

    def __init__(self, name: str) -> None:
        self.function_name = name
        self.function_version = "$LATEST"
        self.memory_limit_in_mb = 512
        self.invoked_function_arn = f"arn:aws:lambda:us-east-1:123456789012:function:{name}"
        self.aws_request_id = "00000000-0000-4000-8000-000000000001"
        self.log_group_name = f"/aws/lambda/{name}"
        self.log_stream_name = "bench/cold"

    def get_remaining_time_in_millis(self) -> int:
        return 10_000


def record_calls(calls: list) -> None:
    """Learning run only (never timed): note every AWS call (botocore) and HTTP request (urllib) the function
    makes, so the floor can make the same calls bare."""
    import urllib.request

    import botocore.client

    make_api_call = botocore.client.BaseClient._make_api_call
    open_url = urllib.request.OpenerDirector.open

    def api_call(client, operation, params):  # noqa: ANN001, ANN202
        calls.append(
            {"op": "aws", "service": client.meta.service_model.service_name, "operation": operation, "args": params}
        )
        return make_api_call(client, operation, params)

    def http_call(opener, request, data=None, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
        if isinstance(request, urllib.request.Request):
            body = request.data if data is None else data
            calls.append(
                {
                    "op": "http",
                    "method": request.get_method(),
                    "url": request.full_url,
                    "data": body.decode("utf-8", "replace") if isinstance(body, bytes) else (body or ""),
                    "headers": dict(request.header_items()),
                }
            )
        return open_url(opener, request, data, *args, **kwargs)

    botocore.client.BaseClient._make_api_call = api_call
    urllib.request.OpenerDirector.open = http_call


def function(job: dict, serve: bool) -> dict:
    calls: list = []
    if job.get("record"):
        record_calls(calls)
    sys.path[:0] = [job["layer"], job["function_dir"]]
    import app

    imported = time.perf_counter()
    out = {"import_ms": (imported - _T0) * 1000}
    if serve:
        result = app.handler(job["event"], Context(job["name"]))
        done = time.perf_counter()
        status = result.get("statusCode") if isinstance(result, dict) else None
        if job.get("expect_status") is not None and status != job["expect_status"]:
            raise SystemExit(f"{job['name']}: expected HTTP {job['expect_status']}, got {result}")
        if job.get("expect_no_failures") and result.get("batchItemFailures"):
            raise SystemExit(f"{job['name']}: batch item failures {result}")
        out.update(total_ms=(done - _T0) * 1000, result=result)
    if job.get("record"):
        out["calls"] = json.loads(json.dumps(calls, default=str))
    return out


def floor(job: dict, serve: bool) -> dict:
    import boto3

    client = boto3.client("dynamodb", region_name="us-east-1")  # endpoint: AWS_ENDPOINT_URL_DYNAMODB
    imported = time.perf_counter()
    out = {"import_ms": (imported - _T0) * 1000}
    if serve:
        body = (job.get("event") or {}).get("body")
        if body:
            json.loads(body)  # the function parses its body; so does the floor
        clients = {"dynamodb": client}
        for call in job["floor"]:
            if call["op"] == "http":
                import urllib.error
                import urllib.request

                request = urllib.request.Request(  # noqa: S310 - loopback platform API
                    call["url"], data=call.get("data", "").encode() or None, method=call["method"]
                )
                for name, value in call.get("headers", {}).items():
                    request.add_header(name, value)
                try:
                    with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310
                        raw = answer.read()
                except urllib.error.HTTPError as error:  # the same answer the function got, read the same way
                    raw = error.read()
                if raw:
                    json.loads(raw)
            elif call["op"] == "aws":  # a call the function made (learnt), replayed bare
                from botocore import xform_name
                from botocore.exceptions import ClientError

                service = call["service"]
                if service not in clients:
                    clients[service] = boto3.client(service, region_name="us-east-1")
                import contextlib

                # e.g. a version check that held once fails now: the round trip is made all the same
                with contextlib.suppress(ClientError):
                    getattr(clients[service], xform_name(call["operation"]))(**call["args"])
            else:
                getattr(client, call["op"])(**call["args"])
        out["total_ms"] = (time.perf_counter() - _T0) * 1000
    return out


def main() -> None:
    mode, job_path, result_path = sys.argv[1:4]
    with open(job_path, encoding="utf-8") as handle:
        job = json.load(handle)
    run = function if mode in ("first", "import") else floor
    out = run(job, serve=mode in ("first", "floor"))
    with open(result_path, "w", encoding="utf-8") as handle:
        json.dump(out, handle)


main()
