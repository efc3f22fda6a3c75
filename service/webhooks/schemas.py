from __future__ import annotations

from datetime import datetime
from uuid import UUID

from pydantic import Field

from service.core.fields import InputModel, ReadModel
from service.webhooks.constants import DeliveryStatus, EventType

HEALTH_BELOW = (
    "handoff.health_dropped is sent when a handoff's health (0-100, over the default "
    "window) falls below this, once per crossing: again only after it recovered."
)
HealthBelow = Field(default=60.0, ge=0, le=100, description=HEALTH_BELOW)
Url = Field(min_length=8, max_length=2000, description="Where events are POSTed (https).")


class WebhookCreate(InputModel):
    url: str = Url
    event_types: list[EventType] | None = Field(
        default=None, max_length=len(EventType), description="The events to send; null: all."
    )
    description: str = Field(default="", max_length=500)
    enabled: bool = True
    health_below: float = HealthBelow


class WebhookUpdate(InputModel):
    url: str | None = Field(default=None, min_length=8, max_length=2000)
    event_types: list[EventType] | None = None
    description: str | None = Field(default=None, max_length=500)
    enabled: bool | None = None
    health_below: float | None = Field(default=None, ge=0, le=100)


class WebhookRead(ReadModel):
    id: UUID
    url: str
    event_types: list[EventType] | None
    description: str
    enabled: bool
    health_below: float = Field(description=HEALTH_BELOW)
    disabled_reason: str | None
    partner: str | None = Field(description="The partner unit whose key made it, if any.")
    failing_since: datetime | None
    created_at: datetime
    updated_at: datetime


class WebhookCreated(WebhookRead):
    secret: str = Field(
        description="The signing secret (whsec_…), shown once, on creation or rotation."
    )


class DeliveryRead(ReadModel):
    id: UUID
    message_id: str = Field(description="The webhook-id header: the same on every retry.")
    type: EventType
    status: DeliveryStatus
    attempts: int
    next_attempt_at: datetime | None = Field(description="Null once delivered or failed.")
    last_status_code: int | None
    last_error: str | None
    last_duration_ms: float | None
    delivered_at: datetime | None
    created_at: datetime
