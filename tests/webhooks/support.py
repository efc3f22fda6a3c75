"""Helpers of the webhook tests (the fixtures are in conftest.py)."""

from __future__ import annotations

import asyncio

from sqlalchemy import func, select

from service.webhooks import dispatcher
from service.webhooks.constants import DeliveryStatus
from service.webhooks.models import WebhookDelivery


async def subscribe(live, url: str, headers: dict | None = None, **fields) -> dict:
    response = await live.http.post(
        "/v1/webhooks", json={"url": url, **fields}, headers=headers or live.admin
    )
    assert response.status_code == 201, response.text
    return response.json()


async def dispatch(live) -> int:
    async with dispatcher.new_client(live.settings) as client:
        return await dispatcher.dispatch_once(live.database, live.settings, client)


async def no_timing_standard_handoff(live, key: str = "kyc") -> None:
    for unit in ("ops", "branch"):
        response = await live.http.post(
            "/v1/units", json={"key": unit, "name": unit, "kind": "department"}, headers=live.admin
        )
        assert response.status_code in (201, 409), response.text
    response = await live.http.post(
        "/v1/handoffs",
        json={"key": key, "from_unit": "ops", "to_unit": "branch", "deliverable": "KYC"},
        headers=live.admin,
    )
    assert response.status_code == 201, response.text


async def drain(live, seconds: float = 30) -> None:
    """Dispatch until no delivery is pending (retries included), or fail after ``seconds``."""
    deadline = asyncio.get_running_loop().time() + seconds
    while True:
        await dispatch(live)
        async with live.database.read_sessions() as session:
            statement = select(func.count()).where(
                WebhookDelivery.status == DeliveryStatus.pending.value
            )
            if not await session.scalar(statement):
                return
        assert asyncio.get_running_loop().time() < deadline, "deliveries still pending"
        await asyncio.sleep(0.05)
