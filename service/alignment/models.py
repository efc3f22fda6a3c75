from __future__ import annotations

from datetime import datetime
from uuid import UUID

from sqlalchemy import JSON, CheckConstraint, Index, Text, UniqueConstraint
from sqlmodel import Field

from service.alignment.constants import ConflictStatus
from service.core.models import IdMixin, between, one_of
from service.core.types import UTCDateTime, utcnow


class Conflict(IdMixin, table=True):
    """Two goals that pull against each other, kept with a stable id while the pair conflicts."""

    __tablename__ = "conflicts"
    __table_args__ = (
        UniqueConstraint("goal_a_id", "goal_b_id"),
        CheckConstraint("goal_a_id <> goal_b_id", name="distinct_goals"),
        one_of("status", ConflictStatus),
        between("severity", 1, 3, nullable=False),
    )

    goal_a_id: UUID = Field(foreign_key="goals.id", ondelete="CASCADE", index=True)
    goal_b_id: UUID = Field(foreign_key="goals.id", ondelete="CASCADE", index=True)
    # The goals' versions when the pair was last detected or resolved: a resolved pair
    # reopens when either goal changes.
    goal_a_version: int
    goal_b_version: int
    metric_path: list[str] = Field(default_factory=list, sa_type=JSON)
    effect: int
    severity: int
    reasons: list[str] = Field(default_factory=list, sa_type=JSON)
    shared_touchpoints: list[str] = Field(default_factory=list, sa_type=JSON)
    incentive_a: float
    incentive_b: float
    status: str = Field(default=ConflictStatus.open.value, max_length=16, index=True)
    resolution_note: str | None = Field(default=None, sa_type=Text)
    resolved_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    detected_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)


# The listing's order, most severe first, then oldest: one index range for every page.
Index("ix_conflicts_listing", Conflict.severity.desc(), Conflict.detected_at, Conflict.id)
