from __future__ import annotations

from datetime import datetime
from uuid import UUID

from pydantic import Field

from service.core.fields import InputModel, Key, Name, ReadModel
from service.core.permissions import Role


class ApiKeyCreate(InputModel):
    name: Name
    role: Role
    partner: Key | None = Field(
        default=None, description="Required for role partner: the key of the partner unit."
    )


class ApiKeyRead(ReadModel):
    id: UUID
    name: str
    role: Role
    partner: str | None
    prefix: str = Field(description="The first characters of the secret, to tell keys apart.")
    created_at: datetime
    revoked_at: datetime | None


class ApiKeyCreated(ApiKeyRead):
    secret: str = Field(description="Shown once, never again: store it now.")
