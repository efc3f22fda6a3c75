from __future__ import annotations

from collections import defaultdict
from typing import Any
from uuid import UUID

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from service.core.pagination import PageRequest, paginate
from service.core.permissions import Principal
from service.goals.models import Goal, GoalCheckIn, GoalContribution, GoalTouchpoint


def readable(principal: Principal, partner_agreements: Any) -> Any:
    """Goals the principal may see: all, or for a partner the joint goals of its own
    agreements (``partner_agreements`` is the subquery of those agreements' ids)."""
    statement = select(Goal)
    if principal.is_partner:
        statement = statement.where(Goal.agreement_id.in_(partner_agreements))
    return statement


async def get_by_key(
    session: AsyncSession, scope: Any, key: str, *, for_update: bool = False
) -> Goal | None:
    statement = scope.where(Goal.key == key)
    if for_update:
        statement = statement.with_for_update()
    return (await session.scalars(statement)).first()


async def list_page(
    session: AsyncSession,
    scope: Any,
    page: PageRequest,
    *,
    owner_id: UUID | None = None,
    metric_id: UUID | None = None,
    agreement_id: UUID | None = None,
    touchpoint_id: UUID | None = None,
    status: str | None = None,
) -> tuple[list[Goal], str | None]:
    statement = scope
    if owner_id is not None:
        statement = statement.where(Goal.owner_id == owner_id)
    if metric_id is not None:
        statement = statement.where(Goal.metric_id == metric_id)
    if agreement_id is not None:
        statement = statement.where(Goal.agreement_id == agreement_id)
    if status is not None:
        statement = statement.where(Goal.status == status)
    if touchpoint_id is not None:
        linked = select(GoalTouchpoint.goal_id).where(GoalTouchpoint.touchpoint_id == touchpoint_id)
        statement = statement.where(Goal.id.in_(linked))
    return await paginate(session, statement, order_by=[Goal.key], page=page)


async def get_many(session: AsyncSession, scope: Any, ids: list[UUID]) -> list[Goal | None]:
    if not ids:
        return []
    rows = (await session.scalars(scope.where(Goal.id.in_(set(ids))))).all()
    by_id = {row.id: row for row in rows}
    return [by_id.get(id_) for id_ in ids]


async def ids_by_key(session: AsyncSession, scope: Any, keys: list[str]) -> dict[str, UUID]:
    """The ids of the goals in ``scope`` with these keys (keys not in scope are left out)."""
    if not keys:
        return {}
    statement = scope.where(Goal.key.in_(set(keys))).with_only_columns(Goal.key, Goal.id)
    return {key: id_ for key, id_ in (await session.execute(statement)).all()}


async def list_by(session: AsyncSession, scope: Any, column: Any, ids: list[UUID]) -> list[Goal]:
    if not ids:
        return []
    statement = scope.where(column.in_(set(ids))).order_by(Goal.key)
    return list((await session.scalars(statement)).all())


async def touchpoint_ids(session: AsyncSession, goal_ids: list[UUID]) -> dict[UUID, list[UUID]]:
    found: dict[UUID, list[UUID]] = defaultdict(list)
    if goal_ids:
        statement = select(GoalTouchpoint.goal_id, GoalTouchpoint.touchpoint_id).where(
            GoalTouchpoint.goal_id.in_(set(goal_ids))
        )
        for goal_id, touchpoint_id in (await session.execute(statement)).all():
            found[goal_id].append(touchpoint_id)
    return found


async def goals_by_touchpoint(
    session: AsyncSession, touchpoint_ids: list[UUID]
) -> dict[UUID, list[UUID]]:
    found: dict[UUID, list[UUID]] = defaultdict(list)
    if touchpoint_ids:
        statement = select(GoalTouchpoint.touchpoint_id, GoalTouchpoint.goal_id).where(
            GoalTouchpoint.touchpoint_id.in_(set(touchpoint_ids))
        )
        for touchpoint_id, goal_id in (await session.execute(statement)).all():
            found[touchpoint_id].append(goal_id)
    return found


async def contribution_ids(session: AsyncSession, goal_ids: list[UUID]) -> dict[UUID, list[UUID]]:
    found: dict[UUID, list[UUID]] = defaultdict(list)
    if goal_ids:
        statement = select(GoalContribution.goal_id, GoalContribution.contributes_to_id).where(
            GoalContribution.goal_id.in_(set(goal_ids))
        )
        for goal_id, target_id in (await session.execute(statement)).all():
            found[goal_id].append(target_id)
    return found


async def contribution_edges(session: AsyncSession) -> list[tuple[UUID, UUID]]:
    rows = await session.execute(select(GoalContribution.goal_id, GoalContribution.contributes_to_id))
    return [(a, b) for a, b in rows.all()]


async def replace_links(
    session: AsyncSession, goal_id: UUID, touchpoint_ids: list[UUID], target_ids: list[UUID]
) -> None:
    await session.execute(delete(GoalTouchpoint).where(GoalTouchpoint.goal_id == goal_id))
    await session.execute(delete(GoalContribution).where(GoalContribution.goal_id == goal_id))
    await add_links(session, goal_id, touchpoint_ids, target_ids)


async def add_links(
    session: AsyncSession, goal_id: UUID, touchpoint_ids: list[UUID], target_ids: list[UUID]
) -> None:
    """The links of a goal that has none yet (a new one: nothing to delete first)."""
    session.add_all(GoalTouchpoint(goal_id=goal_id, touchpoint_id=t) for t in touchpoint_ids)
    session.add_all(GoalContribution(goal_id=goal_id, contributes_to_id=t) for t in target_ids)
    await session.flush()


async def list_check_ins(
    session: AsyncSession, goal_id: UUID, page: PageRequest
) -> tuple[list[GoalCheckIn], str | None]:
    statement = select(GoalCheckIn).where(GoalCheckIn.goal_id == goal_id)
    return await paginate(session, statement, order_by=[GoalCheckIn.at, GoalCheckIn.id], page=page)
