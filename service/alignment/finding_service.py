"""Findings (docs/method.md §9), kept with a stable id and refreshed by the writes that can
change them.

A write names the rows it changes; ``affected`` widens them to every subject whose findings
read them (the reach of each rule, found with SQL), and the write collects that set before and
after the change (``watch``). ``refresh`` re-evaluates just those subjects, on a partial
snapshot that holds what their rules read and no more, and brings their stored findings in
line: a new one opens, one that stops firing clears, one that fires again reopens with its id.

Buffering judges the 90 days before now, a window that moves with the clock, so ``sweep``
re-evaluates a bounded batch of subjects per tick (a background task of ``silospan serve``);
it also fills the table after an upgrade. ``refresh_all`` evaluates the whole company at once
(``POST /v1/findings/refresh``). Stored findings always equal that full evaluation
(tests/alignment/test_finding_refresh.py).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID, uuid4

from sqlalchemy import and_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from service.alignment import findings as finding_rules
from service.alignment import repository
from service.alignment.constants import DEFAULT_WINDOW, FindingStatus, SubjectType
from service.alignment.models import Conflict, Finding
from service.alignment.repository import Window
from service.alignment.schemas import FindingRead, Subject
from service.alignment.scoring import EventStats
from service.alignment.structure import handoff_facts, load_structure, touchpoint_facts
from service.core import repository as core_repository
from service.core.errors import Invalid, NotFoundFor
from service.core.pagination import PageRequest, paginate
from service.core.permissions import Action, Principal
from service.core.sql import in_ids
from service.core.types import utcnow
from service.event_logs import arc_subjects
from service.event_logs.arc_subjects import ArcRef
from service.goals.models import Goal
from service.handoffs.models import Handoff
from service.journeys.models import Journey, Touchpoint
from service.org_units.models import Unit
from service.partner_agreements.models import PartnerAgreement
from service.webhooks import service as webhooks
from service.webhooks.constants import EventType

#: Most severe first; among equals, by rule and subject (as a full evaluation sorts them).
LISTING_ORDER = (Finding.severity.desc(), Finding.rule, Finding.subject_key, Finding.id)

#: The metric kinds some rules single out (docs/method.md §9).
DISCONNECTED_KINDS = ("financial", "loyalty_program")
RESCUE_KINDS = ("recovery",)
SURVEY_KINDS = ("survey_score",)

MODELS: dict[SubjectType, Any] = {
    SubjectType.unit: Unit,
    SubjectType.handoff: Handoff,
    SubjectType.goal: Goal,
    SubjectType.journey: Journey,
    SubjectType.touchpoint: Touchpoint,
    SubjectType.agreement: PartnerAgreement,
    SubjectType.conflict: Conflict,
}


@dataclass
class Subjects:
    """Row ids by subject type: what a refresh re-evaluates."""

    ids: dict[SubjectType, set[UUID]] = field(default_factory=lambda: defaultdict(set))
    # Discovered arcs by subject id, with their facts: an arc's id is derived, so it cannot
    # be loaded by id; its facts do not change with the registry writes that reach it.
    arcs: dict[UUID, finding_rules.ArcFacts] = field(default_factory=dict)

    def add(self, subject_type: SubjectType, ids: Iterable[UUID | None]) -> None:
        self.ids[subject_type].update(i for i in ids if i is not None)

    def add_arcs(self, arcs: Mapping[ArcRef, finding_rules.ArcFacts]) -> None:
        for ref, facts in arcs.items():
            self.arcs[ref.subject_id] = facts
            self.ids[SubjectType.discovered_arc].add(ref.subject_id)

    def __or__(self, other: Subjects) -> Subjects:
        merged = Subjects()
        for source in (self, other):
            for subject_type, ids in source.ids.items():
                merged.add(subject_type, ids)
            merged.arcs.update(source.arcs)
        return merged

    def __bool__(self) -> bool:
        return any(self.ids.values())

    def of(self, subject_type: SubjectType) -> list[UUID]:
        return list(self.ids.get(subject_type, ()))


def current_window() -> Window:
    """The window stored findings are judged over: the 90 days before now."""
    now = utcnow()
    return Window(start=now - DEFAULT_WINDOW, end=now, as_of=now)


# Which subjects a change reaches ------------------------------------------------------------------


async def affected(
    session: AsyncSession,
    *,
    goals: Iterable[UUID] = (),
    metrics: Iterable[UUID] = (),
    units: Iterable[UUID] = (),
    handoffs: Iterable[UUID] = (),
    touchpoints: Iterable[UUID] = (),
    journeys: Iterable[UUID] = (),
    agreements: Iterable[UUID] = (),
    conflicts: Iterable[UUID] = (),
) -> Subjects:
    """Every subject whose findings read one of these rows, as the rows stand now."""
    await session.flush()
    found = Subjects()
    found.add(SubjectType.unit, units)
    found.add(SubjectType.journey, journeys)
    found.add(SubjectType.agreement, agreements)
    found.add(SubjectType.conflict, conflicts)
    handoff_ids, touchpoint_ids = list(set(handoffs)), list(set(touchpoints))
    # Discovered arcs read the handoffs between their units and the touchpoints they own.
    arc_units = set(units)
    found.add(SubjectType.handoff, handoff_ids)
    for handoff in await repository.rows_by_ids(session, Handoff, handoff_ids):
        # promise-overrun reads its touchpoint's chain; upstream-unlinked its provider
        found.add(SubjectType.touchpoint, [handoff.touchpoint_id])
        found.add(SubjectType.unit, [handoff.from_unit_id])
        arc_units |= {handoff.from_unit_id, handoff.to_unit_id}
    found.add(SubjectType.touchpoint, touchpoint_ids)
    for touchpoint in await repository.rows_by_ids(session, Touchpoint, touchpoint_ids):
        # upstream-unlinked reads who owns touchpoints; survey-fatigue which journey holds it
        found.add(SubjectType.unit, [touchpoint.owner_id])
        found.add(SubjectType.journey, [touchpoint.journey_id])
        arc_units.add(touchpoint.owner_id)
    found.add_arcs(await arc_subjects.touching(session, list(arc_units)))
    goal_ids = set(goals)
    metric_ids = list(set(metrics))
    if metric_ids:
        goal_ids |= await repository.ids_where(session, Goal, Goal.metric_id, metric_ids)
    if goal_ids:
        found.add(SubjectType.goal, goal_ids)
        seeds = list(goal_ids)
        reach = await repository.reach_of_goals(
            session,
            seeds,
            served_kinds=DISCONNECTED_KINDS,
            sharing_kinds=RESCUE_KINDS,
            journey_kinds=SURVEY_KINDS,
        )
        # ends-without-means: the goals these contribute to; heroics: rescues on their touchpoints
        found.add(SubjectType.goal, reach.targets)
        found.add(SubjectType.goal, reach.sharing)
        # linked(g) of every goal upstream of these can change; connectedness of a financial
        # or loyalty goal reads its whole chain, both ways.
        found.add(SubjectType.goal, reach.served)
        found.add(SubjectType.unit, [g.owner_id for g in reach.upstream])
        found.add(SubjectType.agreement, [g.agreement_id for g in reach.upstream])
        # survey-fatigue reads the survey-score goals naming a journey's touchpoints (a
        # goal's kind before a change is in the set ``watch`` takes before it)
        found.add(SubjectType.journey, reach.journeys)
    return found


@asynccontextmanager
async def watch(session: AsyncSession, **rows: Iterable[UUID]) -> AsyncIterator[None]:
    """Refresh the findings these rows reach, as they were before the block and after it."""
    rows = {name: list(ids) for name, ids in rows.items()}
    before = await affected(session, **rows)
    yield
    await refresh(session, before | await affected(session, **rows))


async def refresh_handoffs(session: AsyncSession, handoff_ids: Iterable[UUID]) -> None:
    """Events of these handoffs changed: only their own findings (buffering) read events."""
    subjects = Subjects()
    subjects.add(SubjectType.handoff, handoff_ids)
    await refresh(session, subjects)


async def refresh_conflicts(session: AsyncSession, conflict_ids: Iterable[UUID]) -> None:
    """These conflicts opened, changed, were resolved or went away."""
    subjects = Subjects()
    subjects.add(SubjectType.conflict, conflict_ids)
    await refresh(session, subjects)


#: Discovered arcs judged (or forgotten) per statement batch: a large random log can hold
#: a hundred thousand ping-pong arcs, and memory must stay flat.
ARC_BATCH = 1000


async def refresh_logs(session: AsyncSession, log_ids: Sequence[UUID]) -> None:
    """These event logs became ready: the findings of their discovered arcs."""
    await session.flush()
    async for arcs in arc_subjects.pages(session, log_ids, ARC_BATCH):
        subjects = Subjects()
        subjects.add_arcs(arcs)
        await refresh(session, subjects)


async def forget_logs(session: AsyncSession, log_ids: Sequence[UUID]) -> None:
    """These event logs are about to go: their discovered arcs' findings clear."""
    await session.flush()
    async for arcs in arc_subjects.pages(session, log_ids, ARC_BATCH):
        await forget_subjects(session, SubjectType.discovered_arc, [a.subject_id for a in arcs])


