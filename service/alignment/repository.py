"""The SQL behind the scores: aggregates grouped in the database, never rows in Python.

Every aggregate takes a window and, for trends, bucket boundaries; the bucket of a row is a
CASE over those boundaries, so one GROUP BY answers a whole series on either database.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import (
    Float,
    Row,
    Select,
    and_,
    case,
    cast,
    func,
    literal_column,
    null,
    or_,
    select,
    union_all,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql import ColumnElement

from service.alignment.models import Conflict
from service.alignment.scoring import EventStats, FeedbackStats, GoalFacts, ReviewStats
from service.core.sql import in_ids, seconds_between
from service.goals.models import Goal, GoalContribution, GoalTouchpoint
from service.handoffs.models import Handoff, HandoffEvent, HandoffReview
from service.journeys.models import Feedback, Journey, Touchpoint
from service.metrics.models import Metric, MetricRelation
from service.org_units.models import Unit
from service.partner_agreements.models import PartnerAgreement


@dataclass(frozen=True)
class Window:
    start: datetime
    end: datetime
    as_of: datetime
    # Inner bucket boundaries (ascending, strictly inside the window) for a series.
    boundaries: tuple[datetime, ...] = ()


def _bucket(column: Any, window: Window) -> ColumnElement[int]:
    if not window.boundaries:
        return literal_column("0")
    whens = [(column < bound, index) for index, bound in enumerate(window.boundaries)]
    return case(*whens, else_=len(window.boundaries))


def _grouping(key: Any, bucket: Any, window: Window) -> tuple[Any, ...]:
    # Without buckets every row is bucket 0: grouping by that constant would only confuse
    # the planner.
    return (key, bucket) if window.boundaries else (key,)


def _in_window(column: Any, window: Window) -> ColumnElement[bool]:
    return and_(column >= window.start, column < window.end)


def _flag(condition: ColumnElement[bool]) -> ColumnElement[int]:
    # COUNT(*) FILTER (WHERE ...): no per-row CASE, and no bound constants for the planner.
    return func.count().filter(condition)


async def event_stats(
    session: AsyncSession, window: Window, handoff_ids: Sequence[UUID] | None = None
) -> dict[tuple[UUID, int], EventStats]:
    e = HandoffEvent
    # An event with no due time is never due (NULL <= as_of is not true): it stays out of D.
    due_by = e.due_at <= window.as_of
    delivered = e.delivered_at.is_not(None)
    bucket = _bucket(e.placed_at, window).label("bucket")
    statement = (
        select(
            e.handoff_id,
            bucket,
            func.count().label("events"),
            _flag(due_by).label("due"),
            _flag(and_(due_by, delivered, e.delivered_at <= e.due_at)).label("on_time"),
            _flag(and_(due_by, e.delivered_at.is_(None))).label("overdue"),
            _flag(e.due_at.is_(None)).label("undated"),
            _flag(delivered).label("delivered"),
            _flag(and_(delivered, e.rework.is_(True))).label("reworked"),
            func.count(e.quality).label("rated"),
            func.sum(e.quality).label("quality_total"),
            _flag(e.customer_impact.is_(True)).label("impacted"),
        )
        .where(_in_window(e.placed_at, window))
        .group_by(*_grouping(e.handoff_id, bucket, window))
    )
    if handoff_ids is not None:
        statement = statement.where(in_ids(session, e.handoff_id, handoff_ids))
    stats = {}
    for row in (await session.execute(statement)).all():
        rated = int(row.rated)
        stats[(row.handoff_id, int(row.bucket))] = EventStats(
            events=int(row.events),
            due=int(row.due),
            on_time=int(row.on_time),
            overdue=int(row.overdue),
            undated=int(row.undated),
            delivered=int(row.delivered),
            reworked=int(row.reworked),
            rated=rated,
            # Σ (quality − 1) / 4, from integer sums so the result is exact
            quality_sum=(int(row.quality_total or 0) - rated) / 4,
            customer_impact=int(row.impacted),
        )
    return stats


async def review_stats(
    session: AsyncSession, window: Window, handoff_ids: Sequence[UUID] | None = None
) -> dict[tuple[UUID, int], ReviewStats]:
    r = HandoffReview
    bucket = _bucket(r.at, window).label("bucket")
    statement = (
        select(
            r.handoff_id,
            bucket,
            func.count().label("n"),
            func.sum(r.timeliness).label("timeliness"),
            func.sum(r.quality).label("quality"),
        )
        .where(_in_window(r.at, window))
        .group_by(*_grouping(r.handoff_id, bucket, window))
    )
    if handoff_ids is not None:
        statement = statement.where(in_ids(session, r.handoff_id, handoff_ids))
    stats = {}
    for row in (await session.execute(statement)).all():
        n = int(row.n)
        # Σ ((t + q) / 2 − 1) / 4 = ((Σt + Σq) / 2 − n) / 4
        total = ((int(row.timeliness) + int(row.quality)) / 2 - n) / 4
        stats[(row.handoff_id, int(row.bucket))] = ReviewStats(count=n, satisfaction_sum=total)
    return stats


def _normalised_score() -> ColumnElement[float]:
    f = Feedback
    score = cast(f.score, Float)
    return case(
        (f.scale == "csat", (score - 1) / 4.0),
        (f.scale == "ces", (7 - score) / 6.0),
        else_=score / 10.0,
    )


async def feedback_stats(
    session: AsyncSession, window: Window, touchpoint_ids: Sequence[UUID] | None = None
) -> dict[tuple[UUID, int], FeedbackStats]:
    f = Feedback
    x = _normalised_score()
    y = cast(f.loyalty, Float)
    paired = f.loyalty.is_not(None)
    bucket = _bucket(f.at, window).label("bucket")

    def paired_sum(expression: ColumnElement[float]) -> ColumnElement[float]:
        return func.sum(case((paired, expression), else_=0.0))

    statement = (
        select(
            f.touchpoint_id,
            bucket,
            func.count().label("n"),
            func.sum(x).label("score_sum"),
            _flag(paired).label("paired"),
            paired_sum(x).label("x_sum"),
            paired_sum(y).label("y_sum"),
            paired_sum(x * x).label("xx_sum"),
            paired_sum(y * y).label("yy_sum"),
            paired_sum(x * y).label("xy_sum"),
        )
        .where(_in_window(f.at, window))
        .group_by(*_grouping(f.touchpoint_id, bucket, window))
    )
    if touchpoint_ids is not None:
        statement = statement.where(in_ids(session, f.touchpoint_id, touchpoint_ids))
    stats = {}
    for row in (await session.execute(statement)).all():
        stats[(row.touchpoint_id, int(row.bucket))] = FeedbackStats(
            count=int(row.n),
            score_sum=float(row.score_sum or 0),
            paired=int(row.paired),
            x_sum=float(row.x_sum or 0),
            y_sum=float(row.y_sum or 0),
            xx_sum=float(row.xx_sum or 0),
            yy_sum=float(row.yy_sum or 0),
            xy_sum=float(row.xy_sum or 0),
        )
    return stats


async def medians(
    session: AsyncSession, window: Window, handoff_ids: Sequence[UUID]
) -> dict[UUID, tuple[float | None, float | None]]:
    """Per handoff: median cycle time (delivered − started) and median lateness of late
    deliveries, in seconds, computed with window functions so no rows travel to Python."""
    if not handoff_ids:
        return {}
    e = HandoffEvent
    base = and_(
        in_ids(session, e.handoff_id, handoff_ids),
        _in_window(e.placed_at, window),
        e.delivered_at.is_not(None),
    )
    cycle = await _medians(session, seconds_between(e.started_at, e.delivered_at), base)
    lateness = await _medians(
        session, seconds_between(e.due_at, e.delivered_at), and_(base, e.delivered_at > e.due_at)
    )
    return {h: (cycle.get(h), lateness.get(h)) for h in handoff_ids}


async def _medians(
    session: AsyncSession, value: ColumnElement[float], condition: ColumnElement[bool]
) -> dict[UUID, float]:
    e = HandoffEvent
    ranked = (
        select(
            e.handoff_id,
            value.label("v"),
            func.row_number().over(partition_by=e.handoff_id, order_by=value).label("rn"),
            func.count().over(partition_by=e.handoff_id).label("n"),
        )
        .where(condition)
        .subquery()
    )
    middle = or_(ranked.c.rn == (ranked.c.n + 1) // 2, ranked.c.rn == (ranked.c.n + 2) // 2)
    statement = (
        select(ranked.c.handoff_id, func.avg(ranked.c.v))
        .where(middle)
        .group_by(ranked.c.handoff_id)
    )
    sqlite = (await session.connection()).dialect.name == "sqlite"
    found = {}
    for handoff_id, result in (await session.execute(statement)).all():
        # SQLite's date functions resolve whole milliseconds, and subtracting two julianday()
        # values adds floating-point noise (a 4-hour cycle came out as PT4H0.000007S).
        found[handoff_id] = round(float(result), 3) if sqlite else float(result)
    return found


# The company's structure -----------------------------------------------------------------------


async def units(session: AsyncSession) -> list[Unit]:
    return list((await session.scalars(select(Unit).order_by(Unit.key))).all())


async def handoffs(session: AsyncSession) -> list[Handoff]:
    return list((await session.scalars(select(Handoff).order_by(Handoff.key))).all())


async def touchpoints(session: AsyncSession) -> list[Touchpoint]:
    return list((await session.scalars(select(Touchpoint).order_by(Touchpoint.key))).all())


async def journeys(session: AsyncSession) -> list[Journey]:
    return list((await session.scalars(select(Journey).order_by(Journey.key))).all())


async def agreements(session: AsyncSession) -> list[PartnerAgreement]:
    statement = select(PartnerAgreement).order_by(PartnerAgreement.key)
    return list((await session.scalars(statement)).all())


async def goals(session: AsyncSession) -> list[Goal]:
    return list((await session.scalars(select(Goal).order_by(Goal.key))).all())


async def goal_links(
    session: AsyncSession,
) -> tuple[list[tuple[UUID, UUID]], list[tuple[UUID, UUID]]]:
    touchpoint_links = (
        await session.execute(select(GoalTouchpoint.goal_id, GoalTouchpoint.touchpoint_id))
    ).all()
    contributions = (
        await session.execute(select(GoalContribution.goal_id, GoalContribution.contributes_to_id))
    ).all()
    return [(a, b) for a, b in touchpoint_links], [(a, b) for a, b in contributions]


async def metrics(session: AsyncSession) -> list[Metric]:
    return list((await session.scalars(select(Metric))).all())


async def relations(session: AsyncSession) -> list[MetricRelation]:
    return list((await session.scalars(select(MetricRelation))).all())


async def conflicts(session: AsyncSession) -> list[Conflict]:
    return list((await session.scalars(select(Conflict))).all())


# Dueling goals: the neighbourhood of a change ---------------------------------------------------

DUELLING_DIRECTIONS = ("increase", "decrease")  # `maintain` goals never conflict


def _goal_rows(*conditions: ColumnElement[bool]) -> Select[Any]:
    """Goals with the keys and kind their rule facts name, in one statement: Core rows with
    attribute access, since building ORM objects for a few hundred candidates costs more
    than the query."""
    return (
        select(
            Goal.id, Goal.key, Goal.version, Goal.status, Goal.direction, Goal.kind,
            Goal.metric_id, Goal.incentive_weight, Goal.period_start, Goal.period_end,
            Unit.key.label("owner_key"), Metric.key.label("metric_key"),
            Metric.kind.label("metric_kind"), PartnerAgreement.key.label("agreement_key"),
        )
        .join(Unit, Unit.id == Goal.owner_id)
        .join(Metric, Metric.id == Goal.metric_id)
        .outerjoin(PartnerAgreement, PartnerAgreement.id == Goal.agreement_id)
        .where(*conditions)
    )


async def goal_rows_by_ids(session: AsyncSession, ids: Sequence[UUID]) -> list[Row[Any]]:
    """The goals of ``ids`` that exist, as ``_goal_rows`` (what ``goal_facts`` takes)."""
    if not ids:
        return []
    return list((await session.execute(_goal_rows(in_ids(session, Goal.id, ids)))).all())


async def goal_ids_on_metrics(session: AsyncSession, metric_ids: Sequence[UUID]) -> list[UUID]:
    statement = select(Goal.id).where(in_ids(session, Goal.metric_id, metric_ids))
    return list((await session.scalars(statement)).all())


async def goal_ids_on_touchpoint(session: AsyncSession, touchpoint_id: UUID) -> list[UUID]:
    statement = select(GoalTouchpoint.goal_id).where(GoalTouchpoint.touchpoint_id == touchpoint_id)
    return list((await session.scalars(statement)).all())


async def duel_candidates(session: AsyncSession, changed: Sequence[Row[Any]]) -> list[Row[Any]]:
    """The goals that can duel with any of ``changed`` (``_goal_rows``): active, with a
    direction, on the same metric as one of them or on a metric directly related to it, and
    sharing scope (a touchpoint, or either side names none). Found with indexed joins, never
    by loading every goal; owners and periods are left to the rule itself."""
    duelling = [g for g in changed if g.status == "active" and g.direction in DUELLING_DIRECTIONS]
    if not duelling:
        return []
    metric_ids = list({g.metric_id for g in duelling})
    r = MetricRelation
    related = select(r.to_metric_id).where(in_ids(session, r.from_metric_id, metric_ids)).union(
        select(r.from_metric_id).where(in_ids(session, r.to_metric_id, metric_ids))
    )
    conditions = [
        Goal.status == "active",
        Goal.direction.in_(DUELLING_DIRECTIONS),
        or_(in_ids(session, Goal.metric_id, metric_ids), Goal.metric_id.in_(related)),
        ~in_ids(session, Goal.id, [g.id for g in changed]),
    ]
    scoped = await touchpoint_ids_by_goal(session, [g.id for g in duelling])
    if all(scoped.get(g.id) for g in duelling):
        # Every changed goal names touchpoints: a candidate must name none, or one of them.
        touchpoint_ids = list({t for ids in scoped.values() for t in ids})
        gt = GoalTouchpoint
        names_any = select(gt.goal_id).where(gt.goal_id == Goal.id).exists()
        names_shared = (
            select(gt.goal_id)
            .where(gt.goal_id == Goal.id, in_ids(session, gt.touchpoint_id, touchpoint_ids))
            .exists()
        )
        conditions.append(or_(~names_any, names_shared))
    return list((await session.execute(_goal_rows(*conditions))).all())


async def touchpoint_ids_by_goal(
    session: AsyncSession, goal_ids: Sequence[UUID]
) -> dict[UUID, set[UUID]]:
    found: dict[UUID, set[UUID]] = {}
    if not goal_ids:
        return found
    gt = GoalTouchpoint
    statement = select(gt.goal_id, gt.touchpoint_id).where(in_ids(session, gt.goal_id, goal_ids))
    for goal_id, touchpoint_id in (await session.execute(statement)).all():
        found.setdefault(goal_id, set()).add(touchpoint_id)
    return found


async def goal_facts(
    session: AsyncSession, goals: Sequence[Row[Any]]
) -> tuple[list[GoalFacts], frozenset[str]]:
    """The rule facts of ``goals`` (``_goal_rows``, which carry their owner's, metric's and
    agreement's keys) and the moments of truth among their touchpoints: one more statement
    reads their links, the touchpoints they name and the goals they contribute to."""
    ids = [g.id for g in goals]
    if not ids:
        return [], frozenset()
    gt, c = GoalTouchpoint, GoalContribution
    # One round for both kinds of link: ``moment`` is NULL on a contribution's row.
    links = union_all(
        select(gt.goal_id, Touchpoint.key, Touchpoint.moment_of_truth.label("moment"))
        .join(Touchpoint, Touchpoint.id == gt.touchpoint_id)
        .where(in_ids(session, gt.goal_id, ids)),
        select(c.goal_id, Goal.key, null().label("moment"))
        .join(Goal, Goal.id == c.contributes_to_id)
        .where(in_ids(session, c.goal_id, ids)),
    )
    touchpoints: dict[UUID, set[str]] = {}
    contributes: dict[UUID, set[str]] = {}
    moments = set()
    for goal_id, key, moment in (await session.execute(links)).all():
        if moment is None:
            contributes.setdefault(goal_id, set()).add(key)
            continue
        touchpoints.setdefault(goal_id, set()).add(key)
        if moment:
            moments.add(key)
    facts = [
        make_goal_facts(
            g,
            owner=g.owner_key,
            metric=(g.metric_key, g.metric_kind),
            touchpoints=touchpoints.get(g.id, set()),
            contributes_to=contributes.get(g.id, set()),
            agreement=g.agreement_key,
        )
        for g in goals
    ]
    return facts, frozenset(moments)


def make_goal_facts(
    goal: Goal | Row[Any],
    *,
    owner: str,
    metric: tuple[str, str],
    touchpoints: set[str],
    contributes_to: set[str],
    agreement: str | None,
) -> GoalFacts:
    metric_key, metric_kind = metric
    return GoalFacts(
        key=goal.key,
        owner=owner,
        metric=metric_key,
        metric_kind=metric_kind,
        direction=goal.direction,
        kind=goal.kind,
        status=goal.status,
        incentive_weight=goal.incentive_weight,
        touchpoints=frozenset(touchpoints),
        contributes_to=frozenset(contributes_to),
        period_start=goal.period_start,
        period_end=goal.period_end,
        agreement=agreement,
    )


async def relations_touching(
    session: AsyncSession, metric_ids: Sequence[UUID]
) -> dict[tuple[str, str], int]:
    """Declared relations with one end on ``metric_ids``, by metric keys."""
    if not metric_ids:
        return {}
    r = MetricRelation
    source, target = Metric.__table__.alias("source"), Metric.__table__.alias("target")
    statement = (
        select(source.c.key, target.c.key, r.effect)
        .join(source, source.c.id == r.from_metric_id)
        .join(target, target.c.id == r.to_metric_id)
        .where(or_(in_ids(session, r.from_metric_id, metric_ids), in_ids(session, r.to_metric_id, metric_ids)))
    )
    return {(a, b): effect for a, b, effect in (await session.execute(statement)).all()}


async def conflict_facts_by_ids(session: AsyncSession, ids: Sequence[UUID]) -> list[Row[Any]]:
    """What findings read of these conflicts (id, status, incentives) with their goals' keys,
    in one statement."""
    if not ids:
        return []
    goal_a, goal_b = Goal.__table__.alias("goal_a"), Goal.__table__.alias("goal_b")
    statement = (
        select(
            Conflict.id, Conflict.status, Conflict.incentive_a, Conflict.incentive_b,
            goal_a.c.key.label("goal_a_key"), goal_b.c.key.label("goal_b_key"),
        )
        .join(goal_a, goal_a.c.id == Conflict.goal_a_id)
        .join(goal_b, goal_b.c.id == Conflict.goal_b_id)
        .where(in_ids(session, Conflict.id, ids))
    )
    return list((await session.execute(statement)).all())


async def conflicts_of_goals(session: AsyncSession, goal_ids: Sequence[UUID]) -> list[Conflict]:
    if not goal_ids:
        return []
    statement = select(Conflict).where(
        or_(in_ids(session, Conflict.goal_a_id, goal_ids), in_ids(session, Conflict.goal_b_id, goal_ids))
    )
    return list((await session.scalars(statement)).all())


async def first_conflicts_of_goals(
    session: AsyncSession, goal_ids: Sequence[UUID], order_by: Sequence[Any], limit: int
) -> dict[UUID, list[Conflict]]:
    """The first ``limit`` conflicts of each goal in the order ``order_by``, in one statement:
    a conflict counts once for each of its two goals, ranked within each goal."""
    found: dict[UUID, list[Conflict]] = {goal_id: [] for goal_id in goal_ids}
    if not goal_ids:
        return found
    sides = union_all(
        select(Conflict.id.label("conflict_id"), Conflict.goal_a_id.label("goal_id"))
        .where(in_ids(session, Conflict.goal_a_id, goal_ids)),
        select(Conflict.id.label("conflict_id"), Conflict.goal_b_id.label("goal_id"))
        .where(in_ids(session, Conflict.goal_b_id, goal_ids)),
    ).subquery()
    position = func.row_number().over(partition_by=sides.c.goal_id, order_by=list(order_by))
    ranked = (
        select(sides.c.goal_id, sides.c.conflict_id, position.label("position"))
        .join(Conflict, Conflict.id == sides.c.conflict_id)
        .subquery()
    )
    statement = (
        select(ranked.c.goal_id, Conflict)
        .join(Conflict, Conflict.id == ranked.c.conflict_id)
        .where(ranked.c.position <= limit)
        .order_by(ranked.c.goal_id, *order_by)
    )
    for goal_id, conflict in (await session.execute(statement)).all():
        found[goal_id].append(conflict)
    return found


async def keys_of(session: AsyncSession, ids: dict[Any, Iterable[UUID | None]]) -> dict[UUID, str]:
    """The keys of rows of several tables (model → ids) in one statement: ids are unique
    across tables, so one mapping holds them all."""
    selects = [
        select(model.id, model.key).where(in_ids(session, model.id, wanted))
        for model, model_ids in ids.items()
        if (wanted := list({i for i in model_ids if i is not None}))
    ]
    if not selects:
        return {}
    statement = selects[0] if len(selects) == 1 else union_all(*selects)
    return {row_id: key for row_id, key in (await session.execute(statement)).all()}


# Slices of the company, for scores ----------------------------------------------------------------


async def touchpoints_by(
    session: AsyncSession,
    *,
    ids: Sequence[UUID] | None = None,
    journey_ids: Sequence[UUID] | None = None,
) -> list[Touchpoint]:
    statement = select(Touchpoint).order_by(Touchpoint.key)
    if ids is not None:
        statement = statement.where(in_ids(session, Touchpoint.id, ids))
    if journey_ids is not None:
        statement = statement.where(in_ids(session, Touchpoint.journey_id, journey_ids))
    return list((await session.scalars(statement)).all())


async def handoffs_serving(
    session: AsyncSession, touchpoint_ids: Sequence[UUID], unit_ids: Sequence[UUID]
) -> list[Handoff]:
    """Handoffs upstream of the touchpoints, or provided or received by the units."""
    h = Handoff
    conditions = []
    if touchpoint_ids:
        conditions.append(in_ids(session, h.touchpoint_id, touchpoint_ids))
    if unit_ids:
        conditions += [in_ids(session, h.from_unit_id, unit_ids), in_ids(session, h.to_unit_id, unit_ids)]
    if not conditions:
        return []
    statement = select(h).where(or_(*conditions)).order_by(h.key)
    return list((await session.scalars(statement)).all())


async def rows_by_ids(session: AsyncSession, model: Any, ids: Sequence[UUID]) -> list[Any]:
    if not ids:
        return []
    statement = select(model).where(in_ids(session, model.id, ids)).order_by(model.key)
    return list((await session.scalars(statement)).all())


async def agreements_of_partners(
    session: AsyncSession, partner_ids: Sequence[UUID]
) -> list[PartnerAgreement]:
    if not partner_ids:
        return []
    a = PartnerAgreement
    statement = select(a).where(in_ids(session, a.partner_id, partner_ids)).order_by(a.key)
    return list((await session.scalars(statement)).all())


async def goals_with_targets(
    session: AsyncSession, owner_ids: Sequence[UUID], agreement_ids: Sequence[UUID]
) -> list[Goal]:
    """The goals of these owners and agreements, with every goal they contribute to,
    directly or through a chain (what linked(g) reads), found with a recursive query."""
    conditions = []
    if owner_ids:
        conditions.append(in_ids(session, Goal.owner_id, owner_ids))
    if agreement_ids:
        conditions.append(in_ids(session, Goal.agreement_id, agreement_ids))
    if not conditions:
        return []
    reach = select(Goal.id.label("id")).where(or_(*conditions)).cte("reach", recursive=True)
    c = GoalContribution
    reach = reach.union(select(c.contributes_to_id).join(reach, c.goal_id == reach.c.id))
    statement = select(Goal).where(Goal.id.in_(select(reach.c.id))).order_by(Goal.key)
    return list((await session.scalars(statement)).all())


async def goal_links_of(
    session: AsyncSession, goal_ids: Sequence[UUID]
) -> tuple[list[tuple[UUID, str]], list[tuple[UUID, UUID]]]:
    """(goal id, touchpoint key) and (goal id, target goal id) pairs of these goals."""
    if not goal_ids:
        return [], []
    gt, c = GoalTouchpoint, GoalContribution
    touchpoints = await session.execute(
        select(gt.goal_id, Touchpoint.key)
        .join(Touchpoint, Touchpoint.id == gt.touchpoint_id)
        .where(in_ids(session, gt.goal_id, goal_ids))
    )
    contributions = await session.execute(
        select(c.goal_id, c.contributes_to_id).where(in_ids(session, c.goal_id, goal_ids))
    )
    return [(a, b) for a, b in touchpoints.all()], [(a, b) for a, b in contributions.all()]


async def open_conflicts_of_goals(session: AsyncSession, goal_ids: Sequence[UUID]) -> list[Conflict]:
    return [c for c in await conflicts_of_goals(session, goal_ids) if c.status == "open"]


async def incentive_sums(session: AsyncSession) -> tuple[int, float, float]:
    """Over active goals: their count, Σ incentive_weight, and Σ incentive_weight of the
    customer-linked ones (linked(g): names a touchpoint, measures a survey score or customer
    effort, or reaches a goal naming a touchpoint through contributes_to), in one statement."""
    gt, c = GoalTouchpoint, GoalContribution
    reaching = select(gt.goal_id.label("id")).cte("reaching", recursive=True)
    reaching = reaching.union(select(c.goal_id).join(reaching, c.contributes_to_id == reaching.c.id))
    linked = or_(
        Goal.id.in_(select(reaching.c.id)), Metric.kind.in_(("survey_score", "customer_effort"))
    )
    statement = (
        select(
            func.count(),
            func.coalesce(func.sum(Goal.incentive_weight), 0.0),
            func.coalesce(func.sum(Goal.incentive_weight).filter(linked), 0.0),
        )
        .select_from(Goal)
        .join(Metric, Metric.id == Goal.metric_id)
        .where(Goal.status == "active")
    )
    count, total, covered = (await session.execute(statement)).one()
    return int(count), float(total), float(covered)


async def row_by_key(session: AsyncSession, model: Any, key: str) -> Any | None:
    return (await session.scalars(select(model).where(model.key == key))).first()


# What a finding reads, for a few subjects ----------------------------------------------------------


def _reach(seed: Any, *, upstream: bool, name: str = "reach") -> Any:
    """The ids of the goals matching ``seed`` (a condition on goals, or a select of ids) and
    of every goal reachable from them along contributes_to, downstream (the goals they serve)
    or upstream (the goals serving them): a recursive CTE."""
    c = GoalContribution
    start = seed if isinstance(seed, Select) else select(Goal.id.label("id")).where(seed)
    reach = start.cte(name, recursive=True)
    if upstream:
        step = select(c.goal_id).join(reach, c.contributes_to_id == reach.c.id)
    else:
        step = select(c.contributes_to_id).join(reach, c.goal_id == reach.c.id)
    return reach.union(step)


async def goals_downstream(
    session: AsyncSession,
    *,
    owner_ids: Sequence[UUID] = (),
    agreement_ids: Sequence[UUID] = (),
    chains_of: Sequence[UUID] = (),
) -> set[UUID]:
    """The goals of ``owner_ids`` and of ``agreement_ids``, ``chains_of`` and every goal serving
    them, and every goal all these serve along contributes_to, recursively (what linked(g)
    reads). One statement: the chains upstream are a CTE seeding the one downstream."""
    seed = [
        in_ids(session, column, ids)
        for column, ids in ((Goal.owner_id, owner_ids), (Goal.agreement_id, agreement_ids))
        if ids
    ]
    if chains_of:
        up = _reach(in_ids(session, Goal.id, chains_of), upstream=True, name="up")
        seed.append(Goal.id.in_(select(up.c.id)))
    if not seed:
        return set()
    reach = _reach(or_(*seed), upstream=False)
    return set((await session.scalars(select(reach.c.id))).all())


@dataclass
class GoalReach:
    """What the findings of other subjects read of some goals (see ``reach_of_goals``)."""

    upstream: list[Row[Any]]  # the goals and every goal serving them: id, owner_id, agreement_id
    served: set[UUID]  # goals on the given kinds that ``upstream`` serve
    targets: set[UUID]  # goals the goals contribute to directly
    sharing: set[UUID]  # goals on the given kinds naming a touchpoint one of the goals names
    journeys: set[UUID]  # journeys of the touchpoints the goals on the given kinds name


async def reach_of_goals(
    session: AsyncSession,
    seeds: Sequence[UUID],
    *,
    served_kinds: Sequence[str],
    sharing_kinds: Sequence[str],
    journey_kinds: Sequence[str],
) -> GoalReach:
    """``GoalReach`` of ``seeds`` in one statement: five tagged selects in a UNION ALL, two of
    them over recursive CTEs (the chains up from the seeds, and down from those)."""
    if not seeds:
        return GoalReach([], set(), set(), set(), set())
    gt, c = GoalTouchpoint, GoalContribution
    up = _reach(in_ids(session, Goal.id, seeds), upstream=True, name="up")
    down = _reach(select(up.c.id), upstream=False, name="down")
    named = GoalTouchpoint.__table__.alias("named")

    def part(tag: int, column: Any) -> Select[Any]:
        return select(literal_column(str(tag)).label("part"), column.label("id"), null(), null())

    statement = union_all(
        select(literal_column("0").label("part"), Goal.id, Goal.owner_id, Goal.agreement_id)
        .where(Goal.id.in_(select(up.c.id))),
        part(1, Goal.id)
        .join(Metric, Metric.id == Goal.metric_id)
        .where(Goal.id.in_(select(down.c.id)), Metric.kind.in_(served_kinds)),
        part(2, c.contributes_to_id).where(in_ids(session, c.goal_id, seeds)),
        part(3, gt.goal_id)
        .join(Goal, Goal.id == gt.goal_id)
        .join(Metric, Metric.id == Goal.metric_id)
        .where(
            gt.touchpoint_id.in_(
                select(named.c.touchpoint_id).where(in_ids(session, named.c.goal_id, seeds))
            ),
            Metric.kind.in_(sharing_kinds),
        ),
        part(4, Touchpoint.journey_id)
        .join(gt, gt.touchpoint_id == Touchpoint.id)
        .join(Goal, Goal.id == gt.goal_id)
        .join(Metric, Metric.id == Goal.metric_id)
        .where(in_ids(session, gt.goal_id, seeds), Metric.kind.in_(journey_kinds)),
    )
    rows = (await session.execute(statement)).all()
    ids: list[set[UUID]] = [set() for _ in range(5)]
    for row in rows:
        ids[int(row[0])].add(row[1])
    return GoalReach(
        upstream=[row for row in rows if int(row[0]) == 0],
        served=ids[1],
        targets=ids[2],
        sharing=ids[3],
        journeys=ids[4],
    )


async def contribution_ends(
    session: AsyncSession, goal_ids: Sequence[UUID], *, targets: bool
) -> set[UUID]:
    """The goals ``goal_ids`` contribute to directly (``targets``), or those contributing to them."""
    if not goal_ids:
        return set()
    c = GoalContribution
    known, wanted = (c.goal_id, c.contributes_to_id) if targets else (c.contributes_to_id, c.goal_id)
    return set((await session.scalars(select(wanted).where(in_ids(session, known, goal_ids)))).all())


async def goals_sharing_touchpoints(session: AsyncSession, goal_ids: Sequence[UUID]) -> set[UUID]:
    """Goals naming a touchpoint that one of ``goal_ids`` names."""
    if not goal_ids:
        return set()
    gt = GoalTouchpoint
    shared = select(gt.touchpoint_id).where(in_ids(session, gt.goal_id, goal_ids))
    statement = select(gt.goal_id).where(gt.touchpoint_id.in_(shared))
    return set((await session.scalars(statement)).all())


async def metric_kinds_of_goals(session: AsyncSession, goal_ids: Sequence[UUID]) -> dict[UUID, str]:
    """The kind of each goal's metric."""
    if not goal_ids:
        return {}
    statement = (
        select(Goal.id, Metric.kind)
        .join(Metric, Metric.id == Goal.metric_id)
        .where(in_ids(session, Goal.id, goal_ids))
    )
    return dict((await session.execute(statement)).all())


async def ids_where(session: AsyncSession, model: Any, column: Any, values: Sequence[UUID]) -> set[UUID]:
    """Ids of ``model`` rows whose ``column`` is one of ``values``."""
    if not values:
        return set()
    statement = select(model.id).where(in_ids(session, column, values))
    return set((await session.scalars(statement)).all())


async def goal_ids_naming_touchpoints(
    session: AsyncSession, touchpoint_ids: Sequence[UUID], metric_kinds: Sequence[str]
) -> set[UUID]:
    if not touchpoint_ids:
        return set()
    gt = GoalTouchpoint
    statement = (
        select(gt.goal_id)
        .join(Goal, Goal.id == gt.goal_id)
        .join(Metric, Metric.id == Goal.metric_id)
        .where(in_ids(session, gt.touchpoint_id, touchpoint_ids), Metric.kind.in_(metric_kinds))
    )
    return set((await session.scalars(statement)).all())
