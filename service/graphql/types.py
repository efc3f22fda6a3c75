"""GraphQL object types. Explicit classes built with ``from_model()``; every relation is a
resolver that goes through the request's DataLoaders (so through the same scoped service
functions as REST: a partner key sees here exactly what it sees there)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import date, datetime
from typing import Any, Generic, TypeVar
from uuid import UUID

import strawberry
from sqlalchemy.ext.asyncio import AsyncSession
from strawberry.dataloader import DataLoader
from strawberry.scalars import JSON
from strawberry.types import Info

from service.alignment import conflict_service
from service.alignment.schemas import (
    CaseRead,
    ComponentRead,
    ConflictRead,
    FindingRead,
    ScoreRead,
    WindowRead,
)
from service.core.fields import format_duration
from service.core.pagination import PageRequest, encode_cursor
from service.core.types import utcnow
from service.goals import service as goals_service
from service.goals.models import Goal as GoalModel
from service.goals.models import GoalCheckIn
from service.graphql.arguments import (
    NESTED_MAX,
    After,
    AsOf,
    BucketArg,
    First,
    From,
    To,
    page,
    window,
)
from service.graphql.context import Context
from service.graphql.enums import (
    AgreementStatus,
    ConflictStatus,
    DeliveryStatus,
    Direction,
    EventStatus,
    FeedbackScale,
    FindingStatus,
    GoalKind,
    GoalStatus,
    HandoffStatus,
    MetricKind,
    ProposedBy,
)
from service.handoffs import service as handoffs_service
from service.handoffs.models import Handoff as HandoffModel
from service.handoffs.models import HandoffEvent as EventModel
from service.handoffs.models import HandoffReview
from service.handoffs.schemas import event_status
from service.journeys import service as journeys_service
from service.journeys.models import Feedback as FeedbackModel
from service.journeys.models import Journey as JourneyModel
from service.journeys.models import Touchpoint as TouchpointModel
from service.metrics.models import Metric as MetricModel
from service.org_units.constants import EXTERNAL_KINDS, UnitKind
from service.org_units.models import Unit as UnitModel
from service.partner_agreements.models import PartnerAgreement
from service.webhooks.schemas import DeliveryRead, WebhookRead

T = TypeVar("T")
Ctx = Info[Context, None]

def _id(value: UUID) -> strawberry.ID:
    return strawberry.ID(str(value))


def _duration(value) -> str | None:
    return None if value is None else format_duration(value)


@strawberry.type(description="A page of a list; pass nextCursor as `after` for the next page.")
class Page(Generic[T]):
    items: list[T]
    next_cursor: str | None


# Scores ------------------------------------------------------------------------------------------


@strawberry.type
class ScoreWindow:
    start: datetime = strawberry.field(name="from")
    end: datetime = strawberry.field(name="to")
    as_of: datetime

    @classmethod
    def from_read(cls, window_read: WindowRead) -> ScoreWindow:
        return cls(start=window_read.start, end=window_read.end, as_of=window_read.as_of)


@strawberry.type(description="One input of a score, 0–1; null with a reason when it has no data.")
class ScoreComponent:
    name: str
    value: float | None
    count: int
    weight: float | None
    reason: str | None
    extra: JSON

    @classmethod
    def from_read(cls, name: str, component: ComponentRead) -> ScoreComponent:
        return cls(
            name=name,
            value=component.value,
            count=component.count,
            weight=component.weight,
            reason=component.reason,
            extra=dict(component.model_extra or {}),
        )


@strawberry.type
class ScoreBucket:
    window: ScoreWindow
    value: float | None
    reason: str | None
    components: list[ScoreComponent]


@strawberry.type(description="What a score or a finding is about (key null for the company).")
class Subject:
    type: str
    key: str | None


@strawberry.type(description="A score (method v1), 0–100, with what it is made of.")
class Score:
    subject: Subject
    value: float | None
    reason: str | None
    method: str
    window: ScoreWindow
    components: list[ScoreComponent]
    details: JSON
    series: list[ScoreBucket] | None

    @classmethod
    def from_read(cls, read: ScoreRead) -> Score:
        dumped = read.model_dump(mode="json")
        return cls(
            subject=Subject(type=read.subject.type, key=read.subject.key),
            value=read.value,
            reason=read.reason,
            method=read.method,
            window=ScoreWindow.from_read(read.window),
            components=[ScoreComponent.from_read(n, c) for n, c in read.components.items()],
            details=dumped["details"],
            series=None
            if read.series is None
            else [
                ScoreBucket(
                    window=ScoreWindow.from_read(b.window),
                    value=b.value,
                    reason=b.reason,
                    components=[ScoreComponent.from_read(n, c) for n, c in b.components.items()],
                )
                for b in read.series
            ],
        )


async def nested_page(
    info: Ctx,
    loader: DataLoader[tuple[UUID, int], list[Any]],
    parent_id: UUID,
    request: PageRequest,
    listing: Callable[[AsyncSession], Awaitable[tuple[list[Any], str | None]]],
    cursor_of: Callable[[Any], str] = lambda row: encode_cursor([row.at, row.id]),
) -> tuple[list[Any], str | None]:
    """A page of a parent's nested list: the first page from the batched ``loader``
    (``limit + 1`` rows, so a next page shows), a later one from the parent's own
    ``listing``, which continues from the cursor ``cursor_of`` the last row (by default the
    list's order is (at, id))."""
    if request.cursor is not None:
        async with info.context.db() as session:
            return await listing(session)
    rows = await loader.load((parent_id, request.limit))
    if len(rows) <= request.limit:
        return rows, None
    rows = rows[: request.limit]
    return rows, cursor_of(rows[-1])


# Units -------------------------------------------------------------------------------------------


@strawberry.type(description="A department, team, or an outside partner, supplier, channel or alliance.")
class Unit:
    id: strawberry.ID
    key: str
    name: str
    kind: UnitKind
    external_ref: str | None
    ring: int | None = strawberry.field(
        description="Distance from the customer: 1 owns a touchpoint; null when unconnected."
    )
    version: int
    unit_id: strawberry.Private[UUID]
    parent_id: strawberry.Private[UUID | None]

    @classmethod
    def from_model(cls, unit: UnitModel) -> Unit:
        return cls(
            id=_id(unit.id),
            key=unit.key,
            name=unit.name,
            kind=unit.kind,
            external_ref=unit.external_ref,
            ring=unit.ring,
            version=unit.version,
            unit_id=unit.id,
            parent_id=unit.parent_id,
        )

    @strawberry.field(description="Outside the company: partner, supplier, channel or alliance.")
    def is_partner(self) -> bool:
        return UnitKind(self.kind) in EXTERNAL_KINDS

    @strawberry.field
    async def parent(self, info: Ctx) -> Unit | None:
        return await _unit(info, self.parent_id)

    @strawberry.field(description="Handoffs this unit provides.")
    async def handoffs_given(self, info: Ctx) -> list[Handoff]:
        return [Handoff.from_model(h) for h in await info.context.loaders.handoffs_given.load(self.unit_id)]

    @strawberry.field(description="Handoffs this unit receives.")
    async def handoffs_received(self, info: Ctx) -> list[Handoff]:
        rows = await info.context.loaders.handoffs_received.load(self.unit_id)
        return [Handoff.from_model(h) for h in rows]

    @strawberry.field(description="Touchpoints this unit owns (ring 1).")
    async def touchpoints(self, info: Ctx) -> list[Touchpoint]:
        rows = await info.context.loaders.touchpoints_by_owner.load(self.unit_id)
        return [Touchpoint.from_model(t) for t in rows]

    @strawberry.field
    async def goals(self, info: Ctx) -> list[Goal]:
        return [Goal.from_model(g) for g in await info.context.loaders.goals_by_owner.load(self.unit_id)]

    @strawberry.field(description="Partner agreements with this unit (partners only).")
    async def agreements(self, info: Ctx) -> list[Agreement]:
        rows = await info.context.loaders.agreements_by_partner.load(self.unit_id)
        return [Agreement.from_model(a) for a in rows]

    @strawberry.field(description="The partner score (partners only; a partner key: its own).")
    async def partner_score(
        self, info: Ctx, start: From = None, end: To = None, as_of: AsOf = None,
        bucket: BucketArg = None,
    ) -> Score | None:
        read = await info.context.loaders.partner_score.load(
            (self.unit_id, window(info, start, end, as_of, bucket))
        )
        return Score.from_read(read) if read else None

    @strawberry.field(description="Unit alignment U(u); null for a partner key.")
    async def score(
        self, info: Ctx, start: From = None, end: To = None, as_of: AsOf = None,
        bucket: BucketArg = None,
    ) -> Score | None:
        read = await info.context.loaders.unit_score.load(
            (self.unit_id, window(info, start, end, as_of, bucket))
        )
        return Score.from_read(read) if read else None


async def _unit(info: Ctx, unit_id: UUID | None) -> Unit | None:
    if unit_id is None:
        return None
    unit = await info.context.loaders.unit.load(unit_id)
    return Unit.from_model(unit) if unit else None


# Journeys and touchpoints --------------------------------------------------------------------------


@strawberry.type
class Journey:
    id: strawberry.ID
    key: str
    name: str
    segment: str | None
    stages: list[str]
    version: int
    journey_id: strawberry.Private[UUID]

    @classmethod
    def from_model(cls, journey: JourneyModel) -> Journey:
        return cls(
            id=_id(journey.id),
            key=journey.key,
            name=journey.name,
            segment=journey.segment,
            stages=list(journey.stages),
            version=journey.version,
            journey_id=journey.id,
        )

    @strawberry.field
    async def touchpoints(self, info: Ctx) -> list[Touchpoint]:
        rows = await info.context.loaders.touchpoints_by_journey.load(self.journey_id)
        return [Touchpoint.from_model(t) for t in rows]

    @strawberry.field(description="Journey score J(j): touchpoint scores weighted by priority.")
    async def score(
        self, info: Ctx, start: From = None, end: To = None, as_of: AsOf = None,
        bucket: BucketArg = None,
    ) -> Score | None:
        read = await info.context.loaders.journey_score.load(
            (self.journey_id, window(info, start, end, as_of, bucket))
        )
        return Score.from_read(read) if read else None


@strawberry.type(description="An upstream handoff of a touchpoint and how far it is from the owner.")
class UpstreamHandoff:
    depth: int | None = strawberry.field(
        description="1 delivers to the touchpoint's owner, 2 to a depth-1 provider, …"
    )
    handoff_id: strawberry.Private[UUID]

    @strawberry.field
    async def handoff(self, info: Ctx) -> Handoff | None:
        found = await info.context.loaders.handoff.load(self.handoff_id)
        return Handoff.from_model(found) if found else None


@strawberry.type
class Touchpoint:
    id: strawberry.ID
    key: str
    stage: str
    name: str
    channel: str | None
    moment_of_truth: bool
    driver_weight: float
    promise_within: str | None
    version: int
    touchpoint_id: strawberry.Private[UUID]
    journey_id: strawberry.Private[UUID]
    owner_id: strawberry.Private[UUID]

    @classmethod
    def from_model(cls, touchpoint: TouchpointModel) -> Touchpoint:
        return cls(
            id=_id(touchpoint.id),
            key=touchpoint.key,
            stage=touchpoint.stage,
            name=touchpoint.name,
            channel=touchpoint.channel,
            moment_of_truth=touchpoint.moment_of_truth,
            driver_weight=touchpoint.driver_weight,
            promise_within=_duration(touchpoint.promise_within),
            version=touchpoint.version,
            touchpoint_id=touchpoint.id,
            journey_id=touchpoint.journey_id,
            owner_id=touchpoint.owner_id,
        )

    @strawberry.field
    async def journey(self, info: Ctx) -> Journey | None:
        found = await info.context.loaders.journey.load(self.journey_id)
        return Journey.from_model(found) if found else None

    @strawberry.field
    async def owner(self, info: Ctx) -> Unit | None:
        return await _unit(info, self.owner_id)

    @strawberry.field(description="Handoffs serving this touchpoint, nearest the owner first.")
    async def upstream(self, info: Ctx) -> list[UpstreamHandoff]:
        rows = await info.context.loaders.upstream.load(self.touchpoint_id)
        return [UpstreamHandoff(depth=depth, handoff_id=handoff_id) for handoff_id, depth in rows]

    @strawberry.field(description="Goals that name this touchpoint.")
    async def goals(self, info: Ctx) -> list[Goal]:
        rows = await info.context.loaders.goals_by_touchpoint.load(self.touchpoint_id)
        return [Goal.from_model(g) for g in rows]

    @strawberry.field(description="Customer feedback here, newest window first page.")
    async def feedback(self, info: Ctx, first: First = None, after: After = None) -> Page[Feedback]:
        request = page(first, after, maximum=NESTED_MAX)

        async def listing(session: AsyncSession) -> tuple[list[Any], str | None]:
            _, rows, cursor = await journeys_service.list_feedback(
                session, info.context.principal, self.key, request
            )
            return rows, cursor

        rows, cursor = await nested_page(
            info, info.context.loaders.feedback, self.touchpoint_id, request, listing
        )
        return Page(items=[Feedback.from_model(f, self.key) for f in rows], next_cursor=cursor)

    @strawberry.field(description="Touchpoint score TP(t), with the driver weight used.")
    async def score(
        self, info: Ctx, start: From = None, end: To = None, as_of: AsOf = None,
        bucket: BucketArg = None,
    ) -> Score | None:
        read = await info.context.loaders.touchpoint_score.load(
            (self.touchpoint_id, window(info, start, end, as_of, bucket))
        )
        return Score.from_read(read) if read else None


@strawberry.type
class Feedback:
    id: strawberry.ID
    touchpoint: str
    external_id: str
    at: datetime
    scale: FeedbackScale
    score: float
    loyalty: float | None
    case_ref: str | None
    comment: str | None

    @classmethod
    def from_model(cls, row: FeedbackModel, touchpoint_key: str) -> Feedback:
        return cls(
            id=_id(row.id),
            touchpoint=touchpoint_key,
            external_id=row.external_id,
            at=row.at,
            scale=row.scale,
            score=row.score,
            loyalty=row.loyalty,
            case_ref=row.case_ref,
            comment=row.comment,
        )


# Handoffs ------------------------------------------------------------------------------------------


@strawberry.type
class HandoffEvent:
    id: strawberry.ID
    external_id: str
    started_at: datetime
    due_at: datetime | None = strawberry.field(
        description="Null when the handoff has no timing standard and none was given."
    )
    delivered_at: datetime | None
    quality: int | None
    rework: bool
    customer_impact: bool
    case_ref: str | None
    note: str | None
    status: EventStatus
    handoff_id: strawberry.Private[UUID]
    written_by_unit_id: strawberry.Private[UUID | None]

    @classmethod
    def from_model(cls, event: EventModel) -> HandoffEvent:
        return cls(
            id=_id(event.id),
            external_id=event.external_id,
            started_at=event.started_at,
            due_at=event.due_at,
            delivered_at=event.delivered_at,
            quality=event.quality,
            rework=event.rework,
            customer_impact=event.customer_impact,
            case_ref=event.case_ref,
            note=event.note,
            status=event_status(event.due_at, event.delivered_at, utcnow()),
            handoff_id=event.handoff_id,
            written_by_unit_id=event.written_by_unit_id,
        )

    @strawberry.field(
        description="Who wrote it: `internal`, the writing partner unit's key, or "
        "`(another unit)` for a writer the reader may not see."
    )
    async def source(self, info: Ctx) -> str:
        writer = None
        if self.written_by_unit_id is not None:
            writer = await info.context.loaders.unit.load(self.written_by_unit_id)
        return handoffs_service.event_source(self.written_by_unit_id, writer)

    @strawberry.field
    async def handoff(self, info: Ctx) -> Handoff | None:
        found = await info.context.loaders.handoff.load(self.handoff_id)
        return Handoff.from_model(found) if found else None


@strawberry.type
class Review:
    id: strawberry.ID
    at: datetime
    period: str | None
    timeliness: int
    quality: int
    needs: str | None

    @classmethod
    def from_model(cls, review: HandoffReview) -> Review:
        return cls(
            id=_id(review.id),
            at=review.at,
            period=review.period,
            timeliness=review.timeliness,
            quality=review.quality,
            needs=review.needs,
        )


@strawberry.type(description="A standing agreement that one unit delivers something to another.")
class Handoff:
    id: strawberry.ID
    key: str
    deliverable: str
    expected_within: str | None
    quality_threshold: int | None
    status: HandoffStatus
    version: int
    handoff_id: strawberry.Private[UUID]
    from_unit_id: strawberry.Private[UUID]
    to_unit_id: strawberry.Private[UUID]
    touchpoint_id: strawberry.Private[UUID | None]
    agreement_id: strawberry.Private[UUID | None]

    @classmethod
    def from_model(cls, handoff: HandoffModel) -> Handoff:
        return cls(
            id=_id(handoff.id),
            key=handoff.key,
            deliverable=handoff.deliverable,
            expected_within=_duration(handoff.expected_within),
            quality_threshold=handoff.quality_threshold,
            status=handoff.status,
            version=handoff.version,
            handoff_id=handoff.id,
            from_unit_id=handoff.from_unit_id,
            to_unit_id=handoff.to_unit_id,
            touchpoint_id=handoff.touchpoint_id,
            agreement_id=handoff.agreement_id,
        )

    @strawberry.field(description="The providing unit (null if the key may not see it).")
    async def from_unit(self, info: Ctx) -> Unit | None:
        return await _unit(info, self.from_unit_id)

    @strawberry.field(description="The receiving unit (null if the key may not see it).")
    async def to_unit(self, info: Ctx) -> Unit | None:
        return await _unit(info, self.to_unit_id)

    @strawberry.field
    async def touchpoint(self, info: Ctx) -> Touchpoint | None:
        if self.touchpoint_id is None:
            return None
        found = await info.context.loaders.touchpoint.load(self.touchpoint_id)
        return Touchpoint.from_model(found) if found else None

    @strawberry.field
    async def agreement(self, info: Ctx) -> Agreement | None:
        if self.agreement_id is None:
            return None
        found = await info.context.loaders.agreement.load(self.agreement_id)
        return Agreement.from_model(found) if found else None

    @strawberry.field(
        description="Occurrences by due date, or start for those with no due date "
        "(nested pages ≤ 100)."
    )
    async def events(
        self,
        info: Ctx,
        first: First = None,
        after: After = None,
        status: EventStatus | None = None,
    ) -> Page[HandoffEvent]:
        request = page(first, after, maximum=NESTED_MAX)
        if request.cursor is None:
            rows = await info.context.loaders.events.load((self.handoff_id, request.limit, status))
            more = len(rows) > request.limit
            rows = rows[: request.limit]
            cursor = None
            if more:
                cursor = encode_cursor([rows[-1].placed_at, rows[-1].id])
            return Page(items=[HandoffEvent.from_model(e) for e in rows], next_cursor=cursor)
        async with info.context.db() as session:
            _, rows, cursor = await handoffs_service.list_events(
                session, info.context.principal, self.key, request, status=status
            )
        return Page(items=[HandoffEvent.from_model(e) for e in rows], next_cursor=cursor)

    @strawberry.field(description="The recipient's reviews.")
    async def reviews(self, info: Ctx, first: First = None, after: After = None) -> Page[Review]:
        request = page(first, after, maximum=NESTED_MAX)
        rows, cursor = await nested_page(
            info,
            info.context.loaders.reviews,
            self.handoff_id,
            request,
            lambda s: handoffs_service.list_reviews(s, info.context.principal, self.key, request),
        )
        return Page(items=[Review.from_model(r) for r in rows], next_cursor=cursor)

    @strawberry.field(description="Handoff health H(h).")
    async def score(
        self, info: Ctx, start: From = None, end: To = None, as_of: AsOf = None,
        bucket: BucketArg = None,
    ) -> Score | None:
        read = await info.context.loaders.handoff_score.load(
            (self.handoff_id, window(info, start, end, as_of, bucket))
        )
        return Score.from_read(read) if read else None


# Goals, metrics, agreements ------------------------------------------------------------------------


@strawberry.type
class Metric:
    id: strawberry.ID
    key: str
    name: str
    unit: str | None
    kind: MetricKind

    @classmethod
    def from_model(cls, metric: MetricModel) -> Metric:
        return cls(id=_id(metric.id), key=metric.key, name=metric.name, unit=metric.unit, kind=metric.kind)


@strawberry.type
class CheckIn:
    at: datetime
    value: float
    note: str | None

    @classmethod
    def from_model(cls, row: GoalCheckIn) -> CheckIn:
        return cls(at=row.at, value=row.value, note=row.note)


@strawberry.type
class Goal:
    id: strawberry.ID
    key: str
    title: str
    direction: Direction
    target: float | None
    baseline: float | None
    kind: GoalKind
    incentive_weight: float
    period_start: date | None
    period_end: date | None
    status: GoalStatus
    proposed_by: ProposedBy
    accepted_at: datetime | None
    version: int
    goal_id: strawberry.Private[UUID]
    owner_id: strawberry.Private[UUID]
    metric_id: strawberry.Private[UUID]
    agreement_id: strawberry.Private[UUID | None]

    @classmethod
    def from_model(cls, goal: GoalModel) -> Goal:
        return cls(
            id=_id(goal.id),
            key=goal.key,
            title=goal.title,
            direction=goal.direction,
            target=goal.target,
            baseline=goal.baseline,
            kind=goal.kind,
            incentive_weight=goal.incentive_weight,
            period_start=goal.period_start,
            period_end=goal.period_end,
            status=goal.status,
            proposed_by=goal.proposed_by,
            accepted_at=goal.accepted_at,
            version=goal.version,
            goal_id=goal.id,
            owner_id=goal.owner_id,
            metric_id=goal.metric_id,
            agreement_id=goal.agreement_id,
        )

    @strawberry.field
    async def owner(self, info: Ctx) -> Unit | None:
        return await _unit(info, self.owner_id)

    @strawberry.field
    async def metric(self, info: Ctx) -> Metric | None:
        found = await info.context.loaders.metric.load(self.metric_id)
        return Metric.from_model(found) if found else None

    @strawberry.field
    async def touchpoints(self, info: Ctx) -> list[Touchpoint]:
        ids = await info.context.loaders.goal_touchpoint_ids.load(self.goal_id)
        found = await info.context.loaders.touchpoint.load_many(ids)
        return [Touchpoint.from_model(t) for t in found if t]

    @strawberry.field(description="Goals this one is a means toward.")
    async def contributes_to(self, info: Ctx) -> list[Goal]:
        ids = await info.context.loaders.goal_contribution_ids.load(self.goal_id)
        found = await info.context.loaders.goal.load_many(ids)
        return [Goal.from_model(g) for g in found if g]

    @strawberry.field
    async def agreement(self, info: Ctx) -> Agreement | None:
        if self.agreement_id is None:
            return None
        found = await info.context.loaders.agreement.load(self.agreement_id)
        return Agreement.from_model(found) if found else None

    @strawberry.field(description="Dueling-goal conflicts this goal is part of, most severe first.")
    async def conflicts(
        self, info: Ctx, first: First = None, after: After = None
    ) -> Page[Conflict]:
        request = page(first, after, maximum=NESTED_MAX)
        rows, cursor = await nested_page(
            info,
            info.context.loaders.conflicts,
            self.goal_id,
            request,
            lambda s: conflict_service.list_conflicts(
                s, info.context.principal, request, goal_id=self.goal_id
            ),
            cursor_of=conflict_service.conflict_cursor,
        )
        return Page(items=[Conflict.from_read(c) for c in rows], next_cursor=cursor)

    @strawberry.field
    async def check_ins(self, info: Ctx, first: First = None, after: After = None) -> Page[CheckIn]:
        request = page(first, after, maximum=NESTED_MAX)
        rows, cursor = await nested_page(
            info,
            info.context.loaders.check_ins,
            self.goal_id,
            request,
            lambda s: goals_service.list_check_ins(s, info.context.principal, self.key, request),
        )
        return Page(items=[CheckIn.from_model(r) for r in rows], next_cursor=cursor)


@strawberry.type(description="An agreement with a partner, supplier, channel or alliance.")
class Agreement:
    id: strawberry.ID
    key: str
    title: str
    status: AgreementStatus
    starts_on: date
    ends_on: date | None
    terms: str | None
    agreement_id: strawberry.Private[UUID]
    partner_id: strawberry.Private[UUID]
    internal_owner_id: strawberry.Private[UUID]

    @classmethod
    def from_model(cls, agreement: PartnerAgreement) -> Agreement:
        return cls(
            id=_id(agreement.id),
            key=agreement.key,
            title=agreement.title,
            status=agreement.status,
            starts_on=agreement.starts_on,
            ends_on=agreement.ends_on,
            terms=agreement.terms,
            agreement_id=agreement.id,
            partner_id=agreement.partner_id,
            internal_owner_id=agreement.internal_owner_id,
        )

    @strawberry.field
    async def partner(self, info: Ctx) -> Unit | None:
        return await _unit(info, self.partner_id)

    @strawberry.field
    async def internal_owner(self, info: Ctx) -> Unit | None:
        return await _unit(info, self.internal_owner_id)

    @strawberry.field(description="Goals proposed or accepted on this agreement.")
    async def joint_goals(self, info: Ctx) -> list[Goal]:
        rows = await info.context.loaders.goals_by_agreement.load(self.agreement_id)
        return [Goal.from_model(g) for g in rows]


# Conflicts, findings, cases ------------------------------------------------------------------------


@strawberry.type
class ConflictGoal:
    key: str
    owner: str
    metric: str
    direction: Direction
    incentive_weight: float


@strawberry.type(description="Two goals of different owners that pull against each other.")
class Conflict:
    id: strawberry.ID
    goals: list[ConflictGoal]
    metric_path: list[str]
    effect: int
    severity: int
    reasons: list[str]
    shared_touchpoints: list[str]
    status: ConflictStatus
    resolution_note: str | None
    resolved_at: datetime | None
    detected_at: datetime

    @classmethod
    def from_read(cls, read: ConflictRead) -> Conflict:
        return cls(
            id=_id(read.id),
            goals=[
                ConflictGoal(
                    key=g.key,
                    owner=g.owner,
                    metric=g.metric,
                    direction=g.direction,
                    incentive_weight=g.incentive_weight,
                )
                for g in read.goals
            ],
            metric_path=read.metric_path,
            effect=read.effect,
            severity=read.severity,
            reasons=read.reasons,
            shared_touchpoints=read.shared_touchpoints,
            status=read.status.value,
            resolution_note=read.resolution_note,
            resolved_at=read.resolved_at,
            detected_at=read.detected_at,
        )


@strawberry.type(description="A goal-silo gotcha, explained, with its remedy.")
class Finding:
    id: strawberry.ID
    rule: str
    severity: int
    subject: Subject
    explanation: str
    remedy: str
    evidence: JSON
    status: FindingStatus
    opened_at: datetime
    cleared_at: datetime | None

    @classmethod
    def from_read(cls, read: FindingRead) -> Finding:
        return cls(
            id=strawberry.ID(str(read.id)),
            status=read.status.value,
            opened_at=read.opened_at,
            cleared_at=read.cleared_at,
            rule=read.rule,
            severity=read.severity,
            subject=Subject(type=read.subject.type, key=read.subject.key),
            explanation=read.explanation,
            remedy=read.remedy,
            evidence=read.model_dump(mode="json")["evidence"],
        )


@strawberry.type
class CaseStep:
    index: int
    visible: bool
    handoff: str | None
    external_id: str | None
    from_unit: str | None
    to_unit: str | None
    started_at: datetime
    due_at: datetime | None
    delivered_at: datetime | None
    wait_before: str | None
    late_by: str | None
    quality: int | None
    rework: bool | None
    customer_impact: bool | None
    note: str | None


@strawberry.type(description="A customer's path across silos.")
class Case:
    case_ref: str
    steps: list[CaseStep]
    path: list[str]
    transfers: int
    ping_pongs: int
    ping_pong_units: list[list[str]]
    elapsed: str | None
    open_steps: int

    @classmethod
    def from_read(cls, read: CaseRead) -> Case:
        return cls(
            case_ref=read.case_ref,
            steps=[
                CaseStep(
                    **{
                        **step.model_dump(exclude={"wait_before", "late_by"}),
                        "wait_before": _duration(step.wait_before),
                        "late_by": _duration(step.late_by),
                    }
                )
                for step in read.steps
            ],
            path=read.path,
            transfers=read.transfers,
            ping_pongs=read.ping_pongs,
            ping_pong_units=read.ping_pong_units,
            elapsed=_duration(read.elapsed),
            open_steps=read.open_steps,
        )


# Webhooks --------------------------------------------------------------------------------------


@strawberry.type(description="A webhook subscription (its secret is never shown again).")
class Webhook:
    id: strawberry.ID
    url: str
    event_types: list[str] | None
    description: str
    enabled: bool
    health_below: float
    disabled_reason: str | None
    partner: str | None
    failing_since: datetime | None
    created_at: datetime

    @classmethod
    def from_read(cls, read: WebhookRead) -> Webhook:
        return cls(
            id=strawberry.ID(str(read.id)),
            url=read.url,
            event_types=None if read.event_types is None else [t.value for t in read.event_types],
            description=read.description,
            enabled=read.enabled,
            health_below=read.health_below,
            disabled_reason=read.disabled_reason,
            partner=read.partner,
            failing_since=read.failing_since,
            created_at=read.created_at,
        )


@strawberry.type(description="One event's delivery to one subscription, and its last attempt.")
class WebhookDelivery:
    id: strawberry.ID
    message_id: str
    type: str
    status: DeliveryStatus
    attempts: int
    next_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    delivered_at: datetime | None
    created_at: datetime

    @classmethod
    def from_read(cls, read: DeliveryRead) -> WebhookDelivery:
        return cls(
            id=strawberry.ID(str(read.id)),
            message_id=read.message_id,
            type=read.type.value,
            status=read.status.value,
            attempts=read.attempts,
            next_attempt_at=read.next_attempt_at,
            last_status_code=read.last_status_code,
            last_error=read.last_error,
            delivered_at=read.delivered_at,
            created_at=read.created_at,
        )