async def refresh_around(session: AsyncSession, **rows: Iterable[UUID]) -> None:
    """Refresh the findings these rows reach (after a create, or a change with no 'before')."""
    await refresh(session, await affected(session, **rows))


# Evaluation ---------------------------------------------------------------------------------------


@dataclass
class _Evaluated:
    snapshot: finding_rules.Snapshot
    # (subject type, key) → id, for exactly the subjects evaluated
    subject_ids: dict[tuple[str, str], UUID]


async def refresh(session: AsyncSession, subjects: Subjects) -> None:
    """Re-evaluate the findings of ``subjects`` and bring the stored ones in line."""
    if not subjects:
        return
    await session.flush()
    evaluated = await _partial_snapshot(session, subjects, current_window())
    found = [
        f
        for f in finding_rules.evaluate(evaluated.snapshot)
        if (f.subject_type, f.subject) in evaluated.subject_ids
    ]
    await _reconcile(session, subjects, found, evaluated.subject_ids)


async def refresh_everything(session: AsyncSession, principal: Principal) -> None:
    """``POST /v1/findings/refresh``: a full evaluation on demand."""
    principal.require(Action.conflicts_resolve)
    await refresh_all(session)


async def refresh_all(session: AsyncSession) -> None:
    """Evaluate every rule over the whole company and store the result."""
    await session.flush()
    found, subject_ids = await evaluate_everything(session, current_window())
    subjects = Subjects()
    for (subject_type, _), subject_id in subject_ids.items():
        subjects.add(SubjectType(subject_type), [subject_id])
    # Subjects that no longer exist keep open findings only if no row names them any more.
    stale = select(Finding.subject_type, Finding.subject_id).where(
        Finding.status == FindingStatus.open.value
    )
    for subject_type, subject_id in (await session.execute(stale)).all():
        subjects.add(SubjectType(subject_type), [subject_id])
    await _reconcile(session, subjects, found, subject_ids)


