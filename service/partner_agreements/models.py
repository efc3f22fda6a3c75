from __future__ import annotations

from datetime import date
from uuid import UUID

from sqlalchemy import CheckConstraint, Text
from sqlmodel import Field

from service.core.models import IdMixin, TimestampMixin, VersionMixin, one_of
from service.partner_agreements.constants import AgreementStatus


class PartnerAgreement(IdMixin, TimestampMixin, VersionMixin, table=True):
    __tablename__ = "partner_agreements"
    __table_args__ = (
        one_of("status", AgreementStatus),
        CheckConstraint("ends_on IS NULL OR starts_on <= ends_on", name="term_order"),
    )

    key: str = Field(max_length=64, unique=True)
    title: str = Field(max_length=200)
    partner_id: UUID = Field(foreign_key="units.id", ondelete="RESTRICT", index=True)
    internal_owner_id: UUID = Field(foreign_key="units.id", ondelete="RESTRICT", index=True)
    status: str = Field(default=AgreementStatus.draft.value, max_length=16)
    starts_on: date
    ends_on: date | None = Field(default=None)
    terms: str | None = Field(default=None, sa_type=Text)
