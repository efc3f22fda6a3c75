from __future__ import annotations

from typing import Any
from uuid import UUID

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import select

from service.core.pagination import PageRequest, paginate
from service.core.permissions import Principal
from service.handoffs.constants import HandoffStatus
from service.handoffs.models import Handoff
from service.journeys.models import Touchpoint
from service.org_units.models import Unit


def readable(principal: Principal) -> Any:
    """Units the principal may see: all of them, or a partner's own unit only."""
    statement = select(Unit)
    if principal.is_partner:
        statement = statement.where(Unit.id == principal.partner_unit_id)
    return statement


async def get_by_key(
    session: AsyncSession, principal: Principal, key: str, *, for_update: bool = False
) -> Unit | None:
    statement = readable(principal).where(Unit.key == key)
    if for_update:
        statement = statement.with_for_update()
    return (await session.scalars(statement)).first()


async def get_by_key_unscoped(session: AsyncSession, key: str) -> Unit | None:
    return (await session.scalars(select(Unit).where(Unit.key == key))).first()


async def list_page(
    session: AsyncSession,
    principal: Principal,
    page: PageRequest,
    *,
    kind: str | None = None,
    parent_id: UUID | None = None,
    ring: int | None = None,
) -> tuple[list[Unit], str | None]:
    statement = readable(principal)
    if kind is not None:
        statement = statement.where(Unit.kind == kind)
    if parent_id is not None:
        statement = statement.where(Unit.parent_id == parent_id)
    if ring is not None:
        statement = statement.where(Unit.ring == ring)
    return await paginate(session, statement, order_by=[Unit.key], page=page)


async def get_many(session: AsyncSession, principal: Principal, ids: list[UUID]) -> list[Unit | None]:
    """Units in the order of ``ids``, ``None`` where absent or not visible (DataLoader batch)."""
    if not ids:
        return []
    rows = (await session.scalars(readable(principal).where(Unit.id.in_(set(ids))))).all()
    by_id = {unit.id: unit for unit in rows}
    return [by_id.get(id_) for id_ in ids]


async def ancestors(session: AsyncSession, unit_id: UUID) -> list[UUID]:
    """The chain of parents above ``unit_id`` (bounded: the org chart is shallow)."""
    chain: list[UUID] = []
    current: UUID | None = unit_id
    while current is not None and len(chain) < 1000:
        current = await session.scalar(select(Unit.parent_id).where(Unit.id == current))
        if current is not None:
            chain.append(current)
    return chain


async def ring_inputs(session: AsyncSession) -> tuple[list[UUID], list[tuple[UUID, UUID]]]:
    owners = (await session.scalars(select(Touchpoint.owner_id).distinct())).all()
    edges = (
        await session.execute(
            select(Handoff.from_unit_id, Handoff.to_unit_id).where(
                Handoff.status == HandoffStatus.active.value
            )
        )
    ).all()
    return list(owners), [(a, b) for a, b in edges]


async def current_rings(session: AsyncSession) -> dict[UUID, int | None]:
    return {id_: ring for id_, ring in (await session.execute(select(Unit.id, Unit.ring))).all()}


async def set_rings(session: AsyncSession, changes: dict[UUID, int | None]) -> None:
    for unit_id, ring in changes.items():
        await session.execute(update(Unit).where(Unit.id == unit_id).values(ring=ring))


async def rings_of(session: AsyncSession, unit_ids: list[UUID]) -> dict[UUID, int | None]:
    statement = select(Unit.id, Unit.ring).where(Unit.id.in_(unit_ids))
    return {id_: ring for id_, ring in (await session.execute(statement)).all()}


async def touchpoint_owners_among(session: AsyncSession, unit_ids: list[UUID]) -> set[UUID]:
    """Those of ``unit_ids`` that own at least one touchpoint."""
    if not unit_ids:
        return set()
    statement = select(Touchpoint.owner_id).where(Touchpoint.owner_id.in_(unit_ids)).distinct()
    return set((await session.scalars(statement)).all())
