from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from service.alignment.constants import ConflictStatus, FindingStatus
from service.core.fields import DurationRead, InputModel, ReadModel, Text


class WindowRead(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    start: datetime = Field(alias="from", serialization_alias="from")
    end: datetime = Field(alias="to", serialization_alias="to")
    as_of: datetime


class ComponentRead(BaseModel):
    """One input of a score, 0–1 (null with a reason when it has no data)."""

    model_config = ConfigDict(extra="allow")

    value: float | None
    count: int = Field(description="How many records it stands on.")
    weight: float | None = None
    reason: str | None = None


class Subject(BaseModel):
    type: str
    key: str | None = None


class BucketScore(BaseModel):
    window: WindowRead
    value: float | None
    reason: str | None = None
    components: dict[str, ComponentRead]


class ScoreRead(BaseModel):
    """A score, 0–100, always with what it is made of."""

    subject: Subject
    value: float | None = Field(description="0–100; null when nothing stands behind it.")
    reason: str | None = Field(default=None, description="Why the value is null.")
    method: str = "v1"
    window: WindowRead
    components: dict[str, ComponentRead]
    details: dict[str, Any] = Field(default_factory=dict)
    series: list[BucketScore] | None = Field(
        default=None, description="With ?bucket=: the same score for each bucket of the window."
    )


class ConflictGoal(BaseModel):
    key: str
    owner: str
    metric: str
    direction: str
    incentive_weight: float


class ConflictRead(ReadModel):
    id: UUID
    goals: list[ConflictGoal] = Field(description="The two goals that pull against each other.")
    metric_path: list[str]
    effect: int
    severity: int = Field(ge=1, le=3)
    reasons: list[str]
    shared_touchpoints: list[str]
    status: ConflictStatus
    resolution_note: str | None
    resolved_at: datetime | None
    detected_at: datetime
    updated_at: datetime


class ConflictResolve(InputModel):
    # at least one visible character: a note of spaces explains nothing
    note: Text = Field(min_length=1, pattern=r"\S", description="How the pair was reconciled.")


class FindingRead(BaseModel):
    id: UUID = Field(description="Stable: the same finding keeps it while it clears and reopens.")
    rule: str
    severity: int = Field(ge=1, le=3)
    subject: Subject
    explanation: str
    remedy: str
    evidence: dict[str, Any]
    status: FindingStatus
    opened_at: datetime = Field(description="When the rule last started to fire.")
    cleared_at: datetime | None = Field(description="When it stopped firing; null while open.")
    updated_at: datetime


class CaseStep(BaseModel):
    index: int
    visible: bool = Field(description="False for a partner looking at another unit's step.")
    handoff: str | None = None
    external_id: str | None = None
    from_unit: str | None = None
    to_unit: str | None = None
    started_at: datetime
    due_at: datetime | None = None
    delivered_at: datetime | None = None
    wait_before: DurationRead | None = Field(
        default=None, description="Time between the previous step's delivery and this start."
    )
    late_by: DurationRead | None = None
    quality: int | None = None
    rework: bool | None = None
    customer_impact: bool | None = None
    note: str | None = None


class CaseRead(BaseModel):
    case_ref: str
    steps: list[CaseStep]
    path: list[str] = Field(description="The units the case passed through, in order.")
    transfers: int = Field(description="Moves from one unit to another along the path.")
    ping_pongs: int = Field(description="Returns to a unit just left (A → B → A).")
    ping_pong_units: list[list[str]]
    elapsed: DurationRead | None = Field(
        description="From the first start to the last delivery (or now, if still open)."
    )
    open_steps: int


def seconds(value: float | None) -> timedelta | None:
    return None if value is None else timedelta(seconds=round(value, 6))
