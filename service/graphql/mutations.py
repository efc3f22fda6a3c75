"""Mutations: the same service calls as REST, each in one transaction committed before the
mutation returns. Domain errors come back with ``extensions.code``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import asdict
from datetime import date, datetime
from typing import Any, TypeVar

import strawberry
from pydantic import BaseModel, ValidationError

from service.core.errors import Invalid
from service.goals import service as goals_service
from service.goals.schemas import JointGoalCreate
from service.graphql.arguments import ExternalIdArg, KeyArg
from service.graphql.enums import Direction, FeedbackScale, GoalKind
from service.graphql.types import Ctx, Feedback, Goal, HandoffEvent, Review
from service.handoffs import service as handoffs_service
from service.handoffs.schemas import EventUpsert, ReviewCreate
from service.journeys import service as journeys_service
from service.journeys.schemas import FeedbackUpsert

MAX_BATCH = 10_000
ModelT = TypeVar("ModelT", bound=BaseModel)


def _parse(model: type[ModelT], data: dict[str, Any], *, loc: tuple[str | int, ...] = ("input",)) -> ModelT:
    """Validate with the same schema as REST; its errors become a 422-like domain error."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        errors = [{"loc": [*loc, *e["loc"]], "msg": e["msg"]} for e in exc.errors()]
        raise Invalid(errors[0]["msg"], errors=errors) from exc


def _fields(value: Any) -> dict[str, Any]:
    return {k: v for k, v in asdict(value).items() if v is not strawberry.UNSET}


@strawberry.input(description="One occurrence of a handoff (timestamps need an offset).")
class EventInput:
    started_at: datetime
    due_at: datetime | None = None
    delivered_at: datetime | None = None
    quality: int | None = None
    rework: bool = False
    customer_impact: bool = False
    case_ref: str | None = None
    note: str | None = None


@strawberry.input
class BulkEventInput(EventInput):
    handoff: str
    external_id: str


@strawberry.input
class FeedbackInput:
    at: datetime
    scale: FeedbackScale
    score: float
    loyalty: float | None = None
    case_ref: str | None = None
    comment: str | None = None


@strawberry.input
class ReviewInput:
    timeliness: int
    quality: int
    at: datetime | None = None
    period: str | None = None
    needs: str | None = None


@strawberry.input
class JointGoalInput:
    key: str
    title: str
    owner: str
    metric: str
    direction: Direction
    kind: GoalKind
    target: float | None = None
    baseline: float | None = None
    incentive_weight: float = 0.0
    period_start: date | None = None
    period_end: date | None = None
    touchpoints: list[str] = strawberry.field(default_factory=list)
    contributes_to: list[str] = strawberry.field(default_factory=list)


@strawberry.type
class EventResult:
    event: HandoffEvent
    created: bool


@strawberry.type
class FeedbackResult:
    feedback: Feedback
    created: bool


@strawberry.type
class BulkItemError:
    index: int
    loc: list[str]
    msg: str


@strawberry.type
class BulkResult:
    created: int
    updated: int
    unchanged: int
    rejected: int
    errors: list[BulkItemError]
    errors_truncated: bool


async def _one_batch(items: list[dict[str, Any]]) -> AsyncIterator[list[Any]]:
    yield items


@strawberry.type
class Mutation:
    @strawberry.mutation(description="Register one occurrence (an upsert by external id).")
    async def upsert_handoff_event(
        self, info: Ctx, handoff: KeyArg, external_id: ExternalIdArg, input: EventInput
    ) -> EventResult:
        data = _parse(EventUpsert, _fields(input))
        async with info.context.write() as session:
            event, created = await handoffs_service.upsert_event(
                session, info.context.principal, handoff, external_id, data
            )
            return EventResult(event=HandoffEvent.from_model(event), created=created)

    @strawberry.mutation(
        description="Register many occurrences. Atomic by default: any bad item and nothing is "
        "written (the error lists every bad item by index)."
    )
    async def upsert_handoff_events(
        self, info: Ctx, items: list[BulkEventInput], atomic: bool = True
    ) -> BulkResult:
        if len(items) > MAX_BATCH:
            raise Invalid(f"at most {MAX_BATCH} items per mutation; use the REST bulk endpoint")
        raw = [_fields(item) for item in items]
        async with info.context.write() as session:
            result = await handoffs_service.ingest_events(
                session, info.context.principal, _one_batch(raw), atomic=atomic,
                settings=info.context.settings,
            )
        return BulkResult(
            created=result.created,
            updated=result.updated,
            unchanged=result.unchanged,
            rejected=result.rejected,
            errors=[
                BulkItemError(index=e.index, loc=[str(p) for p in e.request_loc], msg=e.msg)
                for e in result.sorted_errors()
            ],
            errors_truncated=result.errors_truncated,
        )

    @strawberry.mutation(description="Register a customer's rating at a touchpoint.")
    async def upsert_feedback(
        self, info: Ctx, touchpoint: KeyArg, external_id: ExternalIdArg, input: FeedbackInput
    ) -> FeedbackResult:
        data = _parse(FeedbackUpsert, _fields(input))
        async with info.context.write() as session:
            row, created = await journeys_service.upsert_feedback(
                session, info.context.principal, touchpoint, external_id, data
            )
            return FeedbackResult(feedback=Feedback.from_model(row, touchpoint), created=created)

    @strawberry.mutation(description="The receiving unit's pulse on a handoff.")
    async def add_handoff_review(self, info: Ctx, handoff: KeyArg, input: ReviewInput) -> Review:
        data = _parse(ReviewCreate, _fields(input))
        async with info.context.write() as session:
            review = await handoffs_service.add_review(session, info.context.principal, handoff, data)
            return Review.from_model(review)

    @strawberry.mutation(description="Propose a joint goal on a partner agreement.")
    async def propose_joint_goal(self, info: Ctx, agreement: KeyArg, input: JointGoalInput) -> Goal:
        data = _parse(JointGoalCreate, _fields(input))
        async with info.context.write() as session:
            goal = await goals_service.propose_joint_goal(
                session, info.context.principal, agreement, data
            )
            return Goal.from_model(goal)

    @strawberry.mutation(description="Accept a proposed joint goal (writer or admin).")
    async def accept_joint_goal(self, info: Ctx, agreement: KeyArg, goal: KeyArg) -> Goal:
        async with info.context.write() as session:
            accepted = await goals_service.accept_joint_goal(
                session, info.context.principal, agreement, goal
            )
            return Goal.from_model(accepted)
