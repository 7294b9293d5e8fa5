"""leadflow.sources.base.verify_standard_webhook: Standard Webhooks 1.0 on the raw bytes."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest

from leadflow.errors import SignatureInvalid
from leadflow.sources.base import verify_standard_webhook

NOW = 1_800_000_000
TOLERANCE = 300
SECRET = "whsec_" + base64.b64encode(b"current signing key, 32 bytes!!!").decode()
OLD_SECRET = "whsec_" + base64.b64encode(b"previous signing key before rota").decode()
BODY = b'{"type":"lead.submitted","data":{"email":"ada@example.io"}}'


def sign(secret_key: bytes, msg_id: str, timestamp: int, body: bytes) -> str:
    """Independent of the code under test: v1,base64(HMAC-SHA256(key, "{id}.{ts}.{body}"))."""
    mac = hmac.new(secret_key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


def key_of(secret: str) -> bytes:
    return base64.b64decode(secret.removeprefix("whsec_"))


def headers(signature: str, msg_id: str = "msg_1", timestamp: int = NOW) -> dict[str, str]:
    return {"webhook-id": msg_id, "webhook-timestamp": str(timestamp), "webhook-signature": signature}


def verify(hdrs, body=BODY, secrets=(SECRET,), now=NOW):
    return verify_standard_webhook(hdrs, body, list(secrets), now, TOLERANCE)


def test_a_valid_signature_returns_the_webhook_id():
    assert verify(headers(sign(key_of(SECRET), "msg_1", NOW, BODY))) == "msg_1"


def test_one_valid_signature_among_several_in_the_header_is_enough():
    good = sign(key_of(SECRET), "msg_1", NOW, BODY)
    other = sign(key_of(OLD_SECRET), "msg_1", NOW, BODY)
    header = f"v1,Zm9vYmFy {other} v2,{good.split(',', 1)[1][::-1]} {good}"
    assert verify(headers(header), secrets=[SECRET]) == "msg_1"


def test_rotation_either_configured_secret_verifies():
    for signing_secret in (SECRET, OLD_SECRET):
        signature = sign(key_of(signing_secret), "msg_1", NOW, BODY)
        assert verify(headers(signature), secrets=[SECRET, OLD_SECRET]) == "msg_1"


def test_a_signature_by_a_secret_that_is_not_configured_is_refused():
    with pytest.raises(SignatureInvalid, match="does not match"):
        verify(headers(sign(key_of(OLD_SECRET), "msg_1", NOW, BODY)), secrets=[SECRET])


@pytest.mark.parametrize(
    ("what", "tamper"),
    [
        ("body", lambda h, b: (h, b.replace(b"ada@", b"eve@"))),
        ("id", lambda h, b: ({**h, "webhook-id": "msg_2"}, b)),
        ("timestamp", lambda h, b: ({**h, "webhook-timestamp": str(NOW + 1)}, b)),
        (
            "signature version",
            lambda h, b: ({**h, "webhook-signature": h["webhook-signature"].replace("v1,", "v2,")}, b),
        ),
    ],
)
def test_anything_tampered_is_refused(what, tamper):
    hdrs, body = tamper(headers(sign(key_of(SECRET), "msg_1", NOW, BODY)), BODY)
    with pytest.raises(SignatureInvalid):
        verify(hdrs, body)


@pytest.mark.parametrize("skew", [-TOLERANCE - 1, TOLERANCE + 1, -3600, 86400])
def test_a_timestamp_outside_the_window_is_refused_even_when_signed(skew):
    signature = sign(key_of(SECRET), "msg_1", NOW + skew, BODY)
    with pytest.raises(SignatureInvalid, match="outside the allowed window"):
        verify(headers(signature, timestamp=NOW + skew))


@pytest.mark.parametrize("skew", [-TOLERANCE, TOLERANCE])
def test_a_timestamp_at_the_edge_of_the_window_is_accepted(skew):
    signature = sign(key_of(SECRET), "msg_1", NOW + skew, BODY)
    assert verify(headers(signature, timestamp=NOW + skew)) == "msg_1"


@pytest.mark.parametrize("missing", ["webhook-id", "webhook-timestamp", "webhook-signature"])
def test_a_missing_header_is_refused(missing):
    hdrs = headers(sign(key_of(SECRET), "msg_1", NOW, BODY))
    del hdrs[missing]
    with pytest.raises(SignatureInvalid):
        verify(hdrs)


@pytest.mark.parametrize("timestamp", ["", "soon", "1.8e9", "0x6B49D200"])
def test_a_timestamp_that_is_not_unix_seconds_is_refused(timestamp):
    hdrs = {**headers(sign(key_of(SECRET), "msg_1", NOW, BODY)), "webhook-timestamp": timestamp}
    with pytest.raises(SignatureInvalid):
        verify(hdrs)


def test_a_secret_that_is_not_base64_is_used_as_raw_bytes():
    secret = "whsec_not base64 at all!"
    signature = sign(b"not base64 at all!", "msg_1", NOW, BODY)
    assert verify(headers(signature), secrets=[secret]) == "msg_1"


def test_a_secret_without_the_whsec_prefix_is_base64_decoded():
    bare = SECRET.removeprefix("whsec_")
    assert verify(headers(sign(key_of(SECRET), "msg_1", NOW, BODY)), secrets=[bare]) == "msg_1"


def test_no_configured_secret_refuses_everything():
    with pytest.raises(SignatureInvalid):
        verify(headers(sign(key_of(SECRET), "msg_1", NOW, BODY)), secrets=[])
