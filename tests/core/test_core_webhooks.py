"""Standard Webhooks signing (checked by the independent `standardwebhooks` package), outbox and retries."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from sqlalchemy import select
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from core import jobs, webhooks
from core.ids import new_id
from core.models import DeliveryState, Job, JobKind, Model, WebhookAttempt, WebhookDelivery, utcnow


def test_signature_verifies_with_the_reference_implementation() -> None:
    secret = webhooks.new_secret()
    body = json.dumps({"type": "model.succeeded", "data": {"model_id": "mdl_x"}}).encode()
    timestamp = int(dt.datetime.now(dt.UTC).timestamp())
    headers = webhooks.signed_headers(secret, "msg_1", timestamp, body)
    assert Webhook(secret).verify(body, headers) == json.loads(body)
    tampered = {**headers, "webhook-signature": webhooks.sign(secret, "msg_1", timestamp, body + b" ")}
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(body, tampered)


@pytest.mark.parametrize(
    ("url", "ok"),
    [
        ("https://example.com/hook", True),
        ("http://93.184.216.34/hook", True),
        ("ftp://example.com/hook", False),
        ("https://user:pw@example.com/hook", False),
        ("http://localhost:8000/hook", False),
        ("http://127.0.0.1/hook", False),
        ("http://169.254.169.254/latest/meta-data", False),
        ("http://10.0.0.5/hook", False),
        ("http://[::1]/hook", False),
        ("not a url", False),
    ],
)
def test_webhook_url_policy(url: str, ok: bool) -> None:
    if ok:
        webhooks.check_url(url, allow_private=False)
    else:
        with pytest.raises(ValueError):
            webhooks.check_url(url, allow_private=False)


def _finished_job_with_webhook(db: Any, owner_id: str, url: str) -> str:
    with db.transaction() as session:
        model = Model(
            id=new_id("mdl"),
            owner_id=owner_id,
            params={},
            image_width=48,
            image_height=40,
            input_key="x",
            webhook_url=url,
            webhook_events=["model.succeeded"],
        )
        session.add(model)
        session.flush()
        job = jobs.create_job(session, model, JobKind.TRAIN)
        assert jobs.claim(session, job.id, "w", max_attempts=3)
        assert jobs.succeed(session, session.get_one(Job, job.id))
        session.flush()
        (delivery_id,) = session.scalars(select(WebhookDelivery.id).where(WebhookDelivery.job_id == job.id))
    return str(delivery_id)


def _attempts(db: Any, delivery_id: str) -> list[WebhookAttempt]:
    with db.read() as session:
        query = (
            select(WebhookAttempt)
            .where(WebhookAttempt.delivery_id == delivery_id)
            .order_by(WebhookAttempt.number)
        )
        return list(session.scalars(query))


def test_delivery_is_signed_and_recorded(db: Any, settings: Any, caller: Any, receiver: Any) -> None:
    delivery_id = _finished_job_with_webhook(db, caller.owner_id, receiver.url)
    assert webhooks.deliver(db, settings, delivery_id) is True
    assert webhooks.deliver(db, settings, delivery_id) is None  # delivered: nothing left to send
    (hit,) = receiver.received
    payload = Webhook(caller.webhook_secret).verify(hit.body, hit.headers)
    assert payload["type"] == "model.succeeded" and hit.headers["webhook-id"] == delivery_id
    (attempt,) = _attempts(db, delivery_id)
    assert attempt.status_code == 204 and attempt.error is None


def test_failed_deliveries_back_off_then_give_up(db: Any, settings: Any, caller: Any, receiver: Any) -> None:
    schedule = (0, 5, 300)
    quick = settings.model_copy(update={"webhook_schedule_s": schedule})
    delivery_id = _finished_job_with_webhook(db, caller.owner_id, receiver.url)
    receiver.statuses = [500, 503, 500]
    for attempt_number in range(1, len(schedule) + 1):
        before = utcnow()
        assert webhooks.deliver(db, quick, delivery_id) is False
        with db.transaction() as session:
            delivery = session.get_one(WebhookDelivery, delivery_id)
            if attempt_number < len(schedule):
                assert delivery.state == DeliveryState.PENDING
                gap = (delivery.next_attempt_at - before).total_seconds()
                assert schedule[attempt_number] - 1 <= gap <= schedule[attempt_number] + 5
                assert webhooks.deliver(db, quick, delivery_id) is None  # not due yet
                delivery.next_attempt_at = utcnow()  # fast-forward the clock for the test
    with db.read() as session:
        delivery = session.get_one(WebhookDelivery, delivery_id)
        assert delivery.state == DeliveryState.FAILED and delivery.attempts == len(schedule)
    assert [a.status_code for a in _attempts(db, delivery_id)] == [500, 503, 500]
    # the same message id and body on every retry, so receivers can dedupe
    assert len({r.headers["webhook-id"] for r in receiver.received}) == 1
    assert len({r.body for r in receiver.received}) == 1


def test_gone_stops_retries(db: Any, settings: Any, caller: Any, receiver: Any) -> None:
    delivery_id = _finished_job_with_webhook(db, caller.owner_id, receiver.url)
    receiver.statuses = [410]
    assert webhooks.deliver(db, settings, delivery_id) is False
    with db.read() as session:
        assert session.get_one(WebhookDelivery, delivery_id).state == DeliveryState.FAILED


def test_unreachable_receiver_is_an_attempt_too(db: Any, settings: Any, caller: Any) -> None:
    delivery_id = _finished_job_with_webhook(db, caller.owner_id, "http://127.0.0.1:9/hook")
    assert webhooks.deliver(db, settings, delivery_id) is False
    (attempt,) = _attempts(db, delivery_id)
    assert attempt.status_code is None and "Error" in (attempt.error or "")


def test_default_schedule_spans_more_than_a_day(settings: Any) -> None:
    assert sum(settings.webhook_schedule_s) >= 24 * 3600
