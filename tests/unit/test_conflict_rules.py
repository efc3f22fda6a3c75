"""Dueling silos (docs/method.md §8) on plain goal facts: no HTTP, no database.

Two active goals of different owners conflict when their periods overlap, their scopes overlap
and d(g1) × effect(m1 → m2) × d(g2) < 0; severity 1, +1 for a moment of truth in the shared
scope, +1 when exactly one of the two carries an incentive.
"""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service.alignment.conflicts import (
    detect,
    detect_around,
    detect_pair,
    effects,
    periods_overlap,
    shared_scope,
)
from tests.unit.builders import goal

NO_MOMENTS: frozenset[str] = frozenset()


def pair(a, b, relations=None, moments=NO_MOMENTS):
    return detect_pair(a, b, relations or {}, frozenset(moments))


class TestWorkedExample:
    """docs/method.md §8, verbatim: marketing pays for short calls, service wants rapport."""

    SHORT_CALLS = goal(
        "mkt.short-calls", owner="marketing", metric="call.handle_time", direction="decrease",
        incentive_weight=0.4, touchpoints=("phone-call",),
        period_start=date(2026, 1, 1), period_end=date(2026, 6, 30),
    )
    RAPPORT = goal(
        "svc.rapport", owner="contact-centre", metric="call.rapport", direction="increase",
        touchpoints=("phone-call",), period_start=date(2026, 4, 1),
    )
    FAST = goal(
        "svc.fast", owner="contact-centre", metric="call.handle_time", direction="decrease",
        incentive_weight=0.1,
    )
    GOALS = (SHORT_CALLS, RAPPORT, FAST)
    MOMENTS = frozenset({"phone-call"})

    def test_one_conflict_of_severity_3(self):
        relations = {("call.handle_time", "call.rapport"): 1}
        [conflict] = detect(self.GOALS, relations, self.MOMENTS)
        assert (conflict.goal_a, conflict.goal_b) == ("mkt.short-calls", "svc.rapport")
        # (−1) × (+1) × (+1) = −1 < 0
        assert conflict.effect == 1
        assert conflict.metric_path == ("call.handle_time", "call.rapport")
        assert conflict.severity == 1 + 1 + 1
        assert conflict.shared_touchpoints == ("phone-call",)
        assert (conflict.incentive_a, conflict.incentive_b) == (0.4, 0)
        assert len(conflict.reasons) == 3

    def test_same_metric_same_way_is_no_conflict(self):
        # mkt.short-calls vs svc.fast: effect +1, (−1) × (+1) × (−1) = +1.
        assert pair(self.SHORT_CALLS, self.FAST, {}, self.MOMENTS) is None

    def test_same_owner_is_never_a_conflict(self):
        relations = {("call.handle_time", "call.rapport"): 1}
        assert pair(self.RAPPORT, self.FAST, relations, self.MOMENTS) is None

    def test_the_relation_declared_the_other_way_round_gives_the_same(self):
        relations = {("call.rapport", "call.handle_time"): 1}
        [conflict] = detect(self.GOALS, relations, self.MOMENTS)
        assert (conflict.goal_a, conflict.goal_b, conflict.severity) == (
            "mkt.short-calls", "svc.rapport", 3,
        )
        assert conflict.metric_path == ("call.rapport", "call.handle_time")

    def test_relations_declared_both_ways_that_disagree(self):
        # a → b = +1 and b → a = −1: two increase goals conflict through the second,
        # (+1) × (−1) × (+1) < 0.
        a = goal("ga", owner="u1", metric="a")
        b = goal("gb", owner="u2", metric="b")
        conflict = pair(a, b, {("a", "b"): 1, ("b", "a"): -1})
        assert conflict is not None
        assert conflict.effect == -1
        assert conflict.metric_path == ("b", "a")
        assert effects(a, b, {("a", "b"): 1, ("b", "a"): -1}) == [(1, ("a", "b")), (-1, ("b", "a"))]


