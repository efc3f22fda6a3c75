from __future__ import annotations

from uuid import UUID

from sqlalchemy import CheckConstraint, UniqueConstraint
from sqlmodel import Field

from service.core.models import IdMixin, TimestampMixin, VersionMixin, one_of
from service.metrics.constants import MetricKind


class Metric(IdMixin, TimestampMixin, VersionMixin, table=True):
    __tablename__ = "metrics"
    __table_args__ = (one_of("kind", MetricKind),)

    key: str = Field(max_length=64, unique=True)
    name: str = Field(max_length=200)
    unit: str | None = Field(default=None, max_length=64)
    kind: str = Field(max_length=32)


class MetricRelation(IdMixin, TimestampMixin, VersionMixin, table=True):
    """A declared direct effect of one metric on another."""

    __tablename__ = "metric_relations"
    __table_args__ = (
        UniqueConstraint("from_metric_id", "to_metric_id"),
        CheckConstraint("effect IN (-1, 1)", name="effect"),
        CheckConstraint("from_metric_id <> to_metric_id", name="distinct_metrics"),
    )

    key: str = Field(max_length=64, unique=True)
    from_metric_id: UUID = Field(foreign_key="metrics.id", ondelete="RESTRICT", index=True)
    to_metric_id: UUID = Field(foreign_key="metrics.id", ondelete="RESTRICT", index=True)
    effect: int
    note: str | None = Field(default=None, max_length=4000)
