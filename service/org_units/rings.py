"""Rings: how far each unit sits from the customer (pure, no I/O)."""

from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Hashable, Iterable
from typing import TypeVar

NodeT = TypeVar("NodeT", bound=Hashable)


def compute_rings(
    touchpoint_owners: Iterable[NodeT], handoffs: Iterable[tuple[NodeT, NodeT]]
) -> dict[NodeT, int]:
    """Ring 1 owns a touchpoint; a unit handing work to ring n is at most ring n + 1.

    ``handoffs`` are (provider, recipient) pairs. Units absent from the result are
    unconnected: no chain of handoffs leads from them to a touchpoint owner.
    """
    providers_of: dict[NodeT, set[NodeT]] = defaultdict(set)
    for provider, recipient in handoffs:
        providers_of[recipient].add(provider)
    rings: dict[NodeT, int] = {}
    queue: deque[NodeT] = deque()
    for owner in touchpoint_owners:
        if owner not in rings:
            rings[owner] = 1
            queue.append(owner)
    while queue:  # breadth-first, so the first ring found is the shortest distance
        unit = queue.popleft()
        for provider in providers_of[unit]:
            if provider not in rings:
                rings[provider] = rings[unit] + 1
                queue.append(provider)
    return rings
