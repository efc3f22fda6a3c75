from __future__ import annotations

from datetime import datetime, timedelta

from pydantic import Field

from service.core.fields import DurationRead, InputModel, IsoDuration, Key, Name, ReadModel
from service.event_logs.constants import LogFormat, LogStatus


class Rejection(ReadModel):
    line: int = Field(description="1-based line of the file where the rejected row starts.")
    reason: str


class EventLogRead(ReadModel):
    key: str
    name: str
    format: LogFormat
    status: LogStatus = Field(
        description="importing (counts grow as it goes), ready, or failed (see failure_reason; "
        "a failed import keeps none of its rows)."
    )
    failure_reason: str | None
    mapping: dict = Field(description="Where each field was read from, and assume_tz.")
    bytes_read: int = Field(description="Bytes of the body received (compressed, if it was).")
    rows_read: int = Field(description="Rows (records) read, header excluded.")
    events: int = Field(description="Rows kept.")
    cases: int
    units: int
    rejected: int = Field(description="Rows refused: no case, unit or time, or an unreadable time.")
    rejections: list[Rejection] = Field(description="The first rejected rows, by line.")
    first_at: datetime | None
    last_at: datetime | None
    created_at: datetime
    finished_at: datetime | None


class Spread(ReadModel):
    median: float
    p90: int
    max: int


class SummaryRead(ReadModel):
    log: str
    cases: int
    events: int
    units: int
    transfers: int = Field(description="Consecutive rows of a case at different units.")
    cases_with_transfer: int
    ping_pongs: int = Field(description="A -> B -> A in a case's units, repeats collapsed.")
    cases_with_ping_pong: int
    transfers_per_case: Spread = Field(
        description="Over every case (those without a transfer count 0); nearest-rank p90."
    )
    first_at: datetime | None
    last_at: datetime | None
    pause_statuses: list[str]


class WaitRead(ReadModel):
    median: DurationRead
    p90: DurationRead
    max: DurationRead


class ArcRead(ReadModel):
    source: str = Field(serialization_alias="from", description="The unit, as named in the log.")
    target: str = Field(serialization_alias="to")
    count: int = Field(description="Transfers from `from` to `to`.")
    cases: int = Field(description="Distinct cases with such a transfer.")
    ping_pongs: int = Field(description="Ping-pongs whose first step is this arc (A -> B -> A).")
    wait: WaitRead = Field(
        description="From the row at `from` to the next row at `to`, less paused time: "
        "median, nearest-rank p90, max."
    )


def wait_read(median_us: int, p90_us: int, max_us: int) -> WaitRead:
    return WaitRead(
        median=timedelta(microseconds=median_us),
        p90=timedelta(microseconds=p90_us),
        max=timedelta(microseconds=max_us),
    )


class UnitMatch(ReadModel):
    name: str = Field(description="The unit as named in the log.")
    key: str = Field(
        description="The unit key it maps to: the one given when an arc was adopted, else its "
        "derived key (the name itself when that is a valid key)."
    )
    unit: str | None = Field(description="The registered unit with that key, if any.")


class UnregisteredArc(ArcRead):
    from_unit: str | None = Field(description="The registered unit of `from`, if any.")
    to_unit: str | None


class UnobservedHandoff(ReadModel):
    handoff: str
    from_unit: str
    to_unit: str


class SlowHandoff(ReadModel):
    handoff: str
    source: str = Field(serialization_alias="from")
    target: str = Field(serialization_alias="to")
    count: int
    p90: DurationRead = Field(description="The observed p90 wait.")
    expected_within: DurationRead


class ConformanceRead(ReadModel):
    log: str
    units: list[UnitMatch]
    unregistered: list[UnregisteredArc] = Field(
        description="Discovered arcs with no active registered handoff between their units "
        "(the hidden handoffs), most transfers first, up to `limit`."
    )
    unregistered_total: int
    unobserved: list[UnobservedHandoff] = Field(
        description="Active registered handoffs between units of the log, never observed."
    )
    timing: list[SlowHandoff] = Field(
        description="Registered handoffs whose observed p90 wait exceeds expected_within."
    )
    pause_statuses: list[str]


class AdoptRequest(InputModel):
    source: Name = Field(alias="from", description="The providing unit, as named in the log.")
    target: Name = Field(alias="to", description="The receiving unit, as named in the log.")
    key: Key = Field(description="The new handoff's key.")
    deliverable: Name | None = Field(default=None, description="Default: 'from -> to'.")
    expected_within: IsoDuration | None = Field(
        default=None,
        description="Default: the observed p80 wait, rounded up to a readable duration.",
    )
    from_unit: Key | None = Field(default=None, description="Default: the name's derived key.")
    to_unit: Key | None = Field(default=None, description="Default: the name's derived key.")


class AdoptRead(ReadModel):
    handoff: str
    from_unit: str
    to_unit: str
    created_units: list[str] = Field(description="Units this adoption created.")
    expected_within: DurationRead
    transfers: int = Field(description="Transfers of the arc: one handoff event each.")
    events_created: int
    events_unchanged: int
