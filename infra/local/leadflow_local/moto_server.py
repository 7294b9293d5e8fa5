"""Embedded AWS for the local runtime and the tests: moto's server, and the only place LeadFlow adapts moto.

moto is pinned (pyproject's `local` extra); tests/unit/test_moto_adapter.py fails loudly if an upgrade
changes what the two adaptations below rely on:

1. Serialised requests. moto applies a DynamoDB TransactWriteItems action by action and restores a copy
   on failure; with the server's threads that is neither atomic nor isolated, and a restore can undo
   another thread's committed write. Real DynamoDB makes each request atomic, so the server runs one
   request at a time through moto (clients still interleave *between* calls, where application races live).
2. Transactions without a whole-table copy. moto deep-copies every table a transaction touches (its stream
   included) before applying it, which makes each transaction O(table size): a local stack slows down as
   leads accumulate. `install()` swaps in an equivalent that checks every condition first and writes only
   when all pass (DynamoDB's all-or-nothing), falling back to moto's own code for Update actions.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import Any

from moto.server import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

_installed = False


def install() -> None:
    """Patch moto's DynamoDB transactions (idempotent; in-process mocks and the server share it)."""
    global _installed
    if _installed:
        return
    from moto.dynamodb.models import DynamoDBBackend

    original = DynamoDBBackend.transact_write_items

    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
        if any("Update" in item or len(item) != 1 for item in transact_items) or len(transact_items) > 100:
            return original(self, transact_items)
        _check_then_write(self, transact_items)

    transact_write_items.__wrapped__ = original  # type: ignore[attr-defined]
    DynamoDBBackend.transact_write_items = transact_write_items
    _installed = True


def _check_then_write(backend: Any, transact_items: list[dict[str, Any]]) -> None:
    from moto.dynamodb.comparisons import get_filter_expression
    from moto.dynamodb.exceptions import MultipleTransactionsException, TransactionCanceledException

    seen: set[tuple[str, str]] = set()
    errors: list[tuple[str | None, str | None, Any]] = []
    plan: list[tuple[str, str, dict[str, Any], dict[str, Any]]] = []
    for item in transact_items:
        op_type, op = next(iter(item.items()))
        table_name = op["TableName"]
        if op_type == "Put":
            table = backend.get_table(table_name)
            attrs = op["Item"]
            key = {table.hash_key_attr: attrs[table.hash_key_attr]}
            if table.range_key_attr is not None:
                key[table.range_key_attr] = attrs[table.range_key_attr]
        else:
            key = op["Key"]
        identity = (str(table_name), str(dict(sorted(key.items()))))
        if identity in seen:
            raise MultipleTransactionsException()
        seen.add(identity)
        condition = op.get("ConditionExpression")
        if condition is not None:
            current = backend.get_item(table_name, key)
            check = get_filter_expression(
                condition, op.get("ExpressionAttributeNames"), op.get("ExpressionAttributeValues")
            )
            if not check.expr(current):
                old = (
                    current.to_json()["Attributes"]
                    if current and op.get("ReturnValuesOnConditionCheckFailure") == "ALL_OLD"
                    else None
                )
                errors.append(("ConditionalCheckFailed", "The conditional request failed", old))
                continue
        errors.append((None, None, None))
        plan.append((op_type, table_name, key, op))
    if any(code is not None for code, _, _ in errors):
        raise TransactionCanceledException(errors)
    for op_type, table_name, key, op in plan:
        if op_type == "Put":
            backend.put_item(table_name, op["Item"])
        elif op_type == "Delete":
            backend.delete_item(table_name, key)


class SerialisedApp:
    """WSGI middleware: one request at a time through moto's backends (the body is read inside the lock)."""

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self._app = app
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        with self._lock:
            return list(self._app(environ, start_response))


class _QuietHandler(WSGIRequestHandler):
    def log_request(self, *args: Any, **kwargs: Any) -> None:  # moto's access log is noise here
        pass


class EmbeddedAws:
    """moto's server on 127.0.0.1:<port> in a background thread; `endpoint` is its URL."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        install()
        app = SerialisedApp(DomainDispatcherApplication(create_backend_app))
        self._server: BaseWSGIServer = make_server(host, port, app, threaded=True, request_handler=_QuietHandler)
        self._thread = threading.Thread(target=self._server.serve_forever, name="embedded-aws", daemon=True)

    @property
    def endpoint(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> EmbeddedAws:
        self._thread.start()
        # moto's backends are process-global: start every embedded AWS empty
        import urllib.request

        reset = urllib.request.Request(self.endpoint + "/moto-api/reset", method="POST")  # noqa: S310 - loopback
        urllib.request.urlopen(reset, timeout=10).close()  # noqa: S310
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> EmbeddedAws:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