async def evaluate_everything(
    session: AsyncSession, window: Window
) -> tuple[list[finding_rules.Finding], dict[tuple[str, str], UUID]]:
    """Every finding of the company, from its whole structure (the reference the incremental
    refresh is tested against)."""
    structure = await load_structure(session)
    stats = await repository.event_stats(session, window)
    agreement_partner = {a.id: structure.unit_key[a.partner_id] for a in structure.agreements}
    arcs = await arc_subjects.of_logs(session)
    snapshot = finding_rules.Snapshot(
        units=[finding_rules.UnitFacts(u.key, u.name, u.kind) for u in structure.units],
        touchpoints=[touchpoint_facts(structure, t) for t in structure.touchpoints],
        handoffs=handoff_facts(structure, lambda handoff_id: _summed(stats, handoff_id)),
        goals=structure.facts,
        agreements=[
            finding_rules.AgreementFacts(a.key, a.title, agreement_partner[a.id], a.status)
            for a in structure.agreements
        ],
        conflicts=[
            finding_rules.ConflictFacts(
                str(c.id),
                structure.goal_key[c.goal_a_id],
                structure.goal_key[c.goal_b_id],
                c.status,
                c.incentive_a,
                c.incentive_b,
            )
            for c in structure.conflicts
        ],
        journeys={j.key: j.name for j in structure.journeys},
        arcs=list(arcs.values()),
    )
    subject_ids: dict[tuple[str, str], UUID] = {}
    for subject_type, rows in (
        (SubjectType.unit, structure.units),
        (SubjectType.handoff, structure.handoffs),
        (SubjectType.goal, structure.goals),
        (SubjectType.journey, structure.journeys),
        (SubjectType.touchpoint, structure.touchpoints),
        (SubjectType.agreement, structure.agreements),
    ):
        subject_ids.update({(subject_type.value, row.key): row.id for row in rows})
    subject_ids.update({(SubjectType.conflict.value, str(c.id)): c.id for c in structure.conflicts})
    subject_ids.update(
        {(SubjectType.discovered_arc.value, a.key): ref.subject_id for ref, a in arcs.items()}
    )
    return finding_rules.evaluate(snapshot), subject_ids


