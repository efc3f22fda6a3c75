"""Health, readiness and Prometheus metrics (no API key needed)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel

from service.api.deps import ReadSessionDep
from service.api.problems import problem, problem_responses
from service.core.migrations import schema_is_current

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


@router.get("/metrics", include_in_schema=False)
async def metrics() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
