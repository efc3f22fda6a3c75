"""``eventLog(key)``: an imported log, its summary, discovered handoffs and conformance.

Each nested field is one service call (the same as REST's), through the context's lock."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated

import strawberry

from service.core.fields import format_duration
from service.event_logs import service as event_logs_service
from service.event_logs.models import EventLog as EventLogModel
from service.event_logs.repository import ArcRow
from service.graphql.arguments import After, First, page
from service.graphql.types import Ctx, Page

PauseStatuses = Annotated[
    list[str] | None,
    strawberry.argument(
        description="Statuses whose time does not count in waits (a row in one pauses the "
        "case's clock until its next row); at most 20."
    ),
]


@strawberry.type
class Wait:
    median: str
    p90: str
    max: str


@strawberry.type(description="A discovered arc A -> B: transfers between consecutive rows.")
class DiscoveredHandoff:
    source: str = strawberry.field(name="from")
    target: str = strawberry.field(name="to")
    count: int
    cases: int
    ping_pongs: int
    wait: Wait

    @classmethod
    def from_row(cls, arc: ArcRow) -> DiscoveredHandoff:
        return cls(
            source=arc.source,
            target=arc.target,
            count=arc.count,
            cases=arc.cases,
            ping_pongs=arc.ping_pongs,
            wait=Wait(
                median=_us(arc.wait_median_us), p90=_us(arc.wait_p90_us), max=_us(arc.wait_max_us)
            ),
        )


def _us(value: int) -> str:
    return format_duration(timedelta(microseconds=value))


@strawberry.type
class TransfersPerCase:
    median: float
    p90: int
    max: int


@strawberry.type
class EventLogSummary:
    cases: int
    events: int
    units: int
    transfers: int
    cases_with_transfer: int
    ping_pongs: int
    cases_with_ping_pong: int
    transfers_per_case: TransfersPerCase
    first_at: datetime | None
    last_at: datetime | None


@strawberry.type
class UnobservedHandoff:
    handoff: str
    from_unit: str
    to_unit: str


@strawberry.type
class SlowHandoff:
    handoff: str
    source: str = strawberry.field(name="from")
    target: str = strawberry.field(name="to")
    count: int
    p90: str
    expected_within: str


@strawberry.type
class Conformance:
    unregistered: list[DiscoveredHandoff]
    unregistered_total: int
    unobserved: list[UnobservedHandoff]
    timing: list[SlowHandoff]


@strawberry.type(description="An imported event log (staff keys only).")
class EventLog:
    key: str
    name: str
    format: str
    status: str
    failure_reason: str | None
    events: int
    cases: int
    units: int
    rejected: int
    first_at: datetime | None
    last_at: datetime | None

    @classmethod
    def from_model(cls, log: EventLogModel) -> EventLog:
        return cls(
            key=log.key,
            name=log.name,
            format=log.format,
            status=log.status,
            failure_reason=log.failure_reason,
            events=log.events,
            cases=log.cases,
            units=log.units,
            rejected=log.rejected,
            first_at=log.first_at,
            last_at=log.last_at,
        )

    @strawberry.field
    async def summary(self, info: Ctx, pause_statuses: PauseStatuses = None) -> EventLogSummary:
        async with info.context.db() as session:
            read = await event_logs_service.summary(
                session, info.context.principal, self.key, pause_statuses or ()
            )
        spread = read.transfers_per_case
        return EventLogSummary(
            cases=read.cases,
            events=read.events,
            units=read.units,
            transfers=read.transfers,
            cases_with_transfer=read.cases_with_transfer,
            ping_pongs=read.ping_pongs,
            cases_with_ping_pong=read.cases_with_ping_pong,
            transfers_per_case=TransfersPerCase(
                median=spread.median, p90=spread.p90, max=spread.max
            ),
            first_at=read.first_at,
            last_at=read.last_at,
        )

    @strawberry.field(description="Most transfers first.")
    async def handoffs(
        self,
        info: Ctx,
        first: First = None,
        after: After = None,
        pause_statuses: PauseStatuses = None,
    ) -> Page[DiscoveredHandoff]:
        request = page(first, after)
        async with info.context.db() as session:
            rows, cursor = await event_logs_service.handoffs(
                session, info.context.principal, self.key, request, pause_statuses or ()
            )
        return Page(items=[DiscoveredHandoff.from_row(r) for r in rows], next_cursor=cursor)

    @strawberry.field
    async def conformance(
        self, info: Ctx, first: First = None, pause_statuses: PauseStatuses = None
    ) -> Conformance:
        limit = page(first, None).limit
        async with info.context.db() as session:
            read = await event_logs_service.conformance(
                session, info.context.principal, self.key, pause_statuses or (), limit=limit
            )
        return Conformance(
            unregistered=[
                DiscoveredHandoff(
                    source=a.source,
                    target=a.target,
                    count=a.count,
                    cases=a.cases,
                    ping_pongs=a.ping_pongs,
                    wait=Wait(
                        median=format_duration(a.wait.median),
                        p90=format_duration(a.wait.p90),
                        max=format_duration(a.wait.max),
                    ),
                )
                for a in read.unregistered
            ],
            unregistered_total=read.unregistered_total,
            unobserved=[
                UnobservedHandoff(handoff=u.handoff, from_unit=u.from_unit, to_unit=u.to_unit)
                for u in read.unobserved
            ],
            timing=[
                SlowHandoff(
                    handoff=t.handoff,
                    source=t.source,
                    target=t.target,
                    count=t.count,
                    p90=format_duration(t.p90),
                    expected_within=format_duration(t.expected_within),
                )
                for t in read.timing
            ],
        )


async def event_log(info: Ctx, key: str) -> EventLog | None:
    async with info.context.db() as session:
        log = await event_logs_service.get(session, info.context.principal, key)
    return EventLog.from_model(log)
