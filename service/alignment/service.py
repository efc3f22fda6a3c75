"""The alignment engine: scores, findings and case paths (conflicts: conflict_service).

The service gathers inputs with SQL aggregates (repository) and the company's structure,
then applies the pure method of ``scoring``, ``conflicts`` and ``findings``. Both doors
(REST and GraphQL) call these functions, so a number means the same thing everywhere.
"""

from __future__ import annotations

import calendar
import functools
import itertools
from collections.abc import Callable
from dataclasses import dataclass, fields
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from service.alignment import findings as finding_rules
from service.alignment import repository
from service.alignment.constants import DEFAULT_WINDOW, Bucket
from service.alignment.repository import Window
from service.alignment.schemas import (
    CaseRead,
    CaseStep,
    ScoreRead,
    Subject,
    WindowRead,
    seconds,
)
from service.alignment.scoring import (
    METHOD,
    Component,
    EventStats,
    FeedbackStats,
    ReviewStats,
    Score,
    driver_weight,
    goal_alignment,
    handoff_health,
    handoff_weight,
    incentive_coverage,
    partner_score,
    priority,
    priority_weighted,
    touchpoint_score,
    unit_alignment,
    weighted_mean,
)
from service.alignment.structure import (
    Structure,
    load_slice,
    touchpoint_facts,
)
from service.core.errors import Invalid, NotFoundFor
from service.core.fields import format_duration, supported_instant
from service.core.pagination import PageRequest
from service.core.permissions import Action, Principal
from service.core.types import utcnow
from service.handoffs import service as handoffs_service
from service.handoffs.models import Handoff
from service.journeys.models import Journey, Touchpoint
from service.org_units.constants import EXTERNAL_KINDS, UnitKind
from service.org_units.models import Unit

MAX_BUCKETS = 400

StatsT = TypeVar("StatsT", EventStats, ReviewStats, FeedbackStats)


# Windows ---------------------------------------------------------------------------------------


def make_window(
    start: datetime | None = None,
    end: datetime | None = None,
    as_of: datetime | None = None,
    bucket: Bucket | None = None,
) -> Window:
    """The window of a score: [from, to), default the 90 days before as_of (default now).

    Buckets step by a day, a week or a calendar month from ``from``, in ``from``'s own UTC
    offset, so day buckets of a window starting at local midnight end at local midnights.
    """
    # Both doors pass their moments here (GraphQL's DateTime may even lack an offset), so
    # the bounds that keep the date arithmetic below inside the calendar hold for both.
    for name, moment in (("from", start), ("to", end), ("as_of", as_of)):
        if moment is not None:
            try:
                supported_instant(moment)
            except ValueError as exc:
                raise Invalid(f"{name}: {exc}", loc=("query", name)) from exc
    as_of = as_of or utcnow()
    end = end or as_of
    start = start or end - DEFAULT_WINDOW
    if start >= end:
        raise Invalid("'from' must be before 'to'", loc=("query", "from"))
    boundaries: list[datetime] = []
    if bucket is not None:
        # Each boundary counts from ``from`` itself, so month ends do not drift: from Jan 31
        # the boundaries are Feb 28, Mar 31, Apr 30 (not Feb 28, Mar 28, Apr 28).
        cursor = _step(start, bucket, 1)
        while cursor < end:
            boundaries.append(cursor)
            if len(boundaries) >= MAX_BUCKETS:
                raise Invalid(
                    f"the window holds more than {MAX_BUCKETS} {bucket.value} buckets; "
                    "narrow it or use a larger bucket",
                    loc=("query", "bucket"),
                )
            cursor = _step(start, bucket, len(boundaries) + 1)
    return Window(
        start=start.astimezone(UTC),
        end=end.astimezone(UTC),
        as_of=as_of.astimezone(UTC),
        boundaries=tuple(b.astimezone(UTC) for b in boundaries),
    )


def _step(moment: datetime, bucket: Bucket, count: int) -> datetime:
    """``moment`` plus ``count`` days, weeks or calendar months."""
    if bucket is Bucket.day:
        return moment + timedelta(days=count)
    if bucket is Bucket.week:
        return moment + timedelta(days=7 * count)
    year, month = divmod(moment.month - 1 + count, 12)
    year, month = moment.year + year, month + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)


