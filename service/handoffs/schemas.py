from __future__ import annotations

from datetime import datetime, timedelta
from uuid import UUID

from pydantic import Field, model_validator

from service.core.bulk import FastPath, FastText, FastTimestamp, instant_supported
from service.core.fields import (
    ExternalId,
    InputModel,
    IsoDuration,
    Key,
    Label,
    Name,
    Rating,
    ReadModel,
    Text,
    Timestamp,
)
from service.handoffs.constants import EventStatus, HandoffStatus


class HandoffCreate(InputModel):
    key: Key
    from_unit: Key = Field(description="The providing unit.")
    to_unit: Key = Field(description="The receiving unit (the internal customer).")
    deliverable: Name
    touchpoint: Key | None = Field(
        default=None, description="The touchpoint this handoff ultimately serves (its context)."
    )
    expected_within: IsoDuration | None = Field(
        default=None, description="The timing standard: due this long after the start."
    )
    quality_threshold: Rating | None = Field(
        default=None, description="The lowest acceptable quality rating (1–5)."
    )
    agreement: Key | None = Field(default=None, description="The partner agreement covering it.")
    status: HandoffStatus = HandoffStatus.active

    @model_validator(mode="after")
    def _distinct_units(self) -> HandoffCreate:
        if self.from_unit == self.to_unit:
            raise ValueError("from_unit and to_unit must be different units")
        return self


class HandoffUpdate(InputModel):
    """A JSON merge patch: send only what changes; null clears a nullable field."""

    from_unit: Key | None = None
    to_unit: Key | None = None
    deliverable: Name | None = None
    touchpoint: Key | None = None
    expected_within: IsoDuration | None = None
    quality_threshold: Rating | None = None
    agreement: Key | None = None
    status: HandoffStatus | None = None


class HandoffRead(ReadModel):
    id: UUID
    key: str
    from_unit: str | None = Field(description="Null for a caller that may not see the unit.")
    to_unit: str | None = Field(description="Null for a caller that may not see the unit.")
    deliverable: str
    touchpoint: str | None
    expected_within: IsoDuration | None
    quality_threshold: int | None
    agreement: str | None
    status: HandoffStatus
    version: int
    created_at: datetime
    updated_at: datetime


class EventUpsert(InputModel):
    started_at: Timestamp
    due_at: Timestamp | None = Field(
        default=None,
        description="Defaults to started_at + the handoff's expected_within. Without either, "
        "the event has no due time: it counts in quality, rework, buffering and cycle time, "
        "never in timeliness, and belongs to a score's window by its started_at.",
    )
    delivered_at: Timestamp | None = None
    quality: Rating | None = Field(default=None, description="The recipient's rating, 1–5.")
    rework: bool = Field(default=False, description="The delivery had to be redone.")
    customer_impact: bool = Field(
        default=False, description="The customer noticed (front-line staff had to buffer it)."
    )
    case_ref: ExternalId | None = Field(
        default=None, description="The customer case this occurrence belongs to."
    )
    note: Text | None = None

    @model_validator(mode="after")
    def _ordered(self) -> EventUpsert:
        if self.delivered_at is not None and self.delivered_at < self.started_at:
            raise ValueError("delivered_at must not be before started_at")
        if self.due_at is not None and self.due_at < self.started_at:
            raise ValueError("due_at must not be before started_at")
        return self


class BulkEventItem(EventUpsert):
    handoff: Key
    external_id: ExternalId


class FastBulkEventItem(InputModel):
    """``BulkEventItem``'s fast path (``core.bulk.FastPath``): the same fields and values,
    validated by pydantic-core alone; ``fast_event_check`` adds the rest of its rules."""

    handoff: Key
    external_id: ExternalId
    started_at: FastTimestamp
    due_at: FastTimestamp | None = None
    delivered_at: FastTimestamp | None = None
    quality: Rating | None = None
    rework: bool = False
    customer_impact: bool = False
    case_ref: ExternalId | None = None
    note: FastText | None = None


def fast_event_check(item: FastBulkEventItem) -> bool:
    """``Timestamp``'s range and ``EventUpsert._ordered``, for a fast-path item."""
    started, due, delivered = item.started_at, item.due_at, item.delivered_at
    return (
        instant_supported(started)
        and instant_supported(due)
        and instant_supported(delivered)
        and (due is None or due >= started)
        and (delivered is None or delivered >= started)
    )


FAST_BULK_EVENT = FastPath(schema=FastBulkEventItem, check=fast_event_check)


class EventRead(ReadModel):
    id: UUID
    handoff: str
    external_id: str
    started_at: datetime
    due_at: datetime | None = Field(
        description="Null when the handoff has no timing standard and none was given."
    )
    delivered_at: datetime | None
    quality: int | None
    rework: bool
    customer_impact: bool
    case_ref: str | None
    note: str | None
    source: str = Field(
        description="Who wrote it: `internal` (the company), the key of the partner unit "
        "whose key wrote it, or `(another unit)` for a writer the reader may not see. A "
        "partner changes only the events it wrote."
    )
    status: EventStatus = Field(description="pending, delivered or overdue, as of now.")
    created_at: datetime
    updated_at: datetime


class ReviewCreate(InputModel):
    at: Timestamp | None = Field(default=None, description="Defaults to now.")
    period: Label | None = Field(default=None, description="A label such as 2026-06.")
    timeliness: Rating
    quality: Rating
    needs: Text | None = Field(default=None, description="What the recipient needs instead.")


class ReviewRead(ReadModel):
    id: UUID
    handoff: str
    at: datetime
    period: str | None
    timeliness: int
    quality: int
    needs: str | None
    created_at: datetime


INTERNAL_SOURCE = "internal"
HIDDEN_SOURCE = "(another unit)"  # a writer the reader may not see, as case paths name it


def event_status(
    due_at: datetime | None, delivered_at: datetime | None, now: datetime
) -> EventStatus:
    """An event with no due time is never overdue: pending until delivered."""
    if delivered_at is not None:
        return EventStatus.delivered
    return EventStatus.overdue if due_at is not None and due_at <= now else EventStatus.pending


def default_due(started_at: datetime, expected_within: timedelta | None) -> datetime | None:
    return started_at + expected_within if expected_within is not None else None
