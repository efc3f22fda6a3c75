from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any, TypeVar
from uuid import UUID

from sqlalchemy import false, func
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import select

from service.core.pagination import PageRequest, paginate
from service.core.permissions import Principal
from service.journeys.models import Feedback, Journey, Touchpoint

RowT = TypeVar("RowT", Journey, Touchpoint, Feedback)


def readable(principal: Principal, model: type[RowT]) -> Any:
    """Rows of ``model`` the principal may see: all of them, or none for a partner key.

    Journeys, touchpoints and feedback describe the company's own customers; a partner
    sees none of them, so for a partner every item is absent and every list empty.
    """
    statement = select(model)
    if principal.is_partner:
        statement = statement.where(false())
    return statement


async def _get_many(
    session: AsyncSession, principal: Principal, model: type[RowT], ids: list[UUID]
) -> list[RowT | None]:
    if not ids:
        return []
    rows = (await session.scalars(readable(principal, model).where(model.id.in_(set(ids))))).all()
    by_id = {row.id: row for row in rows}
    return [by_id.get(id_) for id_ in ids]


async def _touchpoints_by(
    session: AsyncSession, principal: Principal, column: Any, ids: Iterable[UUID]
) -> list[list[Touchpoint]]:
    """Visible touchpoints grouped by ``column`` (by key), one group per id in ``ids``."""
    wanted = list(ids)
    if not wanted:
        return []
    statement = (
        readable(principal, Touchpoint).where(column.in_(set(wanted))).order_by(Touchpoint.key)
    )
    groups: dict[UUID, list[Touchpoint]] = {id_: [] for id_ in wanted}
    for touchpoint in (await session.scalars(statement)).all():
        groups[getattr(touchpoint, column.key)].append(touchpoint)
    return [groups[id_] for id_ in wanted]


# Journeys ----------------------------------------------------------------------------------


async def get_journey_by_key(
    session: AsyncSession, principal: Principal, key: str, *, for_update: bool = False
) -> Journey | None:
    statement = readable(principal, Journey).where(Journey.key == key)
    if for_update:
        statement = statement.with_for_update()
    return (await session.scalars(statement)).first()


async def list_journeys(
    session: AsyncSession, principal: Principal, page: PageRequest
) -> tuple[list[Journey], str | None]:
    return await paginate(session, readable(principal, Journey), order_by=[Journey.key], page=page)


async def get_journeys(
    session: AsyncSession, principal: Principal, ids: list[UUID]
) -> list[Journey | None]:
    """Journeys in the order of ``ids``, ``None`` where absent or not visible."""
    return await _get_many(session, principal, Journey, ids)


async def stages_in_use(session: AsyncSession, journey_id: UUID) -> dict[str, int]:
    """How many touchpoints sit in each stage of the journey (stages without any left out)."""
    rows = await session.execute(
        select(Touchpoint.stage, func.count())
        .where(Touchpoint.journey_id == journey_id)
        .group_by(Touchpoint.stage)
    )
    return {stage: int(count) for stage, count in rows.all()}


# Touchpoints -------------------------------------------------------------------------------


async def get_touchpoint_by_key(
    session: AsyncSession, principal: Principal, key: str, *, for_update: bool = False
) -> Touchpoint | None:
    statement = readable(principal, Touchpoint).where(Touchpoint.key == key)
    if for_update:
        statement = statement.with_for_update()
    return (await session.scalars(statement)).first()


async def touchpoint_ids_by_key(
    session: AsyncSession, principal: Principal, keys: set[str]
) -> dict[str, UUID]:
    """Visible touchpoints by key, for resolving bulk items."""
    if not keys:
        return {}
    rows = await session.execute(
        readable(principal, Touchpoint)
        .with_only_columns(Touchpoint.key, Touchpoint.id)
        .where(Touchpoint.key.in_(keys))
    )
    return {key: id_ for key, id_ in rows.all()}


async def list_touchpoints(
    session: AsyncSession,
    principal: Principal,
    page: PageRequest,
    *,
    journey_id: UUID | None = None,
    owner_id: UUID | None = None,
    stage: str | None = None,
) -> tuple[list[Touchpoint], str | None]:
    statement = readable(principal, Touchpoint)
    if journey_id is not None:
        statement = statement.where(Touchpoint.journey_id == journey_id)
    if owner_id is not None:
        statement = statement.where(Touchpoint.owner_id == owner_id)
    if stage is not None:
        statement = statement.where(Touchpoint.stage == stage)
    return await paginate(session, statement, order_by=[Touchpoint.key], page=page)


async def get_touchpoints(
    session: AsyncSession, principal: Principal, ids: list[UUID]
) -> list[Touchpoint | None]:
    """Touchpoints in the order of ``ids``, ``None`` where absent or not visible."""
    return await _get_many(session, principal, Touchpoint, ids)


async def touchpoints_by_journey_ids(
    session: AsyncSession, principal: Principal, journey_ids: list[UUID]
) -> list[list[Touchpoint]]:
    """Each journey's visible touchpoints (by key), in the order of ``journey_ids``."""
    return await _touchpoints_by(session, principal, Touchpoint.journey_id, journey_ids)


async def touchpoints_by_owner_ids(
    session: AsyncSession, principal: Principal, owner_ids: list[UUID]
) -> list[list[Touchpoint]]:
    """Each unit's visible touchpoints (by key), in the order of ``owner_ids``."""
    return await _touchpoints_by(session, principal, Touchpoint.owner_id, owner_ids)


# Feedback ----------------------------------------------------------------------------------


async def get_feedback(
    session: AsyncSession, touchpoint_id: UUID, external_id: str
) -> Feedback | None:
    statement = select(Feedback).where(
        Feedback.touchpoint_id == touchpoint_id, Feedback.external_id == external_id
    )
    return (await session.scalars(statement)).first()


async def list_feedback(
    session: AsyncSession,
    touchpoint_id: UUID,
    page: PageRequest,
    *,
    scale: str | None = None,
    case_ref: str | None = None,
    at_from: datetime | None = None,
    at_to: datetime | None = None,
) -> tuple[list[Feedback], str | None]:
    statement = select(Feedback).where(Feedback.touchpoint_id == touchpoint_id)
    if scale is not None:
        statement = statement.where(Feedback.scale == scale)
    if case_ref is not None:
        statement = statement.where(Feedback.case_ref == case_ref)
    if at_from is not None:
        statement = statement.where(Feedback.at >= at_from)
    if at_to is not None:
        statement = statement.where(Feedback.at < at_to)
    return await paginate(session, statement, order_by=[Feedback.at, Feedback.id], page=page)


async def get_feedback_many(
    session: AsyncSession, principal: Principal, ids: list[UUID]
) -> list[Feedback | None]:
    """Feedback records in the order of ``ids``, ``None`` where absent or not visible."""
    return await _get_many(session, principal, Feedback, ids)
