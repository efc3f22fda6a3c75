"""Rings kept up to date locally equal rings derived from scratch.

Handoff and touchpoint writes re-derive the rings only when the change can move one
(service.org_units.service.update_rings). After any sequence of such writes, every unit's
stored ring must be what ``compute_rings`` gives over the whole organisation. Hypothesis
draws the sequences.
"""

from __future__ import annotations

import itertools
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from service.api_keys.service import SYSTEM
from service.core.errors import DomainError
from service.handoffs import service as handoffs_service
from service.handoffs.models import Handoff
from service.handoffs.schemas import HandoffUpdate
from service.journeys import service as journeys_service
from service.journeys.schemas import TouchpointUpdate
from service.org_units import repository
from service.org_units.rings import compute_rings
from tests.factories import make_handoff, make_journey, make_touchpoint, make_unit

UNITS = 7
_example = itertools.count()

unit = st.integers(0, UNITS - 1)
new_handoff = st.fixed_dictionaries(
    {"op": st.just("handoff"), "pair": st.tuples(unit, unit),
     "status": st.sampled_from(["active", "active", "active", "retired"])}
)
new_touchpoint = st.fixed_dictionaries({"op": st.just("touchpoint"), "owner": unit})
operations = st.one_of(
    new_handoff,
    st.fixed_dictionaries(
        {"op": st.just("move_handoff"), "handoff": st.integers(0, 30),
         "patch": st.one_of(
             st.fixed_dictionaries({"from_unit": unit}),
             st.fixed_dictionaries({"to_unit": unit}),
             st.fixed_dictionaries({"status": st.sampled_from(["active", "retired"])}),
             st.fixed_dictionaries({"deliverable": st.just("Renamed")}),
         )}
    ),
    st.fixed_dictionaries({"op": st.just("drop_handoff"), "handoff": st.integers(0, 30)}),
    new_touchpoint,
    st.fixed_dictionaries(
        {"op": st.just("move_touchpoint"), "touchpoint": st.integers(0, 30), "owner": unit}
    ),
    st.fixed_dictionaries({"op": st.just("drop_touchpoint"), "touchpoint": st.integers(0, 30)}),
)
# An organisation starts with handoffs and a touchpoint or two, then changes.
programs = st.tuples(
    st.lists(st.one_of(new_handoff, new_handoff, new_touchpoint), min_size=4, max_size=14),
    st.lists(operations, min_size=1, max_size=20),
).map(lambda parts: parts[0] + parts[1])


class Org:
    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.units: list[str] = []
        self.handoffs: list[str] = []
        self.touchpoints: list[str] = []
        self.numbers = itertools.count()

    async def build(self, session: AsyncSession) -> None:
        await make_journey(session, key=f"{self.prefix}-j", stages=["s"])
        for i in range(UNITS):
            self.units.append((await make_unit(session, key=f"{self.prefix}-u{i}")).key)

    async def run(self, session: AsyncSession, op: dict[str, Any]) -> None:
        kind = op["op"]
        if kind == "handoff" and op["pair"][0] != op["pair"][1]:  # never a unit to itself
            provider, recipient = (self.units[i] for i in op["pair"])
            key = f"{self.prefix}-h{next(self.numbers)}"
            await make_handoff(session, key=key, from_unit=provider, to_unit=recipient,
                               status=op["status"])
            self.handoffs.append(key)
        elif kind == "move_handoff" and self.handoffs:
            key = self.handoffs[op["handoff"] % len(self.handoffs)]
            patch = {k: self.units[v] if k.endswith("_unit") else v for k, v in op["patch"].items()}
            try:
                update = HandoffUpdate(**patch)
            except ValueError:
                return
            await handoffs_service.update(session, SYSTEM, key, update)
        elif kind == "drop_handoff" and self.handoffs:
            key = self.handoffs.pop(op["handoff"] % len(self.handoffs))
            await handoffs_service.delete(session, SYSTEM, key)
        elif kind == "touchpoint":
            key = f"{self.prefix}-t{next(self.numbers)}"
            await make_touchpoint(session, key=key, journey=f"{self.prefix}-j", stage="s",
                                  owner=self.units[op["owner"]])
            self.touchpoints.append(key)
        elif kind == "move_touchpoint" and self.touchpoints:
            key = self.touchpoints[op["touchpoint"] % len(self.touchpoints)]
            patch = TouchpointUpdate(owner=self.units[op["owner"]])
            await journeys_service.update_touchpoint(session, SYSTEM, key, patch)
        elif kind == "drop_touchpoint" and self.touchpoints:
            key = self.touchpoints.pop(op["touchpoint"] % len(self.touchpoints))
            await journeys_service.delete_touchpoint(session, SYSTEM, key)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(program=programs)
async def test_rings_kept_locally_equal_rings_derived_from_scratch(session, program):
    savepoint = await session.begin_nested()
    try:
        org = Org(f"ring{next(_example)}")
        await org.build(session)
        for op in program:
            try:
                async with session.begin_nested():
                    await org.run(session, op)
            except DomainError:
                # A refused write (a handoff from a unit to itself) changes nothing.
                org.handoffs = [k for k in org.handoffs if await _exists(session, k)]
        await session.flush()
        session.expire_all()
        stored = await repository.current_rings(session)
        derived = compute_rings(*await repository.ring_inputs(session))
        assert stored == {unit_id: derived.get(unit_id) for unit_id in stored}
    finally:
        await savepoint.rollback()


async def _exists(session: AsyncSession, key: str) -> bool:
    return await session.scalar(select(Handoff.id).where(Handoff.key == key)) is not None
