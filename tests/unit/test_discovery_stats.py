"""Medians and percentiles of discovery (docs/method.md §10): nearest rank, no HTTP.

The p-th percentile of n sorted values is the value at rank ⌈p ÷ 100 × n⌉ (counting from 1);
the median of an even count is the mean of the two middle values.
"""

from __future__ import annotations

import math
import statistics
from fractions import Fraction

from hypothesis import given, settings
from hypothesis import strategies as st

from service.event_logs.stats import median_ranks, nearest_rank


def at(values: list[int], rank: int) -> int:
    return sorted(values)[rank - 1]


def median_of(values: list[int]) -> float:
    low, high = median_ranks(len(values))
    return (at(values, low) + at(values, high)) / 2


def test_worked_example_transfers_per_case():
    """§10: transfers per case 0, 2, 2, 3: median (2 + 2) ÷ 2 = 2; p90 at ⌈3.6⌉ = 4 → 3."""
    per_case = [2, 3, 2, 0]
    assert median_ranks(4) == (2, 3)
    assert median_of(per_case) == 2
    assert nearest_rank(4, 90) == math.ceil(3.6) == 4
    assert at(per_case, nearest_rank(4, 90)) == 3


def test_worked_example_arcs():
    """§10: front → back waits 20, 60, 60, 240 (median 60, p90 240); back → front 30, 90
    (median 60, p90 at ⌈1.8⌉ = 2 → 90); back → legal 180 (p90 at ⌈0.9⌉ = 1)."""
    front_back = [60, 20, 240, 60]
    assert (median_of(front_back), at(front_back, nearest_rank(4, 90))) == (60, 240)
    back_front = [90, 30]
    assert nearest_rank(2, 90) == 2
    assert (median_of(back_front), at(back_front, nearest_rank(2, 90))) == ((30 + 90) / 2, 90)
    assert median_ranks(1) == (1, 1)
    assert nearest_rank(1, 90) == 1


def test_nothing_has_rank_0():
    assert nearest_rank(0, 90) == 0
    assert median_ranks(0) == (0, 0)


@settings(max_examples=100, deadline=None)
@given(st.integers(min_value=1, max_value=100_000), st.integers(min_value=1, max_value=100))
def test_nearest_rank_is_the_ceiling_of_p_percent_of_n(n, p):
    assert nearest_rank(n, p) == math.ceil(Fraction(p * n, 100))
    assert 1 <= nearest_rank(n, p) <= n


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=10_000), min_size=1, max_size=40))
def test_the_median_ranks_give_the_median(values):
    assert median_of(values) == statistics.median(values)
