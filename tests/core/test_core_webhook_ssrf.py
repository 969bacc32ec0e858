"""SSRF-ish webhook URLs: refused when the name RESOLVES to a loopback/private/link-local/metadata address,
at creation and again before every send (a name may be re-pointed later: DNS rebinding), and the send is
pinned to the checked address."""

from __future__ import annotations

import socket
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from core import jobs, webhooks
from core.ids import new_id
from core.models import DeliveryState, JobKind, Model, WebhookAttempt, WebhookDelivery

FAKE_DNS = {
    "loopback.example": "127.0.0.1",
    "metadata.example": "169.254.169.254",
    "private.example": "10.1.2.3",
    "mapped.example": "::ffff:127.0.0.1",
    "cgnat.example": "100.64.0.1",
    "public.example": "93.184.216.34",
}


@pytest.fixture
def fake_dns(monkeypatch: pytest.MonkeyPatch) -> None:
    real = socket.getaddrinfo

    def getaddrinfo(host: str, port: Any, *args: Any, **kwargs: Any) -> list[Any]:
        if not str(host).endswith(".example"):
            return real(host, port, *args, **kwargs)  # the database, the S3 server
        if host not in FAKE_DNS:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        address = FAKE_DNS[host]
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        return [(family, socket.SOCK_STREAM, 6, "", (address, port))]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


@pytest.mark.parametrize("host", ["loopback", "metadata", "private", "mapped", "cgnat"])
def test_names_resolving_to_internal_addresses_are_refused(fake_dns: None, host: str) -> None:
    with pytest.raises(ValueError, match="resolves to a private"):
        webhooks.resolve_public(f"https://{host}.example/hook", allow_private=False)


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/",
        "http://[::ffff:169.254.169.254]/",
        "http://0.0.0.0:8000/",
        "http://metadata.google.internal/computeMetadata/v1/",
        "http://[fe80::1]/",
    ],
)
def test_internal_literals_are_refused_without_dns(url: str) -> None:
    with pytest.raises(ValueError):
        webhooks.resolve_public(url, allow_private=False)


MALFORMED = {
    "space-in-host": "https://exa mple.com/hook",
    "cr-lf-in-path": "https://example.com/hook\r\nX-Injected: 1",
    "tab": "https://example.com/\thook",
    "wildcard-localhost": "http://*.localhost/",
    "wildcard-host": "https://*.example.com/",
    "under-invalid": "https://hooks.invalid/",
    "empty-label": "https://a..example.com/",
    "label-starting-with-hyphen": "https://-a.example.com/",
    "port-out-of-range": "https://example.com:70000/",
}


@pytest.mark.parametrize("allow_private", [False, True])
@pytest.mark.parametrize("case", list(MALFORMED))
def test_malformed_urls_are_refused_even_where_private_ones_are_allowed(
    case: str, allow_private: bool
) -> None:
    with pytest.raises(ValueError, match="webhook_url"):
        webhooks.check_url(MALFORMED[case], allow_private)


@pytest.mark.parametrize("url", ["http://localhost./", "http://app.localhost./hook", "https://x.internal./"])
def test_a_trailing_dot_does_not_hide_a_local_name(url: str) -> None:
    with pytest.raises(ValueError, match="local host name"):
        webhooks.check_url(url, allow_private=False)
    webhooks.check_url(url, allow_private=True)


def test_fully_qualified_and_international_names_are_fine() -> None:
    for url in ("https://example.com./hook", "https://bücher.example/h", "https://my_hook.example.com/"):
        webhooks.check_url(url, allow_private=False)


def test_public_names_resolve_and_unknown_ones_are_refused(fake_dns: None) -> None:
    assert webhooks.resolve_public("https://public.example/hook", allow_private=False) == "93.184.216.34"
    with pytest.raises(webhooks.HostNotResolved):  # accepted at creation, retried at delivery
        webhooks.resolve_public("https://nowhere.example/hook", allow_private=False)
    assert webhooks.resolve_public("http://127.0.0.1:9/hook", allow_private=True) is None


def test_the_send_is_pinned_to_the_checked_address_and_keeps_the_name() -> None:
    url, headers, extensions = webhooks.pinned_request("https://public.example:8443/h?x=1", "93.184.216.34")
    assert url == "https://93.184.216.34:8443/h?x=1"
    assert headers == {"host": "public.example:8443"} and extensions == {"sni_hostname": "public.example"}
    url, headers, _ = webhooks.pinned_request("http://public.example/h", "2001:db8::1")
    assert url == "http://[2001:db8::1]/h" and headers == {"host": "public.example"}


def test_delivery_to_a_name_now_resolving_to_loopback_is_refused_and_not_retried(
    fake_dns: None, db: Any, settings: Any, caller: Any
) -> None:
    with db.transaction() as session:
        model = Model(
            id=new_id("mdl"), owner_id=caller.owner_id, params={}, image_width=48, image_height=40,
            input_key="x", webhook_url="https://loopback.example/hook", webhook_events=["model.succeeded"],
        )  # fmt: skip
        session.add(model)
        session.flush()
        job = jobs.create_job(session, model, JobKind.TRAIN)
        assert jobs.claim(session, job.id, "w", max_attempts=3) and jobs.succeed(session, job)
        session.flush()
        delivery_id = session.scalars(
            select(WebhookDelivery.id).where(WebhookDelivery.job_id == job.id)
        ).one()

    def must_not_be_called(request: httpx.Request) -> httpx.Response:
        raise AssertionError(f"a request went out to {request.url}")

    client = httpx.Client(transport=httpx.MockTransport(must_not_be_called))
    strict = settings.model_copy(update={"allow_private_webhook_urls": False})
    assert webhooks.deliver(db, strict, delivery_id, client=client) is False
    with db.read() as session:
        delivery = session.get_one(WebhookDelivery, delivery_id)
        attempts = session.scalars(select(WebhookAttempt).where(WebhookAttempt.delivery_id == delivery_id))
        assert delivery.state == DeliveryState.FAILED and (delivery.last_error or "").startswith("refused:")
        assert len(list(attempts)) == 1
