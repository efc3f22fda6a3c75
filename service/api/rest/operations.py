"""Health and readiness (no API key needed) and Prometheus metrics (an API key of any
role, unless ``SILOSPAN_METRICS_PUBLIC`` opens them)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import Response
from fastapi.security import HTTPAuthorizationCredentials
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel

from service.api.deps import (
    ReadSessionDep,
    ReadSessionsDep,
    SettingsDep,
    bearer_credentials,
    get_principal,
)
from service.api.problems import problem, problem_responses
from service.core.migrations import schema_is_current
from service.webhooks import metrics as webhook_metrics

router = APIRouter(tags=["operations"])


class Health(BaseModel):
    status: str


@router.get("/healthz")
async def healthz() -> Health:
    """The process is up."""
    return Health(status="ok")


@router.get("/readyz", responses=problem_responses(503))
async def readyz(session: ReadSessionDep) -> Health:
    """The database answers and its schema is at the newest migration."""
    try:
        current = await schema_is_current(await session.connection())
    except Exception:  # noqa: BLE001 (any failure to reach the database means "not ready")
        current = None
    if not current:
        detail = (
            "the database is unreachable"
            if current is None
            else "the database schema is behind: run 'silospan migrate'"
        )
        return problem(None, status=503, code="not_ready", detail=detail)  # type: ignore[return-value]
    return Health(status="ready")


async def metrics_access(
    settings: SettingsDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_credentials)],
    sessions: ReadSessionsDep,
) -> None:
    """Request counts by route say how the company works: a valid key of any role, unless
    the operator has opened the endpoint to its network."""
    if not settings.metrics_public:
        await get_principal(credentials, sessions)


@router.get("/metrics", include_in_schema=False, dependencies=[Depends(metrics_access)])
async def metrics(session: ReadSessionDep) -> Response:
    await webhook_metrics.refresh_queue(session)  # the outbox, as the database holds it
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
