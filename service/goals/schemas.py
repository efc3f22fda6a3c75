from __future__ import annotations

from datetime import date, datetime
from uuid import UUID

from pydantic import Field, field_validator, model_validator

from service.core.fields import InputModel, Key, Name, ReadModel, Text, Timestamp
from service.goals.constants import Direction, GoalKind, GoalStatus, ProposedBy

KeyList = list[Key]


class _GoalFields(InputModel):
    title: Name
    owner: Key = Field(description="The unit that owns the goal.")
    metric: Key
    direction: Direction
    target: float | None = Field(default=None, description="The value aimed for.")
    baseline: float | None = None
    kind: GoalKind = Field(description="means (a lever) or ends (a result).")
    incentive_weight: float = Field(
        default=0.0, ge=0, le=1000, description="The share of pay or bonus riding on it; 0 = none."
    )
    period_start: date | None = Field(default=None, description="Open-ended when null.")
    period_end: date | None = Field(default=None, description="Open-ended when null.")
    touchpoints: KeyList = Field(default_factory=list, max_length=50)
    contributes_to: KeyList = Field(
        default_factory=list, max_length=50, description="Goals this one is a means toward."
    )

    @field_validator("touchpoints", "contributes_to")
    @classmethod
    def _distinct(cls, keys: list[str]) -> list[str]:
        if len(set(keys)) != len(keys):
            raise ValueError("keys must not repeat")
        return keys

    @model_validator(mode="after")
    def _period_order(self) -> _GoalFields:
        if self.period_start and self.period_end and self.period_start > self.period_end:
            raise ValueError("period_start must not be after period_end")
        return self


class GoalCreate(_GoalFields):
    key: Key
    agreement: Key | None = Field(default=None, description="The partner agreement it is joint on.")
    status: GoalStatus = GoalStatus.active


class JointGoalCreate(_GoalFields):
    """A goal proposed on a partner agreement: it starts as `proposed` until accepted."""

    key: Key = Field(
        description="A partner key's proposal is stored as `<partner unit key>.<key>` (its "
        "own key space; the whole must stay within 64 characters)."
    )


class GoalUpdate(InputModel):
    """A JSON merge patch: send only what changes; null clears a nullable field; lists
    (touchpoints, contributes_to) are replaced whole."""

    title: Name | None = None
    owner: Key | None = None
    metric: Key | None = None
    direction: Direction | None = None
    target: float | None = None
    baseline: float | None = None
    kind: GoalKind | None = None
    incentive_weight: float | None = Field(default=None, ge=0, le=1000)
    period_start: date | None = None
    period_end: date | None = None
    touchpoints: KeyList | None = Field(default=None, max_length=50)
    contributes_to: KeyList | None = Field(default=None, max_length=50)
    agreement: Key | None = None
    status: GoalStatus | None = None


class GoalRead(ReadModel):
    id: UUID
    key: str
    title: str
    owner: str | None = Field(description="Null for a caller that may not see the unit.")
    metric: str | None = Field(description="Null for a caller that may not see the metric.")
    direction: Direction
    target: float | None
    baseline: float | None
    kind: GoalKind
    incentive_weight: float
    period_start: date | None
    period_end: date | None
    touchpoints: list[str] = Field(description="Those the caller may see.")
    contributes_to: list[str] = Field(description="Those the caller may see.")
    agreement: str | None
    status: GoalStatus
    proposed_by: ProposedBy
    accepted_at: datetime | None
    version: int
    created_at: datetime
    updated_at: datetime


class CheckInCreate(InputModel):
    at: Timestamp | None = Field(default=None, description="Defaults to now.")
    value: float = Field(description="Where the metric stands: progress toward the target.")
    note: Text | None = None


class CheckInRead(ReadModel):
    id: UUID
    goal: str
    at: datetime
    value: float
    note: str | None
    created_at: datetime