def _bucket_windows(window: Window) -> list[WindowRead]:
    edges = [window.start, *window.boundaries, window.end]
    return [
        WindowRead(start=a, end=b, as_of=window.as_of) for a, b in itertools.pairwise(edges)
    ]


@functools.lru_cache(maxsize=64)
def _window_read(window: Window) -> WindowRead:
    # Shared, read-only: a page of 500 scores has one window.
    return WindowRead.model_construct(start=window.start, end=window.end, as_of=window.as_of)


# Scores ----------------------------------------------------------------------------------------


def _add(a: StatsT, b: StatsT) -> StatsT:
    return type(a)(**{f.name: getattr(a, f.name) + getattr(b, f.name) for f in fields(a)})


@dataclass
class Inputs:
    """The aggregates of one window, by subject id and bucket (None = the whole window)."""

    window: Window
    events: dict[tuple[UUID, int], EventStats]
    reviews: dict[tuple[UUID, int], ReviewStats]
    feedback: dict[tuple[UUID, int], FeedbackStats]

    @property
    def buckets(self) -> int:
        return len(self.window.boundaries) + 1

    def _get(self, table: dict[tuple[UUID, int], StatsT], empty: StatsT, key: UUID, b: int | None):
        if b is not None or self.buckets == 1:
            return table.get((key, b or 0), empty)
        total = empty
        for index in range(self.buckets):
            if (key, index) in table:
                total = _add(total, table[(key, index)])
        return total

    def event(self, handoff_id: UUID, b: int | None) -> EventStats:
        return self._get(self.events, EventStats(), handoff_id, b)

    def review(self, handoff_id: UUID, b: int | None) -> ReviewStats:
        return self._get(self.reviews, ReviewStats(), handoff_id, b)

    def feedback_at(self, touchpoint_id: UUID, b: int | None) -> FeedbackStats:
        return self._get(self.feedback, FeedbackStats(), touchpoint_id, b)

    def health(self, handoff: Handoff, b: int | None) -> tuple[Score, float]:
        events = self.event(handoff.id, b)
        score = handoff_health(events, self.review(handoff.id, b))
        return score, handoff_weight(events, score)


async def _inputs(
    session: AsyncSession,
    window: Window,
    *,
    handoff_ids: list[UUID] | None = None,
    touchpoint_ids: list[UUID] | None = None,
    with_feedback: bool = True,
) -> Inputs:
    return Inputs(
        window=window,
        events=await repository.event_stats(session, window, handoff_ids),
        reviews=await repository.review_stats(session, window, handoff_ids),
        feedback=(
            await repository.feedback_stats(session, window, touchpoint_ids) if with_feedback else {}
        ),
    )


def _components(score: Score) -> dict[str, dict[str, Any]]:
    return {name: c.as_dict() for name, c in score.components.items()}


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def _read(
    subject: Subject,
    window: Window,
    compute: Callable[[int | None], Score],
) -> ScoreRead:
    overall = compute(None)
    series = None
    if window.boundaries:
        series = [
            {
                "window": bucket_window,
                "value": _round(score.value),
                "reason": score.reason,
                "components": _components(score),
            }
            for index, bucket_window in enumerate(_bucket_windows(window))
            for score in (compute(index),)
        ]
    # One validation of plain values, in pydantic's core: a page holds up to 500 scores,
    # and building each nested model in Python would cost more than computing the score.
    return ScoreRead.model_validate(
        {
            "subject": subject,
            "value": _round(overall.value),
            "reason": overall.reason,
            "method": METHOD,
            "window": _window_read(window),
            "components": _components(overall),
            "details": overall.details,
            "series": series,
        }
    )


def _require_internal(principal: Principal, resource: str, key: str) -> None:
    """Scores other than a partner's own are not the partner's to see: 404, as if absent."""
    if principal.is_partner:
        raise NotFoundFor(resource, key)


async def score_handoff(
    session: AsyncSession, principal: Principal, key: str, window: Window
) -> ScoreRead:
    principal.require(Action.scores_read)
    handoff = await handoffs_service.get(session, principal, key)
    return (await _handoff_scores(session, [handoff], window))[handoff.id]


async def score_handoffs(
    session: AsyncSession, principal: Principal, page: PageRequest, window: Window
) -> tuple[list[ScoreRead], str | None]:
    """A page of handoff scores (no series), one grouped query for the whole page."""
    principal.require(Action.scores_read)
    handoffs, next_cursor = await handoffs_service.list_page(session, principal, page)
    scores = await _handoff_scores(session, handoffs, Window(window.start, window.end, window.as_of))
    return [scores[h.id] for h in handoffs], next_cursor


