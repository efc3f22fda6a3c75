from __future__ import annotations

from typing import Any
from uuid import UUID

from sqlalchemy import false, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from service.core.pagination import PageRequest, paginate
from service.core.permissions import Principal
from service.goals.models import Goal
from service.metrics.models import Metric, MetricRelation
from service.partner_agreements.models import PartnerAgreement


def readable(principal: Principal) -> Any:
    """The metric catalogue is internal. A partner key sees only the metrics its own
    agreements' goals are measured by: those it sees on its goals, and may name in a
    proposal."""
    statement = select(Metric)
    if principal.is_partner:
        agreed = (
            select(Goal.metric_id)
            .join(PartnerAgreement, Goal.agreement_id == PartnerAgreement.id)
            .where(PartnerAgreement.partner_id == principal.partner_unit_id)
        )
        statement = statement.where(Metric.id.in_(agreed))
    return statement


def readable_relations(principal: Principal) -> Any:
    statement = select(MetricRelation)
    return statement.where(false()) if principal.is_partner else statement


async def get_by_key(
    session: AsyncSession, principal: Principal, key: str, *, for_update: bool = False
) -> Metric | None:
    statement = readable(principal).where(Metric.key == key)
    if for_update:
        statement = statement.with_for_update()
    return (await session.scalars(statement)).first()


async def list_page(
    session: AsyncSession, principal: Principal, page: PageRequest, *, kind: str | None = None
) -> tuple[list[Metric], str | None]:
    statement = readable(principal)
    if kind is not None:
        statement = statement.where(Metric.kind == kind)
    return await paginate(session, statement, order_by=[Metric.key], page=page)


async def get_many(session: AsyncSession, principal: Principal, ids: list[UUID]) -> list[Metric | None]:
    if not ids:
        return []
    rows = (await session.scalars(readable(principal).where(Metric.id.in_(set(ids))))).all()
    by_id = {row.id: row for row in rows}
    return [by_id.get(id_) for id_ in ids]


async def get_relation(
    session: AsyncSession, principal: Principal, key: str, *, for_update: bool = False
) -> MetricRelation | None:
    statement = readable_relations(principal).where(MetricRelation.key == key)
    if for_update:
        statement = statement.with_for_update()
    return (await session.scalars(statement)).first()


async def relation_between(
    session: AsyncSession, from_id: UUID, to_id: UUID
) -> MetricRelation | None:
    statement = select(MetricRelation).where(
        MetricRelation.from_metric_id == from_id, MetricRelation.to_metric_id == to_id
    )
    return (await session.scalars(statement)).first()


async def list_relations(
    session: AsyncSession, principal: Principal, page: PageRequest, *, metric_id: UUID | None = None
) -> tuple[list[MetricRelation], str | None]:
    statement = readable_relations(principal)
    if metric_id is not None:
        statement = statement.where(
            or_(MetricRelation.from_metric_id == metric_id, MetricRelation.to_metric_id == metric_id)
        )
    return await paginate(session, statement, order_by=[MetricRelation.key], page=page)
