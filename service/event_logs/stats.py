"""Ranks for medians and percentiles (SCORING.md): nearest rank, p-th percentile = the value
at rank ceil(p/100 × n); the median of an even count is the mean of the two middle values."""

from __future__ import annotations


def nearest_rank(n: int, p: int) -> int:
    """The 1-based rank of the p-th percentile of n sorted values (0 when n is 0)."""
    return (p * n + 99) // 100


def median_ranks(n: int) -> tuple[int, int]:
    """The ranks whose values' mean is the median: the same rank twice when n is odd."""
    if n == 0:
        return 0, 0
    return (n + 1) // 2, n // 2 + 1
