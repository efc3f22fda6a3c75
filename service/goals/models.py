from __future__ import annotations

from datetime import date, datetime
from uuid import UUID

from sqlalchemy import CheckConstraint, Index
from sqlmodel import Field, SQLModel

from service.core.models import IdMixin, TimestampMixin, VersionMixin, one_of
from service.core.types import UTCDateTime, utcnow
from service.goals.constants import Direction, GoalKind, GoalStatus, ProposedBy


class Goal(IdMixin, TimestampMixin, VersionMixin, table=True):
    __tablename__ = "goals"
    __table_args__ = (
        one_of("direction", Direction),
        one_of("kind", GoalKind),
        one_of("status", GoalStatus),
        one_of("proposed_by", ProposedBy),
        CheckConstraint("incentive_weight >= 0", name="incentive_weight"),
        CheckConstraint(
            "period_start IS NULL OR period_end IS NULL OR period_start <= period_end",
            name="period_order",
        ),
    )

    key: str = Field(max_length=64, unique=True)
    title: str = Field(max_length=200)
    owner_id: UUID = Field(foreign_key="units.id", ondelete="RESTRICT", index=True)
    metric_id: UUID = Field(foreign_key="metrics.id", ondelete="RESTRICT", index=True)
    direction: str = Field(max_length=16)
    target: float | None = Field(default=None)
    baseline: float | None = Field(default=None)
    kind: str = Field(max_length=8)
    incentive_weight: float = Field(default=0.0)
    period_start: date | None = Field(default=None)
    period_end: date | None = Field(default=None)
    agreement_id: UUID | None = Field(
        default=None, foreign_key="partner_agreements.id", ondelete="RESTRICT", index=True
    )
    status: str = Field(default=GoalStatus.active.value, max_length=16)
    proposed_by: str = Field(default=ProposedBy.internal.value, max_length=16)
    accepted_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class GoalTouchpoint(SQLModel, table=True):
    __tablename__ = "goal_touchpoints"

    goal_id: UUID = Field(foreign_key="goals.id", ondelete="CASCADE", primary_key=True)
    touchpoint_id: UUID = Field(
        foreign_key="touchpoints.id", ondelete="RESTRICT", primary_key=True, index=True
    )


class GoalContribution(SQLModel, table=True):
    """``goal_id`` contributes to ``contributes_to_id`` (a means toward an end)."""

    __tablename__ = "goal_contributions"
    __table_args__ = (CheckConstraint("goal_id <> contributes_to_id", name="not_self"),)

    goal_id: UUID = Field(foreign_key="goals.id", ondelete="CASCADE", primary_key=True)
    contributes_to_id: UUID = Field(
        foreign_key="goals.id", ondelete="RESTRICT", primary_key=True, index=True
    )


class GoalCheckIn(IdMixin, table=True):
    __tablename__ = "goal_check_ins"
    __table_args__ = (Index("ix_goal_check_ins_goal_id_at", "goal_id", "at"),)

    goal_id: UUID = Field(foreign_key="goals.id", ondelete="CASCADE")
    at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    value: float
    note: str | None = Field(default=None, max_length=4000)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
