"""Calls the real Lambda handlers with the events API Gateway builds (routes taken from template.yaml)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any
from urllib.parse import urlencode

from leadflow_local.apigw import LambdaContext, build_event, load_function
from leadflow_local.template import http_routes, load_template
from tests.support.signing import dev_secret, standard_webhook_headers


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: str

    @property
    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


@lru_cache(maxsize=1)
def _routes() -> list[tuple[str, re.Pattern, str, list[str], str]]:
    table = []
    for method, path, logical_id, code_uri, _auth in http_routes(load_template()):
        names = re.findall(r"{(\w+)\+?}", path)
        pattern = re.compile("^" + re.sub(r"{\w+\+?}", "([^/]+)", path) + "$")
        table.append((method, pattern, f"{method} {path}", names, code_uri))
    return table


_handlers: dict[str, Any] = {}


def _handler(code_uri: str):
    if code_uri not in _handlers:
        module, attribute = load_function(code_uri)
        _handlers[code_uri] = getattr(module, attribute)
    return _handlers[code_uri]


class Api:
    def request(self, method: str, url: str, body: bytes | str | None = None, headers: dict | None = None) -> Reply:
        path = url.split("?", 1)[0]
        for route_method, pattern, route_key, names, code_uri in _routes():
            match = pattern.match(path)
            if match and route_method.upper() == method.upper():
                event = build_event(
                    method,
                    url,
                    route_key=route_key,
                    path_parameters=dict(zip(names, match.groups(), strict=True)),
                    headers=headers or {},
                    body=body,
                )
                result = _handler(code_uri)(event, LambdaContext(code_uri.strip("/").split("/")[-1]))
                return Reply(
                    result["statusCode"],
                    {k.lower(): v for k, v in (result.get("headers") or {}).items()},
                    result.get("body") or "",
                )
        return Reply(404, {}, json.dumps({"title": "Not Found", "status": 404}))  # API Gateway's own 404

    # conveniences ------------------------------------------------------------------------------------
    def post_form(self, form_id: str, fields: dict, *, as_json: bool = True, headers: dict | None = None) -> Reply:
        if as_json:
            body, ctype = json.dumps(fields), "application/json"
        else:
            body, ctype = urlencode(fields, doseq=True), "application/x-www-form-urlencoded"
        return self.request("POST", f"/v1/forms/{form_id}", body, {"content-type": ctype, **(headers or {})})

    def post_generic(
        self,
        data: dict,
        msg_id: str,
        *,
        timestamp: int | None = None,
        secret: str | None = None,
        envelope: dict | None = None,
    ) -> Reply:
        body = json.dumps(
            envelope or {"type": "lead.submitted", "timestamp": "2026-11-22T10:00:00Z", "data": data}
        ).encode()
        headers = standard_webhook_headers(body, secret or dev_secret("webhooks/generic"), msg_id, timestamp)
        return self.request("POST", "/v1/webhooks/generic", body, headers)

    def post_events(self, body: object, msg_id: str, *, timestamp: int | None = None) -> Reply:
        """POST /v1/events signed with the development secret `events` (Standard Webhooks)."""
        raw = json.dumps(body).encode()
        headers = standard_webhook_headers(raw, dev_secret("events"), msg_id, timestamp)
        return self.request("POST", "/v1/events", raw, headers)

    def get_lead_by_email(self, email: str) -> Reply:
        return self.request("GET", "/v1/leads?" + urlencode({"email": email}))
