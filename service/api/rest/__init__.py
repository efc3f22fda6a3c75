"""Every REST router. Each carries its full path (``/v1/...``), so a route's ``path`` is
its template everywhere: in metrics, logs and the OpenAPI document."""

from fastapi import APIRouter
from fastapi.routing import APIRoute

from service.api.rest import (
    alignment,
    api_keys,
    event_logs,
    goals,
    handoffs,
    journeys,
    metrics,
    operations,
    partner_agreements,
    touchpoints,
    units,
    webhooks,
)

#: Health, readiness and metrics: no key, no /v1 conventions.
OPERATIONS_ROUTER = operations.router

V1_ROUTERS: tuple[APIRouter, ...] = (
    units.router,
    journeys.router,
    touchpoints.router,
    touchpoints.feedback_router,
    handoffs.router,
    handoffs.bulk_router,
    metrics.router,
    metrics.relations_router,
    goals.router,
    partner_agreements.router,
    alignment.scores,
    alignment.conflicts,
    alignment.findings,
    alignment.cases,
    api_keys.router,
    webhooks.router,
    event_logs.router,
)

#: Paths that stream their bodies and enforce their own size limits.
STREAMING_PATHS: frozenset[str] = frozenset(
    {"/v1/handoff-events/bulk", "/v1/feedback/bulk", "/v1/event-logs"}
)


ROUTERS: tuple[APIRouter, ...] = (OPERATIONS_ROUTER, *V1_ROUTERS)


def api_routes() -> list[APIRoute]:
    return [route for router in ROUTERS for route in router.routes if isinstance(route, APIRoute)]