def _summed(stats: dict[tuple[UUID, int], EventStats], handoff_id: UUID) -> EventStats:
    # A window without buckets keeps every row in bucket 0.
    return stats.get((handoff_id, 0), EventStats())


async def _partial_snapshot(
    session: AsyncSession, subjects: Subjects, window: Window
) -> _Evaluated:
    """The subjects, and what their rules read of the rest of the company (docs/method.md §9):

    - a unit: the touchpoints it owns, the handoffs it provides, its goals and what they serve;
    - a handoff: itself and its events in the window;
    - a touchpoint: the handoffs upstream of it;
    - a journey: its touchpoints and the survey-score goals naming them;
    - an agreement: its joint goals and what they serve;
    - a goal: the goals contributing to it, the goals sharing touchpoints with a rescue goal,
      and, for a financial or loyalty goal, every goal up and down its chains;
    - a conflict: itself;
    - a discovered arc: itself, the handoffs its units provide and the touchpoints they own.
    """
    units = await repository.rows_by_ids(session, Unit, subjects.of(SubjectType.unit))
    journeys = await repository.rows_by_ids(session, Journey, subjects.of(SubjectType.journey))
    agreements = await repository.rows_by_ids(
        session, PartnerAgreement, subjects.of(SubjectType.agreement)
    )
    subject_goal_ids = subjects.of(SubjectType.goal)
    conflicts = await repository.conflict_facts_by_ids(session, subjects.of(SubjectType.conflict))
    unit_ids, journey_ids = [u.id for u in units], [j.id for j in journeys]
    arcs = [subjects.arcs[i] for i in subjects.of(SubjectType.discovered_arc) if i in subjects.arcs]
    arc_unit_ids = list(
        (
            await core_repository.ids_by_key(
                session, Unit, {k for a in arcs for k in (a.from_unit, a.to_unit)}
            )
        ).values()
    )

    touchpoints = {
        t.id: t
        for t in [
            *await repository.rows_by_ids(session, Touchpoint, subjects.of(SubjectType.touchpoint)),
            *await _rows_where(session, Touchpoint, Touchpoint.owner_id, unit_ids),
            *await _rows_where(session, Touchpoint, Touchpoint.journey_id, journey_ids),
            *await _rows_where(session, Touchpoint, Touchpoint.owner_id, arc_unit_ids),
        ]
    }
    subject_touchpoints = [
        t for t in touchpoints.values() if t.id in subjects.ids[SubjectType.touchpoint]
    ]
    handoffs = {
        h.id: h
        for h in [
            *await repository.rows_by_ids(session, Handoff, subjects.of(SubjectType.handoff)),
            *await _rows_where(
                session, Handoff, Handoff.touchpoint_id, [t.id for t in subject_touchpoints]
            ),
            *await _rows_where(session, Handoff, Handoff.from_unit_id, [*unit_ids, *arc_unit_ids]),
        ]
    }

    # Ids of subject goals that no longer exist reach nothing, and drop out with ``goals``.
    goal_ids = set(subject_goal_ids)
    goal_ids |= await repository.contribution_ends(session, subject_goal_ids, targets=False)
    kinds = await repository.metric_kinds_of_goals(session, subject_goal_ids)
    rescues = [g for g, kind in kinds.items() if kind in RESCUE_KINDS]
    goal_ids |= await repository.goals_sharing_touchpoints(session, rescues)
    disconnected = [g for g, kind in kinds.items() if kind in DISCONNECTED_KINDS]
    goal_ids |= await repository.goals_downstream(
        session,
        owner_ids=unit_ids,
        agreement_ids=[a.id for a in agreements],
        chains_of=disconnected,
    )
    goal_ids |= await repository.goal_ids_naming_touchpoints(
        session, [t.id for t in touchpoints.values() if t.journey_id in journey_ids], SURVEY_KINDS
    )
    goals = await repository.goal_rows_by_ids(session, sorted(goal_ids))
    facts, _ = await repository.goal_facts(session, goals)
    subject_goals = [g for g in goals if g.id in subjects.ids[SubjectType.goal]]

    keys = await repository.keys_of(
        session,
        {
            Unit: [
                *(t.owner_id for t in touchpoints.values()),
                *(u for h in handoffs.values() for u in (h.from_unit_id, h.to_unit_id)),
                *(a.partner_id for a in agreements),
            ],
            Journey: [t.journey_id for t in touchpoints.values()],
            Touchpoint: [h.touchpoint_id for h in handoffs.values()],
        },
    )
    counted_ids = [h.id for h in handoffs.values() if h.id in subjects.ids[SubjectType.handoff]]
    stats = await repository.event_stats(session, window, counted_ids) if counted_ids else {}

    snapshot = finding_rules.Snapshot(
        units=[finding_rules.UnitFacts(u.key, u.name, u.kind) for u in units],
        touchpoints=[
            finding_rules.TouchpointFacts(
                key=t.key,
                name=t.name,
                journey=keys.get(t.journey_id, ""),
                owner=keys[t.owner_id],
                moment_of_truth=t.moment_of_truth,
                promise_within=t.promise_within,
            )
            for t in sorted(touchpoints.values(), key=lambda t: t.key)
        ],
        handoffs=[
            finding_rules.HandoffFacts(
                key=h.key,
                from_unit=keys[h.from_unit_id],
                to_unit=keys[h.to_unit_id],
                touchpoint=keys.get(h.touchpoint_id) if h.touchpoint_id else None,
                expected_within=h.expected_within,
                status=h.status,
                events=_summed(stats, h.id).events,
                customer_impact=_summed(stats, h.id).customer_impact,
            )
            for h in sorted(handoffs.values(), key=lambda h: h.key)
        ],
        goals=facts,
        agreements=[
            finding_rules.AgreementFacts(a.key, a.title, keys[a.partner_id], a.status)
            for a in agreements
        ],
        conflicts=[
            finding_rules.ConflictFacts(
                str(c.id), c.goal_a_key, c.goal_b_key, c.status, c.incentive_a, c.incentive_b
            )
            for c in conflicts
        ],
        journeys={j.key: j.name for j in journeys},
        arcs=arcs,
    )
    subject_ids: dict[tuple[str, str], UUID] = {}
    for subject_type, rows in (
        (SubjectType.unit, units),
        (
            SubjectType.handoff,
            [h for h in handoffs.values() if h.id in subjects.ids[SubjectType.handoff]],
        ),
        (SubjectType.goal, subject_goals),
        (SubjectType.journey, journeys),
        (SubjectType.touchpoint, subject_touchpoints),
        (SubjectType.agreement, agreements),
    ):
        subject_ids.update({(subject_type.value, row.key): row.id for row in rows})
    subject_ids.update({(SubjectType.conflict.value, str(c.id)): c.id for c in conflicts})
    subject_ids.update(
        {
            (SubjectType.discovered_arc.value, a.key): i
            for i, a in subjects.arcs.items()
            if i in subjects.ids[SubjectType.discovered_arc]
        }
    )
    return _Evaluated(snapshot, subject_ids)


