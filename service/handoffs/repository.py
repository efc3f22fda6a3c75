from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import case, func, or_, tuple_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import select

from service.core.pagination import PageRequest, paginate
from service.core.permissions import Principal
from service.handoffs.constants import EventStatus
from service.handoffs.models import Handoff, HandoffEvent, HandoffReview

CASE_JOIN_LOCK = 0x5111_CA5E  # advisory lock id: partners joining cases


def readable(principal: Principal) -> Any:
    """Handoffs the principal may see: all, or those a partner provides or receives."""
    statement = select(Handoff)
    if principal.is_partner:
        unit = principal.partner_unit_id
        statement = statement.where(or_(Handoff.from_unit_id == unit, Handoff.to_unit_id == unit))
    return statement


async def get_by_key(
    session: AsyncSession, principal: Principal, key: str, *, for_update: bool = False
) -> Handoff | None:
    statement = readable(principal).where(Handoff.key == key)
    if for_update:
        statement = statement.with_for_update()
    return (await session.scalars(statement)).first()


async def ids_by_key(
    session: AsyncSession, principal: Principal, keys: set[str]
) -> dict[str, tuple[UUID, Any]]:
    """Visible handoffs by key: (id, expected_within), for resolving bulk items."""
    if not keys:
        return {}
    rows = await session.execute(
        readable(principal)
        .with_only_columns(Handoff.key, Handoff.id, Handoff.expected_within)
        .where(Handoff.key.in_(keys))
    )
    return {key: (id_, within) for key, id_, within in rows.all()}


async def list_page(
    session: AsyncSession,
    principal: Principal,
    page: PageRequest,
    *,
    from_unit_id: UUID | None = None,
    to_unit_id: UUID | None = None,
    touchpoint_id: UUID | None = None,
    agreement_id: UUID | None = None,
    status: str | None = None,
) -> tuple[list[Handoff], str | None]:
    statement = readable(principal)
    if from_unit_id is not None:
        statement = statement.where(Handoff.from_unit_id == from_unit_id)
    if to_unit_id is not None:
        statement = statement.where(Handoff.to_unit_id == to_unit_id)
    if touchpoint_id is not None:
        statement = statement.where(Handoff.touchpoint_id == touchpoint_id)
    if agreement_id is not None:
        statement = statement.where(Handoff.agreement_id == agreement_id)
    if status is not None:
        statement = statement.where(Handoff.status == status)
    return await paginate(session, statement, order_by=[Handoff.key], page=page)


async def get_many(
    session: AsyncSession, principal: Principal, ids: list[UUID]
) -> list[Handoff | None]:
    if not ids:
        return []
    rows = (await session.scalars(readable(principal).where(Handoff.id.in_(set(ids))))).all()
    by_id = {handoff.id: handoff for handoff in rows}
    return [by_id.get(id_) for id_ in ids]


async def list_by(
    session: AsyncSession, principal: Principal, column: Any, ids: list[UUID]
) -> list[Handoff]:
    """Visible handoffs whose ``column`` is one of ``ids``, by key (for batch loading)."""
    if not ids:
        return []
    statement = readable(principal).where(column.in_(set(ids))).order_by(Handoff.key)
    return list((await session.scalars(statement)).all())


# Events ------------------------------------------------------------------------------------


async def first_events(
    session: AsyncSession,
    handoff_ids: list[UUID],
    *,
    limit: int,
    status: EventStatus | None,
    now: datetime,
) -> list[HandoffEvent]:
    """The first ``limit`` events of each handoff by (placed_at, id), in one statement."""
    if not handoff_ids:
        return []
    position = (
        func.row_number()
        .over(partition_by=HandoffEvent.handoff_id, order_by=(HandoffEvent.placed_at, HandoffEvent.id))
        .label("position")
    )
    ranked = select(HandoffEvent.id.label("event_id"), position).where(
        HandoffEvent.handoff_id.in_(set(handoff_ids)), *_status_filter(status, now)
    ).subquery()
    statement = (
        select(HandoffEvent)
        .join(ranked, ranked.c.event_id == HandoffEvent.id)
        .where(ranked.c.position <= limit)
        .order_by(HandoffEvent.handoff_id, HandoffEvent.placed_at, HandoffEvent.id)
    )
    return list((await session.scalars(statement)).all())


def _status_filter(status: EventStatus | None, now: datetime) -> list[Any]:
    if status is EventStatus.delivered:
        return [HandoffEvent.delivered_at.is_not(None)]
    if status is EventStatus.overdue:
        return [HandoffEvent.delivered_at.is_(None), HandoffEvent.due_at <= now]
    if status is EventStatus.pending:  # not yet due, or with no due time at all
        return [
            HandoffEvent.delivered_at.is_(None),
            or_(HandoffEvent.due_at.is_(None), HandoffEvent.due_at > now),
        ]
    return []


