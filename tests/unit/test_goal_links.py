"""Customer linkage of goals (docs/method.md), and the enticement-only and investor-only
rules' test of a goal cut off from every customer goal (§9), against their definitions read
literally: over random goal graphs, with cycles, inactive goals and links to goals outside
the snapshot."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from service.alignment.findings import Snapshot, _disconnected, _touchpoint_goals_reached
from service.alignment.scoring import GoalFacts, contributors, customer_linked
from tests.unit.builders import goal

KINDS = ("financial", "loyalty_program", "operational", "survey_score", "customer_effort")


def reaches(start: GoalFacts, by_key: dict[str, GoalFacts], target) -> bool:
    seen: set[str] = set()
    pending = list(start.contributes_to)
    while pending:
        key = pending.pop()
        if key in seen or key not in by_key:
            continue
        seen.add(key)
        if target(by_key[key]):
            return True
        pending.extend(by_key[key].contributes_to)
    return False


def linked_by_definition(goals: list[GoalFacts]) -> dict[str, bool]:
    by_key = {g.key: g for g in goals}
    return {
        g.key: bool(g.touchpoints)
        or g.metric_kind in ("survey_score", "customer_effort")
        or reaches(g, by_key, lambda t: bool(t.touchpoints))
        for g in goals
    }


def disconnected_by_definition(kind: str, goals: list[GoalFacts]) -> list[str]:
    """For each goal: no chain from it reaches a customer-linked goal, and no other goal,
    customer-linked with this goal's touchpoints set aside, has a chain to it."""
    by_key = {g.key: g for g in goals}
    linked = linked_by_definition(goals)
    found = []
    for judged in goals:
        if judged.status != "active" or judged.metric_kind != kind:
            continue
        if reaches(judged, by_key, lambda g: linked[g.key]):
            continue
        aside = [replace(g, touchpoints=frozenset()) if g.key == judged.key else g for g in goals]
        others = linked_by_definition(aside)
        if any(
            others[g.key] and reaches(g, by_key, lambda t, key=judged.key: t.key == key)
            for g in goals
            if g.key != judged.key
        ):
            continue
        found.append(judged.key)
    return found


@st.composite
def goal_graphs(draw) -> list[GoalFacts]:
    count = draw(st.integers(1, 12))
    keys = [f"g{i}" for i in range(count)]
    targets = st.sampled_from([*keys, "elsewhere"])  # a goal outside the snapshot
    return [
        goal(
            key,
            metric_kind=draw(st.sampled_from(KINDS)),
            status=draw(st.sampled_from(("active", "active", "retired"))),
            touchpoints=tuple(draw(st.lists(st.sampled_from(("t1", "t2")), max_size=1))),
            contributes_to=tuple(draw(st.lists(targets, max_size=3, unique=True))),
        )
        for key in keys
    ]


@settings(max_examples=300, deadline=None)
@given(goals=goal_graphs())
def test_customer_linkage_matches_the_definition(goals):
    assert customer_linked(goals) == linked_by_definition(goals)


@settings(max_examples=400, deadline=None)
@given(goals=goal_graphs(), kind=st.sampled_from(("financial", "loyalty_program")))
def test_disconnected_goals_match_the_definition(goals, kind):
    snapshot = Snapshot(
        units=[], touchpoints=[], handoffs=[], goals=goals, agreements=[], conflicts=[]
    )
    got = [g.key for g in _disconnected(kind, snapshot)]
    assert got == disconnected_by_definition(kind, goals)


def test_a_contributor_linked_only_through_the_judged_goal_does_not_connect_it():
    # g1 names no touchpoint and reaches one only through g0, the goal judged.
    goals = [
        goal("g0", metric_kind="financial", touchpoints=("t1",)),
        goal("g1", contributes_to=("g0",)),
    ]
    snapshot = Snapshot(
        units=[], touchpoints=[], handoffs=[], goals=goals, agreements=[], conflicts=[]
    )
    assert [g.key for g in _disconnected("financial", snapshot)] == ["g0"]
    # A second touchpoint goal within g1's reach connects it.
    goals.append(goal("g2", touchpoints=("t2",)))
    goals[1] = goal("g1", contributes_to=("g0", "g2"))
    snapshot = replace(snapshot, goals=goals)
    assert [g.key for g in _disconnected("financial", snapshot)] == []


def test_up_to_two_touchpoint_goals_are_kept_for_each_goal():
    goals = [
        goal("a", touchpoints=("t1",)),
        goal("b", touchpoints=("t2",)),
        goal("d", touchpoints=("t1",)),
        goal("x", contributes_to=("a", "b")),
        goal("c", contributes_to=("x", "d")),
        goal("loop", contributes_to=("loop", "a")),  # a cycle reaches itself
        goal("none", contributes_to=("elsewhere",)),
    ]
    by_key = {g.key: g for g in goals}
    reached = _touchpoint_goals_reached(by_key, contributors(by_key))
    assert reached["x"] == {"a", "b"}
    assert len(reached["c"]) == 2 and reached["c"] <= {"a", "b", "d"}
    assert reached["loop"] == {"a"}
    assert "none" not in reached and "a" not in reached
