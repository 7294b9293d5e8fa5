"""Embedded AWS for the local runtime and the tests: moto's server, with one adaptation.

moto (pinned in pyproject's `local` extra) applies a DynamoDB TransactWriteItems by deep-copying the
table, applying each action and restoring the copy on failure; with the server's threads that is neither
atomic nor isolated, and a restore can undo another thread's committed write. Real DynamoDB serialises
every request on the items it touches, so this module runs one request at a time through moto (requests
from many clients still interleave between calls, which is where application races live). It is the only
place LeadFlow adapts moto; tests/unit/test_moto_adapter.py fails loudly if an upgrade changes what it
relies on.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import Any

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from moto.server import DomainDispatcherApplication, create_backend_app


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
        app = SerialisedApp(DomainDispatcherApplication(create_backend_app))
        self._server: BaseWSGIServer = make_server(host, port, app, threaded=True, request_handler=_QuietHandler)
        self._thread = threading.Thread(target=self._server.serve_forever, name="embedded-aws", daemon=True)

    @property
    def endpoint(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> EmbeddedAws:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> EmbeddedAws:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
