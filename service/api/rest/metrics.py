from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Request, Response

from service.api.deps import (
    IfMatchDep,
    KeyFilter,
    KeyPath,
    PageDep,
    ReadSessionDep,
    SessionDep,
    allow,
)
from service.api.idempotency import IdempotencyKeyDep, respond_once
from service.api.problems import problem_responses
from service.core.fields import Page
from service.core.patching import etag_for
from service.core.permissions import Action, Principal
from service.metrics import service as metrics_service
from service.metrics.constants import MetricKind
from service.metrics.schemas import (
    MetricCreate,
    MetricRead,
    MetricRelationCreate,
    MetricRelationRead,
    MetricRelationUpdate,
    MetricUpdate,
)

router = APIRouter(prefix="/v1/metrics", tags=["metrics"])
relations_router = APIRouter(prefix="/v1/metric-relations", tags=["metrics"])
Reader = Annotated[Principal, allow(Action.metrics_read)]
Writer = Annotated[Principal, allow(Action.metrics_write)]


@router.get("", responses=problem_responses())
async def list_metrics(
    session: ReadSessionDep, principal: Reader, page: PageDep, kind: MetricKind | None = None
) -> Page[MetricRead]:
    metrics, next_cursor = await metrics_service.list_page(session, principal, page, kind=kind)
    return Page(items=[metrics_service.to_read(m) for m in metrics], next_cursor=next_cursor)


@router.post("", status_code=201, responses=problem_responses(409))
async def create_metric(
    request: Request,
    body: MetricCreate,
    session: SessionDep,
    principal: Writer,
    idempotency_key: IdempotencyKeyDep = None,
) -> MetricRead:
    async def create():
        metric = await metrics_service.create(session, principal, body)
        headers = {"ETag": etag_for(metric.version), "Location": f"/v1/metrics/{metric.key}"}
        return 201, metrics_service.to_read(metric), headers

    return await respond_once(request, session, principal, idempotency_key, create)  # type: ignore[return-value]


@router.get("/{key}", responses=problem_responses(404))
async def get_metric(
    key: KeyPath, response: Response, session: ReadSessionDep, principal: Reader
) -> MetricRead:
    metric = await metrics_service.get(session, principal, key)
    response.headers["ETag"] = etag_for(metric.version)
    return metrics_service.to_read(metric)


@router.patch("/{key}", responses=problem_responses(404, 412))
async def update_metric(
    key: KeyPath,
    body: MetricUpdate,
    response: Response,
    session: SessionDep,
    principal: Writer,
    expected_version: IfMatchDep,
) -> MetricRead:
    metric = await metrics_service.update(
        session, principal, key, body, expected_version=expected_version
    )
    response.headers["ETag"] = etag_for(metric.version)
    return metrics_service.to_read(metric)


@router.delete("/{key}", status_code=204, responses=problem_responses(404, 409))
async def delete_metric(key: KeyPath, session: SessionDep, principal: Writer) -> None:
    """Delete a metric no goal or relation uses (otherwise 409 naming them)."""
    await metrics_service.delete(session, principal, key)


@relations_router.get("", responses=problem_responses())
async def list_metric_relations(
    session: ReadSessionDep, principal: Reader, page: PageDep, metric: KeyFilter = None
) -> Page[MetricRelationRead]:
    """Declared effects between metrics; ?metric= lists those at either end."""
    relations, next_cursor = await metrics_service.list_relations(
        session, principal, page, metric=metric
    )
    return Page(
        items=await metrics_service.relations_to_read(session, relations), next_cursor=next_cursor
    )


@relations_router.post("", status_code=201, responses=problem_responses(409))
async def create_metric_relation(
    request: Request,
    body: MetricRelationCreate,
    session: SessionDep,
    principal: Writer,
    idempotency_key: IdempotencyKeyDep = None,
) -> MetricRelationRead:
    """Declare that raising one metric tends to raise (+1) or lower (-1) another. Conflicts
    between goals are re-detected at once."""

    async def create():
        relation = await metrics_service.create_relation(session, principal, body)
        (read,) = await metrics_service.relations_to_read(session, [relation])
        headers = {
            "ETag": etag_for(relation.version),
            "Location": f"/v1/metric-relations/{relation.key}",
        }
        return 201, read, headers

    return await respond_once(request, session, principal, idempotency_key, create)  # type: ignore[return-value]


@relations_router.get("/{key}", responses=problem_responses(404))
async def get_metric_relation(
    key: KeyPath, response: Response, session: ReadSessionDep, principal: Reader
) -> MetricRelationRead:
    relation = await metrics_service.get_relation(session, principal, key)
    response.headers["ETag"] = etag_for(relation.version)
    (read,) = await metrics_service.relations_to_read(session, [relation])
    return read


@relations_router.patch("/{key}", responses=problem_responses(404, 409, 412))
async def update_metric_relation(
    key: KeyPath,
    body: MetricRelationUpdate,
    response: Response,
    session: SessionDep,
    principal: Writer,
    expected_version: IfMatchDep,
) -> MetricRelationRead:
    relation = await metrics_service.update_relation(
        session, principal, key, body, expected_version=expected_version
    )
    response.headers["ETag"] = etag_for(relation.version)
    (read,) = await metrics_service.relations_to_read(session, [relation])
    return read


@relations_router.delete("/{key}", status_code=204, responses=problem_responses(404))
async def delete_metric_relation(key: KeyPath, session: SessionDep, principal: Writer) -> None:
    await metrics_service.delete_relation(session, principal, key)


