from __future__ import annotations

from datetime import datetime
from uuid import UUID

from sqlmodel import Field

from service.core.models import IdMixin, one_of
from service.core.permissions import Role
from service.core.types import UTCDateTime, utcnow


class ApiKey(IdMixin, table=True):
    __tablename__ = "api_keys"
    __table_args__ = (one_of("role", Role),)

    name: str = Field(max_length=200)
    role: str = Field(max_length=16)
    partner_unit_id: UUID | None = Field(default=None, foreign_key="units.id", ondelete="RESTRICT")
    # SHA-256 of the secret: secrets are 256-bit random, so a fast hash is enough to make a
    # stolen table useless, and lookups stay a single index probe.
    secret_hash: str = Field(max_length=64, unique=True)
    prefix: str = Field(max_length=16)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
    revoked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
