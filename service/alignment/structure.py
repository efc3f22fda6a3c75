"""The company's structure as the alignment rules see it: units, handoffs, touchpoints,
goals (as facts), agreements, metric relations and stored conflicts, loaded once."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from service.alignment import findings as finding_rules
from service.alignment import repository
from service.alignment.constants import ConflictStatus
from service.alignment.models import Conflict
from service.alignment.scoring import EventStats, GoalFacts, customer_linked
from service.goals.models import Goal
from service.handoffs.models import Handoff
from service.journeys.models import Journey, Touchpoint
from service.metrics.models import Metric
from service.org_units.models import Unit
from service.partner_agreements.models import PartnerAgreement


@dataclass
class Structure:
    units: list[Unit]
    handoffs: list[Handoff]
    touchpoints: list[Touchpoint]
    journeys: list[Journey]
    goals: list[Goal]
    facts: list[GoalFacts]
    agreements: list[PartnerAgreement]
    relations: dict[tuple[str, str], int]
    conflicts: list[Conflict]
    unit_key: dict[UUID, str] = field(default_factory=dict)
    touchpoint_key: dict[UUID, str] = field(default_factory=dict)
    goal_key: dict[UUID, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.unit_key = {u.id: u.key for u in self.units}
        self.touchpoint_key = {t.id: t.key for t in self.touchpoints}
        self.goal_key = {g.id: g.key for g in self.goals}

    @cached_property
    def linked(self) -> dict[str, bool]:
        return customer_linked(self.facts)

    @cached_property
    def upstream_of(self) -> dict[UUID, list[Handoff]]:
        """The handoffs serving each touchpoint, by touchpoint id."""
        upstream: dict[UUID, list[Handoff]] = defaultdict(list)
        for h in self.handoffs:
            if h.touchpoint_id is not None:
                upstream[h.touchpoint_id].append(h)
        return upstream

    @cached_property
    def handoff_facts(self) -> dict[str, finding_rules.HandoffFacts]:
        return {f.key: f for f in handoff_facts(self)}

    @cached_property
    def open_conflict_goals(self) -> set[str]:
        # A slice holds the conflicts of its goals, whose other goal may lie outside it.
        return {
            self.goal_key[goal_id]
            for c in self.conflicts
            if c.status == ConflictStatus.open.value
            for goal_id in (c.goal_a_id, c.goal_b_id)
            if goal_id in self.goal_key
        }

    @cached_property
    def moments_of_truth(self) -> frozenset[str]:
        return frozenset(t.key for t in self.touchpoints if t.moment_of_truth)


#: Set on a session's ``info`` by read-only callers (GraphQL queries): one structure per session.
SNAPSHOT = "alignment.snapshot"


async def load_structure(session: AsyncSession) -> Structure:
    """The company's structure. A read-only session flagged with SNAPSHOT loads it once and
    reuses it for every score, conflict and finding of its request."""
    if session.info.get(SNAPSHOT):
        cached = session.info.get("alignment.structure")
        if cached is None:
            cached = session.info["alignment.structure"] = await _load_structure(session)
        return cached
    return await _load_structure(session)


async def _load_structure(session: AsyncSession) -> Structure:
    touchpoints = await repository.touchpoints(session)
    touchpoint_key = {t.id: t.key for t in touchpoints}
    metrics = {m.id: m for m in await repository.metrics(session)}
    touchpoint_links, contributions = await repository.goal_links(session)
    relations = {
        (metrics[r.from_metric_id].key, metrics[r.to_metric_id].key): r.effect
        for r in await repository.relations(session)
    }
    return _assemble(
        units=await repository.units(session),
        handoffs=await repository.handoffs(session),
        touchpoints=touchpoints,
        journeys=await repository.journeys(session),
        goals=await repository.goals(session),
        metrics=metrics,
        agreements=await repository.agreements(session),
        goal_touchpoints=[(g, touchpoint_key[t]) for g, t in touchpoint_links],
        contributions=contributions,
        relations=relations,
        conflicts=await repository.conflicts(session),
    )


def _assemble(
    *,
    units: list[Unit],
    handoffs: list[Handoff],
    touchpoints: list[Touchpoint],
    journeys: list[Journey],
    goals: list[Goal],
    metrics: dict[UUID, Metric],
    agreements: list[PartnerAgreement],
    goal_touchpoints: list[tuple[UUID, str]],
    contributions: list[tuple[UUID, UUID]],
    relations: dict[tuple[str, str], int],
    conflicts: list[Conflict],
) -> Structure:
    """A structure from its rows: goals become the facts the rules read."""
    unit_key = {u.id: u.key for u in units}
    goal_key = {g.id: g.key for g in goals}
    agreement_key = {a.id: a.key for a in agreements}
    touchpoints_of: dict[UUID, set[str]] = defaultdict(set)
    for goal_id, touchpoint in goal_touchpoints:
        touchpoints_of[goal_id].add(touchpoint)
    contributes: dict[UUID, set[str]] = defaultdict(set)
    for goal_id, target_id in contributions:
        contributes[goal_id].add(goal_key[target_id])
    facts = [
        repository.make_goal_facts(
            g,
            owner=unit_key[g.owner_id],
            metric=(metrics[g.metric_id].key, metrics[g.metric_id].kind),
            touchpoints=touchpoints_of[g.id],
            contributes_to=contributes[g.id],
            agreement=agreement_key.get(g.agreement_id) if g.agreement_id else None,
        )
        for g in goals
    ]
    return Structure(
        units=units,
        handoffs=handoffs,
        touchpoints=touchpoints,
        journeys=journeys,
        goals=goals,
        facts=facts,
        agreements=agreements,
        relations=relations,
        conflicts=conflicts,
    )


async def load_slice(
    session: AsyncSession,
    *,
    touchpoint_ids: Sequence[UUID] | None = (),
    unit_ids: Sequence[UUID] = (),
    partner_ids: Sequence[UUID] = (),
) -> Structure:
    """The part of the company that some scores read, found with SQL, so a score costs what
    its subjects involve rather than what the whole company holds:

    - ``touchpoint_ids``: those touchpoints, their journeys and upstream handoffs (None:
      every touchpoint and every handoff, for the company score);
    - ``unit_ids``: the handoffs they provide or receive, their goals and the goals those
      contribute to (for linked(g)), and the open conflicts of their goals;
    - ``partner_ids``: the same for partner units, with their agreements and joint goals.

    Units are those any loaded row names. Metric relations are left out (scores never read
    them).
    """
    if touchpoint_ids is None:
        touchpoints = await repository.touchpoints(session)
        handoffs = await repository.handoffs(session)
    else:
        touchpoints = await repository.touchpoints_by(session, ids=touchpoint_ids)
        handoffs = await repository.handoffs_serving(
            session, [t.id for t in touchpoints], [*unit_ids, *partner_ids]
        )
    agreements = await repository.agreements_of_partners(session, partner_ids)
    goals = await repository.goals_with_targets(
        session, [*unit_ids, *partner_ids], [a.id for a in agreements]
    )
    metrics = {
        m.id: m for m in await repository.rows_by_ids(session, Metric, list({g.metric_id for g in goals}))
    }
    unit_ids_named = {
        *unit_ids,
        *partner_ids,
        *(t.owner_id for t in touchpoints),
        *(unit_id for h in handoffs for unit_id in (h.from_unit_id, h.to_unit_id)),
        *(g.owner_id for g in goals),
    }
    units = await repository.rows_by_ids(session, Unit, list(unit_ids_named))
    journeys = await repository.rows_by_ids(session, Journey, list({t.journey_id for t in touchpoints}))
    agreement_ids = {g.agreement_id for g in goals if g.agreement_id} - {a.id for a in agreements}
    agreements += await repository.rows_by_ids(session, PartnerAgreement, list(agreement_ids))
    touchpoint_links, contributions = await repository.goal_links_of(session, [g.id for g in goals])
    return _assemble(
        units=units,
        handoffs=handoffs,
        touchpoints=touchpoints,
        journeys=journeys,
        goals=goals,
        metrics=metrics,
        agreements=agreements,
        goal_touchpoints=touchpoint_links,
        contributions=contributions,
        relations={},
        conflicts=await repository.open_conflicts_of_goals(session, [g.id for g in goals]),
    )


def touchpoint_facts(structure: Structure, t: Touchpoint) -> finding_rules.TouchpointFacts:
    journey_key = {j.id: j.key for j in structure.journeys}
    return finding_rules.TouchpointFacts(
        key=t.key,
        name=t.name,
        journey=journey_key.get(t.journey_id, ""),
        owner=structure.unit_key[t.owner_id],
        moment_of_truth=t.moment_of_truth,
        promise_within=t.promise_within,
    )


def handoff_facts(
    structure: Structure, stats: Callable[[UUID], EventStats] | None = None
) -> list[finding_rules.HandoffFacts]:
    facts = []
    for h in structure.handoffs:
        counted = stats(h.id) if stats else EventStats()
        facts.append(
            finding_rules.HandoffFacts(
                key=h.key,
                from_unit=structure.unit_key[h.from_unit_id],
                to_unit=structure.unit_key[h.to_unit_id],
                touchpoint=structure.touchpoint_key.get(h.touchpoint_id) if h.touchpoint_id else None,
                expected_within=h.expected_within,
                status=h.status,
                events=counted.events,
                customer_impact=counted.customer_impact,
            )
        )
    return facts
