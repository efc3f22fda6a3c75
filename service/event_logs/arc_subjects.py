"""Discovered arcs as the subjects of findings (docs/method.md §10).

A stored arc has no id of its own: it is its log and its two unit names. Its subject id is
derived from those (a UUID5, the same every time), and its subject key reads
``<log>/<A> -> <B>``. Only arcs on which a discovery rule could fire, whatever is
registered (``findings.is_discovery_candidate``), are ever loaded, so a log of a quarter of a
million arcs yields the few subjects worth judging.

Each ready log keeps the registered unit key its arcs' unit names map to
(``event_log_units``), indexed by key: a change to a registered unit, its handoffs or its
touchpoints finds the arcs it can change in every log with one index range per side.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID, uuid5

from sqlalchemy import and_, or_, select, tuple_, union, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from service.alignment import findings as finding_rules
from service.core.sql import in_ids
from service.core.types import utcnow
from service.event_logs.constants import LogStatus
from service.event_logs.keys import derive_key
from service.event_logs.models import EventLog, EventLogArc, EventLogUnit
from service.org_units.models import Unit

#: Fixed: subject ids of discovered arcs must not change between releases.
_NAMESPACE = UUID("5f0e3f4c-8d0b-4a55-9a53-0c2d6d3c1a7e")
_MAX_KEY = 200


@dataclass(frozen=True)
class ArcRef:
    log_id: UUID
    source: str
    target: str

    @property
    def subject_id(self) -> UUID:
        # JSON keeps the three parts apart whatever characters the unit names hold.
        return uuid5(_NAMESPACE, json.dumps([str(self.log_id), self.source, self.target]))


def subject_key(log_key: str, source: str, target: str) -> str:
    """``<log>/<A> -> <B>``; a longer one is cut and ends in a hash of the whole, so two
    arcs never share a key."""
    key = f"{log_key}/{source} -> {target}"
    if len(key) <= _MAX_KEY:
        return key
    return f"{key[: _MAX_KEY - 9]}~{hashlib.sha256(key.encode()).hexdigest()[:8]}"


# Loading --------------------------------------------------------------------------------------


_SOURCE_UNIT = aliased(EventLogUnit, name="source_unit")
_TARGET_UNIT = aliased(EventLogUnit, name="target_unit")


#: What a finding needs of an arc besides its unit keys (as ``_facts`` reads them).
_ARC_FACTS = (
    EventLogArc.log_id,
    EventLog.key,
    EventLog.transfers,
    EventLogArc.src,
    EventLogArc.dst,
    EventLogArc.arc_count,
    EventLogArc.cases,
    EventLogArc.ping_pongs,
)


def _could_fire(arc: Any, log_transfers: Any) -> Any:
    """On this arc a discovery rule could fire, whatever is registered."""
    return or_(
        arc.arc_count >= finding_rules.UNREGISTERED_MIN_TRANSFERS,
        arc.arc_count * 100 >= finding_rules.UNREGISTERED_SHARE_PERCENT * log_transfers,
        and_(
            arc.ping_pongs >= finding_rules.PING_PONG_MIN,
            arc.ping_pongs * 100 >= finding_rules.PING_PONG_SHARE_PERCENT * arc.cases,
        ),
    )


def _unit_key(log_id: Any, name: Any) -> Any:
    # One primary-key lookup per arc. Joined instead, a planner without statistics (a log
    # made ready in this very transaction) can scan all the log's units for every arc.
    return (
        select(EventLogUnit.unit_key)
        .where(EventLogUnit.log_id == log_id, EventLogUnit.name == name)
        .scalar_subquery()
    )


def _facts(rows: Iterable[Any]) -> dict[ArcRef, finding_rules.ArcFacts]:
    found = {}
    for log_id, log_key, log_transfers, src, dst, count, cases, pings, from_key, to_key in rows:
        found[ArcRef(log_id, src, dst)] = finding_rules.ArcFacts(
            key=subject_key(log_key, src, dst),
            log=log_key,
            source=src,
            target=dst,
            from_unit=from_key,
            to_unit=to_key,
            transfers=count,
            cases=cases,
            ping_pongs=pings,
            log_transfers=log_transfers,
        )
    return found


async def ready_log_ids(session: AsyncSession) -> list[UUID]:
    statement = select(EventLog.id).where(EventLog.status == LogStatus.ready.value)
    return list((await session.scalars(statement.order_by(EventLog.id))).all())


async def of_logs(
    session: AsyncSession, log_ids: Sequence[UUID] | None = None
) -> dict[ArcRef, finding_rules.ArcFacts]:
    """The candidate arcs of these logs (of every ready log when None), all at once."""
    found: dict[ArcRef, finding_rules.ArcFacts] = {}
    async for arcs in pages(
        session, await ready_log_ids(session) if log_ids is None else log_ids, 10_000
    ):
        found |= arcs
    return found


async def page(
    session: AsyncSession, log_id: UUID, *, after: ArcRef | None = None, limit: int
) -> dict[ArcRef, finding_rules.ArcFacts]:
    """The next ``limit`` candidate arcs of a ready log after ``after``, in the arcs'
    primary-key order: a log of many candidates is judged a page at a time, in bounded
    memory. A page is one range of the arcs' primary key read in its order, so it costs the
    same at the end of a log as at its start, whatever the planner knows of the tables."""
    log = (
        await session.execute(
            select(EventLog.key, EventLog.transfers).where(
                EventLog.id == log_id, EventLog.status == LogStatus.ready.value
            )
        )
    ).first()
    if log is None:
        return {}
    arc = EventLogArc
    chosen = (
        select(arc.src, arc.dst, arc.arc_count, arc.cases, arc.ping_pongs)
        .where(arc.log_id == log_id, _could_fire(arc, log.transfers))
        .order_by(arc.src, arc.dst)
        .limit(limit)
    )
    if after is not None:
        chosen = chosen.where(tuple_(arc.src, arc.dst) > tuple_(after.source, after.target))
    c = chosen.subquery("chosen")
    statement = select(
        c.c.src,
        c.c.dst,
        c.c.arc_count,
        c.c.cases,
        c.c.ping_pongs,
        _unit_key(log_id, c.c.src),
        _unit_key(log_id, c.c.dst),
    ).order_by(c.c.src, c.c.dst)
    rows = (await session.execute(statement)).all()
    return _facts((log_id, log.key, log.transfers, *row) for row in rows)


async def pages(
    session: AsyncSession, log_ids: Sequence[UUID], limit: int
) -> AsyncIterator[dict[ArcRef, finding_rules.ArcFacts]]:
    for log_id in log_ids:
        after = None
        while found := await page(session, log_id, after=after, limit=limit):
            yield found
            after = next(reversed(found))


async def touching(
    session: AsyncSession, unit_ids: Sequence[UUID]
) -> dict[ArcRef, finding_rules.ArcFacts]:
    """The candidate arcs that start or end at one of these registered units, in any log."""
    if not unit_ids:
        return {}
    arc = EventLogArc
    sides = [
        select(*_ARC_FACTS)
        .select_from(arc)
        .join(EventLog, EventLog.id == arc.log_id)
        .join(side, and_(side.log_id == arc.log_id, side.name == name))
        .join(Unit, Unit.key == side.unit_key)
        .where(
            EventLog.status == LogStatus.ready.value,
            _could_fire(arc, EventLog.transfers),
            in_ids(session, Unit.id, unit_ids),
        )
        for side, name in ((_SOURCE_UNIT, arc.src), (_TARGET_UNIT, arc.dst))
    ]
    c = union(*sides).subquery("chosen")
    statement = select(*c.c, _unit_key(c.c.log_id, c.c.src), _unit_key(c.c.log_id, c.c.dst))
    return _facts((await session.execute(statement)).all())


async def next_unjudged_log(session: AsyncSession) -> UUID | None:
    """A ready log whose arcs were never judged (it was ready before findings were kept)."""
    statement = (
        select(EventLog.id)
        .where(EventLog.status == LogStatus.ready.value, EventLog.arcs_judged_at.is_(None))
        .order_by(EventLog.id)
        .limit(1)
    )
    return (await session.scalars(statement)).first()


async def mark_judged(session: AsyncSession, log_id: UUID) -> None:
    await session.execute(
        update(EventLog)
        .where(EventLog.id == log_id)
        .values(arcs_judged_at=utcnow())
        .execution_options(synchronize_session=False)
    )


# Keeping the unit mapping ---------------------------------------------------------------------


async def record_units(session: AsyncSession, log: EventLog) -> None:
    """When a log becomes ready: the key each unit name of its arcs maps to."""
    names = union(
        select(EventLogArc.src).where(EventLogArc.log_id == log.id),
        select(EventLogArc.dst).where(EventLogArc.log_id == log.id),
    )
    chosen = log.mapping.get("units", {})
    rows = [
        {"log_id": log.id, "name": name, "unit_key": chosen.get(name) or derive_key(name)}
        for name in (await session.scalars(names)).all()
    ]
    if rows:
        await session.execute(EventLogUnit.__table__.insert(), rows)


async def remap_units(session: AsyncSession, log_id: UUID, chosen: Mapping[str, str]) -> None:
    """Adopt chose these keys for these names."""
    for name, unit_key in chosen.items():
        await session.execute(
            update(EventLogUnit)
            .where(EventLogUnit.log_id == log_id, EventLogUnit.name == name)
            .values(unit_key=unit_key)
            .execution_options(synchronize_session=False)
        )
