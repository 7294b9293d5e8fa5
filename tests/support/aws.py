"""Offline AWS for tests: moto in-process, tables created from template.yaml (the key schema lives there)."""

from __future__ import annotations

import contextlib
from pathlib import Path

import boto3
from moto import mock_aws

from leadflow.config import settings
from leadflow.store import models
from leadflow_local.moto_server import install as install_moto_adapter
from leadflow_local.template import create_tables, load_template

REPO = Path(__file__).resolve().parents[2]
SECRETS_FILE = REPO / "infra" / "local" / "secrets.json"
FORMS_FILE = REPO / "infra" / "local" / "forms.json"


def configure(monkeypatch, table_name: str, endpoint: str | None = None) -> None:
    monkeypatch.setenv("LEADFLOW_TABLE_NAME", table_name)
    monkeypatch.setenv("LEADFLOW_SECRETS_FILE", str(SECRETS_FILE))
    monkeypatch.setenv("LEADFLOW_FORMS_FILE", str(FORMS_FILE))
    if endpoint:
        monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", endpoint)
    else:
        monkeypatch.delenv("AWS_ENDPOINT_URL_DYNAMODB", raising=False)
    settings.cache_clear()
    from leadflow.sources import forms

    forms.registry.cache_clear()
    models.bind()


@contextlib.contextmanager
def local_aws(monkeypatch):
    install_moto_adapter()
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        names = create_tables(client, load_template())
        configure(monkeypatch, names["LeadsTable"])
        try:
            yield client
        finally:
            settings.cache_clear()
            models.bind()
