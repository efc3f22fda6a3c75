from __future__ import annotations

from datetime import datetime
from uuid import UUID

from pydantic import Field

from service.core.fields import InputModel, Key, Name, ReadModel
from service.org_units.constants import UnitKind


class UnitCreate(InputModel):
    key: Key
    name: Name
    kind: UnitKind
    parent: Key | None = Field(default=None, description="Key of the parent unit in the org chart.")
    external_ref: Name | None = Field(default=None, description="The unit's id in the HR system.")


class UnitUpdate(InputModel):
    """A JSON merge patch: send only what changes; null clears a nullable field."""

    name: Name | None = None
    kind: UnitKind | None = None
    parent: Key | None = None
    external_ref: Name | None = None


class UnitRead(ReadModel):
    id: UUID
    key: str
    name: str
    kind: UnitKind
    parent: str | None
    external_ref: str | None
    ring: int | None = Field(
        description="Distance from the customer: 1 owns a touchpoint; n+1 hands work to ring n; "
        "null when no chain of handoffs reaches a touchpoint owner."
    )
    version: int
    created_at: datetime
    updated_at: datetime
