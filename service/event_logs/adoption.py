"""Adopting a discovered arc: it becomes a registered handoff with its occurrences.

The units are created if they do not exist (``external_ref`` = the log's name), the
handoff is created (or reused, if that key already joins the same units), and every
transfer of the arc becomes one handoff event through the handoffs' bulk upsert, keyed by
``external_id`` = ``<log key>:<position of the row at A>``: adopting twice adds nothing.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import AsyncIterator
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from service.core.config import Settings
from service.core.errors import Conflict, Invalid, NotFoundFor
from service.core.fields import EXTERNAL_ID_PATTERN, format_duration
from service.core.permissions import Action, Principal
from service.event_logs import arc_subjects, repository
from service.event_logs import service as event_logs_service
from service.event_logs.errors import hidden_from_partners
from service.event_logs.keys import derive_key
from service.event_logs.parsing import from_us
from service.event_logs.schemas import AdoptRead, AdoptRequest
from service.handoffs import service as handoffs_service
from service.handoffs.schemas import HandoffCreate
from service.org_units import service as org_units_service
from service.org_units.schemas import UnitCreate

#: Readable durations an observed wait is rounded up to.
_STEPS = [
    timedelta(minutes=m)
    for m in (1, 5, 10, 15, 30, 60, 120, 240, 480, 720, 1440, 2880, 4320, 7200, 10080, 20160)
] + [timedelta(days=30 * n) for n in range(1, 121)]
_CASE_REF = re.compile(EXTERNAL_ID_PATTERN)
_NOT_REF = re.compile(r"[^A-Za-z0-9._:~-]+")


def readable(wait: timedelta) -> timedelta:
    """The smallest readable duration (1 minute .. 120 months) at least ``wait``."""
    return next((step for step in _STEPS if step >= wait), _STEPS[-1])


def case_ref_for(case: str) -> str:
    """The case as a ``case_ref``: itself when it is one, else a safe form plus a hash of it
    (so two cases never share a ref)."""
    if _CASE_REF.match(case):
        return case
    safe = _NOT_REF.sub("-", case).strip("-._:~")[:100] or "case"
    return f"{safe}~{hashlib.sha256(case.encode()).hexdigest()[:8]}"


async def adopt(
    session: AsyncSession, principal: Principal, key: str, data: AdoptRequest, settings: Settings
) -> AdoptRead:
    principal.require(Action.events_write)
    hidden_from_partners(principal, key)
    principal.require(Action.handoffs_write)
    log = await event_logs_service.get_ready(session, principal, key)
    found = await repository.arcs(session, log.id, (), only=(data.source, data.target))
    if not found:
        raise NotFoundFor("arc", f"{data.source} -> {data.target}")
    arc = found[0]
    from_key = data.from_unit or derive_key(data.source)
    to_key = data.to_unit or derive_key(data.target)
    if from_key == to_key:
        raise Invalid("from and to map to the same unit", loc=("body", "to_unit"))
    existing = await org_units_service.ids_for_keys(session, {from_key, to_key})
    created_units = []
    for unit_key, name in ((from_key, data.source), (to_key, data.target)):
        if unit_key not in existing:
            principal.require(Action.units_write)
            await org_units_service.create(
                session,
                principal,
                UnitCreate(key=unit_key, name=name, kind="team", external_ref=log.name),
            )
            created_units.append(unit_key)
    # Remembered on the log, so conformance maps these names to the same units.
    chosen = {**log.mapping.get("units", {}), data.source: from_key, data.target: to_key}
    log.mapping = {**log.mapping, "units": chosen}
    await arc_subjects.remap_units(session, log.id, chosen)
    expected = data.expected_within or readable(timedelta(microseconds=arc.wait_p80_us))
    handoff = await _handoff(session, principal, data, from_key, to_key, expected)

    async def batches() -> AsyncIterator[list[dict]]:
        async for transfers in repository.arc_transfers(session, log.id, arc.source, arc.target):
            yield [
                {
                    "handoff": handoff.key,
                    "external_id": f"{log.key}:{position}",
                    "started_at": from_us(at_a).isoformat(),
                    "delivered_at": from_us(at_b).isoformat(),
                    "case_ref": case_ref_for(case),
                }
                for case, position, at_a, at_b in transfers
            ]

    result = await handoffs_service.ingest_events(
        session, principal, _buffered(batches()), atomic=True, settings=settings
    )
    return AdoptRead(
        handoff=handoff.key,
        from_unit=from_key,
        to_unit=to_key,
        created_units=created_units,
        expected_within=handoff.expected_within or expected,
        transfers=arc.count,
        events_created=result.created,
        events_unchanged=result.unchanged + result.updated,
    )


async def _buffered(batches: AsyncIterator[list[dict]]) -> AsyncIterator[list[dict]]:
    """The arc's transfers read whole before the events are written: one connection cannot
    read a stream and write at once. At most the arc's transfers, as small dicts."""
    collected = [batch async for batch in batches]
    for batch in collected:
        yield batch


async def _handoff(session, principal, data: AdoptRequest, from_key, to_key, expected):
    try:
        handoff = await handoffs_service.get(session, principal, data.key)
    except NotFoundFor:
        handoff = None
    if handoff is None:
        return await handoffs_service.create(
            session,
            principal,
            HandoffCreate(
                key=data.key,
                from_unit=from_key,
                to_unit=to_key,
                deliverable=data.deliverable or f"{data.source} -> {data.target}"[:200],
                expected_within=format_duration(expected),
            ),
        )
    ids = await org_units_service.ids_for_keys(session, {from_key, to_key})
    if (handoff.from_unit_id, handoff.to_unit_id) != (ids.get(from_key), ids.get(to_key)):
        raise Conflict(
            f"handoff {data.key!r} exists between other units; choose another key",
            key=data.key,
        )
    return handoff
