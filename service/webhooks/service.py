"""Webhook subscriptions, and ``emit``: the outbox write that every event goes through.

``emit`` runs inside the transaction of the change that causes the event: a message and
one delivery per subscription that wants it are written with the change or not at all, so a
rolled-back write sends nothing and a committed one is never lost. The dispatcher
(``service.webhooks.dispatcher``) delivers them afterwards.

A partner key manages only its own subscriptions, and they hear only of events that concern
its unit (``concerns``); company subscriptions hear of every event.
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID, uuid4, uuid5

from sqlalchemy import insert, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from service.core.config import Settings
from service.core.errors import Invalid, NotFoundFor
from service.core.pagination import PageRequest, paginate
from service.core.permissions import Action, Principal
from service.core.types import utcnow
from service.org_units import service as org_units_service
from service.webhooks import addresses
from service.webhooks.constants import DeliveryStatus, EventType
from service.webhooks.models import WebhookDelivery, WebhookMessage, WebhookSubscription
from service.webhooks.schemas import (
    DeliveryRead,
    WebhookCreate,
    WebhookCreated,
    WebhookRead,
    WebhookUpdate,
)

RESOURCE = "webhook"
SECRET_PREFIX = "whsec_"
#: After a rotation the old secret keeps signing for this long, beside the new one.
ROTATION_OVERLAP = timedelta(hours=24)


#: The enabled subscriptions, read once per session (``emit``); any change forgets them.
_ENABLED = "webhooks.enabled"
#: Set on a session whose transaction queued deliveries (see ``dispatcher.wake_on_commit``).
QUEUED = "webhooks.queued"


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def new_message_id() -> str:
    return f"msg_{uuid4().hex}"


#: Namespace of the message ids of events announced once per subject.
_ONCE = UUID("5b0c1e9e-6f4e-4d0f-9a53-3c2f8f7e1d21")


def once_message_id(event_type: EventType, key: str) -> str:
    """The message id of the one announcement of ``event_type`` about ``key``."""
    return f"msg_{uuid5(_ONCE, f'{event_type.value}:{key}').hex}"


# Subscriptions ---------------------------------------------------------------------------------


async def create(
    session: AsyncSession, principal: Principal, data: WebhookCreate, settings: Settings
) -> tuple[WebhookSubscription, str]:
    principal.require(Action.webhooks_manage)
    await _check_url(data.url, settings)
    secret = new_secret()
    subscription = WebhookSubscription(
        url=data.url,
        event_types=_types(data.event_types),
        description=data.description,
        enabled=data.enabled,
        health_below=data.health_below,
        partner_unit_id=principal.partner_unit_id,
        secret=secret,
    )
    session.info.pop(_ENABLED, None)
    session.add(subscription)
    await session.flush()
    return subscription, secret


async def list_page(
    session: AsyncSession, principal: Principal, page: PageRequest
) -> tuple[list[WebhookSubscription], str | None]:
    principal.require(Action.webhooks_manage)
    statement = _readable(principal)
    return await paginate(
        session,
        statement,
        order_by=(WebhookSubscription.created_at, WebhookSubscription.id),
        page=page,
    )


async def get(session: AsyncSession, principal: Principal, webhook_id: UUID) -> WebhookSubscription:
    principal.require(Action.webhooks_manage)
    statement = _readable(principal).where(WebhookSubscription.id == webhook_id)
    subscription = (await session.scalars(statement)).first()
    if subscription is None:
        raise NotFoundFor(RESOURCE, webhook_id)
    return subscription


async def update(
    session: AsyncSession,
    principal: Principal,
    webhook_id: UUID,
    patch: WebhookUpdate,
    settings: Settings,
) -> WebhookSubscription:
    subscription = await get(session, principal, webhook_id)
    changes = patch.model_dump(exclude_unset=True)
    if "url" in changes:
        if changes["url"] is None:
            raise Invalid("url may not be null", loc=("body", "url"))
        await _check_url(changes["url"], settings)
        subscription.url = changes["url"]
    if "event_types" in changes:
        subscription.event_types = _types(patch.event_types)
    if changes.get("description") is not None:
        subscription.description = changes["description"]
    if changes.get("health_below") is not None:
        subscription.health_below = changes["health_below"]
    if changes.get("enabled") is not None:
        subscription.enabled = changes["enabled"]
        if subscription.enabled:
            subscription.disabled_reason, subscription.failing_since = None, None
    session.info.pop(_ENABLED, None)
    subscription.updated_at = utcnow()
    await session.flush()
    return subscription


async def delete(session: AsyncSession, principal: Principal, webhook_id: UUID) -> None:
    subscription = await get(session, principal, webhook_id)
    session.info.pop(_ENABLED, None)
    await session.delete(subscription)
    await session.flush()


async def rotate_secret(
    session: AsyncSession, principal: Principal, webhook_id: UUID
) -> tuple[WebhookSubscription, str]:
    """A new secret; the old one keeps signing (beside it) for 24 hours."""
    subscription = await get(session, principal, webhook_id)
    secret = new_secret()
    subscription.previous_secret = subscription.secret
    subscription.previous_secret_expires_at = utcnow() + ROTATION_OVERLAP
    subscription.secret = secret
    subscription.updated_at = utcnow()
    await session.flush()
    return subscription, secret


async def send_test(
    session: AsyncSession, principal: Principal, webhook_id: UUID
) -> WebhookDelivery:
    """A ``webhook.test`` event to this subscription alone."""
    subscription = await get(session, principal, webhook_id)
    message = _message(EventType.webhook_test, {"webhook": str(subscription.id)}, link=None)
    session.add(message)
    await session.flush()
    delivery = WebhookDelivery(message_id=message.id, subscription_id=subscription.id)
    session.add(delivery)
    await session.flush()
    session.info[QUEUED] = True
    return delivery


async def list_deliveries(
    session: AsyncSession, principal: Principal, webhook_id: UUID, page: PageRequest
) -> tuple[list[DeliveryRead], str | None]:
    subscription = await get(session, principal, webhook_id)
    statement = select(WebhookDelivery).where(WebhookDelivery.subscription_id == subscription.id)
    rows, cursor = await paginate(
        session,
        statement,
        order_by=(WebhookDelivery.created_at.desc(), WebhookDelivery.id),
        page=page,
    )
    return await deliveries_to_read(session, rows), cursor


async def retry_delivery(
    session: AsyncSession, principal: Principal, webhook_id: UUID, delivery_id: UUID
) -> DeliveryRead:
    """Send a delivery again now, whatever its state (it keeps its webhook-id)."""
    subscription = await get(session, principal, webhook_id)
    delivery = await session.get(WebhookDelivery, delivery_id)
    if delivery is None or delivery.subscription_id != subscription.id:
        raise NotFoundFor("delivery", delivery_id)
    delivery.status = DeliveryStatus.pending.value
    delivery.next_attempt_at = utcnow()
    await session.flush()
    session.info[QUEUED] = True
    (read,) = await deliveries_to_read(session, [delivery])
    return read


async def to_read(
    session: AsyncSession, subscriptions: list[WebhookSubscription], secret: str | None = None
) -> list[WebhookRead]:
    partners = await org_units_service.keys_for_ids(
        session, [s.partner_unit_id for s in subscriptions]
    )
    model = WebhookCreated if secret else WebhookRead
    extra = {"secret": secret} if secret else {}
    return [
        model(
            id=s.id,
            url=s.url,
            event_types=s.event_types,
            description=s.description,
            enabled=s.enabled,
            health_below=s.health_below,
            disabled_reason=s.disabled_reason,
            partner=partners.get(s.partner_unit_id) if s.partner_unit_id else None,
            failing_since=s.failing_since,
            created_at=s.created_at,
            updated_at=s.updated_at,
            **extra,
        )
        for s in subscriptions
    ]


async def deliveries_to_read(
    session: AsyncSession, deliveries: list[WebhookDelivery]
) -> list[DeliveryRead]:
    ids = list({d.message_id for d in deliveries})
    types: dict[str, str] = {}
    if ids:
        rows = await session.execute(
            select(WebhookMessage.id, WebhookMessage.type).where(WebhookMessage.id.in_(ids))
        )
        types = {message_id: event_type for message_id, event_type in rows.all()}
    return [
        DeliveryRead(
            id=d.id,
            message_id=d.message_id,
            type=EventType(types[d.message_id]),
            status=DeliveryStatus(d.status),
            attempts=d.attempts,
            next_attempt_at=d.next_attempt_at if d.status == DeliveryStatus.pending.value else None,
            last_status_code=d.last_status_code,
            last_error=d.last_error,
            last_duration_ms=d.last_duration_ms,
            delivered_at=d.delivered_at,
            created_at=d.created_at,
        )
        for d in deliveries
    ]


def _readable(principal: Principal) -> Any:
    statement = select(WebhookSubscription)
    if principal.is_partner:
        statement = statement.where(
            WebhookSubscription.partner_unit_id == principal.partner_unit_id
        )
    return statement


def _types(event_types: Iterable[EventType] | None) -> list[str] | None:
    return None if event_types is None else sorted({t.value for t in event_types})


async def _check_url(url: str, settings: Settings) -> None:
    try:
        await addresses.resolve(
            url,
            allow_http=settings.webhooks_allow_http,
            allow_private=settings.webhooks_allow_private,
        )
    except addresses.UnsafeUrl as exc:
        raise Invalid(str(exc), loc=("body", "url")) from exc


# The outbox ------------------------------------------------------------------------------------


def _message(
    event_type: EventType,
    data: dict[str, Any],
    *,
    link: str | None,
    now: datetime | None = None,
    once: str | None = None,
) -> WebhookMessage:
    now = now or utcnow()
    payload = {
        "type": event_type.value,
        "timestamp": now.isoformat().replace("+00:00", "Z"),
        "data": {**data, **({"link": link} if link else {})},
    }
    message_id = new_message_id() if once is None else once_message_id(event_type, once)
    return WebhookMessage(id=message_id, type=event_type.value, payload=payload, created_at=now)


@dataclass(frozen=True)
class Event:
    """One event for ``emit_many``.

    ``concerns``: the partner units it is about (their subscriptions hear of it; other
    partners' never do). ``once``: a key that makes the event idempotent: it is queued at
    most once ever under that key (its message id derives from it), so a retried or
    re-sent write announces nothing new. ``only``: restricts it to these subscriptions.
    """

    data: dict[str, Any]
    link: str | None = None
    concerns: frozenset[UUID] = frozenset()
    once: str | None = None
    only: frozenset[UUID] | None = None


async def subscribers(session: AsyncSession, event_type: EventType) -> list[WebhookSubscription]:
    """The enabled subscriptions that want ``event_type`` (read once per session: writers
    call this per batch, and skip all their work when it is empty)."""
    subscriptions = session.info.get(_ENABLED)
    if subscriptions is None:
        statement = select(WebhookSubscription).where(WebhookSubscription.enabled.is_(True))
        subscriptions = session.info[_ENABLED] = list((await session.scalars(statement)).all())
    return [s for s in subscriptions if s.event_types is None or event_type.value in s.event_types]


async def emit(
    session: AsyncSession,
    event_type: EventType,
    data: dict[str, Any],
    *,
    link: str | None = None,
    concerns: Iterable[UUID] = (),
) -> None:
    """Queue ``event_type`` for every enabled subscription that wants it, in the caller's
    transaction. ``concerns``: the partner units the event is about (their subscriptions
    hear of it too; other partners' never do)."""
    await emit_many(session, event_type, [Event(data, link, frozenset(concerns))])


#: Rows per INSERT: under SQLite's bound-parameter limit for the widest outbox row.
_CHUNK = 1000


async def emit_many(session: AsyncSession, event_type: EventType, events: Sequence[Event]) -> int:
    """Queue many events of one type in the caller's transaction: one multi-row INSERT of
    messages and one of deliveries (per 1,000 rows), nothing at all when no subscription
    wants the type. Returns how many messages were queued (an event already queued under
    its ``once`` key is not queued again)."""
    if not events:
        return 0
    wanted = await subscribers(session, event_type)
    if not wanted:
        return 0
    now = utcnow()
    recipients: dict[str, list[UUID]] = {}
    messages: list[dict[str, Any]] = []
    for event in events:
        targets = [
            s.id
            for s in wanted
            if (s.partner_unit_id is None or s.partner_unit_id in event.concerns)
            and (event.only is None or s.id in event.only)
        ]
        if not targets:
            continue
        message = _message(event_type, event.data, link=event.link, now=now, once=event.once)
        if message.id in recipients:
            continue  # the same ``once`` key twice in one call
        recipients[message.id] = targets
        messages.append(
            {"id": message.id, "type": message.type, "payload": message.payload, "created_at": now}
        )
    if not messages:
        return 0
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    queued: list[str] = []
    for start in range(0, len(messages), _CHUNK):
        statement = (
            dialect.insert(WebhookMessage)
            .values(messages[start : start + _CHUNK])
            .on_conflict_do_nothing(index_elements=["id"])
            .returning(WebhookMessage.id)
        )
        queued.extend((await session.execute(statement)).scalars().all())
    deliveries = [
        {
            "id": uuid4(),
            "message_id": message_id,
            "subscription_id": subscription_id,
            "status": DeliveryStatus.pending.value,
            "attempts": 0,
            "next_attempt_at": now,
            "created_at": now,
        }
        for message_id in queued
        for subscription_id in recipients[message_id]
    ]
    for start in range(0, len(deliveries), _CHUNK):
        await session.execute(insert(WebhookDelivery).values(deliveries[start : start + _CHUNK]))
    if deliveries:
        session.info[QUEUED] = True  # the dispatcher of this process wakes on commit
    return len(queued)