async def get_event(
    session: AsyncSession, handoff_id: UUID, external_id: str, *, for_update: bool = False
) -> HandoffEvent | None:
    statement = select(HandoffEvent).where(
        HandoffEvent.handoff_id == handoff_id, HandoffEvent.external_id == external_id
    )
    if for_update:
        statement = statement.with_for_update()
    return (await session.scalars(statement)).first()


async def writers(
    session: AsyncSession, pairs: set[tuple[UUID, str]], *, for_update: bool = False
) -> dict[tuple[UUID, str], UUID | None]:
    """The writer unit (None: internal) of each existing event among (handoff_id, external_id)."""
    if not pairs:
        return {}
    statement = select(
        HandoffEvent.handoff_id, HandoffEvent.external_id, HandoffEvent.written_by_unit_id
    ).where(tuple_(HandoffEvent.handoff_id, HandoffEvent.external_id).in_(list(pairs)))
    if for_update:
        statement = statement.with_for_update()
    rows = (await session.execute(statement)).all()
    return {(handoff_id, external_id): unit for handoff_id, external_id, unit in rows}


async def case_participation(
    session: AsyncSession, case_refs: set[str], unit_id: UUID
) -> dict[str, bool]:
    """Of these case refs, those that name a company case, each with whether the unit
    takes part in it (one of its steps is on a handoff the unit provides or receives)."""
    if not case_refs:
        return {}
    statement = (
        select(HandoffEvent.case_ref, func.max(case((_touches(unit_id), 1), else_=0)))
        .join(Handoff, Handoff.id == HandoffEvent.handoff_id)
        .where(HandoffEvent.case_ref.in_(case_refs), HandoffEvent.case_private.is_(False))
        .group_by(HandoffEvent.case_ref)
    )
    return {ref: bool(part) for ref, part in (await session.execute(statement)).all()}


async def lock_case_joins(session: AsyncSession) -> None:
    """Serialize partners' decisions to join a case until the transaction ends.

    PostgreSQL: a transaction-scoped advisory lock, so a partner's check of a case ref sees
    another partner's committed start of it. SQLite writers are serialized already.
    """
    connection = await session.connection()
    if connection.dialect.name == "postgresql":
        await session.execute(select(func.pg_advisory_xact_lock(CASE_JOIN_LOCK)))


def _touches(unit_id: UUID) -> Any:
    return or_(Handoff.from_unit_id == unit_id, Handoff.to_unit_id == unit_id)


async def case_events(
    session: AsyncSession, principal: Principal, case_ref: str
) -> list[tuple[HandoffEvent, Handoff]]:
    """The steps of the case ``case_ref`` as the principal knows it, in time order.

    The company's case is every step with this ref except those partners wrote into a case
    they had no part in. A partner that takes part in the company's case gets that case;
    otherwise the case it made itself from its own steps (if any), so its writes never join,
    change or reveal a case of others.
    """
    base = (
        select(HandoffEvent, Handoff)
        .join(Handoff, Handoff.id == HandoffEvent.handoff_id)
        .where(HandoffEvent.case_ref == case_ref)
        .order_by(HandoffEvent.started_at, HandoffEvent.id)
    )
    company = base.where(HandoffEvent.case_private.is_(False))
    if principal.is_partner:
        unit = principal.partner_unit_id
        assert unit is not None
        part = await session.scalar(
            select(func.count()).select_from(
                company.where(_touches(unit)).with_only_columns(HandoffEvent.id).subquery()
            )
        )
        if not part:
            company = base.where(
                HandoffEvent.case_private.is_(True), HandoffEvent.written_by_unit_id == unit
            )
    return [(event, handoff) for event, handoff in (await session.execute(company)).all()]


async def list_events(
    session: AsyncSession,
    handoff_id: UUID,
    page: PageRequest,
    *,
    status: EventStatus | None,
    case_ref: str | None,
    now: datetime,
) -> tuple[list[HandoffEvent], str | None]:
    """A page of a handoff's events by when they were due (started, for those with no due
    time: ``placed_at``), then id."""
    statement = select(HandoffEvent).where(
        HandoffEvent.handoff_id == handoff_id, *_status_filter(status, now)
    )
    if case_ref is not None:
        statement = statement.where(HandoffEvent.case_ref == case_ref)
    return await paginate(
        session, statement, order_by=[HandoffEvent.placed_at, HandoffEvent.id], page=page
    )


# Reviews -----------------------------------------------------------------------------------


async def list_reviews(
    session: AsyncSession, handoff_id: UUID, page: PageRequest
) -> tuple[list[HandoffReview], str | None]:
    statement = select(HandoffReview).where(HandoffReview.handoff_id == handoff_id)
    return await paginate(
        session, statement, order_by=[HandoffReview.at, HandoffReview.id], page=page
    )