async def handoff_scores(
    session: AsyncSession, principal: Principal, handoff_ids: list[UUID], window: Window
) -> dict[UUID, ScoreRead]:
    """Scores of the visible handoffs among ``handoff_ids`` (for batch loading)."""
    principal.require(Action.scores_read)
    handoffs = [h for h in await handoffs_service.get_many(session, principal, handoff_ids) if h]
    return await _handoff_scores(session, handoffs, window)


async def _handoff_scores(
    session: AsyncSession, handoffs: list[Handoff], window: Window
) -> dict[UUID, ScoreRead]:
    """The one path of a handoff's score, whichever door asks: health with its components,
    and beside it the median cycle time and lateness of the whole window."""
    ids = [h.id for h in handoffs]
    inputs = await _inputs(session, window, handoff_ids=ids, with_feedback=False)
    medians = await repository.medians(session, window, ids)

    def compute(handoff: Handoff, b: int | None) -> Score:
        score, _ = inputs.health(handoff, b)
        if b is None:
            cycle, lateness = medians[handoff.id]
            score.details["median_cycle_time"] = _iso(seconds(cycle))
            score.details["median_lateness"] = _iso(seconds(lateness))
        return score

    return {
        h.id: _read(Subject(type="handoff", key=h.key), window, lambda b, h=h: compute(h, b))
        for h in handoffs
    }


def _iso(value: timedelta | None) -> str | None:
    return None if value is None else format_duration(value)


async def score_unit(session: AsyncSession, principal: Principal, key: str, window: Window) -> ScoreRead:
    principal.require(Action.scores_read)
    _require_internal(principal, "unit", key)
    unit = await repository.row_by_key(session, Unit, key)
    if unit is None:
        raise NotFoundFor("unit", key)
    return (await _unit_scores(session, [unit.id], window))[unit.id]


async def unit_scores(
    session: AsyncSession, principal: Principal, unit_ids: list[UUID], window: Window
) -> dict[UUID, ScoreRead]:
    """Unit alignment for many units at once (a partner key sees none: for batch loading)."""
    principal.require(Action.scores_read)
    if principal.is_partner:
        return {}
    return await _unit_scores(session, unit_ids, window)


async def _unit_scores(
    session: AsyncSession, unit_ids: list[UUID], window: Window
) -> dict[UUID, ScoreRead]:
    structure = await load_slice(session, unit_ids=unit_ids)
    wanted = set(unit_ids)
    units = [u for u in structure.units if u.id in wanted]
    touching = [h for h in structure.handoffs if h.from_unit_id in wanted or h.to_unit_id in wanted]
    inputs = await _inputs(session, window, handoff_ids=[h.id for h in touching], with_feedback=False)
    scores = {}
    for unit in units:
        provided = [h for h in touching if h.from_unit_id == unit.id]
        received = [h for h in touching if h.to_unit_id == unit.id]
        goals = goal_alignment(
            [g for g in structure.facts if g.owner == unit.key],
            structure.linked,
            structure.open_conflict_goals,
        )

        def compute(b: int | None, provided=provided, received=received, goals=goals) -> Score:
            return unit_alignment(
                [inputs.health(h, b) for h in provided],
                [inputs.health(h, b) for h in received],
                goals,
            )

        scores[unit.id] = _read(Subject(type="unit", key=unit.key), window, compute)
    return scores


def _upstream(structure: Structure, touchpoint: Touchpoint) -> list[Handoff]:
    return structure.upstream_of.get(touchpoint.id, [])


def _touchpoint_score(
    structure: Structure, inputs: Inputs, touchpoint: Touchpoint, b: int | None
) -> tuple[Score, float]:
    upstream = _upstream(structure, touchpoint)
    healths = {h.key: inputs.health(h, b) for h in upstream}
    feedback = inputs.feedback_at(touchpoint.id, b)
    score = touchpoint_score(list(healths.values()), feedback)
    weight = driver_weight(touchpoint.driver_weight, feedback)
    pi = priority(weight, touchpoint.moment_of_truth)
    depths = finding_rules.upstream_depths(
        touchpoint_facts(structure, touchpoint),
        [structure.handoff_facts[h.key] for h in upstream],
    )
    score.details.update(
        {
            "driver_weight": weight.as_dict(),
            "moment_of_truth": touchpoint.moment_of_truth,
            "priority": round(pi, 6),
            "upstream": [
                {
                    "handoff": key,
                    "depth": depths.get(key),
                    "health": _round(health.value),
                    "weight": w,
                }
                for key, (health, w) in sorted(
                    healths.items(), key=lambda item: (depths.get(item[0]) or 99, item[0])
                )
            ],
        }
    )
    return score, pi


