"""`models.bind()` points every pynamodb model of the store at the configured table and endpoint.

A model it misses keeps the connection it first made (pynamodb re-creates one only when the table name
changes), so after a rebind to another endpoint (tests, a restarted `leadflow up`) its reads would go to the
old one. Every model class defined by the store's modules must be rebound.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil

from pynamodb.models import Model

import leadflow.store
from leadflow.config import settings
from leadflow.store import models


def _store_models() -> set[type[Model]]:
    found = set()
    for info in pkgutil.iter_modules(leadflow.store.__path__):
        module = importlib.import_module(f"leadflow.store.{info.name}")
        found |= {
            obj
            for obj in vars(module).values()
            if inspect.isclass(obj) and issubclass(obj, Model) and obj.__module__ == module.__name__
        }
    return found


def test_every_model_of_the_store_follows_a_rebind(monkeypatch):
    try:
        # Given every store model connected to one endpoint
        monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", "http://127.0.0.1:1111")
        settings.cache_clear()
        models.bind()
        for model in _store_models():
            model._get_connection()
        # When the store is bound to another endpoint
        monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", "http://127.0.0.1:2222")
        settings.cache_clear()
        models.bind()
        # Then every model talks to the new one
        stale = sorted(m.__name__ for m in _store_models() if m._get_connection().connection.host.endswith(":1111"))
        assert stale == []
    finally:
        monkeypatch.delenv("AWS_ENDPOINT_URL_DYNAMODB")
        settings.cache_clear()
        models.bind()
