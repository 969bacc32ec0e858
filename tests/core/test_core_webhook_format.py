"""What a receiver sees, checked without the `standardwebhooks` package that signs: the exact header names
and the `v1,<base64 HMAC-SHA256>` signature over `{id}.{timestamp}.{body}` with the `whsec_` secret's bytes."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re

from core import webhooks

SECRET = "whsec_" + base64.b64encode(bytes(range(32))).decode()
BODY = b'{"type":"model.succeeded","data":{"model_id":"mdl_\\u00e9x"}}'


def test_headers_and_signature_are_standard_webhooks_by_hand() -> None:
    headers = webhooks.signed_headers(SECRET, "msg_2Lz", 1_700_000_000, BODY)
    assert set(headers) == {
        "webhook-id",
        "webhook-timestamp",
        "webhook-signature",
        "content-type",
        "user-agent",
    }
    assert headers["webhook-id"] == "msg_2Lz" and headers["webhook-timestamp"] == "1700000000"
    digest = hmac.new(bytes(range(32)), b"msg_2Lz.1700000000." + BODY, hashlib.sha256).digest()
    assert headers["webhook-signature"] == "v1," + base64.b64encode(digest).decode()
    assert headers["content-type"] == "application/json"


def test_new_secrets_are_whsec_and_32_bytes() -> None:
    secret = webhooks.new_secret()
    assert re.fullmatch(r"whsec_[A-Za-z0-9+/]{43}=", secret)
    assert len(base64.b64decode(secret.removeprefix("whsec_"))) == 32
    assert secret != webhooks.new_secret()
