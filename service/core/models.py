"""Columns every table shares, and helpers for declaring constraints."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from enum import StrEnum
from uuid import UUID, uuid4

from sqlalchemy import CheckConstraint
from sqlmodel import Field, SQLModel

from service.core.db import metadata
from service.core.types import UTCDateTime, utcnow

# Tables are declared on this metadata, so its naming convention names every constraint.
assert SQLModel.metadata is metadata


class IdMixin(SQLModel):
    id: UUID = Field(default_factory=uuid4, primary_key=True)


class TimestampMixin(SQLModel):
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)


class VersionMixin(SQLModel):
    """Bumped on every change; the ETag of the resource."""

    version: int = Field(default=1, nullable=False)


def one_of(column: str, values: type[StrEnum] | Iterable[str], *, name: str | None = None):
    allowed = [v.value if isinstance(v, StrEnum) else v for v in values]
    listed = ", ".join(f"'{v}'" for v in allowed)
    return CheckConstraint(f"{column} IN ({listed})", name=name or column)


def between(column: str, low: float, high: float, *, name: str | None = None, nullable=True):
    condition = f"{column} >= {low} AND {column} <= {high}"
    if nullable:
        condition = f"{column} IS NULL OR ({condition})"
    return CheckConstraint(condition, name=name or f"{column}_range")
