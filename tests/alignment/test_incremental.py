"""Incremental conflict detection equals full detection.

Every write re-detects only the pairs it can affect (service.alignment.conflict_service).
After any sequence of goal, relation and moment-of-truth writes, the stored conflicts must
be exactly what a full re-detection of every pair stores: same pairs, same paths, effects,
severities, reasons, scopes, incentives and status. Hypothesis draws the sequences.
"""

from __future__ import annotations

import itertools
from datetime import date
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from service.alignment import conflict_service
from service.alignment.models import Conflict
from service.api_keys.service import SYSTEM
from service.core.errors import DomainError
from service.core.pagination import PageRequest
from service.goals import service as goals_service
from service.goals.models import Goal
from service.goals.schemas import GoalCreate, GoalUpdate
from service.journeys import service as journeys_service
from service.journeys.schemas import TouchpointUpdate
from service.metrics import service as metrics_service
from service.metrics.models import MetricRelation
from service.metrics.schemas import MetricRelationCreate, MetricRelationUpdate
from tests.factories import make_metric, make_touchpoint, make_unit

OWNERS = 3
METRICS = 3
TOUCHPOINTS = 3
_example = itertools.count()

directions = st.sampled_from(["increase", "decrease"] * 3 + ["maintain"])
touchpoint_sets = st.sets(st.integers(0, TOUCHPOINTS - 1), max_size=2)
periods = st.sampled_from([(None, None)] * 3 + [("2026-01-01", "2026-03-31"), ("2026-06-01", None)])

create_goal = st.fixed_dictionaries(
    {
        "op": st.just("create_goal"),
        "owner": st.integers(0, OWNERS - 1),
        "metric": st.integers(0, METRICS - 1),
        "direction": directions,
        "touchpoints": touchpoint_sets,
        "incentive": st.sampled_from([0.0, 1.0]),
        "period": periods,
        "status": st.sampled_from(["active"] * 5 + ["retired"]),
    }
)
patch_goal = st.fixed_dictionaries(
    {
        "op": st.just("patch_goal"),
        "goal": st.integers(0, 50),
        "patch": st.one_of(
            st.fixed_dictionaries({"direction": directions}),
            st.fixed_dictionaries({"metric": st.integers(0, METRICS - 1)}),
            st.fixed_dictionaries({"owner": st.integers(0, OWNERS - 1)}),
            st.fixed_dictionaries({"touchpoints": touchpoint_sets}),
            st.fixed_dictionaries({"incentive_weight": st.sampled_from([0.0, 2.0])}),
            st.fixed_dictionaries({"period": periods}),
            st.fixed_dictionaries({"status": st.sampled_from(["active", "retired"])}),
            st.fixed_dictionaries({"title": st.just("Renamed")}),
        ),
    }
)
delete_goal = st.fixed_dictionaries({"op": st.just("delete_goal"), "goal": st.integers(0, 50)})
relate = st.fixed_dictionaries(
    {
        "op": st.just("relate"),
        "pair": st.tuples(st.integers(0, METRICS - 1), st.integers(0, METRICS - 1)),
        "effect": st.sampled_from([1, -1]),
    }
)
change_relation = st.fixed_dictionaries(
    {
        "op": st.just("change_relation"),
        "relation": st.integers(0, 20),
        "patch": st.one_of(
            st.fixed_dictionaries({"effect": st.sampled_from([1, -1])}),
            st.fixed_dictionaries({"to_metric": st.integers(0, METRICS - 1)}),
        ),
    }
)
unrelate = st.fixed_dictionaries({"op": st.just("unrelate"), "relation": st.integers(0, 20)})
moment = st.fixed_dictionaries(
    {"op": st.just("moment"), "touchpoint": st.integers(0, TOUCHPOINTS - 1), "on": st.booleans()}
)
resolve = st.fixed_dictionaries({"op": st.just("resolve"), "conflict": st.integers(0, 20)})

# A company starts with goals and relations, then changes: the changes are what incremental
# detection must get right.
programs = st.tuples(
    st.lists(st.one_of(create_goal, create_goal, relate), min_size=4, max_size=12),
    st.lists(
        st.one_of(
            create_goal, patch_goal, patch_goal, patch_goal, delete_goal,
            relate, change_relation, unrelate, moment, resolve,
        ),
        min_size=1,
        max_size=20,
    ),
).map(lambda parts: parts[0] + parts[1])