async def _rows_where(
    session: AsyncSession, model: Any, column: Any, values: Sequence[UUID]
) -> list[Any]:
    if not values:
        return []
    return list((await session.scalars(select(model).where(in_ids(session, column, values)))).all())


# Storing ------------------------------------------------------------------------------------------


async def _reconcile(
    session: AsyncSession,
    subjects: Subjects,
    found: Sequence[finding_rules.Finding],
    subject_ids: dict[tuple[str, str], UUID],
) -> None:
    """Make the open findings of ``subjects`` exactly ``found``, keeping each one's id."""
    now = utcnow()
    stored: dict[tuple[str, str, UUID], Finding] = {}
    wanted = {(t.value, i) for t, ids in subjects.ids.items() for i in ids}
    # One statement for every subject type: ids are unique across tables, and the type
    # is checked here
    statement = select(Finding).where(
        in_ids(session, Finding.subject_id, list({i for _, i in wanted}))
    )
    for row in (await session.scalars(statement)).all():
        if (row.subject_type, row.subject_id) in wanted:
            stored[(row.rule, row.subject_type, row.subject_id)] = row
    firing: set[tuple[str, str, UUID]] = set()
    opened: list[tuple[UUID, finding_rules.Finding]] = []
    new: dict[tuple[str, str, UUID], tuple[dict[str, Any], finding_rules.Finding]] = {}
    for f in found:
        identity = (f.rule, f.subject_type, subject_ids[(f.subject_type, f.subject)])
        firing.add(identity)
        values = {
            "subject_key": f.subject,
            "severity": f.severity,
            "explanation": f.explanation,
            "remedy": f.remedy,
            "evidence": f.evidence,
        }
        row = stored.get(identity)
        if row is None:
            new[identity] = (values, f)
            continue
        if row.status == FindingStatus.cleared.value:
            row.status, row.opened_at, row.cleared_at = FindingStatus.open.value, now, None
            row.updated_at = now
            opened.append((row.id, f))
        if any(getattr(row, name) != value for name, value in values.items()):
            for name, value in values.items():
                setattr(row, name, value)
            row.updated_at = now
    cleared = []
    for identity, row in stored.items():
        if identity not in firing and row.status == FindingStatus.open.value:
            row.status, row.cleared_at, row.updated_at = FindingStatus.cleared.value, now, now
            cleared.append(row)
    await session.flush()
    ids = await _insert(session, {identity: values for identity, (values, _) in new.items()}, now)
    opened.extend((ids[identity], f) for identity, (_, f) in new.items())
    await webhooks.emit_many(
        session,
        EventType.finding_opened,
        [
            webhooks.Event(
                {
                    "id": str(finding_id),
                    "rule": f.rule,
                    "severity": f.severity,
                    "subject": {"type": f.subject_type, "key": f.subject},
                    "explanation": f.explanation,
                    "evidence": f.evidence,
                },
                link=f"/v1/findings/{finding_id}",
            )
            for finding_id, f in opened
        ],
    )
    await webhooks.emit_many(
        session,
        EventType.finding_cleared,
        [
            webhooks.Event(
                {
                    "id": str(row.id),
                    "rule": row.rule,
                    "subject": {"type": row.subject_type, "key": row.subject_key},
                },
                link=f"/v1/findings/{row.id}",
            )
            for row in cleared
        ],
    )


