"""Plain facts for the pure rules: no HTTP, no database, no fixtures."""

from __future__ import annotations

from service.alignment.scoring import Component, GoalFacts, Score


def goal(
    key: str,
    *,
    owner: str = "unit-a",
    metric: str = "m",
    metric_kind: str = "operational",
    direction: str = "increase",
    kind: str = "means",
    status: str = "active",
    incentive_weight: float = 0.0,
    touchpoints: tuple[str, ...] = (),
    contributes_to: tuple[str, ...] = (),
    period_start=None,
    period_end=None,
    agreement: str | None = None,
) -> GoalFacts:
    return GoalFacts(
        key=key,
        owner=owner,
        metric=metric,
        metric_kind=metric_kind,
        direction=direction,
        kind=kind,
        status=status,
        incentive_weight=incentive_weight,
        touchpoints=frozenset(touchpoints),
        contributes_to=frozenset(contributes_to),
        period_start=period_start,
        period_end=period_end,
        agreement=agreement,
    )


def score(value: float | None) -> Score:
    """A score standing for a handoff's (or touchpoint's) H, when only its value matters."""
    return Score(value=value, components={}, reason=None if value is not None else "no data")


def component(value: float | None, count: int) -> Component:
    return Component(value, count, reason=None if value is not None else "no data")
