"""Prometheus metrics of the webhooks.

Deliveries are counted by the dispatcher of this process (``silospan serve`` runs one),
by event type and outcome. The queue is read from the database when ``/metrics`` is
scraped, so it is the same whichever process answers: how many deliveries wait (due now
or retrying later) and how long the oldest of them has waited since its event.
"""

from __future__ import annotations

import structlog
from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from service.core.types import utcnow
from service.webhooks.constants import DeliveryStatus
from service.webhooks.models import WebhookDelivery

log = structlog.get_logger("silospan.webhooks")

DELIVERIES = Counter(
    "silospan_webhook_deliveries_total",
    "Webhook delivery attempts by event type and outcome (succeeded; retrying: failed, "
    "another attempt is scheduled; failed: the last attempt of the schedule failed).",
    ["event_type", "outcome"],
)
DELIVERY_SECONDS = Counter(
    "silospan_webhook_delivery_seconds_total",
    "Time spent sending webhook delivery attempts, by outcome.",
    ["outcome"],
)
QUEUE_DEPTH = Gauge(
    "silospan_webhook_queue_depth",
    "Webhook deliveries waiting for an attempt (due now, leased, or retrying later).",
)
OLDEST_PENDING = Gauge(
    "silospan_webhook_oldest_pending_seconds",
    "Age of the oldest webhook delivery still waiting (0 when none waits).",
)


def serve_deliveries(host: str, port: int) -> None:
    """A worker's own delivery counters, for Prometheus at ``http://host:port/metrics`` (from
    a thread). The queue gauges stay with the API's ``/metrics``, which reads them from the
    database when scraped: a worker would only show them stale."""
    registry = CollectorRegistry()
    registry.register(DELIVERIES)
    registry.register(DELIVERY_SECONDS)
    start_http_server(port, addr=host, registry=registry)


async def refresh_queue(session: AsyncSession) -> None:
    """Set the queue gauges: one statement over the pending range of the status index."""
    statement = select(func.count(), func.min(WebhookDelivery.created_at)).where(
        WebhookDelivery.status == DeliveryStatus.pending.value
    )
    try:
        depth, oldest = (await session.execute(statement)).one()
    except Exception:  # noqa: BLE001 (the process's own metrics still answer without a database)
        log.warning("webhook queue metrics skipped: the database did not answer")
        return
    QUEUE_DEPTH.set(depth)
    OLDEST_PENDING.set(max(0.0, (utcnow() - oldest).total_seconds()) if oldest else 0.0)