async def score_touchpoint(
    session: AsyncSession, principal: Principal, key: str, window: Window
) -> ScoreRead:
    principal.require(Action.scores_read)
    _require_internal(principal, "touchpoint", key)
    touchpoint = await repository.row_by_key(session, Touchpoint, key)
    if touchpoint is None:
        raise NotFoundFor("touchpoint", key)
    return (await _touchpoint_scores(session, [touchpoint.id], window))[touchpoint.id]


async def touchpoint_scores(
    session: AsyncSession, principal: Principal, touchpoint_ids: list[UUID], window: Window
) -> dict[UUID, ScoreRead]:
    """Touchpoint scores for many touchpoints at once (a partner key sees none)."""
    principal.require(Action.scores_read)
    if principal.is_partner:
        return {}
    return await _touchpoint_scores(session, touchpoint_ids, window)


async def _touchpoint_scores(
    session: AsyncSession, touchpoint_ids: list[UUID], window: Window
) -> dict[UUID, ScoreRead]:
    structure = await load_slice(session, touchpoint_ids=touchpoint_ids)
    wanted = set(touchpoint_ids)
    touchpoints = [t for t in structure.touchpoints if t.id in wanted]
    upstream = [h.id for t in touchpoints for h in _upstream(structure, t)]
    inputs = await _inputs(
        session, window, handoff_ids=upstream, touchpoint_ids=[t.id for t in touchpoints]
    )
    return {
        t.id: _read(
            Subject(type="touchpoint", key=t.key),
            window,
            lambda b, t=t: _touchpoint_score(structure, inputs, t, b)[0],
        )
        for t in touchpoints
    }


async def upstream_depths(
    session: AsyncSession, principal: Principal, touchpoint_ids: list[UUID]
) -> dict[UUID, list[tuple[UUID, int | None]]]:
    """Peeling the onion: each touchpoint's upstream handoffs with their depth (1 delivers to
    the owner, 2 to a depth-1 provider, …), nearest first. A partner key sees none."""
    principal.require(Action.touchpoints_read)
    if principal.is_partner:
        return {}
    structure = await load_slice(session, touchpoint_ids=touchpoint_ids)
    wanted = set(touchpoint_ids)
    found: dict[UUID, list[tuple[UUID, int | None]]] = {}
    for touchpoint in structure.touchpoints:
        if touchpoint.id not in wanted:
            continue
        upstream = _upstream(structure, touchpoint)
        depths = finding_rules.upstream_depths(
            touchpoint_facts(structure, touchpoint),
            [structure.handoff_facts[h.key] for h in upstream],
        )
        ordered = sorted(upstream, key=lambda h: (depths.get(h.key) or 99, h.key))
        found[touchpoint.id] = [(h.id, depths.get(h.key)) for h in ordered]
    return found


def _journey_like(
    structure: Structure, inputs: Inputs, touchpoints: list[Touchpoint], b: int | None
) -> Score:
    scored = [(t, *_touchpoint_score(structure, inputs, t, b)) for t in touchpoints]
    value = priority_weighted([(score, pi) for _, score, pi in scored])
    with_tp = [(t, s, pi) for t, s, pi in scored if s.value is not None]
    components = {
        "touchpoints": Component(
            None if value is None else value / 100,
            len(with_tp),
            reason=None if value is not None else "no touchpoint has a score",
        )
    }
    details = {
        "touchpoints": [
            {"touchpoint": t.key, "score": _round(s.value), "priority": round(pi, 6)}
            for t, s, pi in scored
        ]
    }
    return Score(
        value=value,
        components=components,
        reason=None if value is not None else "no touchpoint has a score in the window",
        details=details,
    )


