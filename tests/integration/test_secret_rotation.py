"""Secret rotation: every secret that verifies deliveries takes a list (current first, then previous), and a
Secrets Manager value is read exactly as the local secrets file's JSON is.

Each provider's deliveries are signed here the way the provider documents it (independently of the code
under test), once with the new value and once with the previous one: both must verify, a stranger's
must not, whether the secret comes from Secrets Manager (moto) or from the file.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable
from urllib.parse import urlencode

import boto3
import pytest
from aws_lambda_powertools.utilities import parameters
from moto import mock_aws

from leadflow.config import settings
from leadflow.errors import SignatureInvalid
from leadflow.sources import callback_source, webhook_source
from leadflow.web import Request, request_from_event
from leadflow_local.apigw import build_event
from tests.support.providers import tally_headers, typeform_headers, webflow_headers
from tests.support.signing import standard_webhook_headers

PREFIX = "leadflow/dev/"
NEW, OLD, STRANGER = "new-secret-2026", "old-secret-2025", "someone-elses-secret"
NEW_WHSEC = "whsec_" + base64.b64encode(b"the-new-standard-webhooks-key!!").decode()
OLD_WHSEC = "whsec_" + base64.b64encode(b"the-old-standard-webhooks-key!!").decode()
STRANGER_WHSEC = "whsec_" + base64.b64encode(b"not-our-standard-webhooks-key!!").decode()
BODY = json.dumps({"lead": "body", "form_id": "f1"}).encode()


def _hmac(secret: str, message: bytes) -> bytes:
    return hmac.new(secret.encode(), message, hashlib.sha256).digest()


def _webhook(provider: str, headers: dict[str, str], body: bytes = BODY) -> Request:
    event = build_event(
        "POST",
        f"/v1/webhooks/{provider}",
        route_key="POST /v1/webhooks/{provider}",
        path_parameters={"provider": provider},
        headers=headers,
        body=body,
    )
    return request_from_event(event)


def _callback(platform: str, query: str) -> Request:
    event = build_event(
        "GET",
        f"/v1/callbacks/{platform}?{query}",
        route_key="GET /v1/callbacks/{platform}",
        path_parameters={"platform": platform},
        headers={"host": "api.example.com", "x-forwarded-proto": "https"},
    )
    return request_from_event(event)


# ------------------------------------------------------------- deliveries signed as each provider does
def typeform(secret: str) -> Request:
    return _webhook("typeform", typeform_headers(BODY, secret))


def tally(secret: str) -> Request:
    return _webhook("tally", tally_headers(BODY, secret))


def webflow(secret: str) -> Request:
    return _webhook("webflow", webflow_headers(BODY, secret))


def generic(secret: str) -> Request:
    return _webhook("generic", standard_webhook_headers(BODY, secret, "msg_rotation_1"))


def meta(secret: str) -> Request:
    signature = "sha256=" + _hmac(secret, BODY).hex()
    return _webhook("meta", {"content-type": "application/json", "x-hub-signature-256": signature})


def linkedin(secret: str) -> Request:
    signature = _hmac(secret, b"hmacsha256=" + BODY).hex()
    return _webhook("linkedin", {"content-type": "application/json", "x-li-signature": signature})


def tiktok(secret: str) -> Request:
    stamp = int(time.time())
    signature = f"t={stamp},s=" + _hmac(secret, f"{stamp}.".encode() + BODY).hex()
    return _webhook("tiktok", {"content-type": "application/json", "tiktok-signature": signature})


def google_ads(secret: str) -> Request:
    body = json.dumps({"lead_id": "L1", "google_key": secret, "user_column_data": []}).encode()
    return _webhook("google-ads", {"content-type": "application/json"}, body)


def baidu(secret: str) -> Request:
    query = "click_id=bd-click-1&pid=1&uid=2&aid=3&ts=1767261600000"
    url = f"https://api.example.com/v1/callbacks/baidu?{query}"
    sign = hashlib.md5((url + secret).encode()).hexdigest()  # noqa: S324 - Baidu's documented scheme
    return _callback("baidu", f"{query}&sign={sign}")


def tencent(secret: str) -> Request:
    return _callback("tencent", urlencode({"token": secret, "click_id": "tx-click-1", "account_id": "acct-7"}))


# (provider module, secret name, stored value, signer, the new / old / stranger values the signer takes)
CASES: list[tuple[str, str, str, object, Callable[[str], Request], tuple[str, str, str]]] = [
    ("typeform", "webhook", "webhooks/typeform", [NEW, OLD], typeform, (NEW, OLD, STRANGER)),
    ("tally", "webhook", "webhooks/tally", [NEW, OLD], tally, (NEW, OLD, STRANGER)),
    ("webflow", "webhook", "webhooks/webflow", [NEW, OLD], webflow, (NEW, OLD, STRANGER)),
    ("generic", "webhook", "webhooks/generic", [NEW_WHSEC, OLD_WHSEC], generic, (NEW_WHSEC, OLD_WHSEC, STRANGER_WHSEC)),
    (
        "generic (object)",
        "webhook",
        "webhooks/generic",
        {"secrets": [NEW_WHSEC, OLD_WHSEC]},
        generic,
        (NEW_WHSEC, OLD_WHSEC, STRANGER_WHSEC),
    ),
    (
        "meta",
        "webhook",
        "webhooks/meta",
        {"app_secret": [NEW, OLD], "verify_token": "vt", "access_token": "at"},
        meta,
        (NEW, OLD, STRANGER),
    ),
    (
        "linkedin",
        "webhook",
        "webhooks/linkedin",
        {"client_secret": [NEW, OLD], "access_token": "at"},
        linkedin,
        (NEW, OLD, STRANGER),
    ),
    ("tiktok", "webhook", "webhooks/tiktok", [NEW, OLD], tiktok, (NEW, OLD, STRANGER)),
    (
        "tiktok (object)",
        "webhook",
        "webhooks/tiktok",
        {"client_secret": [NEW, OLD], "access_token": "at"},
        tiktok,
        (NEW, OLD, STRANGER),
    ),
    ("google-ads", "webhook", "webhooks/google-ads", {"google_key": [NEW, OLD]}, google_ads, (NEW, OLD, STRANGER)),
    ("baidu", "callback", "callbacks/baidu", {"akey": [NEW, OLD]}, baidu, (NEW, OLD, STRANGER)),
    ("tencent", "callback", "callbacks/tencent", {"token": [NEW, OLD]}, tencent, (NEW, OLD, STRANGER)),
    (
        "tencent (per account)",
        "callback",
        "callbacks/tencent",
        {"token": {"acct-7": [NEW, OLD]}},
        tencent,
        (NEW, OLD, STRANGER),
    ),
]


def _reset_parameter_caches() -> None:
    parameters.clear_caches()
    parameters.base.DEFAULT_PROVIDERS.clear()  # their boto3 clients were made outside this mock


@pytest.fixture(params=["secretsmanager", "file"])
def secret_store(request, monkeypatch, tmp_path):
    """Store secrets as an operator would: in Secrets Manager (moto) as JSON strings, or in the local file."""
    monkeypatch.setenv("LEADFLOW_SECRETS_PREFIX", PREFIX)
    if request.param == "file":
        path = tmp_path / "secrets.json"

        def put(name: str, value: object) -> None:
            current = json.loads(path.read_text()) if path.exists() else {}
            path.write_text(json.dumps({**current, name: value}))

        monkeypatch.setenv("LEADFLOW_SECRETS_FILE", str(path))
        settings.cache_clear()
        yield put
        settings.cache_clear()
        return
    # On Lambda no secrets file is read: the value comes from Secrets Manager
    monkeypatch.delenv("LEADFLOW_SECRETS_FILE", raising=False)
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "CaptureWebhookFunction")
    monkeypatch.delenv("LEADFLOW_LOCAL", raising=False)
    with mock_aws():
        client = boto3.client("secretsmanager", region_name="us-east-1")
        settings.cache_clear()
        _reset_parameter_caches()

        def put(name: str, value: object) -> None:
            text = value if isinstance(value, str) else json.dumps(value)
            client.create_secret(Name=PREFIX + name, SecretString=text)

        yield put
    settings.cache_clear()
    _reset_parameter_caches()


@pytest.mark.parametrize(("label", "kind", "name", "stored", "sign", "values"), CASES, ids=[c[0] for c in CASES])
def test_a_delivery_signed_with_the_current_or_previous_secret_verifies_and_a_strangers_does_not(
    secret_store, label, kind, name, stored, sign, values
):
    # Given the provider's secret stored as a rotation list, current value first
    secret_store(name, stored)
    source = webhook_source(name.split("/")[1]) if kind == "webhook" else callback_source(name.split("/")[1])
    new, old, stranger = values

    # When deliveries signed with the new and with the previous value arrive, Then both verify
    source.verify(sign(new))
    source.verify(sign(old))

    # And one signed with any other value is refused
    with pytest.raises(SignatureInvalid):
        source.verify(sign(stranger))


def test_secrets_manager_json_array_and_file_array_give_the_same_secret_list(monkeypatch, tmp_path):
    from leadflow.secrets import get_secret, secret_list

    # Given the same rotation list in the local file and, as a JSON string, in Secrets Manager
    path = tmp_path / "secrets.json"
    path.write_text(json.dumps({"webhooks/typeform": [NEW, OLD], "webhooks/meta": {"app_secret": [NEW, OLD]}}))
    monkeypatch.setenv("LEADFLOW_SECRETS_FILE", str(path))
    settings.cache_clear()
    from_file = (
        get_secret("webhooks/typeform"),
        secret_list("webhooks/typeform"),
        secret_list("webhooks/meta", "app_secret"),
    )

    monkeypatch.delenv("LEADFLOW_SECRETS_FILE")
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "CaptureWebhookFunction")
    monkeypatch.setenv("LEADFLOW_SECRETS_PREFIX", PREFIX)
    with mock_aws():
        client = boto3.client("secretsmanager", region_name="us-east-1")
        client.create_secret(Name=PREFIX + "webhooks/typeform", SecretString=json.dumps([NEW, OLD]))
        client.create_secret(Name=PREFIX + "webhooks/meta", SecretString=json.dumps({"app_secret": [NEW, OLD]}))
        settings.cache_clear()
        _reset_parameter_caches()
        try:
            # When both are read
            from_aws = (
                get_secret("webhooks/typeform"),
                secret_list("webhooks/typeform"),
                secret_list("webhooks/meta", "app_secret"),
            )
        finally:
            settings.cache_clear()
            _reset_parameter_caches()

    # Then Secrets Manager gives exactly what the file gives
    assert from_aws == from_file == ([NEW, OLD], [NEW, OLD], [NEW, OLD])


def test_typeform_delivery_signed_with_the_previous_secret_becomes_a_lead_on_aws(aws, api, monkeypatch):
    # Given the Lambda reads secrets from Secrets Manager, where Typeform's is ["new", "old"]
    boto3.client("secretsmanager", region_name="us-east-1").create_secret(
        Name=PREFIX + "webhooks/typeform", SecretString=json.dumps([NEW, OLD])
    )
    _on_lambda_without_secrets_file(monkeypatch)
    body = json.dumps(
        {
            "event_id": "01ROTATION",
            "event_type": "form_response",
            "form_response": {
                "form_id": "lT4Z3j",
                "token": "rotation-token",
                "submitted_at": "2026-11-22T10:00:00Z",
                "definition": {"id": "lT4Z3j", "fields": [{"id": "em", "ref": "email", "type": "email"}]},
                "answers": [
                    {
                        "type": "email",
                        "email": "rotating@example.org",
                        "field": {"id": "em", "ref": "email", "type": "email"},
                    }
                ],
            },
        }
    ).encode()
    try:
        # When Typeform still signs with the previous secret (its side not yet updated)
        accepted = api.request("POST", "/v1/webhooks/typeform", body, typeform_headers(body, OLD))
        # and someone signs with a secret that was never ours
        refused = api.request("POST", "/v1/webhooks/typeform", body, typeform_headers(body, STRANGER))
    finally:
        settings.cache_clear()
        _reset_parameter_caches()

    # Then the delivery is taken and the forgery refused
    assert accepted.status == 200, accepted.body
    assert accepted.json["received"] == 1
    assert refused.status == 401


def _on_lambda_without_secrets_file(monkeypatch) -> None:
    monkeypatch.delenv("LEADFLOW_SECRETS_FILE")
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "CaptureWebhookFunction")
    monkeypatch.setenv("LEADFLOW_SECRETS_PREFIX", PREFIX)
    settings.cache_clear()
    _reset_parameter_caches()


def test_a_secret_that_cannot_be_read_for_now_answers_503_and_a_missing_one_500(aws, api, monkeypatch):
    from botocore.exceptions import ClientError

    _on_lambda_without_secrets_file(monkeypatch)
    body = json.dumps({"event_id": "01THROTTLED", "form_response": {}}).encode()
    try:
        # Given Secrets Manager has no Typeform secret for this stage (a deployment mistake)
        missing = api.request("POST", "/v1/webhooks/typeform", body, typeform_headers(body, NEW))

        # And Secrets Manager throttling the function for another provider
        def throttled(self, name, **kwargs):
            raise ClientError({"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}}, "GetSecretValue")

        monkeypatch.setattr(parameters.SecretsProvider, "_get", throttled)
        busy = api.request("POST", "/v1/webhooks/tally", body, tally_headers(body, NEW))
    finally:
        settings.cache_clear()
        _reset_parameter_caches()

    # Then the missing secret is a configuration error (500, alarmed), and the throttled read asks Tally to retry
    assert missing.status == 500
    assert busy.status == 503, busy.body
    assert busy.headers["retry-after"].isdigit()
