from __future__ import annotations

from datetime import datetime
from uuid import UUID

from sqlalchemy import JSON, CheckConstraint, Index, Text, UniqueConstraint
from sqlmodel import Field

from service.alignment.constants import ConflictStatus, FindingStatus, SubjectType
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


class Finding(IdMixin, table=True):
    """A goal-silo gotcha (docs/method.md §9), kept with a stable id: one row per rule and
    subject, open while the rule fires, cleared when it stops, reopened (same id) if it
    fires again."""

    __tablename__ = "findings"
    __table_args__ = (
        UniqueConstraint("rule", "subject_type", "subject_id"),
        one_of("status", FindingStatus),
        one_of("subject_type", SubjectType),
        between("severity", 1, 3, nullable=False),
    )

    rule: str = Field(max_length=64)
    subject_type: str = Field(max_length=16)
    # The subject's row id (a conflict's id is also its key), and its key for display.
    subject_id: UUID = Field(index=True)
    subject_key: str = Field(max_length=200)
    severity: int
    explanation: str = Field(sa_type=Text)
    remedy: str = Field(sa_type=Text)
    evidence: dict = Field(default_factory=dict, sa_type=JSON)
    status: str = Field(default=FindingStatus.open.value, max_length=16)
    opened_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
    cleared_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)


# The listing's order within a status: most severe first, then by rule and subject.
Index(
    "ix_findings_listing",
    Finding.status,
    Finding.severity.desc(),
    Finding.rule,
    Finding.subject_key,
    Finding.id,
)