class TestDirectionAndEffect:
    @pytest.mark.parametrize(
        "d1, effect, d2, conflicts",
        [
            ("increase", 1, "increase", False),  # (+1)(+1)(+1) = +1
            ("increase", 1, "decrease", True),  # (+1)(+1)(−1) = −1
            ("decrease", 1, "increase", True),
            ("decrease", 1, "decrease", False),
            ("increase", -1, "increase", True),  # (+1)(−1)(+1) = −1
            ("increase", -1, "decrease", False),
            ("decrease", -1, "increase", False),
            ("decrease", -1, "decrease", True),  # (−1)(−1)(−1) = −1
        ],
    )
    def test_declared_relation(self, d1, effect, d2, conflicts):
        a = goal("ga", owner="u1", metric="m1", direction=d1)
        b = goal("gb", owner="u2", metric="m2", direction=d2)
        found = pair(a, b, {("m1", "m2"): effect})
        assert (found is not None) == conflicts
        if found:
            assert found.effect == effect
            assert found.severity == 1

    @pytest.mark.parametrize(
        "d1, d2, conflicts",
        [
            ("increase", "increase", False),
            ("increase", "decrease", True),
            ("decrease", "increase", True),
            ("decrease", "decrease", False),
        ],
    )
    def test_same_metric_has_effect_plus_1(self, d1, d2, conflicts):
        a = goal("ga", owner="u1", metric="m", direction=d1)
        b = goal("gb", owner="u2", metric="m", direction=d2)
        found = pair(a, b)
        assert (found is not None) == conflicts
        if found:
            assert (found.effect, found.metric_path) == (1, ("m",))

    @pytest.mark.parametrize("other", ["increase", "decrease", "maintain"])
    def test_maintain_never_conflicts(self, other):
        a = goal("ga", owner="u1", metric="m", direction="maintain")
        b = goal("gb", owner="u2", metric="m", direction=other)
        assert pair(a, b) is None
        assert pair(b, a) is None
        c = goal("gc", owner="u2", metric="n", direction=other)
        assert pair(a, c, {("m", "n"): -1}) is None

    def test_no_declared_relation_no_conflict(self):
        a = goal("ga", owner="u1", metric="m1", direction="increase")
        b = goal("gb", owner="u2", metric="m2", direction="decrease")
        assert pair(a, b) is None
        assert pair(a, b, {("m1", "other"): 1, ("other", "m2"): 1}) is None

    def test_only_direct_relations_count(self):
        # a raises b, b lowers c: through b, increase a and increase c would pull apart,
        # but goals on a and c are not compared through b.
        a = goal("ga", owner="u1", metric="a")
        c = goal("gc", owner="u2", metric="c")
        assert pair(a, c, {("a", "b"): 1, ("b", "c"): -1}) is None

    @pytest.mark.parametrize("status", ["proposed", "retired"])
    def test_only_active_goals_conflict(self, status):
        a = goal("ga", owner="u1", metric="m", direction="increase")
        b = goal("gb", owner="u2", metric="m", direction="decrease", status=status)
        assert pair(a, b) is None
        assert detect([a, b], {}, NO_MOMENTS) == []

    def test_the_pair_is_reported_in_key_order_whichever_way_it_is_asked(self):
        a = goal("alpha", owner="u1", metric="m", direction="increase", incentive_weight=0.2)
        b = goal("beta", owner="u2", metric="m", direction="decrease")
        assert pair(a, b) == pair(b, a)
        assert (pair(b, a).goal_a, pair(b, a).incentive_a) == ("alpha", 0.2)


