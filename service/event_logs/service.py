"""Event logs: reading, deleting, and discovering the handoffs in them (SCORING.md,
"Discovery from event logs"). Importing is ``service.event_logs.importer``."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from datetime import timedelta
from uuid import UUID

import orjson
from sqlalchemy.ext.asyncio import AsyncSession

from service.alignment import finding_service
from service.core.errors import Conflict, Invalid, NotFoundFor
from service.core.pagination import PageRequest, invalid_cursor, paginate
from service.core.permissions import Action, Principal
from service.event_logs import repository
from service.event_logs.constants import LogStatus
from service.event_logs.errors import RESOURCE, hidden_from_partners
from service.event_logs.keys import derive_key
from service.event_logs.models import EventLog
from service.event_logs.repository import ArcRow
from service.event_logs.schemas import (
    ArcRead,
    ConformanceRead,
    SlowHandoff,
    Spread,
    SummaryRead,
    UnitMatch,
    UnobservedHandoff,
    UnregisteredArc,
    wait_read,
)
from service.event_logs.stats import median_ranks, nearest_rank
from service.handoffs import service as handoffs_service
from service.handoffs.constants import HandoffStatus
from service.org_units import service as org_units_service

MAX_PAUSE_STATUSES = 20


class LogNotReady(Conflict):
    code = "log_not_ready"


async def get(session: AsyncSession, principal: Principal, key: str) -> EventLog:
    principal.require(Action.handoffs_read)
    hidden_from_partners(principal, key)
    log = await repository.get_by_key(session, key)
    if log is None:
        raise NotFoundFor(RESOURCE, key)
    return log


async def get_ready(session: AsyncSession, principal: Principal, key: str) -> EventLog:
    log = await get(session, principal, key)
    if log.status != LogStatus.ready.value:
        raise LogNotReady(
            f"event log {key!r} is {log.status}; discovery needs a ready log",
            key=key,
            log_status=log.status,
        )
    return log


async def list_page(
    session: AsyncSession, principal: Principal, page: PageRequest
) -> tuple[list[EventLog], str | None]:
    principal.require(Action.handoffs_read)
    hidden_from_partners(principal, None)
    statement = repository.listing()
    return await paginate(
        session, statement, order_by=(EventLog.created_at.desc(), EventLog.id), page=page
    )


async def delete(session: AsyncSession, principal: Principal, key: str) -> None:
    """The log and its rows (an import still running stops at its next batch)."""
    principal.require(Action.events_write)
    hidden_from_partners(principal, key)
    log = await repository.get_by_key(session, key)
    if log is None:
        raise NotFoundFor(RESOURCE, key)
    await finding_service.forget_logs(session, [log.id])
    await repository.delete_rows(session, log.id)
    await session.delete(log)
    await session.flush()


def pause_list(statuses: Sequence[str] | None) -> list[str]:
    """``pause_statuses`` as given: repeated or comma-separated, blanks ignored."""
    names: list[str] = []
    for value in statuses or ():
        for part in value.split(","):
            part = part.strip()
            if part and part not in names:
                names.append(part)
    if len(names) > MAX_PAUSE_STATUSES:
        raise Invalid(
            f"at most {MAX_PAUSE_STATUSES} pause statuses", loc=("query", "pause_statuses")
        )
    return names


async def summary(
    session: AsyncSession, principal: Principal, key: str, pause_statuses: Sequence[str] = ()
) -> SummaryRead:
    log = await get_ready(session, principal, key)
    # Checked and echoed, but no figure of the summary is a wait: pauses change none of them,
    # so the figures stored when the log became ready serve every request.
    pauses = pause_list(pause_statuses)
    stats = log.discovered or await case_stats(session, log.id, log.cases)
    return SummaryRead(
        log=log.key,
        cases=log.cases,
        events=log.events,
        units=log.units,
        transfers=stats["transfers"],
        cases_with_transfer=stats["cases_with_transfer"],
        ping_pongs=stats["ping_pongs"],
        cases_with_ping_pong=stats["cases_with_ping_pong"],
        transfers_per_case=Spread(**stats["transfers_per_case"]),
        first_at=log.first_at,
        last_at=log.last_at,
        pause_statuses=pauses,
    )


def _summary_ranks(cases: int) -> tuple[int, int, int]:
    """The ranks of the median (low, high) and p90 among the cases' transfer counts."""
    low, high = median_ranks(cases)
    return low, high, nearest_rank(cases, 90)


def _figures(stats: repository.CaseStats, ranks: tuple[int, int, int]) -> dict:
    # Cases without a transfer count 0 and come first in the sorted counts.
    low, high, p90 = ranks
    at = stats.at_rank.get
    return {
        "transfers": stats.transfers,
        "cases_with_transfer": stats.cases_with_transfer,
        "ping_pongs": stats.ping_pongs,
        "cases_with_ping_pong": stats.cases_with_ping_pong,
        "transfers_per_case": {
            "median": (at(low, 0) + at(high, 0)) / 2,
            "p90": at(p90, 0),
            "max": stats.max_per_case,
        },
    }


async def case_stats(session: AsyncSession, log_id: UUID, cases: int) -> dict:
    """The summary's transfer and ping-pong figures, computed from the rows."""
    ranks = _summary_ranks(cases)
    stats = await repository.case_stats(session, log_id, cases, ranks=ranks)
    return _figures(stats, ranks)


async def discover(session: AsyncSession, log_id: UUID, cases: int) -> dict:
    """Discovery without pause statuses, once, when a log's import finishes: stores its arcs
    and returns the summary's figures (what ``EventLog.discovered`` keeps)."""
    ranks = _summary_ranks(cases)
    stats = await repository.store_discovery(session, log_id, cases, ranks)
    return _figures(stats, ranks)


