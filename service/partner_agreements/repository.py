from __future__ import annotations

from typing import Any
from uuid import UUID

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from service.core.pagination import PageRequest, paginate
from service.core.permissions import Principal
from service.partner_agreements.models import PartnerAgreement


def readable(principal: Principal) -> Any:
    """Agreements the principal may see: all, or a partner's own."""
    statement = select(PartnerAgreement)
    if principal.is_partner:
        statement = statement.where(PartnerAgreement.partner_id == principal.partner_unit_id)
    return statement


def readable_ids(principal: Principal) -> Any:
    """The ids of readable agreements, as a subquery for other domains' scoping."""
    return readable(principal).with_only_columns(PartnerAgreement.id)


async def get_by_key(
    session: AsyncSession, principal: Principal, key: str, *, for_update: bool = False
) -> PartnerAgreement | None:
    statement = readable(principal).where(PartnerAgreement.key == key)
    if for_update:
        statement = statement.with_for_update()
    return (await session.scalars(statement)).first()


async def get_by_key_unscoped(session: AsyncSession, key: str) -> PartnerAgreement | None:
    statement = select(PartnerAgreement).where(PartnerAgreement.key == key)
    return (await session.scalars(statement)).first()


async def list_page(
    session: AsyncSession,
    principal: Principal,
    page: PageRequest,
    *,
    partner_id: UUID | None = None,
    internal_owner_id: UUID | None = None,
    status: str | None = None,
) -> tuple[list[PartnerAgreement], str | None]:
    statement = readable(principal)
    if partner_id is not None:
        statement = statement.where(PartnerAgreement.partner_id == partner_id)
    if internal_owner_id is not None:
        statement = statement.where(PartnerAgreement.internal_owner_id == internal_owner_id)
    if status is not None:
        statement = statement.where(PartnerAgreement.status == status)
    return await paginate(session, statement, order_by=[PartnerAgreement.key], page=page)


async def get_many(
    session: AsyncSession, principal: Principal, ids: list[UUID]
) -> list[PartnerAgreement | None]:
    if not ids:
        return []
    rows = (await session.scalars(readable(principal).where(PartnerAgreement.id.in_(set(ids))))).all()
    by_id = {row.id: row for row in rows}
    return [by_id.get(id_) for id_ in ids]


async def list_by_partner_ids(
    session: AsyncSession, principal: Principal, partner_ids: list[UUID]
) -> list[PartnerAgreement]:
    if not partner_ids:
        return []
    statement = readable(principal).where(PartnerAgreement.partner_id.in_(set(partner_ids)))
    return list((await session.scalars(statement.order_by(PartnerAgreement.key))).all())