async def _insert(
    session: AsyncSession, new: dict[tuple[str, str, UUID], dict[str, Any]], now: Any
) -> dict[tuple[str, str, UUID], UUID]:
    """New findings, in multi-row INSERTs; their ids by (rule, subject type, subject id).
    Two writers may find one at once: the second one's insert becomes the update it would
    have made, instead of a unique violation."""
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    rows = [
        {
            "id": uuid4(),
            "rule": rule,
            "subject_type": subject_type,
            "subject_id": subject_id,
            "status": FindingStatus.open.value,
            "opened_at": now,
            "updated_at": now,
            **values,
        }
        for (rule, subject_type, subject_id), values in new.items()
    ]
    if not rows:
        return {}
    statement = dialect.insert(Finding)
    statement = statement.on_conflict_do_update(
        index_elements=["rule", "subject_type", "subject_id"],
        set_={
            **{name: statement.excluded[name] for name in _UPSERT_COLUMNS},
            "updated_at": now,
        },
    ).returning(Finding.id, Finding.rule, Finding.subject_type, Finding.subject_id)
    # executemany with RETURNING: one compiled statement, batched by the driver layer
    result = await session.execute(statement, rows)
    return {(rule, kind, subject_id): finding_id for finding_id, rule, kind, subject_id in result}


