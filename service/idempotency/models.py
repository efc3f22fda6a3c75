from __future__ import annotations

from datetime import datetime
from uuid import UUID

from sqlalchemy import JSON, LargeBinary, UniqueConstraint
from sqlmodel import Field

from service.core.models import IdMixin
from service.core.types import UTCDateTime, utcnow


class IdempotencyRecord(IdMixin, table=True):
    """The first response to a POST carrying an ``Idempotency-Key``, replayed on retries."""

    __tablename__ = "idempotency_records"
    __table_args__ = (UniqueConstraint("api_key_id", "idempotency_key"),)

    api_key_id: UUID = Field(foreign_key="api_keys.id", ondelete="CASCADE")
    idempotency_key: str = Field(max_length=255)
    method: str = Field(max_length=8)
    path: str = Field(max_length=512)
    request_hash: str = Field(max_length=64)
    status_code: int
    response_headers: dict[str, str] = Field(default_factory=dict, sa_type=JSON)
    response_body: bytes = Field(sa_type=LargeBinary)
    created_at: datetime = Field(
        default_factory=utcnow, sa_type=UTCDateTime, nullable=False, index=True
    )