async def score_journey(
    session: AsyncSession, principal: Principal, key: str, window: Window
) -> ScoreRead:
    principal.require(Action.scores_read)
    _require_internal(principal, "journey", key)
    journey = await repository.row_by_key(session, Journey, key)
    if journey is None:
        raise NotFoundFor("journey", key)
    return (await _journey_scores(session, [journey], window))[journey.id]


async def journey_scores(
    session: AsyncSession, principal: Principal, journey_ids: list[UUID], window: Window
) -> dict[UUID, ScoreRead]:
    """Journey scores for many journeys at once (a partner key sees none: batch loading)."""
    principal.require(Action.scores_read)
    if principal.is_partner:
        return {}
    return await _journey_scores(session, await repository.rows_by_ids(session, Journey, journey_ids), window)


async def _journey_scores(
    session: AsyncSession, journeys: list[Journey], window: Window
) -> dict[UUID, ScoreRead]:
    on_journeys = await repository.touchpoints_by(session, journey_ids=[j.id for j in journeys])
    structure = await load_slice(session, touchpoint_ids=[t.id for t in on_journeys])
    upstream_ids = [h.id for t in structure.touchpoints for h in _upstream(structure, t)]
    inputs = await _inputs(
        session,
        window,
        handoff_ids=upstream_ids,
        touchpoint_ids=[t.id for t in structure.touchpoints],
    )
    scores = {}
    for journey in journeys:
        touchpoints = [t for t in structure.touchpoints if t.journey_id == journey.id]
        scores[journey.id] = _read(
            Subject(type="journey", key=journey.key),
            window,
            lambda b, touchpoints=touchpoints: _journey_like(structure, inputs, touchpoints, b),
        )
    return scores


async def score_company(session: AsyncSession, principal: Principal, window: Window) -> ScoreRead:
    principal.require(Action.scores_read)
    _require_internal(principal, "company score", "company")
    # Every touchpoint and handoff, and no goal: incentive coverage is summed in SQL.
    structure = await load_slice(session, touchpoint_ids=None)
    inputs = await _inputs(session, window)
    coverage = incentive_coverage(*await repository.incentive_sums(session))

    def compute(b: int | None) -> Score:
        score = _journey_like(structure, inputs, structure.touchpoints, b)
        if score.value is None:
            # No touchpoint has a score: the |E|-weighted mean of H over all handoffs.
            healths = [inputs.health(h, b) for h in structure.handoffs]
            value = weighted_mean((s.value, w) for s, w in healths)
            score = Score(
                value=value,
                components={
                    "handoff_health": Component(
                        None if value is None else value / 100,
                        len([1 for s, _ in healths if s.value is not None]),
                        reason=None if value is not None else "no scored handoff",
                    )
                },
                reason=None if value is not None else "no touchpoint and no handoff has a score",
                details={"basis": "handoffs: no touchpoint has a score in the window"},
            )
        else:
            score.details["basis"] = "touchpoints, weighted by priority"
        score.details["incentive_coverage"] = coverage.as_dict()
        return score

    return _read(Subject(type="company"), window, compute)


async def score_partner(
    session: AsyncSession, principal: Principal, key: str, window: Window
) -> ScoreRead:
    principal.require(Action.scores_read)
    unit = await repository.row_by_key(session, Unit, key)
    if unit is None or not _partner_visible(principal, unit):
        raise NotFoundFor("partner", key)
    return (await _partner_scores(session, [unit], window))[unit.id]


async def partner_scores(
    session: AsyncSession, principal: Principal, unit_ids: list[UUID], window: Window
) -> dict[UUID, ScoreRead]:
    """Partner scores for many partner units at once (a partner key: only its own)."""
    principal.require(Action.scores_read)
    units = await repository.rows_by_ids(session, Unit, unit_ids)
    visible = [u for u in units if _partner_visible(principal, u)]
    return await _partner_scores(session, visible, window)


def _partner_visible(principal: Principal, unit: Unit) -> bool:
    if principal.is_partner and unit.id != principal.partner_unit_id:
        return False
    return UnitKind(unit.kind) in EXTERNAL_KINDS


