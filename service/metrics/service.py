"""Metrics and the declared relations between them ("raising handle time raises rapport")."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from uuid import UUID

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from service.alignment import conflict_service, finding_service
from service.core import repository as core_repository
from service.core.db import is_unique_violation
from service.core.errors import (
    Conflict,
    Invalid,
    KeyExists,
    NotFoundFor,
    StillReferenced,
    UnknownReference,
)
from service.core.pagination import PageRequest
from service.core.patching import check_version, merge
from service.core.permissions import Action, Principal
from service.core.types import utcnow
from service.metrics import repository
from service.metrics.constants import MetricKind
from service.metrics.models import Metric, MetricRelation
from service.metrics.schemas import (
    MetricCreate,
    MetricRead,
    MetricRelationCreate,
    MetricRelationRead,
    MetricRelationUpdate,
    MetricUpdate,
)

METRIC = "metric"
RELATION = "metric relation"


class RelationExists(Conflict):
    code = "relation_exists"


# Metrics ---------------------------------------------------------------------------------------


async def get(session: AsyncSession, principal: Principal, key: str) -> Metric:
    principal.require(Action.metrics_read)
    return await _visible(session, principal, key)


async def get_many(
    session: AsyncSession, principal: Principal, ids: list[UUID]
) -> list[Metric | None]:
    principal.require(Action.metrics_read)
    return await repository.get_many(session, principal, ids)


async def list_page(
    session: AsyncSession, principal: Principal, page: PageRequest, *, kind: MetricKind | None = None
) -> tuple[list[Metric], str | None]:
    principal.require(Action.metrics_read)
    return await repository.list_page(session, principal, page, kind=kind.value if kind else None)


async def create(session: AsyncSession, principal: Principal, data: MetricCreate) -> Metric:
    principal.require(Action.metrics_write)
    metric = Metric(key=data.key, name=data.name, unit=data.unit, kind=data.kind.value)
    session.add(metric)
    await _flush_new(session, METRIC, data.key)
    return metric


async def update(
    session: AsyncSession,
    principal: Principal,
    key: str,
    patch: MetricUpdate,
    *,
    expected_version: int | None = None,
) -> Metric:
    principal.require(Action.metrics_write)
    metric = await _visible(session, principal, key, for_update=True)
    check_version(metric.version, expected_version)
    data = merge(to_read(metric).model_dump(include=set(MetricCreate.model_fields)), patch, MetricCreate)
    if data.kind.value == metric.kind:
        metric.name, metric.unit = data.name, data.unit
    else:
        # The rules single out goals by their metric's kind (financial, recovery, surveys).
        async with finding_service.watch(session, metrics=[metric.id]):
            metric.name, metric.unit, metric.kind = data.name, data.unit, data.kind.value
            await session.flush()
    metric.version += 1
    metric.updated_at = utcnow()
    await session.flush()
    return metric


async def delete(session: AsyncSession, principal: Principal, key: str) -> None:
    principal.require(Action.metrics_write)
    metric = await _visible(session, principal, key, for_update=True)
    references = await core_repository.blocking_references(session, Metric.__tablename__, metric.id)
    if references:
        raise StillReferenced(METRIC, key, references)
    await session.delete(metric)
    await session.flush()


def to_read(metric: Metric) -> MetricRead:
    return MetricRead(
        id=metric.id,
        key=metric.key,
        name=metric.name,
        unit=metric.unit,
        kind=MetricKind(metric.kind),
        version=metric.version,
        created_at=metric.created_at,
        updated_at=metric.updated_at,
    )


# Relations -------------------------------------------------------------------------------------


async def get_relation(session: AsyncSession, principal: Principal, key: str) -> MetricRelation:
    principal.require(Action.metrics_read)
    return await _visible_relation(session, principal, key)


async def list_relations(
    session: AsyncSession, principal: Principal, page: PageRequest, *, metric: str | None = None
) -> tuple[list[MetricRelation], str | None]:
    principal.require(Action.metrics_read)
    metric_id = None
    if metric is not None:
        metric_id = (await ids_for_keys(session, [metric])).get(metric)
        if metric_id is None:
            return [], None
    return await repository.list_relations(session, principal, page, metric_id=metric_id)


async def create_relation(
    session: AsyncSession, principal: Principal, data: MetricRelationCreate
) -> MetricRelation:
    principal.require(Action.metrics_write)
    key = _relation_key(data)
    from_id, to_id = await _resolve_pair(session, data)
    relation = MetricRelation(
        key=key, from_metric_id=from_id, to_metric_id=to_id, effect=data.effect, note=data.note
    )
    session.add(relation)
    await _flush_new(session, RELATION, key)
    await conflict_service.refresh_for_metrics(session, [from_id, to_id])
    return relation


async def update_relation(
    session: AsyncSession,
    principal: Principal,
    key: str,
    patch: MetricRelationUpdate,
    *,
    expected_version: int | None = None,
) -> MetricRelation:
    principal.require(Action.metrics_write)
    relation = await _visible_relation(session, principal, key, for_update=True)
    check_version(relation.version, expected_version)
    (current,) = await relations_to_read(session, [relation])
    data = merge(current.model_dump(include=set(MetricRelationCreate.model_fields)), patch, MetricRelationCreate)
    from_id, to_id = await _resolve_pair(session, data, exclude=relation.id)
    affected = [relation.from_metric_id, relation.to_metric_id, from_id, to_id]
    relation.from_metric_id, relation.to_metric_id = from_id, to_id
    relation.effect, relation.note = data.effect, data.note
    relation.version += 1
    relation.updated_at = utcnow()
    await session.flush()
    await conflict_service.refresh_for_metrics(session, list(set(affected)))
    return relation


async def delete_relation(session: AsyncSession, principal: Principal, key: str) -> None:
    principal.require(Action.metrics_write)
    relation = await _visible_relation(session, principal, key, for_update=True)
    affected = [relation.from_metric_id, relation.to_metric_id]
    await session.delete(relation)
    await session.flush()
    await conflict_service.refresh_for_metrics(session, affected)


async def relations_to_read(
    session: AsyncSession, relations: Sequence[MetricRelation]
) -> list[MetricRelationRead]:
    keys = await core_repository.keys_by_id(
        session, Metric, [r.from_metric_id for r in relations] + [r.to_metric_id for r in relations]
    )
    return [
        MetricRelationRead(
            id=r.id,
            key=r.key,
            from_metric=keys[r.from_metric_id],
            to_metric=keys[r.to_metric_id],
            effect=r.effect,
            note=r.note,
            version=r.version,
            created_at=r.created_at,
            updated_at=r.updated_at,
        )
        for r in relations
    ]


# Used by other domains -------------------------------------------------------------------------


async def resolve_metric(
    session: AsyncSession, key: str, *, field: str = "metric", loc_prefix: tuple = ("body",)
) -> UUID:
    found = await core_repository.ids_by_key(session, Metric, [key])
    if key not in found:
        raise UnknownReference(field, METRIC, key, loc_prefix=loc_prefix)
    return found[key]


async def ids_for_keys(session: AsyncSession, keys: Iterable[str]) -> dict[str, UUID]:
    return await core_repository.ids_by_key(session, Metric, keys)


async def keys_for_ids(session: AsyncSession, ids: Iterable[UUID | None]) -> dict[UUID, str]:
    return await core_repository.keys_by_id(session, Metric, ids)


# Internals -------------------------------------------------------------------------------------


async def _visible(
    session: AsyncSession, principal: Principal, key: str, *, for_update: bool = False
) -> Metric:
    metric = await repository.get_by_key(session, principal, key, for_update=for_update)
    if metric is None:
        raise NotFoundFor(METRIC, key)
    return metric


async def _visible_relation(
    session: AsyncSession, principal: Principal, key: str, *, for_update: bool = False
) -> MetricRelation:
    relation = await repository.get_relation(session, principal, key, for_update=for_update)
    if relation is None:
        raise NotFoundFor(RELATION, key)
    return relation


def _relation_key(data: MetricRelationCreate) -> str:
    if data.key is not None:
        return data.key
    derived = f"{data.from_metric}--{data.to_metric}"
    if len(derived) > 64:
        raise Invalid(
            f"'{derived}' is too long to be the relation's key: give a key",
            loc=("body", "key"),
        )
    return derived


async def _resolve_pair(
    session: AsyncSession, data: MetricRelationCreate, *, exclude: UUID | None = None
) -> tuple[UUID, UUID]:
    if data.from_metric == data.to_metric:
        raise Invalid("a metric cannot be related to itself", loc=("body", "to_metric"))
    from_id = await resolve_metric(session, data.from_metric, field="from_metric")
    to_id = await resolve_metric(session, data.to_metric, field="to_metric")
    existing = await repository.relation_between(session, from_id, to_id)
    if existing is not None and existing.id != exclude:
        raise RelationExists(
            f"{data.from_metric} → {data.to_metric} is already declared as {existing.key!r}",
            key=existing.key,
        )
    return from_id, to_id


async def _flush_new(session: AsyncSession, resource: str, key: str) -> None:
    try:
        await session.flush()
    except IntegrityError as exc:
        if is_unique_violation(exc):
            raise KeyExists(resource, key) from exc
        raise
