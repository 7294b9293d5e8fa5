"""Inbound providers: one module each (verify on the raw bytes, parse to canonical LeadInputs) plus one
JSON Schema in `leadflow/schemas/`. Modules are imported on first use, so a function only pays for the
providers it serves.

A provider module defines:
- `NAME`: the route name (`/v1/webhooks/{NAME}`) and the touch `source`.
- `verify(request, now=None) -> Any`: raises SignatureInvalid (401) unless the raw request is authentic;
  what it returns is handed to `parse` (e.g. the event id).
- `parse(request, verified) -> list[LeadInput]`: validated, canonical lead inputs (direct providers).
Optionally:
- `handshake(request) -> dict`: answers the platform's GET subscription/validation check (a response).
- `respond(request, verified, answers) -> dict`: the success response, for senders that expect more than
  `{"received", "leads"}` (hubspot-forms adds HubSpot's `inlineMessage` and CORS headers).
- `parse_pointers(request, verified) -> list[dict]` and `fetch(pointer) -> LeadInput`: pointer-style
  providers (the delivery names leads that must be fetched from the platform's API); the handler queues
  the pointers and answers at once, the fetch function retrieves and captures them.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from leadflow.errors import NotFound

# provider route name → module
WEBHOOK_PROVIDERS = {
    "generic": "leadflow.sources.generic",
    "meta": "leadflow.sources.meta",
    "typeform": "leadflow.sources.typeform",
    "tally": "leadflow.sources.tally",
    "webflow": "leadflow.sources.webflow",
    "hubspot-forms": "leadflow.sources.hubspot_forms",
    "google-ads": "leadflow.sources.google_ads",
    "linkedin": "leadflow.sources.linkedin",
    "tiktok": "leadflow.sources.tiktok",
}


def _load(registry: dict[str, str], name: str, kind: str) -> ModuleType:
    module = registry.get(name)
    if module is None:
        raise NotFound(f"Unknown {kind} {name!r}.")
    return importlib.import_module(module)


def webhook_source(provider: str) -> ModuleType:
    return _load(WEBHOOK_PROVIDERS, provider, "webhook provider")


# Click monitoring (GET /v1/callbacks/{platform}): a module defines NAME, ACK (the success body the
# platform expects), `verify(request, now=None)` (SignatureInvalid unless authentic) and
# `parse(request, verified) -> dict` (the announced click, validated).
CALLBACK_PLATFORMS = {
    "baidu": "leadflow.sources.baidu",
    "tencent": "leadflow.sources.tencent",
}


def callback_source(platform: str) -> ModuleType:
    return _load(CALLBACK_PLATFORMS, platform, "callback platform")
