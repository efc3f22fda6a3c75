"""The dispatcher: delivers the outbox, signed per Standard Webhooks, at least once.

Each round claims a batch of due deliveries in a short transaction: it counts the attempt
and moves ``next_attempt_at`` past a lease, taking the rows with ``FOR UPDATE SKIP LOCKED``
on PostgreSQL, so several dispatchers never send the same attempt twice, and a dispatcher
that dies mid-delivery leaves the delivery due again when its lease ends. It then POSTs
outside any transaction, and records each outcome in a second short transaction: 2xx is
delivered; anything else waits the next step of the retry schedule (with jitter) or, after
the last, fails. A subscription failing without a success for five days is disabled.

Headers: ``webhook-id`` (the message id, the same on every retry), ``webhook-timestamp``,
``webhook-signature`` (``v1,`` + base64 HMAC-SHA256 of ``id.timestamp.body``; during a
secret's rotation, one signature per valid secret).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import httpx
import orjson
import structlog
from sqlalchemy import event as sa_event
from sqlalchemy import select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session
from standardwebhooks.webhooks import Webhook

from service import __version__
from service.core.config import Settings
from service.core.db import Database, is_transient, transaction
from service.core.sql import in_ids
from service.core.types import utcnow
from service.webhooks import addresses, handoff_alerts, metrics
from service.webhooks import service as webhooks_service
from service.webhooks.constants import DeliveryStatus
from service.webhooks.models import WebhookDelivery, WebhookMessage, WebhookSubscription

log = structlog.get_logger("silospan.webhooks")

#: A response body is read this far and no further.
MAX_RESPONSE_BYTES = 64 * 1024
#: A subscription failing continuously this long is disabled.
DISABLE_AFTER = timedelta(days=5)
#: Overdue occurrences announced per scan.
OVERDUE_BATCH = 500
#: After a wake-up, how long a dispatcher waits for more commits before its round.
WAKE_COALESCE_SECONDS = 0.05


@dataclass(frozen=True)
class Attempt:
    delivery_id: UUID
    subscription_id: UUID
    message_id: str
    event_type: str
    body: bytes
    url: str
    secrets: tuple[str, ...]


@dataclass(frozen=True)
class Outcome:
    attempt: Attempt
    status_code: int | None
    error: str | None
    duration_ms: float

    @property
    def delivered(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def new_client(settings: Settings) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        timeout=httpx.Timeout(settings.webhooks_timeout_seconds),
        follow_redirects=False,
        trust_env=False,  # no proxy from the environment: the checked address is the peer
        headers={"user-agent": f"SiloSpan-Webhooks/{__version__}"},
    )


# Waking up: a transaction of this process that queued deliveries wakes its dispatchers as
# it commits, so they need not wait for their next round (other processes' dispatchers,
# such as ``silospan worker``, find them at their next round).

_sleepers: set[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = set()


@sa_event.listens_for(Session, "after_commit")
def _wake_on_commit(session: Session) -> None:
    if session.info.pop(webhooks_service.QUEUED, False):
        for loop, wake in list(_sleepers):
            loop.call_soon_threadsafe(wake.set)


@sa_event.listens_for(Session, "after_rollback")
def _forget_on_rollback(session: Session) -> None:
    session.info.pop(webhooks_service.QUEUED, None)


async def run(db: Database, settings: Settings, *, interval: float | None = None) -> None:
    """Dispatch until cancelled: a round whenever deliveries are due, else a pause
    (``interval``, by default SILOSPAN_WEBHOOKS_DISPATCH_SECONDS) that a commit queueing
    deliveries in this process cuts short."""
    pause = settings.webhooks_dispatch_seconds if interval is None else interval
    wake = asyncio.Event()
    sleeper = (asyncio.get_running_loop(), wake)
    _sleepers.add(sleeper)
    try:
        await _run(db, settings, pause, wake)
    finally:
        _sleepers.discard(sleeper)


async def _run(db: Database, settings: Settings, pause: float, wake: asyncio.Event) -> None:
    next_scan = 0.0
    async with new_client(settings) as client:
        while True:
            wake.clear()
            sent = 0
            try:
                if time.monotonic() >= next_scan:
                    # Time-based events, at most once per pause (at once again after a full
                    # batch): what no request triggers, the dispatcher notices.
                    announced = await announce_overdue(db)
                    next_scan = time.monotonic() + (0 if announced >= OVERDUE_BATCH else pause)
                sent = await dispatch_once(db, settings, client)
            except asyncio.CancelledError:
                raise
            except DBAPIError as exc:
                if not is_transient(exc):
                    log.exception("webhook dispatch round failed")
                else:  # a long write holds the lock (SQLite): the next round tries again
                    log.warning("webhook dispatch skipped a round: the database is busy")
            except Exception:
                log.exception("webhook dispatch round failed")
            if sent < settings.webhooks_batch:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(wake.wait(), timeout=pause)
                    # Woken: gather what the next few commits queue into the same round.
                    await asyncio.sleep(min(pause, WAKE_COALESCE_SECONDS))


async def announce_overdue(db: Database, *, batch: int = OVERDUE_BATCH) -> int:
    """Queue ``handoff_event.overdue`` for the occurrences that passed their due time since
    the last scan (a bounded batch; see ``handoff_alerts.announce_overdue``)."""
    async with db.read_sessions() as session:  # most rounds find nothing: no write lock
        if not await handoff_alerts.overdue_waiting(session):
            return 0
    async with transaction(db.write_sessions) as session:
        return await handoff_alerts.announce_overdue(session, batch=batch)


async def dispatch_once(db: Database, settings: Settings, client: httpx.AsyncClient) -> int:
    """One round: claim, deliver, record. Returns how many deliveries it attempted."""
    attempts = await _claim(db, settings)
    if not attempts:
        return 0
    outcomes = await asyncio.gather(*(_send(client, settings, a) for a in attempts))
    await _record(db, settings, outcomes)
    return len(attempts)


async def _claim(db: Database, settings: Settings) -> list[Attempt]:
    now = utcnow()
    async with transaction(db.write_sessions) as session:
        statement = (
            select(WebhookDelivery)
            .where(
                WebhookDelivery.status == DeliveryStatus.pending.value,
                WebhookDelivery.next_attempt_at <= now,
            )
            .order_by(WebhookDelivery.next_attempt_at)
            .limit(settings.webhooks_batch)
            .with_for_update(skip_locked=True)
        )
        deliveries = list((await session.scalars(statement)).all())
        if not deliveries:
            return []
        messages = {
            m.id: m
            for m in await session.scalars(
                select(WebhookMessage).where(
                    WebhookMessage.id.in_({d.message_id for d in deliveries})
                )
            )
        }
        subscriptions = {
            s.id: s
            for s in await session.scalars(
                select(WebhookSubscription).where(
                    WebhookSubscription.id.in_({d.subscription_id for d in deliveries})
                )
            )
        }
        lease = now + timedelta(seconds=settings.webhooks_lease_seconds)
        claimed = []
        for delivery in deliveries:
            subscription = subscriptions[delivery.subscription_id]
            if not subscription.enabled:
                delivery.status = DeliveryStatus.failed.value
                delivery.last_error = "the subscription is disabled"
                continue
            delivery.attempts += 1
            delivery.next_attempt_at = lease
            claimed.append(
                Attempt(
                    delivery_id=delivery.id,
                    subscription_id=subscription.id,
                    message_id=delivery.message_id,
                    event_type=messages[delivery.message_id].type,
                    body=orjson.dumps(messages[delivery.message_id].payload),
                    url=subscription.url,
                    secrets=_signing_secrets(subscription, now),
                )
            )
        return claimed


def _signing_secrets(subscription: WebhookSubscription, now: datetime) -> tuple[str, ...]:
    expires = subscription.previous_secret_expires_at
    if subscription.previous_secret and expires and expires > now:
        return (subscription.secret, subscription.previous_secret)
    return (subscription.secret,)


def signature_headers(attempt: Attempt, at: datetime) -> dict[str, str]:
    body = attempt.body.decode()
    signatures = [Webhook(secret).sign(attempt.message_id, at, body) for secret in attempt.secrets]
    return {
        "webhook-id": attempt.message_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": " ".join(signatures),
        "content-type": "application/json",
    }


async def _send(client: httpx.AsyncClient, settings: Settings, attempt: Attempt) -> Outcome:
    started = time.perf_counter()

    def outcome(status_code: int | None, error: str | None) -> Outcome:
        return Outcome(
            attempt, status_code, error, round((time.perf_counter() - started) * 1000, 1)
        )

    try:
        target = await addresses.resolve(
            attempt.url,
            allow_http=settings.webhooks_allow_http,
            allow_private=settings.webhooks_allow_private,
        )
    except addresses.UnsafeUrl as exc:
        return outcome(None, str(exc))
    url, host_header, extensions = target.pinned()
    headers = {**signature_headers(attempt, utcnow()), **host_header}
    try:
        request = client.build_request(
            "POST", url, content=attempt.body, headers=headers, extensions=extensions
        )
        response = await client.send(request, stream=True)
        try:
            read = 0
            async for chunk in response.aiter_raw():
                read += len(chunk)
                if read >= MAX_RESPONSE_BYTES:
                    break
        finally:
            await response.aclose()
    except httpx.HTTPError as exc:
        return outcome(None, f"{type(exc).__name__}: {exc}"[:500])
    error = None if 200 <= response.status_code < 300 else f"HTTP {response.status_code}"
    return outcome(response.status_code, error)


async def _by_id(session: AsyncSession, model: Any, ids: list[UUID]) -> dict[UUID, Any]:
    rows = await session.scalars(select(model).where(in_ids(session, model.id, list(set(ids)))))
    return {row.id: row for row in rows}


async def _record(db: Database, settings: Settings, outcomes: list[Outcome]) -> None:
    now = utcnow()
    schedule = settings.webhooks_retry_seconds
    counted: list[tuple[Outcome, str]] = []
    async with transaction(db.write_sessions) as session:
        # The round's rows in two statements, not two per outcome.
        deliveries = await _by_id(
            session, WebhookDelivery, [o.attempt.delivery_id for o in outcomes]
        )
        subscriptions = await _by_id(
            session, WebhookSubscription, [o.attempt.subscription_id for o in outcomes]
        )
        for result in outcomes:
            delivery = deliveries.get(result.attempt.delivery_id)
            subscription = subscriptions.get(result.attempt.subscription_id)
            if delivery is None or subscription is None:
                continue  # the subscription was deleted meanwhile
            delivery.last_status_code = result.status_code
            delivery.last_error = result.error
            delivery.last_duration_ms = result.duration_ms
            if result.delivered:
                delivery.status = DeliveryStatus.succeeded.value
                delivery.delivered_at = now
                subscription.failing_since = None
                counted.append((result, "succeeded"))
                continue
            if delivery.attempts > len(schedule):
                delivery.status = DeliveryStatus.failed.value
                counted.append((result, "failed"))
            else:
                counted.append((result, "retrying"))
                wait = schedule[delivery.attempts - 1] * random.uniform(0.8, 1.2)
                delivery.next_attempt_at = now + timedelta(seconds=wait)
            subscription.failing_since = subscription.failing_since or now
            if subscription.enabled and now - subscription.failing_since >= DISABLE_AFTER:
                subscription.enabled = False
                subscription.disabled_reason = (
                    f"every delivery failed since {subscription.failing_since.isoformat()}"
                )
    for result, outcome in counted:  # once the outcomes are stored
        metrics.DELIVERIES.labels(result.attempt.event_type, outcome).inc()
        metrics.DELIVERY_SECONDS.labels(outcome).inc(result.duration_ms / 1000)
