"""Inbound providers: one module each, with `verify(request)` on the raw bytes and `parse(request)` to
canonical LeadInputs, plus one JSON Schema in `leadflow/schemas/`. Modules are imported on first use, so
a function only pays for the providers it actually serves.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from leadflow.errors import NotFound

# provider route name → module (each defines NAME, verify(request, now), parse(request) -> list[LeadInput])
WEBHOOK_PROVIDERS = {
    "generic": "leadflow.sources.generic",
}


def webhook_source(provider: str) -> ModuleType:
    module = WEBHOOK_PROVIDERS.get(provider)
    if module is None:
        raise NotFound(f"Unknown webhook provider {provider!r}.")
    return importlib.import_module(module)
