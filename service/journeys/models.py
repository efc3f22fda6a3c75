from __future__ import annotations

from datetime import datetime, timedelta
from uuid import UUID

from sqlalchemy import JSON, Index, Text, UniqueConstraint
from sqlmodel import Field

from service.core.models import IdMixin, TimestampMixin, VersionMixin, between, one_of
from service.core.types import Duration, UTCDateTime, utcnow
from service.journeys.constants import FeedbackScale


class Journey(IdMixin, TimestampMixin, VersionMixin, table=True):
    __tablename__ = "journeys"

    key: str = Field(max_length=64, unique=True)
    name: str = Field(max_length=200)
    segment: str | None = Field(default=None, max_length=200)
    stages: list[str] = Field(default_factory=list, sa_type=JSON)


class Touchpoint(IdMixin, TimestampMixin, VersionMixin, table=True):
    __tablename__ = "touchpoints"
    __table_args__ = (between("driver_weight", 0, 1, nullable=False),)

    key: str = Field(max_length=64, unique=True)
    journey_id: UUID = Field(foreign_key="journeys.id", ondelete="RESTRICT", index=True)
    stage: str = Field(max_length=200)
    name: str = Field(max_length=200)
    channel: str | None = Field(default=None, max_length=64)
    owner_id: UUID = Field(foreign_key="units.id", ondelete="RESTRICT", index=True)
    moment_of_truth: bool = Field(default=False)
    driver_weight: float = Field(default=0.0)
    promise_within: timedelta | None = Field(default=None, sa_type=Duration)


class Feedback(IdMixin, table=True):
    """A customer's rating at a touchpoint, keyed by the survey system's id."""

    __tablename__ = "feedback"
    __table_args__ = (
        UniqueConstraint("touchpoint_id", "external_id"),
        Index("ix_feedback_touchpoint_id_at", "touchpoint_id", "at"),
        one_of("scale", FeedbackScale),
        between("score", 0, 10, nullable=False),
        between("loyalty", 0, 10),
    )

    touchpoint_id: UUID = Field(foreign_key="touchpoints.id", ondelete="RESTRICT")
    external_id: str = Field(max_length=128)
    at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    scale: str = Field(max_length=8)
    score: float
    loyalty: float | None = Field(default=None)
    case_ref: str | None = Field(default=None, max_length=128, index=True)
    comment: str | None = Field(default=None, sa_type=Text)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
