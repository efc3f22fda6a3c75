"""What a caller sees of the references in a row it may read: one rule for both doors.

A reference shows (a key in REST, an object in GraphQL) only when the caller may read the
row it names. Whether it may is asked of the owning domain's scoped ``get_many`` (its
repository's ``readable(principal)``), the same calls GraphQL's DataLoaders make, so REST's
``to_read`` and the GraphQL types cannot disagree. For an internal key everything shows; for
a partner key that is its own unit, its own agreements, their goals, the metrics those goals
are measured by, and no touchpoint. A hidden single reference reads as null, a hidden member
of a list is left out.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from service.core.permissions import Principal

if TYPE_CHECKING:
    from service.handoffs.models import Handoff
    from service.handoffs.schemas import HandoffRead


@dataclass(frozen=True, slots=True)
class Visible:
    """The ids among those asked about that the caller may read (``None``: all of them)."""

    ids: frozenset[UUID] | None

    def __contains__(self, id_: object) -> bool:
        return self.ids is None or id_ in self.ids

    def key(self, id_: UUID | None, keys: dict[UUID, str]) -> str | None:
        return keys.get(id_) if id_ is not None and id_ in self else None

    def keys(self, ids: Iterable[UUID], keys: dict[UUID, str]) -> list[str]:
        return sorted(keys[i] for i in ids if i in self)


async def visible(
    session: AsyncSession,
    principal: Principal | None,
    *,
    units: Iterable[UUID | None] = (),
    agreements: Iterable[UUID | None] = (),
    metrics: Iterable[UUID | None] = (),
    touchpoints: Iterable[UUID | None] = (),
    goals: Iterable[UUID | None] = (),
) -> Visible:
    """Which of these referenced rows ``principal`` may read (``None``: the system)."""
    if principal is None or not principal.is_partner:
        return Visible(None)  # internal keys read every row: nothing to ask
    # Imported here: these services build their reads on this module.
    from service.goals import service as goals_service
    from service.journeys import service as journeys_service
    from service.metrics import service as metrics_service
    from service.org_units import service as units_service
    from service.partner_agreements import service as agreements_service

    found: set[UUID] = set()
    for get_many, ids in (
        (units_service.get_many, units),
        (agreements_service.get_many, agreements),
        (metrics_service.get_many, metrics),
        (journeys_service.get_many_touchpoints, touchpoints),
        (goals_service.get_many, goals),
    ):
        wanted = sorted({i for i in ids if i is not None})
        if wanted:
            rows = await get_many(session, principal, wanted)  # type: ignore[operator]
            found |= {row.id for row in rows if row is not None}
    return Visible(frozenset(found))


async def handoffs_to_read(
    session: AsyncSession, principal: Principal, handoffs: Sequence[Handoff]
) -> list[HandoffRead]:
    """Handoffs as the caller may see them: the units, touchpoint and agreement it may not
    read are null, as GraphQL's ``fromUnit``/``toUnit``/``touchpoint``/``agreement``."""
    from service.handoffs import service as handoffs_service

    reads = await handoffs_service.to_read(session, handoffs)
    shown = await visible(
        session,
        principal,
        units=[u for h in handoffs for u in (h.from_unit_id, h.to_unit_id)],
        touchpoints=[h.touchpoint_id for h in handoffs],
        agreements=[h.agreement_id for h in handoffs],
    )
    if shown.ids is None:
        return reads
    return [
        read.model_copy(
            update={
                "from_unit": read.from_unit if h.from_unit_id in shown else None,
                "to_unit": read.to_unit if h.to_unit_id in shown else None,
                "touchpoint": read.touchpoint if h.touchpoint_id in shown else None,
                "agreement": read.agreement if h.agreement_id in shown else None,
            }
        )
        for h, read in zip(handoffs, reads, strict=True)
    ]