#: What a concurrent writer's insert of the same finding updates.
_UPSERT_COLUMNS = frozenset({"subject_key", "severity", "explanation", "remedy", "evidence"})


async def forget_subjects(
    session: AsyncSession, subject_type: SubjectType, ids: Sequence[UUID]
) -> None:
    """These subjects are gone: their open findings clear."""
    if not ids:
        return
    now = utcnow()
    statement = (
        update(Finding)
        .where(
            and_(
                Finding.subject_type == subject_type.value,
                in_ids(session, Finding.subject_id, ids),
                Finding.status == FindingStatus.open.value,
            )
        )
        .values(status=FindingStatus.cleared.value, cleared_at=now, updated_at=now)
    )
    await session.execute(statement.execution_options(synchronize_session=False))


# Reading ------------------------------------------------------------------------------------------


async def list_findings(
    session: AsyncSession,
    principal: Principal,
    page: PageRequest,
    *,
    rule: str | None = None,
    status: FindingStatus | None = FindingStatus.open,
    subject: str | None = None,
) -> tuple[list[FindingRead], str | None]:
    """One page of stored findings, most severe first, paged by the database."""
    principal.require(Action.findings_read)
    if rule is not None and rule not in finding_rules.RULES:
        raise Invalid(
            f"unknown rule {rule!r}; rules are: {', '.join(finding_rules.RULES)}",
            loc=("query", "rule"),
        )
    statement = select(Finding)
    if subject is not None:
        # The type ends at the first colon: a discovered arc's key may hold more of them.
        subject_type, _, key = subject.partition(":") if ":" in subject else ("", "", subject)
        if subject_type and subject_type not in SubjectType.__members__:
            raise Invalid(
                f"unknown subject type {subject_type!r}; subjects are <key> or <type>:<key> "
                f"with a type among: {', '.join(SubjectType.__members__)}",
                loc=("query", "subject"),
            )
        statement = statement.where(Finding.subject_key == key)
        if subject_type:
            statement = statement.where(Finding.subject_type == subject_type)
    if principal.is_partner:
        return [], None  # findings are about the company's own silos
    if status is not None:
        statement = statement.where(Finding.status == status.value)
    if rule is not None:
        statement = statement.where(Finding.rule == rule)
    rows, next_cursor = await paginate(session, statement, order_by=LISTING_ORDER, page=page)
    return [to_read(row) for row in rows], next_cursor


