"""Per-request DataLoaders: every relation a query follows is loaded in batches.

Each loader's batch function makes one service call for all the keys collected in a tick,
so the number of SQL statements a query sends does not grow with the size of its answer.
Results come back in key order, ``None`` (or an empty list) where nothing is visible.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Awaitable, Callable, Hashable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession
from strawberry.dataloader import DataLoader

from service.alignment import conflict_service
from service.alignment import service as alignment_service
from service.alignment.repository import Window
from service.goals import service as goals_service
from service.handoffs import service as handoffs_service
from service.handoffs.constants import EventStatus
from service.journeys import service as journeys_service
from service.metrics import service as metrics_service
from service.org_units import service as units_service
from service.partner_agreements import service as agreements_service

if TYPE_CHECKING:
    from service.graphql.context import Context

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


def _by_key(keys: Sequence[K], found: dict[K, V], default: V) -> list[V]:
    return [found.get(key, default) for key in keys]


def _grouped(rows: Sequence[Any], attribute: str) -> dict[UUID, list[Any]]:
    groups: dict[UUID, list[Any]] = defaultdict(list)
    for row in rows:
        groups[getattr(row, attribute)].append(row)
    return groups


class Loaders:
    def __init__(self, context: Context) -> None:
        self._context = context
        self.unit = self._loader(units_service.get_many)
        self.journey = self._loader(journeys_service.get_many_journeys)
        self.touchpoint = self._loader(journeys_service.get_many_touchpoints)
        self.handoff = self._loader(handoffs_service.get_many)
        self.goal = self._loader(goals_service.get_many)
        self.metric = self._loader(metrics_service.get_many)
        self.agreement = self._loader(agreements_service.get_many)
        # These two return one list per id already, in id order.
        self.touchpoints_by_journey = self._loader(journeys_service.list_touchpoints_by_journey_ids)
        self.touchpoints_by_owner = self._loader(journeys_service.list_touchpoints_by_owner_ids)
        self.handoffs_given = self._group_loader(
            lambda s, p, ids: handoffs_service.list_by_unit_ids(s, p, ids, side="from"),
            "from_unit_id",
        )
        self.handoffs_received = self._group_loader(
            lambda s, p, ids: handoffs_service.list_by_unit_ids(s, p, ids, side="to"),
            "to_unit_id",
        )
        self.goals_by_owner = self._group_loader(goals_service.list_by_owner_ids, "owner_id")
        self.goals_by_agreement = self._group_loader(
            goals_service.list_by_agreement_ids, "agreement_id"
        )
        self.agreements_by_partner = self._group_loader(
            agreements_service.list_by_partner_ids, "partner_id"
        )
        self.goals_by_touchpoint = self._map_loader(goals_service.list_by_touchpoint_ids, [])
        self.upstream = self._map_loader(alignment_service.upstream_depths, [])
        self.goal_touchpoint_ids = self._map_loader(
            lambda s, _p, ids: goals_service.touchpoint_ids_by_goal_ids(s, ids), []
        )
        self.goal_contribution_ids = self._map_loader(
            lambda s, _p, ids: goals_service.contribution_ids_by_goal_ids(s, ids), []
        )
        # Keyed by (id, window): one batch per window among the keys collected.
        self.handoff_score = self._windowed(alignment_service.handoff_scores)
        self.touchpoint_score = self._windowed(alignment_service.touchpoint_scores)
        self.unit_score = self._windowed(alignment_service.unit_scores)
        self.partner_score = self._windowed(alignment_service.partner_scores)
        self.journey_score = self._windowed(alignment_service.journey_scores)
        # Keyed by (handoff id, first, status): the first page of each handoff's events.
        self.events = DataLoader(self._first_events)
        # Keyed by (parent id, first): the first page of each parent's nested list.
        self.reviews = self._first_page(handoffs_service.first_reviews)
        self.feedback = self._first_page(journeys_service.first_feedback)
        self.check_ins = self._first_page(goals_service.first_check_ins)
        self.conflicts = self._first_page(conflict_service.first_conflicts_by_goal_ids)

    async def _call(self, fn: Callable[..., Awaitable[Any]], *args: Any) -> Any:
        async with self._context.db() as session:
            return await fn(session, self._context.principal, *args)

    def _loader(self, get_many: Callable[[AsyncSession, Any, list[UUID]], Awaitable[list[Any]]]):
        async def load(ids: list[UUID]) -> list[Any]:
            return await self._call(get_many, list(ids))

        return DataLoader(load)

    def _group_loader(self, list_by: Callable[..., Awaitable[Sequence[Any]]], attribute: str):
        async def load(ids: list[UUID]) -> list[list[Any]]:
            rows = await self._call(list_by, list(ids))
            return _by_key(ids, _grouped(rows, attribute), [])

        return DataLoader(load)

    def _map_loader(self, by_ids: Callable[..., Awaitable[dict[Any, Any]]], default: Any):
        async def load(ids: list[UUID]) -> list[Any]:
            return _by_key(ids, await self._call(by_ids, list(ids)), default)

        return DataLoader(load)

    def _windowed(self, scores: Callable[..., Awaitable[dict[UUID, Any]]]):
        async def load(keys: list[tuple[UUID, Window]]) -> list[Any]:
            by_window: dict[Window, list[UUID]] = defaultdict(list)
            for subject_id, window in keys:
                by_window[window].append(subject_id)
            found: dict[tuple[UUID, Window], Any] = {}
            for window, ids in by_window.items():
                for subject_id, score in (await self._call(scores, ids, window)).items():
                    found[(subject_id, window)] = score
            return _by_key(keys, found, None)

        return DataLoader(load)

    def _first_page(self, first_rows: Callable[..., Awaitable[dict[UUID, list[Any]]]]):
        """Loads ``first + 1`` rows per parent (one more, to know whether a page follows)."""

        async def load(keys: list[tuple[UUID, int]]) -> list[list[Any]]:
            by_size: dict[int, list[UUID]] = defaultdict(list)
            for parent_id, first in keys:
                by_size[first].append(parent_id)
            found: dict[tuple[UUID, int], list[Any]] = {}
            for first, ids in by_size.items():
                rows = await self._call(
                    lambda s, p, ids=ids, first=first: first_rows(s, p, ids, limit=first + 1)
                )
                for parent_id, parent_rows in rows.items():
                    found[(parent_id, first)] = parent_rows
            return _by_key(keys, found, [])

        return DataLoader(load)

    async def _first_events(self, keys: list[tuple[UUID, int, EventStatus | None]]) -> list[Any]:
        by_page: dict[tuple[int, EventStatus | None], list[UUID]] = defaultdict(list)
        for handoff_id, first, status in keys:
            by_page[(first, status)].append(handoff_id)
        found: dict[tuple[UUID, int, EventStatus | None], list[Any]] = {}
        for (first, status), ids in by_page.items():
            # One more than asked, to know whether another page follows.
            events = await self._call(
                lambda s, p, ids=ids, first=first, status=status: handoffs_service.first_events(
                    s, p, ids, limit=first + 1, status=status
                )
            )
            for handoff_id, rows in events.items():
                found[(handoff_id, first, status)] = rows
        return _by_key(keys, found, [])
