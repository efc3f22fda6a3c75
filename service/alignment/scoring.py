"""Alignment scoring, method v1 (docs/method.md §1–§7): pure functions over plain numbers.

Nothing here touches the database. The service gathers the inputs with SQL aggregates and
calls these functions; REST, GraphQL and the tests all share them. Components are 0–1,
scores 0–100, and a score without data is ``None`` with a reason, never 0.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

METHOD = "v1"

WEIGHTS = {"timeliness": 0.35, "quality": 0.35, "rework_free": 0.15, "recipient_satisfaction": 0.15}
KDA_MIN_RECORDS = 30


# Inputs --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EventStats:
    """Aggregates over a handoff's events placed in the window (``due_at``, or
    ``started_at`` for an event with no due time)."""

    events: int = 0  # |E|
    due: int = 0  # |D|: due_at <= as_of
    undated: int = 0  # in E with no due_at: never in D
    on_time: int = 0  # in D, delivered_at <= due_at
    overdue: int = 0  # in D, not delivered
    delivered: int = 0
    reworked: int = 0  # delivered with rework
    rated: int = 0
    quality_sum: float = 0.0  # Σ (quality − 1) / 4 over rated events
    customer_impact: int = 0


@dataclass(frozen=True)
class ReviewStats:
    count: int = 0
    satisfaction_sum: float = 0.0  # Σ ((timeliness + quality) / 2 − 1) / 4


@dataclass(frozen=True)
class FeedbackStats:
    """Normalised feedback at a touchpoint, with the sums key-driver analysis needs."""

    count: int = 0
    score_sum: float = 0.0  # Σ normalised score
    paired: int = 0  # records carrying loyalty too
    x_sum: float = 0.0  # over paired records: x = normalised score, y = loyalty
    y_sum: float = 0.0
    xx_sum: float = 0.0
    yy_sum: float = 0.0
    xy_sum: float = 0.0


# Results -------------------------------------------------------------------------------------


@dataclass
class Component:
    value: float | None
    count: int
    weight: float | None = None
    reason: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"value": _round(self.value), "count": self.count}
        if self.weight is not None:
            out["weight"] = self.weight
        if self.reason is not None:
            out["reason"] = self.reason
        out.update(self.extra)
        return out


@dataclass
class Score:
    value: float | None
    components: dict[str, Component]
    reason: str | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.value is None and self.reason is None:
            raise ValueError("a null score needs a reason")


def _round(value: float | None, digits: int = 6) -> float | None:
    return None if value is None else round(value, digits)


def weighted_mean(pairs: Iterable[tuple[float | None, float]]) -> float | None:
    """Σ wᵢvᵢ / Σ wᵢ over the pairs whose value is not null (and weight positive)."""
    total = weight_sum = 0.0
    for value, weight in pairs:
        if value is None or weight <= 0:
            continue
        total += value * weight
        weight_sum += weight
    return total / weight_sum if weight_sum else None


def mean(values: Iterable[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return sum(present) / len(present) if present else None


# Handoff health H(h) ---------------------------------------------------------------------------


def handoff_health(events: EventStats, reviews: ReviewStats) -> Score:
    timeliness = Component(
        events.on_time / events.due if events.due else None,
        events.due,
        WEIGHTS["timeliness"],
        None if events.due else _no_timeliness(events),
        {"on_time": events.on_time, "late": events.due - events.on_time},
    )
    quality = Component(
        events.quality_sum / events.rated if events.rated else None,
        events.rated,
        WEIGHTS["quality"],
        None if events.rated else "no rated event",
    )
    rework_free = Component(
        1 - events.reworked / events.delivered if events.delivered else None,
        events.delivered,
        WEIGHTS["rework_free"],
        None if events.delivered else "no delivered event",
        {"reworked": events.reworked},
    )
    satisfaction = Component(
        reviews.satisfaction_sum / reviews.count if reviews.count else None,
        reviews.count,
        WEIGHTS["recipient_satisfaction"],
        None if reviews.count else "no review",
    )
    components = {
        "timeliness": timeliness,
        "quality": quality,
        "rework_free": rework_free,
        "recipient_satisfaction": satisfaction,
    }
    health = weighted_mean((c.value, c.weight or 0) for c in components.values())
    details = {
        "counts": {
            "events": events.events,
            "due": events.due,
            "on_time": events.on_time,
            "overdue": events.overdue,
            "undated": events.undated,
            "rated": events.rated,
            "delivered": events.delivered,
            "reviews": reviews.count,
        },
        "buffer_rate": _round(events.customer_impact / events.events) if events.events else None,
    }
    return Score(
        value=None if health is None else 100 * health,
        components=components,
        reason=None if health is not None else "no events or reviews in the window",
        details=details,
    )


def _no_timeliness(events: EventStats) -> str:
    if events.events and events.undated == events.events:
        return "no event has a due time (the handoff has no timing standard)"
    return "no event due by as_of"


def handoff_weight(events: EventStats, health: Score) -> float:
    """The weight of a handoff in |E|-weighted means: |E|, or 1 for one scored by reviews only."""
    if health.value is None:
        return 0.0
    return float(events.events) if events.events else 1.0


# Unit alignment U(u) ---------------------------------------------------------------------------


@dataclass(frozen=True)
class GoalFacts:
    """What the rules need to know of one goal."""

    key: str
    owner: str
    metric: str
    metric_kind: str
    direction: str
    kind: str
    status: str
    incentive_weight: float
    touchpoints: frozenset[str]
    contributes_to: frozenset[str]
    period_start: Any = None
    period_end: Any = None
    agreement: str | None = None


def customer_linked(goals: Sequence[GoalFacts]) -> dict[str, bool]:
    """linked(g): names a touchpoint, measures a survey score or customer effort, or
    contributes (directly or through a chain of contributes_to) to a goal naming a touchpoint.
    One walk back from the goals naming a touchpoint: linear in the goals and their links."""
    by_key = {g.key: g for g in goals}
    naming = [key for key, goal in by_key.items() if goal.touchpoints]
    reaching_touchpoint_goal = reaching(contributors(by_key), naming)
    return {
        goal.key: linked_by_itself(goal) or goal.key in reaching_touchpoint_goal for goal in goals
    }


def contributors(by_key: Mapping[str, GoalFacts]) -> dict[str, list[str]]:
    """For each goal, the goals whose contributes_to names it (links to goals outside
    ``by_key`` lead nowhere)."""
    found: dict[str, list[str]] = defaultdict(list)
    for goal in by_key.values():
        for target in goal.contributes_to:
            if target in by_key:
                found[target].append(goal.key)
    return found


def reaching(contributors_of: Mapping[str, list[str]], targets: Iterable[str]) -> set[str]:
    """The goals with a chain of one or more contributes_to to one of ``targets``."""
    found: set[str] = set()
    pending = list(targets)
    while pending:
        for contributor in contributors_of.get(pending.pop(), ()):
            if contributor not in found:
                found.add(contributor)
                pending.append(contributor)
    return found


def linked_by_itself(goal: GoalFacts) -> bool:
    """Customer-linked whatever it contributes to: it names a touchpoint, or measures a
    survey score or customer effort."""
    return bool(goal.touchpoints) or goal.metric_kind in ("survey_score", "customer_effort")


def goal_alignment(
    unit_goals: Sequence[GoalFacts], linked: dict[str, bool], conflicted: set[str]
) -> Component:
    active = [g for g in unit_goals if g.status == "active"]
    if not active:
        return Component(None, 0, reason="no active goal")
    parts = [(int(linked[g.key]) + 1 - int(g.key in conflicted)) / 2 for g in active]
    return Component(
        sum(parts) / len(parts),
        len(active),
        extra={
            "linked": sum(1 for g in active if linked[g.key]),
            "conflicted": sum(1 for g in active if g.key in conflicted),
        },
    )


def unit_alignment(
    provided: Sequence[tuple[Score, float]],
    received: Sequence[tuple[Score, float]],
    goals: Component,
) -> Score:
    provider = weighted_mean((s.value, w) for s, w in provided)
    receiver = weighted_mean((s.value, w) for s, w in received)
    goal_value = None if goals.value is None else 100 * goals.value
    value = mean([provider, goal_value])
    components = {
        "provider_health": Component(
            None if provider is None else provider / 100,
            len([1 for s, _ in provided if s.value is not None]),
            reason=None if provider is not None else "no scored handoff provided",
        ),
        "goal_alignment": goals,
    }
    details = {
        "received_health": {
            "value": _round(None if receiver is None else receiver / 100),
            "count": len([1 for s, _ in received if s.value is not None]),
            "note": "what a unit receives is its providers' responsibility: reported, not scored",
        }
    }
    return Score(
        value=value,
        components=components,
        reason=None if value is not None else "no scored handoff provided and no active goal",
        details=details,
    )


# Touchpoints, journeys, the company -----------------------------------------------------------


NORMALISE = {
    "csat": lambda s: (s - 1) / 4,
    "ces": lambda s: (7 - s) / 6,
    "nps": lambda s: s / 10,
}


def normalised(scale: str, score: float) -> float:
    return NORMALISE[scale](score)


def pearson(stats: FeedbackStats) -> float | None:
    """Pearson r of normalised score and loyalty; None when either side has no variance."""
    n = stats.paired
    if n < 2:
        return None
    var_x = n * stats.xx_sum - stats.x_sum**2
    var_y = n * stats.yy_sum - stats.y_sum**2
    if var_x <= 1e-12 * max(1.0, n * stats.xx_sum) or var_y <= 1e-12 * max(1.0, n * stats.yy_sum):
        return None
    r = (n * stats.xy_sum - stats.x_sum * stats.y_sum) / math.sqrt(var_x * var_y)
    return max(-1.0, min(1.0, r))


@dataclass(frozen=True)
class DriverWeight:
    value: float
    source: str  # "declared" or "derived"
    n: int
    r: float | None
    reason: str | None = None

    def as_dict(self) -> dict[str, Any]:
        out = {"value": _round(self.value), "source": self.source, "n": self.n, "r": _round(self.r)}
        if self.reason:
            out["reason"] = self.reason
        return out


def driver_weight(declared: float, stats: FeedbackStats) -> DriverWeight:
    if stats.paired < KDA_MIN_RECORDS:
        return DriverWeight(
            declared,
            "declared",
            stats.paired,
            None,
            f"fewer than {KDA_MIN_RECORDS} feedback records with loyalty in the window",
        )
    r = pearson(stats)
    if r is None:
        return DriverWeight(
            declared, "declared", stats.paired, None, "score or loyalty has no variance"
        )
    return DriverWeight(max(0.0, r), "derived", stats.paired, r)


def priority(weight: DriverWeight, moment_of_truth: bool) -> float:
    return 1 + weight.value + (1 if moment_of_truth else 0)


def touchpoint_score(upstream: Sequence[tuple[Score, float]], feedback: FeedbackStats) -> Score:
    chain = weighted_mean((s.value, w) for s, w in upstream)
    satisfaction = feedback.score_sum / feedback.count if feedback.count else None
    value = mean([chain, None if satisfaction is None else 100 * satisfaction])
    components = {
        "chain_health": Component(
            None if chain is None else chain / 100,
            len([1 for s, _ in upstream if s.value is not None]),
            reason=None if chain is not None else "no scored upstream handoff",
        ),
        "customer_satisfaction": Component(
            satisfaction,
            feedback.count,
            reason=None if satisfaction is not None else "no feedback in the window",
        ),
    }
    return Score(
        value=value,
        components=components,
        reason=None if value is not None else "no scored upstream handoff and no feedback",
    )


def priority_weighted(items: Sequence[tuple[Score, float]]) -> float | None:
    """J = Σ π(t)·TP(t) / Σ π(t) over touchpoints whose TP is not null."""
    return weighted_mean((s.value, p) for s, p in items)


def incentive_coverage(active: int, total: float, covered: float) -> Component:
    """Follow the money: the share of the incentive weight of ``active`` goals (``total``)
    that rides on customer-linked goals (``covered``)."""
    if not total:
        return Component(None, active, reason="no active goal carries an incentive")
    return Component(covered / total, active, extra={"incentive_total": total})


def partner_score(handoffs: Sequence[tuple[Score, float]], coverage: Component) -> Score:
    health = weighted_mean((s.value, w) for s, w in handoffs)
    coverage_value = None if coverage.value is None else 100 * coverage.value
    value = mean([health, coverage_value])
    components = {
        "handoff_health": Component(
            None if health is None else health / 100,
            len([1 for s, _ in handoffs if s.value is not None]),
            reason=None if health is not None else "no scored handoff with this partner",
        ),
        "cx_coverage": coverage,
    }
    return Score(
        value=value,
        components=components,
        reason=None if value is not None else "no scored handoff and no active agreement",
    )


def median(values: Sequence[float]) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[middle]
    return (ordered[middle - 1] + ordered[middle]) / 2