class TestPeriods:
    @pytest.mark.parametrize(
        "a, b, overlap",
        [
            ((None, None), (None, None), True),
            ((date(2026, 1, 1), date(2026, 3, 31)), (date(2026, 4, 1), None), False),
            ((date(2026, 1, 1), date(2026, 3, 31)), (None, date(2025, 12, 31)), False),
            ((date(2026, 1, 1), date(2026, 6, 30)), (date(2026, 4, 1), None), True),
            ((date(2026, 1, 1), None), (None, date(2026, 1, 1)), True),  # one shared day
            ((date(2026, 1, 1), date(2026, 1, 31)), (date(2026, 1, 31), date(2026, 2, 28)), True),
            ((None, date(2026, 1, 1)), (date(2030, 1, 1), None), False),
            ((None, None), (date(2030, 1, 1), date(2030, 1, 2)), True),  # open ends
        ],
    )
    def test_periods_overlap(self, a, b, overlap):
        ga = goal("ga", period_start=a[0], period_end=a[1])
        gb = goal("gb", period_start=b[0], period_end=b[1])
        assert periods_overlap(ga, gb) is overlap
        assert periods_overlap(gb, ga) is overlap

    def test_disjoint_periods_never_conflict(self):
        a = goal("ga", owner="u1", metric="m", period_end=date(2026, 3, 31))
        b = goal("gb", owner="u2", metric="m", direction="decrease", period_start=date(2026, 4, 1))
        assert pair(a, b) is None
        b_earlier = goal(
            "gb", owner="u2", metric="m", direction="decrease", period_start=date(2026, 3, 31)
        )
        assert pair(a, b_earlier) is not None


class TestScope:
    def test_shared_touchpoints(self):
        a = goal("ga", touchpoints=("t1", "t2"))
        b = goal("gb", touchpoints=("t2", "t3"))
        assert shared_scope(a, b) == {"t2"}

    def test_disjoint_touchpoints_do_not_overlap(self):
        a = goal("ga", owner="u1", metric="m", touchpoints=("t1",))
        b = goal("gb", owner="u2", metric="m", direction="decrease", touchpoints=("t2",))
        assert shared_scope(a, b) is None
        assert pair(a, b) is None

    def test_a_goal_on_no_touchpoint_acts_everywhere(self):
        a = goal("ga", owner="u1", metric="m")
        b = goal("gb", owner="u2", metric="m", direction="decrease", touchpoints=("t1", "t2"))
        assert shared_scope(a, b) == shared_scope(b, a) == {"t1", "t2"}
        assert pair(a, b).shared_touchpoints == ("t1", "t2")

    def test_neither_names_a_touchpoint(self):
        a = goal("ga", owner="u1", metric="m")
        b = goal("gb", owner="u2", metric="m", direction="decrease")
        assert shared_scope(a, b) == frozenset()
        conflict = pair(a, b)
        assert conflict.shared_touchpoints == ()


class TestSeverity:
    def conflict(self, a_touchpoints=(), b_touchpoints=(), a_incentive=0.0, b_incentive=0.0):
        a = goal(
            "ga", owner="u1", metric="m", touchpoints=a_touchpoints, incentive_weight=a_incentive
        )
        b = goal(
            "gb", owner="u2", metric="m", direction="decrease", touchpoints=b_touchpoints,
            incentive_weight=b_incentive,
        )
        return pair(a, b, moments={"moment"})

    def test_base_severity_is_1(self):
        assert self.conflict(("t",), ("t",)).severity == 1

    def test_a_moment_of_truth_in_the_shared_scope_adds_1(self):
        assert self.conflict(("moment",), ("moment", "t")).severity == 1 + 1

    def test_a_moment_of_truth_outside_the_shared_scope_adds_nothing(self):
        conflict = self.conflict(("moment", "t"), ("t",))
        assert conflict.shared_touchpoints == ("t",)
        assert conflict.severity == 1

    def test_a_goal_on_no_touchpoint_shares_the_others_moment(self):
        assert self.conflict((), ("moment",)).severity == 1 + 1

    def test_no_touchpoint_on_either_side_gets_no_moment_bonus(self):
        assert self.conflict((), ()).severity == 1

    def test_several_moments_add_1_only(self):
        a = goal("ga", owner="u1", metric="m", touchpoints=("m1", "m2"))
        b = goal("gb", owner="u2", metric="m", direction="decrease", touchpoints=("m1", "m2"))
        assert pair(a, b, moments={"m1", "m2"}).severity == 1 + 1

    @pytest.mark.parametrize(
        "a_incentive, b_incentive, bonus",
        [(0, 0, 0), (0.4, 0, 1), (0, 0.1, 1), (0.4, 0.1, 0), (0.01, 0, 1)],
    )
    def test_exactly_one_incentive_adds_1(self, a_incentive, b_incentive, bonus):
        conflict = self.conflict(a_incentive=a_incentive, b_incentive=b_incentive)
        assert conflict.severity == 1 + bonus
        assert (conflict.incentive_a, conflict.incentive_b) == (a_incentive, b_incentive)

    def test_severity_3_at_most(self):
        assert self.conflict(("moment",), ("moment",), a_incentive=1).severity == 3


