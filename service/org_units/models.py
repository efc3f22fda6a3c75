from __future__ import annotations

from uuid import UUID

from sqlmodel import Field

from service.core.models import IdMixin, TimestampMixin, VersionMixin, one_of
from service.org_units.constants import UnitKind


class Unit(IdMixin, TimestampMixin, VersionMixin, table=True):
    __tablename__ = "units"
    __table_args__ = (one_of("kind", UnitKind),)

    key: str = Field(max_length=64, unique=True)
    name: str = Field(max_length=200)
    kind: str = Field(max_length=16)
    parent_id: UUID | None = Field(default=None, foreign_key="units.id", ondelete="RESTRICT")
    external_ref: str | None = Field(default=None, max_length=200)
    # Distance from the customer; derived from touchpoints and handoffs, never written by clients.
    ring: int | None = Field(default=None)
