"""Dueling silos (docs/method.md §8): which pairs of goals work against each other.

Pure: takes goal facts, declared metric relations and the moments of truth, returns the
conflicting pairs with their metric path and severity. The service persists them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from itertools import combinations
from typing import Any

from service.alignment.scoring import GoalFacts

DIRECTION = {"increase": 1, "decrease": -1}


@dataclass(frozen=True)
class DetectedConflict:
    goal_a: str  # keys, ordered so a pair is always reported the same way
    goal_b: str
    metric_path: tuple[str, ...]
    effect: int
    severity: int
    reasons: tuple[str, ...]
    shared_touchpoints: tuple[str, ...]
    incentive_a: float
    incentive_b: float

    def as_dict(self) -> dict[str, Any]:
        return {
            "metric_path": list(self.metric_path),
            "effect": self.effect,
            "severity": self.severity,
            "reasons": list(self.reasons),
            "shared_touchpoints": list(self.shared_touchpoints),
        }


def periods_overlap(a: GoalFacts, b: GoalFacts) -> bool:
    """Closed date ranges; an open end overlaps everything on that side."""
    a_start = a.period_start or date.min
    a_end = a.period_end or date.max
    b_start = b.period_start or date.min
    b_end = b.period_end or date.max
    return a_start <= b_end and b_start <= a_end


def shared_scope(a: GoalFacts, b: GoalFacts) -> frozenset[str] | None:
    """The touchpoints both goals act on, or None when their scopes do not overlap.

    A goal that names no touchpoint acts everywhere, so it shares the other goal's
    touchpoints (and, if neither names any, no particular touchpoint).
    """
    if not a.touchpoints:
        return b.touchpoints
    if not b.touchpoints:
        return a.touchpoints
    common = a.touchpoints & b.touchpoints
    return common or None


def effects(
    a: GoalFacts, b: GoalFacts, relations: Mapping[tuple[str, str], int]
) -> list[tuple[int, tuple[str, ...]]]:
    """effect(m_a → m_b) with its path: +1 for the same metric, else declared direct
    relations in either direction (both, when both directions are declared)."""
    if a.metric == b.metric:
        return [(1, (a.metric,))]
    found = []
    if (a.metric, b.metric) in relations:
        found.append((relations[(a.metric, b.metric)], (a.metric, b.metric)))
    if (b.metric, a.metric) in relations:
        found.append((relations[(b.metric, a.metric)], (b.metric, a.metric)))
    return found


def detect_pair(
    a: GoalFacts,
    b: GoalFacts,
    relations: Mapping[tuple[str, str], int],
    moments_of_truth: frozenset[str],
) -> DetectedConflict | None:
    """The conflict between two goals, or None. The pair is reported in key order."""
    if b.key < a.key:
        a, b = b, a
    if not (_can_duel(a) and _can_duel(b)):
        return None
    if a.owner == b.owner or not periods_overlap(a, b):
        return None
    scope = shared_scope(a, b)
    if scope is None:
        return None
    against = [
        (effect, path)
        for effect, path in effects(a, b, relations)
        if DIRECTION[a.direction] * effect * DIRECTION[b.direction] < 0
    ]
    if not against:
        return None
    effect, path = against[0]
    reasons = [f"{a.direction} {a.metric} works against {b.direction} {b.metric}"]
    severity = 1
    moments = sorted(scope & moments_of_truth)
    if moments:
        severity += 1
        reasons.append(f"the shared scope holds a moment of truth: {', '.join(moments)}")
    funded = [g for g in (a, b) if g.incentive_weight > 0]
    if len(funded) == 1:
        severity += 1
        reasons.append(
            f"only {funded[0].key} carries an incentive: the funded goal wins on the floor"
        )
    return DetectedConflict(
        goal_a=a.key,
        goal_b=b.key,
        metric_path=path,
        effect=effect,
        severity=severity,
        reasons=tuple(reasons),
        shared_touchpoints=tuple(sorted(scope)),
        incentive_a=a.incentive_weight,
        incentive_b=b.incentive_weight,
    )


def _can_duel(goal: GoalFacts) -> bool:
    return goal.status == "active" and goal.direction in DIRECTION


def detect(
    goals: Sequence[GoalFacts],
    relations: Mapping[tuple[str, str], int],
    moments_of_truth: frozenset[str],
) -> list[DetectedConflict]:
    """Every conflicting pair among ``goals`` (the full detection)."""
    active = sorted((g for g in goals if _can_duel(g)), key=lambda g: g.key)
    found = (detect_pair(a, b, relations, moments_of_truth) for a, b in combinations(active, 2))
    return [conflict for conflict in found if conflict is not None]


def detect_around(
    changed: Sequence[GoalFacts],
    candidates: Sequence[GoalFacts],
    relations: Mapping[tuple[str, str], int],
    moments_of_truth: frozenset[str],
) -> list[DetectedConflict]:
    """The conflicting pairs with at least one goal in ``changed`` (incremental detection):
    each changed goal against the candidates and against the other changed goals."""
    changed_keys = {g.key for g in changed}
    others = [g for g in candidates if g.key not in changed_keys and _can_duel(g)]
    mine = sorted((g for g in changed if _can_duel(g)), key=lambda g: g.key)
    pairs = [(a, b) for a in mine for b in others] + list(combinations(mine, 2))
    found = (detect_pair(a, b, relations, moments_of_truth) for a, b in pairs)
    return [conflict for conflict in found if conflict is not None]
