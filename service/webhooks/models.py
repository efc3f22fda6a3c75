"""Subscriptions, and the transactional outbox: a message per event, a delivery per message
and subscription, written in the transaction of the change that causes them."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from sqlalchemy import JSON, Index, Text
from sqlmodel import Field, SQLModel

from service.core.models import IdMixin, between, one_of
from service.core.types import UTCDateTime, utcnow
from service.webhooks.constants import DeliveryStatus


class WebhookSubscription(IdMixin, table=True):
    __tablename__ = "webhook_subscriptions"
    __table_args__ = (between("health_below", 0, 100, nullable=False),)

    url: str = Field(max_length=2000)
    # null: every event type
    event_types: list[str] | None = Field(default=None, sa_type=JSON)
    description: str = Field(default="", max_length=500)
    enabled: bool = True
    disabled_reason: str | None = Field(default=None, max_length=500)
    # A partner key's subscription hears only of events that concern its unit.
    partner_unit_id: UUID | None = Field(default=None, foreign_key="units.id", ondelete="CASCADE")
    # The HMAC key must be kept to sign with (as every webhook sender does); after a rotation
    # the previous one signs too, until it expires.
    secret: str = Field(max_length=200)
    previous_secret: str | None = Field(default=None, max_length=200)
    previous_secret_expires_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    failing_since: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # handoff.health_dropped: sent when a handoff's health falls below this (0-100).
    health_below: float = Field(default=60.0, sa_column_kwargs={"server_default": "60"})
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)


class WebhookMessage(SQLModel, table=True):
    """One event: its ``id`` is the ``webhook-id`` of every delivery and retry of it."""

    __tablename__ = "webhook_messages"

    id: str = Field(primary_key=True, max_length=40)
    type: str = Field(max_length=64)
    payload: dict = Field(default_factory=dict, sa_type=JSON)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)


class WebhookDelivery(IdMixin, table=True):
    __tablename__ = "webhook_deliveries"
    __table_args__ = (one_of("status", DeliveryStatus),)

    message_id: str = Field(foreign_key="webhook_messages.id", ondelete="CASCADE", max_length=40)
    subscription_id: UUID = Field(
        foreign_key="webhook_subscriptions.id", ondelete="CASCADE", index=True
    )
    status: str = Field(default=DeliveryStatus.pending.value, max_length=16)
    attempts: int = 0
    # Due for its next attempt; a dispatcher that takes it moves this past its lease, so a
    # dispatcher that dies mid-delivery leaves it to the next one.
    next_attempt_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
    last_status_code: int | None = None
    last_error: str | None = Field(default=None, sa_type=Text)
    last_duration_ms: float | None = None
    delivered_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)


# Dispatchers look for due deliveries: one index range.
Index("ix_webhook_deliveries_due", WebhookDelivery.status, WebhookDelivery.next_attempt_at)


class WebhookHandoffHealth(SQLModel, table=True):
    """A handoff's health as last judged for ``handoff.health_dropped``: a drop is announced
    when it crosses a subscription's threshold from above, so once per crossing."""

    __tablename__ = "webhook_handoff_health"

    handoff_id: UUID = Field(primary_key=True, foreign_key="handoffs.id", ondelete="CASCADE")
    value: float | None = None
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