class Org:
    """A small company, made once per example, that programs write into."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.owners: list[str] = []
        self.metrics: list[str] = []
        self.touchpoints: list[str] = []
        self.goals: list[str] = []
        self.relations: list[str] = []
        self._goal_numbers = itertools.count()

    async def build(self, session: AsyncSession) -> None:
        for i in range(OWNERS):
            self.owners.append((await make_unit(session, key=f"{self.prefix}-u{i}")).key)
        for i in range(METRICS):
            self.metrics.append((await make_metric(session, key=f"{self.prefix}-m{i}")).key)
        for i in range(TOUCHPOINTS):
            touchpoint = await make_touchpoint(session, key=f"{self.prefix}-t{i}")
            self.touchpoints.append(touchpoint.key)

    def goal_fields(self, op: dict[str, Any]) -> dict[str, Any]:
        fields: dict[str, Any] = {}
        for name, value in op.items():
            if name == "owner":
                fields["owner"] = self.owners[value]
            elif name == "metric":
                fields["metric"] = self.metrics[value]
            elif name == "touchpoints":
                fields["touchpoints"] = sorted(self.touchpoints[i] for i in value)
            elif name == "incentive":
                fields["incentive_weight"] = value
            elif name == "period":
                fields["period_start"], fields["period_end"] = (
                    date.fromisoformat(v) if v else None for v in value
                )
            elif name != "op":
                fields[name] = value
        return fields

    async def run(self, session: AsyncSession, op: dict[str, Any]) -> None:
        kind = op["op"]
        if kind == "create_goal":
            key = f"{self.prefix}-g{next(self._goal_numbers)}"
            fields = self.goal_fields(op)
            data = GoalCreate(key=key, title="A goal", kind="ends", **fields)
            await goals_service.create(session, SYSTEM, data)
            self.goals.append(key)
        elif kind == "patch_goal" and self.goals:
            key = self.goals[op["goal"] % len(self.goals)]
            patch = GoalUpdate(**self.goal_fields(op["patch"]))
            await goals_service.update(session, SYSTEM, key, patch)
        elif kind == "delete_goal" and self.goals:
            key = self.goals.pop(op["goal"] % len(self.goals))
            await goals_service.delete(session, SYSTEM, key)
        elif kind == "relate":
            source, target = (self.metrics[i] for i in op["pair"])
            data = MetricRelationCreate(from_metric=source, to_metric=target, effect=op["effect"])
            self.relations.append((await metrics_service.create_relation(session, SYSTEM, data)).key)
        elif kind == "change_relation" and self.relations:
            key = self.relations[op["relation"] % len(self.relations)]
            patch = dict(op["patch"])
            if "to_metric" in patch:
                patch["to_metric"] = self.metrics[patch["to_metric"]]
            await metrics_service.update_relation(session, SYSTEM, key, MetricRelationUpdate(**patch))
        elif kind == "unrelate" and self.relations:
            key = self.relations.pop(op["relation"] % len(self.relations))
            await metrics_service.delete_relation(session, SYSTEM, key)
        elif kind == "moment":
            key = self.touchpoints[op["touchpoint"]]
            patch = TouchpointUpdate(moment_of_truth=op["on"])
            await journeys_service.update_touchpoint(session, SYSTEM, key, patch)
        elif kind == "resolve":
            listed, _ = await conflict_service.list_conflicts(
                session, SYSTEM, PageRequest(limit=100), status=None
            )
            open_ones = [c for c in listed if c.status == "open"]
            if open_ones:
                chosen = open_ones[op["conflict"] % len(open_ones)]
                await conflict_service.resolve_conflict(session, SYSTEM, chosen.id, "agreed")


async def stored(session: AsyncSession) -> dict[tuple[str, str], tuple[Any, ...]]:
    """The stored conflicts, by their goals' keys, without ids and timestamps."""
    await session.flush()
    session.expire_all()
    key_of = {g.id: g.key for g in (await session.scalars(select(Goal))).all()}
    rows = (await session.scalars(select(Conflict))).all()
    return {
        (key_of[c.goal_a_id], key_of[c.goal_b_id]): (
            tuple(c.metric_path), c.effect, c.severity, tuple(c.reasons),
            tuple(c.shared_touchpoints), c.incentive_a, c.incentive_b, c.status,
            c.goal_a_version, c.goal_b_version,
        )
        for c in rows
    }


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(program=programs)
async def test_incremental_detection_equals_full_detection(session, program):
    savepoint = await session.begin_nested()
    try:
        org = Org(f"inc{next(_example)}")
        await org.build(session)
        for op in program:
            try:
                async with session.begin_nested():
                    await org.run(session, op)
            except DomainError:
                # Refused writes (a duplicate relation, a relation onto its own metric, a
                # period that ends before it starts) change nothing: the program goes on.
                org.relations = [
                    key
                    for key in org.relations
                    if await session.scalar(select(MetricRelation.id).where(MetricRelation.key == key))
                ]
        incremental = await stored(session)
        await conflict_service.refresh_conflicts(session)
        assert incremental == await stored(session)
    finally:
        await savepoint.rollback()


async def test_the_property_sees_conflicts(session):
    """The generated programs do open conflicts: the property above is not vacuous."""
    org = Org("seen")
    await org.build(session)
    for direction in ("increase", "decrease"):
        await org.run(session, {"op": "create_goal", "owner": 0 if direction == "increase" else 1,
                                "metric": 0, "direction": direction, "touchpoints": set(),
                                "incentive": 0.0, "period": (None, None), "status": "active"})
    conflicts = await stored(session)
    assert list(conflicts) == [(f"{org.prefix}-g0", f"{org.prefix}-g1")]