# Full and incremental detection ----------------------------------------------------------------

METRICS = ["m1", "m2"]
TOUCHPOINTS = ["t1", "t2"]
DAYS = [None, date(2026, 1, 1), date(2026, 4, 1), date(2026, 7, 1)]


@st.composite
def goal_sets(draw):
    count = draw(st.integers(min_value=0, max_value=8))
    goals = []
    for i in range(count):
        start, end = draw(st.sampled_from(DAYS)), draw(st.sampled_from(DAYS))
        if start is not None and end is not None and end < start:
            start, end = end, start
        goals.append(
            goal(
                f"g{i}",
                owner=draw(st.sampled_from(["u1", "u2", "u3"])),
                metric=draw(st.sampled_from(METRICS)),
                direction=draw(st.sampled_from(["increase", "decrease", "maintain"])),
                status=draw(st.sampled_from(["active", "active", "active", "retired"])),
                incentive_weight=draw(st.sampled_from([0.0, 0.0, 0.3])),
                touchpoints=tuple(draw(st.sets(st.sampled_from(TOUCHPOINTS), max_size=2))),
                period_start=start,
                period_end=end,
            )
        )
    relations = draw(
        st.dictionaries(
            st.tuples(st.sampled_from(METRICS), st.sampled_from(METRICS)).filter(
                lambda p: p[0] != p[1]
            ),
            st.sampled_from([1, -1]),
            max_size=4,
        )
    )
    moments = frozenset(draw(st.sets(st.sampled_from(TOUCHPOINTS), max_size=2)))
    changed = draw(st.sets(st.sampled_from([g.key for g in goals]), max_size=3)) if goals else set()
    return goals, relations, moments, changed


def _keyed(conflicts):
    return sorted(conflicts, key=lambda c: (c.goal_a, c.goal_b))


@settings(max_examples=100, deadline=None)
@given(goal_sets())
def test_detect_around_is_detect_restricted_to_the_changed_goals(case):
    goals, relations, moments, changed_keys = case
    changed = [g for g in goals if g.key in changed_keys]
    full = detect(goals, relations, moments)
    around = detect_around(changed, goals, relations, moments)
    expected = [c for c in full if c.goal_a in changed_keys or c.goal_b in changed_keys]
    assert _keyed(around) == _keyed(expected)
    assert len({(c.goal_a, c.goal_b) for c in around}) == len(around)  # no pair twice


@settings(max_examples=100, deadline=None)
@given(goal_sets())
def test_detect_is_every_conflicting_pair_once(case):
    goals, relations, moments, _ = case
    full = detect(goals, relations, moments)
    by_pair = {(c.goal_a, c.goal_b): c for c in full}
    assert len(by_pair) == len(full)
    for i, a in enumerate(goals):
        for b in goals[i + 1:]:
            key = tuple(sorted((a.key, b.key)))
            assert by_pair.get(key) == detect_pair(a, b, relations, moments)
    for c in full:
        assert c.goal_a < c.goal_b
        assert 1 <= c.severity <= 3
    assert _keyed(detect(list(reversed(goals)), relations, moments)) == _keyed(full)


def test_detect_around_with_nothing_changed_finds_nothing():
    a = goal("ga", owner="u1", metric="m")
    b = goal("gb", owner="u2", metric="m", direction="decrease")
    assert detect([a, b], {}, NO_MOMENTS) != []
    assert detect_around([], [a, b], {}, NO_MOMENTS) == []


def test_detect_around_a_changed_goal_no_longer_active():
    a = goal("ga", owner="u1", metric="m")
    b = goal("gb", owner="u2", metric="m", direction="decrease", status="retired")
    assert detect_around([b], [a, b], {}, NO_MOMENTS) == []
