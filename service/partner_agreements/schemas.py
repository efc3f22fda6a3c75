from __future__ import annotations

from datetime import date, datetime
from uuid import UUID

from pydantic import Field, model_validator

from service.core.fields import InputModel, Key, Name, ReadModel, Text
from service.partner_agreements.constants import AgreementStatus


class AgreementCreate(InputModel):
    key: Key
    title: Name
    partner: Key = Field(description="A unit of kind partner, supplier, channel or alliance.")
    internal_owner: Key = Field(description="The unit that owns the relationship inside.")
    status: AgreementStatus = AgreementStatus.draft
    starts_on: date
    ends_on: date | None = None
    terms: Text | None = None

    @model_validator(mode="after")
    def _term_order(self) -> AgreementCreate:
        if self.ends_on is not None and self.ends_on < self.starts_on:
            raise ValueError("ends_on must not be before starts_on")
        return self


class AgreementUpdate(InputModel):
    """A JSON merge patch: send only what changes; null clears a nullable field."""

    title: Name | None = None
    partner: Key | None = None
    internal_owner: Key | None = None
    status: AgreementStatus | None = None
    starts_on: date | None = None
    ends_on: date | None = None
    terms: Text | None = None


class AgreementRead(ReadModel):
    id: UUID
    key: str
    title: str
    partner: str
    internal_owner: str | None = Field(description="Null for a caller that may not see the unit.")
    status: AgreementStatus
    starts_on: date
    ends_on: date | None
    terms: str | None
    version: int
    created_at: datetime
    updated_at: datetime