async def get_finding(session: AsyncSession, principal: Principal, finding_id: UUID) -> FindingRead:
    principal.require(Action.findings_read)
    row = await session.get(Finding, finding_id)
    if row is None or principal.is_partner:
        raise NotFoundFor("finding", finding_id)
    return to_read(row)


def to_read(row: Finding) -> FindingRead:
    return FindingRead(
        id=row.id,
        rule=row.rule,
        severity=row.severity,
        subject=Subject(type=row.subject_type, key=row.subject_key),
        explanation=row.explanation,
        remedy=row.remedy,
        evidence=row.evidence,
        status=FindingStatus(row.status),
        opened_at=row.opened_at,
        cleared_at=row.cleared_at,
        updated_at=row.updated_at,
    )


# The sweep ----------------------------------------------------------------------------------------

SWEEP_ORDER = (
    SubjectType.handoff,
    SubjectType.goal,
    SubjectType.unit,
    SubjectType.touchpoint,
    SubjectType.journey,
    SubjectType.agreement,
    SubjectType.conflict,
    SubjectType.discovered_arc,
)


@dataclass
class SweepCursor:
    """Where the sweep stands: the subject type it walks and the last id it refreshed (for
    discovered arcs, which have no id, the last arc)."""

    position: int = 0
    after: UUID | ArcRef | None = None


async def sweep(session: AsyncSession, cursor: SweepCursor, batch: int) -> int:
    """Re-evaluate the next ``batch`` subjects (in id order, one type after another; last, the
    arcs of logs never judged) and move ``cursor`` past them; returns how many were refreshed. A full turn of the sweep brings
    every finding in line with the clock (buffering's window) and with rows written before
    findings were kept."""
    subject_type = SWEEP_ORDER[cursor.position % len(SWEEP_ORDER)]
    if subject_type is SubjectType.discovered_arc:
        return await _sweep_unjudged_arcs(session, cursor, batch)
    model = MODELS[subject_type]
    statement = select(model.id).order_by(model.id).limit(batch)
    if cursor.after is not None:
        statement = statement.where(model.id > cursor.after)
    ids = list((await session.scalars(statement)).all())
    subjects = Subjects()
    subjects.add(subject_type, ids)
    await refresh(session, subjects)
    if len(ids) < batch:
        cursor.position, cursor.after = (cursor.position + 1) % len(SWEEP_ORDER), None
    else:
        cursor.after = ids[-1]
    return len(ids)


async def _sweep_unjudged_arcs(session: AsyncSession, cursor: SweepCursor, batch: int) -> int:
    """Arcs depend on no clock: the sweep judges only the arcs of logs that were ready
    before findings were kept, a page at a time, and moves on when none is left."""
    log_id = await arc_subjects.next_unjudged_log(session)
    if log_id is None:
        cursor.position, cursor.after = (cursor.position + 1) % len(SWEEP_ORDER), None
        return 0
    after = cursor.after if isinstance(cursor.after, ArcRef) else None
    if after is not None and after.log_id != log_id:
        after = None
    arcs = await arc_subjects.page(session, log_id, after=after, limit=batch)
    subjects = Subjects()
    subjects.add_arcs(arcs)
    await refresh(session, subjects)
    if len(arcs) < batch:
        await arc_subjects.mark_judged(session, log_id)  # the next call takes the next log
        cursor.after = None
    else:
        cursor.after = next(reversed(arcs))
    return len(arcs)