def arc_read(arc: ArcRow) -> ArcRead:
    return ArcRead(
        source=arc.source,
        target=arc.target,
        count=arc.count,
        cases=arc.cases,
        ping_pongs=arc.ping_pongs,
        wait=wait_read(arc.wait_median_us, arc.wait_p90_us, arc.wait_max_us),
    )


async def handoffs(
    session: AsyncSession,
    principal: Principal,
    key: str,
    page: PageRequest,
    pause_statuses: Sequence[str] = (),
) -> tuple[list[ArcRow], str | None]:
    """Discovered arcs, most transfers first, a page at a time."""
    log = await get_ready(session, principal, key)
    pauses = pause_list(pause_statuses)
    after = _decode_arc_cursor(page.cursor) if page.cursor else None
    # A stored page starts from the cursor's arc: one the log does not hold is no place.
    if after is not None and not pauses and not await repository.has_arc(session, log.id, after):
        raise invalid_cursor()
    rows = await repository.arcs(session, log.id, pauses, limit=page.limit + 1, after=after)
    if len(rows) <= page.limit:
        return rows, None
    rows = rows[: page.limit]
    last = rows[-1]
    return rows, _encode_arc_cursor((last.count, last.source, last.target))


def _encode_arc_cursor(values: tuple[int, str, str]) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(list(values))).rstrip(b"=").decode()


def _decode_arc_cursor(cursor: str) -> tuple[int, str, str]:
    try:
        values = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError, orjson.JSONDecodeError):
        values = None
    if (
        isinstance(values, list)
        and len(values) == 3
        and isinstance(values[0], int)
        and not isinstance(values[0], bool)
        and 0 <= values[0] < 2**63
        and all(isinstance(v, str) and len(v) <= 200 and "\x00" not in v for v in values[1:])
    ):
        return values[0], values[1], values[2]
    raise invalid_cursor()


async def conformance(
    session: AsyncSession,
    principal: Principal,
    key: str,
    pause_statuses: Sequence[str] = (),
    limit: int = 50,
) -> ConformanceRead:
    """The log against the registry (SCORING.md): unregistered arcs, unobserved handoffs,
    and handoffs slower at p90 than their expected_within."""
    log = await get_ready(session, principal, key)
    pauses = pause_list(pause_statuses)
    names = await repository.unit_names(session, log.id, log.units)
    adopted = log.mapping.get("units", {})
    derived = {name: adopted.get(name) or derive_key(name) for name in names}
    ids = await org_units_service.ids_for_keys(session, set(derived.values()))
    unit_of = {name: ids.get(k) for name, k in derived.items()}
    key_of = {unit_id: k for k, unit_id in ids.items()}
    in_log = {unit_id for unit_id in unit_of.values() if unit_id is not None}
    registered = {
        (h.from_unit_id, h.to_unit_id): h
        for h in await handoffs_service.list_by_unit_ids(
            session, principal, sorted(in_log), side="from"
        )
        if h.to_unit_id in in_log and h.status == HandoffStatus.active.value
    }
    if pauses:
        arcs = await repository.arcs(session, log.id, pauses)  # computed: all of them
        total = len(arcs)
    else:
        # Stored: the registered arcs by their names, then the head of the listing, which
        # holds the first `limit` unregistered ones, however many arcs the log has.
        names_of: dict[UUID, list[str]] = {}
        for name, unit_id in unit_of.items():
            if unit_id is not None:
                names_of.setdefault(unit_id, []).append(name)
        pairs = [
            (source, target)
            for a, b in registered
            for source in names_of[a]
            for target in names_of[b]
        ]
        between = await repository.stored_arcs_between(session, log.id, pairs)
        head = await repository.arcs(session, log.id, (), limit=limit + len(between))
        known = {(arc.source, arc.target) for arc in between}
        arcs = between + [arc for arc in head if (arc.source, arc.target) not in known]
        total = await repository.stored_arc_count(session, log.id)
    unregistered: list[UnregisteredArc] = []
    observed: dict[tuple[UUID, UUID], ArcRow] = {}
    observed_arcs = 0
    for arc in arcs:
        pair = (unit_of.get(arc.source), unit_of.get(arc.target))
        if None not in pair and pair in registered:
            observed[pair] = arc  # type: ignore[index]
            observed_arcs += 1
            continue
        if len(unregistered) < limit:
            unregistered.append(
                UnregisteredArc(
                    **arc_read(arc).model_dump(),
                    from_unit=key_of.get(pair[0]) if pair[0] else None,  # type: ignore[arg-type]
                    to_unit=key_of.get(pair[1]) if pair[1] else None,  # type: ignore[arg-type]
                )
            )
    unobserved = [
        UnobservedHandoff(handoff=h.key, from_unit=key_of[a], to_unit=key_of[b])
        for (a, b), h in sorted(registered.items(), key=lambda item: item[1].key)
        if (a, b) not in observed
    ]
    timing = [
        SlowHandoff(
            handoff=h.key,
            source=observed[pair].source,
            target=observed[pair].target,
            count=observed[pair].count,
            p90=timedelta(microseconds=observed[pair].wait_p90_us),
            expected_within=h.expected_within,
        )
        for pair, h in sorted(registered.items(), key=lambda item: item[1].key)
        if pair in observed
        and h.expected_within is not None
        and timedelta(microseconds=observed[pair].wait_p90_us) > h.expected_within
    ]
    return ConformanceRead(
        log=log.key,
        units=[
            UnitMatch(name=name, key=derived[name], unit=derived[name] if unit_of[name] else None)
            for name in names
        ],
        unregistered=unregistered,
        unregistered_total=total - observed_arcs,
        unobserved=unobserved,
        timing=timing,
        pause_statuses=pauses,
    )
