"""An imported log, and its rows as they were read."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from sqlalchemy import JSON, BigInteger, Column, Index, Text
from sqlmodel import Field, SQLModel

from service.core.models import IdMixin, TimestampMixin, one_of
from service.core.types import UTCDateTime
from service.event_logs.constants import MAX_VALUE_LENGTH, LogFormat, LogStatus


class EventLog(IdMixin, TimestampMixin, table=True):
    __tablename__ = "event_logs"
    __table_args__ = (one_of("status", LogStatus), one_of("format", LogFormat))

    key: str = Field(max_length=64, unique=True)
    name: str = Field(max_length=200)
    format: str = Field(max_length=8)
    status: str = Field(default=LogStatus.importing.value, max_length=16)
    failure_reason: str | None = Field(default=None, sa_type=Text)
    # How the file's columns (or XES attributes) were read, and the zone assumed for
    # timestamps without an offset: kept so the numbers can be traced back to the file.
    mapping: dict = Field(default_factory=dict, sa_type=JSON)
    bytes_read: int = Field(default=0, sa_type=BigInteger)
    rows_read: int = Field(default=0, sa_type=BigInteger)
    events: int = Field(default=0, sa_type=BigInteger)
    cases: int = Field(default=0, sa_type=BigInteger)
    units: int = Field(default=0, sa_type=BigInteger)
    # Transfers without pause statuses, set when the log is ready: the share of its
    # transfers an arc carries decides the unregistered-handoff finding.
    transfers: int | None = Field(default=None, sa_type=BigInteger)
    # When its arcs' findings were judged: when it became ready, or, for a log made ready
    # before findings were kept, by the findings sweep (which looks for logs without it).
    arcs_judged_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    rejected: int = Field(default=0, sa_type=BigInteger)
    # The first rejected rows: [{"line": n, "reason": "..."}]
    rejections: list = Field(default_factory=list, sa_type=JSON)
    first_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    finished_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # The summary without pause statuses, computed once when the import finishes (a log
    # never changes after that): {"transfers": ..., "transfers_per_case": {...}, ...}.
    discovered: dict | None = Field(default=None, sa_type=JSON)


class EventLogRow(SQLModel, table=True):
    """One row of the file. Times are microseconds since the Unix epoch (UTC), so waits are
    exact integer differences on SQLite and PostgreSQL alike.

    The primary key is the order discovery reads in: each case's rows by time, then by
    position in the file (unique in a log), so the window functions need no sort of their own.
    """

    __tablename__ = "event_log_rows"

    log_id: UUID = Field(foreign_key="event_logs.id", ondelete="CASCADE", primary_key=True)
    case_ref: str = Field(max_length=MAX_VALUE_LENGTH, primary_key=True)
    at_us: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    position: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    unit: str = Field(max_length=MAX_VALUE_LENGTH)
    activity: str | None = Field(default=None, max_length=MAX_VALUE_LENGTH)
    status: str | None = Field(default=None, max_length=MAX_VALUE_LENGTH)
    resource: str | None = Field(default=None, max_length=MAX_VALUE_LENGTH)


class EventLogArc(SQLModel, table=True):
    """A discovered arc without pause statuses, stored when the import finishes, so pages of
    GET /handoffs read it instead of recomputing every arc for every page. ``listing_rank``
    is its place in that listing (most transfers first, then the names in code-point order):
    a page is one range of an index, however many arcs the log holds."""

    __tablename__ = "event_log_arcs"

    log_id: UUID = Field(foreign_key="event_logs.id", ondelete="CASCADE", primary_key=True)
    src: str = Field(max_length=MAX_VALUE_LENGTH, primary_key=True)
    dst: str = Field(max_length=MAX_VALUE_LENGTH, primary_key=True)
    arc_count: int = Field(sa_type=BigInteger)
    cases: int = Field(sa_type=BigInteger)
    ping_pongs: int = Field(sa_type=BigInteger)
    wait_median_us: int = Field(sa_type=BigInteger)
    wait_p80_us: int = Field(sa_type=BigInteger)
    wait_p90_us: int = Field(sa_type=BigInteger)
    wait_max_us: int = Field(sa_type=BigInteger)
    listing_rank: int = Field(sa_type=BigInteger)


class EventLogUnit(SQLModel, table=True):
    """A unit name that takes part in a transfer of a ready log, and the registered unit key
    it maps to (the key adopt chose for it, else the derived one: keys.py). Indexed by key,
    so a change to a registered unit finds the discovered arcs it touches in every log."""

    __tablename__ = "event_log_units"

    log_id: UUID = Field(foreign_key="event_logs.id", ondelete="CASCADE", primary_key=True)
    name: str = Field(max_length=MAX_VALUE_LENGTH, primary_key=True)
    unit_key: str = Field(max_length=64, index=True)


# Listing: newest first.
Index("ix_event_logs_created_at", EventLog.created_at, EventLog.id)
# The arcs that end at a unit (the primary key finds those that start at one).
Index("ix_event_log_arcs_dst", EventLogArc.log_id, EventLogArc.dst)
Index("ix_event_log_arcs_listing_rank", EventLogArc.log_id, EventLogArc.listing_rank, unique=True)
