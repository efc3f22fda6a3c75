from __future__ import annotations

from datetime import datetime
from uuid import UUID

from pydantic import Field, ValidationInfo, field_validator

from service.core.fields import (
    DurationRead,
    ExternalId,
    InputModel,
    IsoDuration,
    Key,
    Label,
    Name,
    ReadModel,
    Text,
    Timestamp,
)
from service.journeys.constants import SCALE_RANGES, FeedbackScale

MAX_STAGES = 50


# Journeys ----------------------------------------------------------------------------------


class JourneyCreate(InputModel):
    key: Key
    name: Name
    segment: Name | None = Field(default=None, description="The customer segment it is for.")
    stages: list[Name] = Field(
        min_length=1,
        max_length=MAX_STAGES,
        description="The stages in the order the customer goes through them; names are unique.",
    )

    @field_validator("stages")
    @classmethod
    def _distinct_stages(cls, stages: list[str]) -> list[str]:
        repeated = sorted({stage for stage in stages if stages.count(stage) > 1})
        if repeated:
            raise ValueError(f"stage names must be unique; repeated: {', '.join(repeated)}")
        return stages


class JourneyUpdate(InputModel):
    """A JSON merge patch: send only what changes; null clears a nullable field.

    ``stages`` is replaced as a whole; a stage that touchpoints use cannot be removed."""

    name: Name | None = None
    segment: Name | None = None
    stages: list[Name] | None = None


class JourneyRead(ReadModel):
    id: UUID
    key: str
    name: str
    segment: str | None
    stages: list[str]
    version: int
    created_at: datetime
    updated_at: datetime


# Touchpoints -------------------------------------------------------------------------------


class TouchpointCreate(InputModel):
    key: Key
    journey: Key = Field(description="The journey it belongs to.")
    stage: Name = Field(description="One of the journey's stages.")
    name: Name
    channel: Label | None = Field(default=None, description="Such as phone, branch, app, web.")
    owner: Key = Field(description="The unit that owns it (ring 1: customer-facing).")
    moment_of_truth: bool = Field(default=False, description="The customer may walk away here.")
    driver_weight: float = Field(
        default=0.0,
        ge=0,
        le=1,
        description="How strongly satisfaction here moves loyalty (0–1), as declared.",
    )
    promise_within: IsoDuration | None = Field(
        default=None, description="What the customer is promised, such as P2D; or null."
    )


class TouchpointUpdate(InputModel):
    """A JSON merge patch: send only what changes; null clears a nullable field."""

    journey: Key | None = None
    stage: Name | None = None
    name: Name | None = None
    channel: Label | None = None
    owner: Key | None = None
    moment_of_truth: bool | None = None
    driver_weight: float | None = Field(default=None, ge=0, le=1)
    promise_within: IsoDuration | None = None


class TouchpointRead(ReadModel):
    id: UUID
    key: str
    journey: str
    stage: str
    name: str
    channel: str | None
    owner: str
    moment_of_truth: bool
    driver_weight: float
    promise_within: DurationRead | None
    version: int
    created_at: datetime
    updated_at: datetime


# Feedback ----------------------------------------------------------------------------------


class FeedbackUpsert(InputModel):
    at: Timestamp = Field(description="When the customer gave it.")
    scale: FeedbackScale = Field(
        description="csat (1–5), ces (1–7, lower means less effort) or nps (0–10)."
    )
    score: float = Field(ge=0, le=10, description="The rating, within the scale's range.")
    loyalty: float | None = Field(
        default=None, ge=0, le=10, description="Likelihood to stay or recommend, 0–10."
    )
    case_ref: ExternalId | None = Field(
        default=None, description="The customer case it belongs to."
    )
    comment: Text | None = None

    @field_validator("score")
    @classmethod
    def _within_scale(cls, score: float, info: ValidationInfo) -> float:
        scale = info.data.get("scale")
        if scale is None:  # the scale itself is invalid and reported on its own
            return score
        low, high = SCALE_RANGES[scale]
        if not low <= score <= high:
            raise ValueError(f"a {scale.value} score lies between {low} and {high}")
        return score


class BulkFeedbackItem(FeedbackUpsert):
    touchpoint: Key
    external_id: ExternalId


class FeedbackRead(ReadModel):
    id: UUID
    touchpoint: str
    external_id: str
    at: datetime
    scale: FeedbackScale
    score: float
    loyalty: float | None
    case_ref: str | None
    comment: str | None
    created_at: datetime
    updated_at: datetime
