"""Webhook subscriptions and their deliveries (the events: service.webhooks.constants)."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Response

from service.api.deps import PageDep, ReadSessionDep, SessionDep, SettingsDep, allow
from service.api.problems import problem_responses
from service.core.fields import Page
from service.core.permissions import Action, Principal
from service.webhooks import service as webhooks_service
from service.webhooks.schemas import (
    DeliveryRead,
    WebhookCreate,
    WebhookCreated,
    WebhookRead,
    WebhookUpdate,
)

router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"])
Manager = Annotated[Principal, allow(Action.webhooks_manage)]


@router.get("", responses=problem_responses())
async def list_webhooks(
    session: ReadSessionDep, principal: Manager, page: PageDep
) -> Page[WebhookRead]:
    rows, next_cursor = await webhooks_service.list_page(session, principal, page)
    return Page(items=await webhooks_service.to_read(session, rows), next_cursor=next_cursor)


@router.post("", status_code=201, responses=problem_responses())
async def create_webhook(
    body: WebhookCreate,
    response: Response,
    session: SessionDep,
    principal: Manager,
    settings: SettingsDep,
) -> WebhookCreated:
    """Subscribe a URL to events. The signing secret is in this response only.

    The URL must be https and resolve to public addresses only (422 says why not)."""
    subscription, secret = await webhooks_service.create(session, principal, body, settings)
    response.headers["Location"] = f"/v1/webhooks/{subscription.id}"
    response.headers["Cache-Control"] = "no-store"
    (read,) = await webhooks_service.to_read(session, [subscription], secret)
    return read  # type: ignore[return-value]


@router.get("/{webhook_id}", responses=problem_responses(404))
async def get_webhook(
    webhook_id: UUID, session: ReadSessionDep, principal: Manager
) -> WebhookRead:
    subscription = await webhooks_service.get(session, principal, webhook_id)
    (read,) = await webhooks_service.to_read(session, [subscription])
    return read


@router.patch("/{webhook_id}", responses=problem_responses(404))
async def update_webhook(
    webhook_id: UUID,
    body: WebhookUpdate,
    session: SessionDep,
    principal: Manager,
    settings: SettingsDep,
) -> WebhookRead:
    """Change the URL, the event types, the description, or enable/disable it (enabling
    again clears a disablement after failures)."""
    subscription = await webhooks_service.update(session, principal, webhook_id, body, settings)
    (read,) = await webhooks_service.to_read(session, [subscription])
    return read


@router.delete("/{webhook_id}", status_code=204, responses=problem_responses(404))
async def delete_webhook(webhook_id: UUID, session: SessionDep, principal: Manager) -> None:
    await webhooks_service.delete(session, principal, webhook_id)


@router.post("/{webhook_id}/rotate-secret", responses=problem_responses(404))
async def rotate_webhook_secret(
    webhook_id: UUID, response: Response, session: SessionDep, principal: Manager
) -> WebhookCreated:
    """A new signing secret (in this response only). For 24 hours deliveries carry a
    signature with the old secret too, so receivers can switch without losing any."""
    subscription, secret = await webhooks_service.rotate_secret(session, principal, webhook_id)
    response.headers["Cache-Control"] = "no-store"
    (read,) = await webhooks_service.to_read(session, [subscription], secret)
    return read  # type: ignore[return-value]


@router.post("/{webhook_id}/test", status_code=202, responses=problem_responses(404))
async def test_webhook(webhook_id: UUID, session: SessionDep, principal: Manager) -> DeliveryRead:
    """Queue a ``webhook.test`` event to this subscription alone."""
    delivery = await webhooks_service.send_test(session, principal, webhook_id)
    (read,) = await webhooks_service.deliveries_to_read(session, [delivery])
    return read


@router.get("/{webhook_id}/deliveries", responses=problem_responses(404))
async def list_webhook_deliveries(
    webhook_id: UUID, session: ReadSessionDep, principal: Manager, page: PageDep
) -> Page[DeliveryRead]:
    """Attempts at delivering events to this subscription, newest first."""
    items, next_cursor = await webhooks_service.list_deliveries(session, principal, webhook_id, page)
    return Page(items=items, next_cursor=next_cursor)


@router.post(
    "/{webhook_id}/deliveries/{delivery_id}/retry", responses=problem_responses(404)
)
async def retry_webhook_delivery(
    webhook_id: UUID, delivery_id: UUID, session: SessionDep, principal: Manager
) -> DeliveryRead:
    """Send a delivery again now (same webhook-id), whatever its state."""
    return await webhooks_service.retry_delivery(session, principal, webhook_id, delivery_id)
