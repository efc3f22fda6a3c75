from __future__ import annotations

from datetime import datetime
from typing import Literal
from uuid import UUID

from pydantic import Field

from service.core.fields import InputModel, Key, Label, Name, ReadModel, Text
from service.metrics.constants import MetricKind


class MetricCreate(InputModel):
    key: Key
    name: Name
    unit: Label | None = Field(default=None, description="What it is measured in: seconds, %, 1-5.")
    kind: MetricKind


class MetricUpdate(InputModel):
    """A JSON merge patch: send only what changes; null clears a nullable field."""

    name: Name | None = None
    unit: Label | None = None
    kind: MetricKind | None = None


class MetricRead(ReadModel):
    id: UUID
    key: str
    name: str
    unit: str | None
    kind: MetricKind
    version: int
    created_at: datetime
    updated_at: datetime


class MetricRelationCreate(InputModel):
    key: Key | None = Field(
        default=None, description="Defaults to '<from_metric>--<to_metric>' when that fits a key."
    )
    from_metric: Key
    to_metric: Key
    effect: Literal[1, -1] = Field(
        description="Raising from_metric tends to raise (+1) or lower (-1) to_metric."
    )
    note: Text | None = None


class MetricRelationUpdate(InputModel):
    """A JSON merge patch."""

    from_metric: Key | None = None
    to_metric: Key | None = None
    effect: Literal[1, -1] | None = None
    note: Text | None = None


class MetricRelationRead(ReadModel):
    id: UUID
    key: str
    from_metric: str
    to_metric: str
    effect: int
    note: str | None
    version: int
    created_at: datetime
    updated_at: datetime
