from __future__ import annotations

from datetime import datetime, timedelta
from uuid import UUID

from sqlalchemy import CheckConstraint, Index, Text, UniqueConstraint, false, text
from sqlmodel import Field

from service.core.models import IdMixin, TimestampMixin, VersionMixin, between, one_of
from service.core.types import Duration, UTCDateTime, utcnow
from service.handoffs.constants import HandoffStatus


class Handoff(IdMixin, TimestampMixin, VersionMixin, table=True):
    """A standing agreement that one unit delivers something to another (an internal OLA)."""

    __tablename__ = "handoffs"
    __table_args__ = (
        one_of("status", HandoffStatus),
        between("quality_threshold", 1, 5),
        CheckConstraint("from_unit_id <> to_unit_id", name="distinct_units"),
    )

    key: str = Field(max_length=64, unique=True)
    from_unit_id: UUID = Field(foreign_key="units.id", ondelete="RESTRICT", index=True)
    to_unit_id: UUID = Field(foreign_key="units.id", ondelete="RESTRICT", index=True)
    deliverable: str = Field(max_length=200)
    touchpoint_id: UUID | None = Field(
        default=None, foreign_key="touchpoints.id", ondelete="RESTRICT", index=True
    )
    expected_within: timedelta | None = Field(default=None, sa_type=Duration)
    quality_threshold: int | None = Field(default=None)
    agreement_id: UUID | None = Field(
        default=None, foreign_key="partner_agreements.id", ondelete="RESTRICT", index=True
    )
    status: str = Field(default=HandoffStatus.active.value, max_length=16)


# The window is a range over placed_at; the rest are what the health aggregates count.
HEALTH_COLUMNS = (
    "handoff_id", "placed_at", "due_at", "delivered_at", "quality", "rework", "customer_impact"
)
OVERDUE_UNANNOUNCED = "delivered_at IS NULL AND overdue_notified_at IS NULL"


class HandoffEvent(IdMixin, table=True):
    """One occurrence of a handoff, keyed by the source system's id (natural idempotency)."""

    __tablename__ = "handoff_events"
    __table_args__ = (
        UniqueConstraint("handoff_id", "external_id"),
        # Covers every column the handoff health aggregates read, so scoring a page of
        # handoffs is an index-only range scan instead of a pass over the whole table.
        Index("ix_handoff_events_health", *HEALTH_COLUMNS),
        Index("ix_handoff_events_case_ref", "case_ref"),
        # The webhooks' overdue scan: only pending events not yet announced are in it, so
        # the scan costs what is newly overdue, not what the table holds.
        Index(
            "ix_handoff_events_overdue",
            "due_at",
            sqlite_where=text(OVERDUE_UNANNOUNCED),
            postgresql_where=text(OVERDUE_UNANNOUNCED),
        ),
        between("quality", 1, 5),
    )

    handoff_id: UUID = Field(foreign_key="handoffs.id", ondelete="RESTRICT")
    external_id: str = Field(max_length=128)
    started_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    # None when the handoff has no timing standard and the sender gave no due time.
    due_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # Where the event sits in time: due_at, or started_at when it has none (method §1).
    # Stored, so a window is an index range on either database; written by placement().
    placed_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    delivered_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    quality: int | None = Field(default=None)
    rework: bool = Field(default=False)
    customer_impact: bool = Field(default=False)
    case_ref: str | None = Field(default=None, max_length=128)
    note: str | None = Field(default=None, sa_type=Text)
    # Who wrote it: the partner unit of the writing key, or NULL for the company itself.
    # A partner changes only the events it wrote; internal writers change any.
    written_by_unit_id: UUID | None = Field(
        default=None, foreign_key="units.id", ondelete="RESTRICT", index=True
    )
    # True when a partner named a case_ref of a company case it takes no part in: the event
    # forms the partner's own case of that ref, apart from (and invisible in) the company's.
    case_private: bool = Field(default=False, sa_column_kwargs={"server_default": false()})
    # When handoff_event.overdue was announced (service.webhooks.handoff_alerts).
    overdue_notified_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)


def placement(started_at: datetime, due_at: datetime | None) -> datetime:
    """``placed_at`` of an event: when it was due, or when it started if it has no due time."""
    return due_at if due_at is not None else started_at


class HandoffReview(IdMixin, table=True):
    """The receiving unit's periodic pulse on a handoff: internal customer satisfaction."""

    __tablename__ = "handoff_reviews"
    __table_args__ = (
        Index("ix_handoff_reviews_handoff_id_at", "handoff_id", "at"),
        between("timeliness", 1, 5, nullable=False),
        between("quality", 1, 5, nullable=False),
    )

    handoff_id: UUID = Field(foreign_key="handoffs.id", ondelete="RESTRICT")
    at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    period: str | None = Field(default=None, max_length=64)
    timeliness: int
    quality: int
    needs: str | None = Field(default=None, sa_type=Text)
    submitted_by_key_id: UUID | None = Field(
        default=None, foreign_key="api_keys.id", ondelete="SET NULL"
    )
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