async def _partner_scores(
    session: AsyncSession, units: list[Unit], window: Window
) -> dict[UUID, ScoreRead]:
    structure = await load_slice(session, partner_ids=[u.id for u in units])
    ids = {u.id for u in units}
    touching = [h for h in structure.handoffs if {h.from_unit_id, h.to_unit_id} & ids]
    inputs = await _inputs(session, window, handoff_ids=[h.id for h in touching], with_feedback=False)
    linked = structure.linked
    scores = {}
    for unit in units:
        handoffs = [h for h in touching if unit.id in (h.from_unit_id, h.to_unit_id)]
        active = [a for a in structure.agreements if a.partner_id == unit.id and a.status == "active"]
        covered = [
            a.key
            for a in active
            if any(
                f.agreement == a.key and f.status == "active" and linked[f.key]
                for f in structure.facts
            )
        ]
        coverage = Component(
            len(covered) / len(active) if active else None,
            len(active),
            reason=None if active else "no active agreement",
            extra={"covered_agreements": covered},
        )

        def compute(b: int | None, handoffs=handoffs, coverage=coverage) -> Score:
            return partner_score([inputs.health(h, b) for h in handoffs], coverage)

        scores[unit.id] = _read(Subject(type="partner", key=unit.key), window, compute)
    return scores


# Cases -----------------------------------------------------------------------------------------


async def get_case(session: AsyncSession, principal: Principal, case_ref: str) -> CaseRead:
    """The customer's horizontal path: every occurrence with this case_ref, in time order."""
    principal.require(Action.cases_read)
    # The case as this principal knows it: a partner's events never join a company case it
    # had no part in (they form its own case of that ref), so they neither change nor reveal it.
    rows = await handoffs_service.case_events(session, principal, case_ref)
    own = principal.partner_unit_id
    if not rows or (
        principal.is_partner and not any(own in (h.from_unit_id, h.to_unit_id) for _, h in rows)
    ):
        raise NotFoundFor("case", case_ref)
    unit_keys = {u.id: u.key for u in await repository.units(session)}
    now = utcnow()
    steps: list[CaseStep] = []
    path: list[str] = []
    previous_delivery: datetime | None = None
    # An undelivered step is still open: every later step overlaps it, so none waited idle.
    still_open = False
    for index, (event, handoff) in enumerate(rows):
        for unit_id in (handoff.from_unit_id, handoff.to_unit_id):
            if not path or path[-1] != unit_keys[unit_id]:
                path.append(unit_keys[unit_id])
        wait = None
        if (
            not still_open
            and previous_delivery is not None
            and event.started_at >= previous_delivery
        ):
            wait = event.started_at - previous_delivery
        late = None
        finished = event.delivered_at or now
        if event.due_at is not None and finished > event.due_at:
            late = finished - event.due_at
        visible = not principal.is_partner or own in (handoff.from_unit_id, handoff.to_unit_id)
        if visible:
            steps.append(
                CaseStep(
                    index=index,
                    visible=True,
                    handoff=handoff.key,
                    external_id=event.external_id,
                    from_unit=unit_keys[handoff.from_unit_id],
                    to_unit=unit_keys[handoff.to_unit_id],
                    started_at=event.started_at,
                    due_at=event.due_at,
                    delivered_at=event.delivered_at,
                    wait_before=wait,
                    late_by=late,
                    quality=event.quality,
                    rework=event.rework,
                    customer_impact=event.customer_impact,
                    note=event.note,
                )
            )
        else:
            steps.append(
                CaseStep(
                    index=index,
                    visible=False,
                    started_at=event.started_at,
                    delivered_at=event.delivered_at,
                    wait_before=wait,
                )
            )
        if event.delivered_at is None:
            still_open = True
        else:
            previous_delivery = max(previous_delivery or event.delivered_at, event.delivered_at)
    ping_pongs = [
        [path[i], path[i + 1], path[i + 2]]
        for i in range(len(path) - 2)
        if path[i] == path[i + 2] and path[i] != path[i + 1]
    ]
    first = rows[0][0].started_at
    open_steps = sum(1 for event, _ in rows if event.delivered_at is None)
    last = now if open_steps else max(event.delivered_at for event, _ in rows)  # type: ignore[type-var]
    if principal.is_partner:
        # Other units' names stay hidden: the path shows only where the partner comes in.
        path = [p if p == unit_keys[own] else "(another unit)" for p in path]  # type: ignore[index]
    return CaseRead(
        case_ref=case_ref,
        steps=steps,
        path=path,
        transfers=max(0, len(path) - 1),
        ping_pongs=len(ping_pongs),
        ping_pong_units=ping_pongs if not principal.is_partner else [],
        elapsed=last - first,
        open_steps=open_steps,
    )

