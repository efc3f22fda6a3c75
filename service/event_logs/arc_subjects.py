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


_FACTS = (
    EventLogArc.log_id,
    EventLog.key,
    EventLog.transfers,
    EventLogArc.src,
    EventLogArc.dst,
    EventLogArc.arc_count,
    EventLogArc.cases,
    EventLogArc.ping_pongs,
    _SOURCE_UNIT.unit_key,
    _TARGET_UNIT.unit_key,
)


def _candidates(*columns: Any) -> Any:
    """Arcs of ready logs on which a discovery rule could fire, with their mapped unit keys."""
    arc = EventLogArc
    return (
        select(*(columns or _FACTS))
        .select_from(arc)
        .join(EventLog, EventLog.id == arc.log_id)
        .join(_SOURCE_UNIT, and_(_SOURCE_UNIT.log_id == arc.log_id, _SOURCE_UNIT.name == arc.src))
        .join(_TARGET_UNIT, and_(_TARGET_UNIT.log_id == arc.log_id, _TARGET_UNIT.name == arc.dst))
        .where(
            EventLog.status == LogStatus.ready.value,
            or_(
                arc.arc_count >= finding_rules.UNREGISTERED_MIN_TRANSFERS,
                arc.arc_count * 100
                >= finding_rules.UNREGISTERED_SHARE_PERCENT * EventLog.transfers,
                and_(
                    arc.ping_pongs >= finding_rules.PING_PONG_MIN,
                    arc.ping_pongs * 100 >= finding_rules.PING_PONG_SHARE_PERCENT * arc.cases,
                ),
            ),
        )
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


async def of_logs(
    session: AsyncSession, log_ids: Sequence[UUID] | None = None
) -> dict[ArcRef, finding_rules.ArcFacts]:
    """The candidate arcs of these logs (of every ready log when None)."""
    statement = _candidates()
    if log_ids is not None:
        if not log_ids:
            return {}
        statement = statement.where(in_ids(session, EventLogArc.log_id, log_ids))
    return _facts((await session.execute(statement)).all())


async def page(
    session: AsyncSession,
    *,
    log_ids: Sequence[UUID] | None = None,
    after: ArcRef | None = None,
    limit: int,
) -> dict[ArcRef, finding_rules.ArcFacts]:
    """The next ``limit`` candidate arcs after ``after``, in the arcs' primary-key order, of
    these logs (of every ready log when None): a log of many candidates is judged a page at
    a time, in bounded memory."""
    arc_key = tuple_(EventLogArc.log_id, EventLogArc.src, EventLogArc.dst)
    statement = _candidates().order_by(*arc_key.clauses).limit(limit)
    if log_ids is not None:
        statement = statement.where(in_ids(session, EventLogArc.log_id, log_ids))
    if after is not None:
        statement = statement.where(arc_key > tuple_(after.log_id, after.source, after.target))
    return _facts((await session.execute(statement)).all())


async def pages(
    session: AsyncSession, log_ids: Sequence[UUID], limit: int
) -> AsyncIterator[dict[ArcRef, finding_rules.ArcFacts]]:
    after = None
    while found := await page(session, log_ids=log_ids, after=after, limit=limit):
        yield found
        after = list(found)[-1]


async def touching(
    session: AsyncSession, unit_ids: Sequence[UUID]
) -> dict[ArcRef, finding_rules.ArcFacts]:
    """The candidate arcs that start or end at one of these registered units, in any log."""
    if not unit_ids:
        return {}
    sides = [
        _candidates()
        .join(Unit, Unit.key == side.unit_key)
        .where(in_ids(session, Unit.id, unit_ids))
        for side in (_SOURCE_UNIT, _TARGET_UNIT)
    ]
    return _facts((await session.execute(union(*sides))).all())


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
