"""Dueling-goal conflicts, kept with a stable id: detection, listing and resolution.

Every write that can change a conflict re-detects only the pairs it can affect
(``refresh_for_goals``): the changed goals against the goals that share scope with them on
the same or a directly related metric, found with SQL. ``refresh_conflicts`` re-detects every
pair (``POST /v1/conflicts/detect``); the two always agree (tests/alignment/test_incremental.py).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from types import SimpleNamespace
from typing import Any
from uuid import UUID, uuid4

from sqlalchemy import Row, delete, insert, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from service.alignment import conflicts as conflict_rules
from service.alignment import finding_service, repository
from service.alignment.constants import ConflictStatus, SubjectType
from service.alignment.models import Conflict
from service.alignment.schemas import ConflictGoal, ConflictRead
from service.alignment.structure import load_structure
from service.core import repository as core_repository
from service.core.errors import Conflict as ConflictError
from service.core.errors import NotFoundFor
from service.core.pagination import PageRequest, encode_cursor, paginate
from service.core.permissions import Action, Principal
from service.core.sql import in_ids
from service.core.types import utcnow
from service.goals.models import Goal
from service.metrics.models import Metric
from service.org_units.models import Unit
from service.webhooks import service as webhooks
from service.webhooks.constants import EventType

#: Most severe first; among equals, the oldest first.
LISTING_ORDER = (Conflict.severity.desc(), Conflict.detected_at, Conflict.id)


async def refresh_conflicts(session: AsyncSession) -> None:
    """Re-detect every dueling pair of the company and bring the stored conflicts in line."""
    await session.flush()
    structure = await load_structure(session)
    detected = conflict_rules.detect(structure.facts, structure.relations, structure.moments_of_truth)
    touched = await _reconcile(session, detected, structure.goals, structure.conflicts)
    await finding_service.refresh_conflicts(session, touched)


async def refresh_for_goals(
    session: AsyncSession, goal_ids: Iterable[UUID], *, refresh_findings: bool = True
) -> list[UUID]:
    """Re-detect the pairs that involve any of ``goal_ids`` (after they were created, changed,
    or their metric's relations or touchpoints' moments of truth changed).

    Returns the conflicts whose findings may have changed (new, reopened, changed, gone).
    With ``refresh_findings=False`` the caller refreshes them, together with the findings
    of its own change, in one round."""
    await session.flush()
    ids = list(set(goal_ids))
    if not ids:
        return []
    changed = await repository.goal_rows_by_ids(session, ids)
    candidates = await repository.duel_candidates(session, changed)
    goals = [*changed, *candidates]
    facts, moments_of_truth = await repository.goal_facts(session, goals)
    relations = await repository.relations_touching(session, list({g.metric_id for g in changed}))
    changed_facts = facts[: len(changed)]
    detected = conflict_rules.detect_around(
        changed_facts, facts[len(changed) :], relations, moments_of_truth
    )
    existing = await repository.conflicts_of_goals(session, ids)
    touched = await _reconcile(session, detected, goals, existing)
    if refresh_findings:
        await finding_service.refresh_conflicts(session, touched)
    return touched


async def refresh_for_metrics(session: AsyncSession, metric_ids: Sequence[UUID]) -> None:
    """A relation between these metrics changed: re-detect the goals on them."""
    await refresh_for_goals(session, await repository.goal_ids_on_metrics(session, metric_ids))


async def refresh_for_touchpoint(session: AsyncSession, touchpoint_id: UUID) -> None:
    """The touchpoint's moment of truth changed: re-score the pairs whose scope holds it
    (every such pair has a goal naming the touchpoint)."""
    await refresh_for_goals(session, await repository.goal_ids_on_touchpoint(session, touchpoint_id))


async def forget_goal(session: AsyncSession, goal_id: UUID) -> None:
    """A goal is about to be deleted: its conflicts go with it, and their findings clear."""
    gone = [c.id for c in await repository.conflicts_of_goals(session, [goal_id])]
    statement = delete(Conflict).where(
        or_(Conflict.goal_a_id == goal_id, Conflict.goal_b_id == goal_id)
    )
    await session.execute(statement.execution_options(synchronize_session="fetch"))
    await finding_service.forget_subjects(session, SubjectType.conflict, gone)


async def _reconcile(
    session: AsyncSession,
    detected: Sequence[conflict_rules.DetectedConflict],
    goals: Sequence[Goal | Row[Any]],
    existing_rows: Sequence[Conflict],
) -> list[UUID]:
    """Make the stored conflicts among ``existing_rows``' pairs and the ``detected`` pairs
    exactly the detected ones.

    New pairs open; pairs that no longer conflict go; a resolved pair stays resolved until
    either of its goals changes (its version moves past the one recorded when it was
    resolved), then it opens again. A pair whose detection is unchanged is not written: a
    goal with dozens of duels costs as many writes as it has changed duels. Returns the
    conflicts whose findings may have changed; the caller refreshes them.
    """
    goal_by_key = {g.key: g for g in goals}
    existing = {(c.goal_a_id, c.goal_b_id): c for c in existing_rows}
    keep: set[tuple[UUID, UUID]] = set()
    new_rows: list[dict] = []
    opened: list[Any] = []  # what ``_announce`` reads: stored rows, or new ones' values
    # Conflicts whose findings may change: new, reopened, changed, gone.
    touched: list[UUID] = []
    now = utcnow()
    for found in detected:
        a, b = goal_by_key[found.goal_a], goal_by_key[found.goal_b]
        pair = (a.id, b.id)
        keep.add(pair)
        values = {
            "metric_path": list(found.metric_path),
            "effect": found.effect,
            "severity": found.severity,
            "reasons": list(found.reasons),
            "shared_touchpoints": list(found.shared_touchpoints),
            "incentive_a": found.incentive_a,
            "incentive_b": found.incentive_b,
        }
        row = existing.get(pair)
        if row is None:
            new_rows.append({
                "id": uuid4(), "goal_a_id": a.id, "goal_b_id": b.id,
                "goal_a_version": a.version, "goal_b_version": b.version,
                "status": ConflictStatus.open.value, "detected_at": now, "updated_at": now,
                **values,
            })
            continue
        changed = any(getattr(row, name) != value for name, value in values.items())
        if row.status == ConflictStatus.resolved.value and (
            row.goal_a_version != a.version or row.goal_b_version != b.version
        ):
            row.status = ConflictStatus.open.value
            row.resolution_note = None
            row.resolved_at = None
            row.goal_a_version, row.goal_b_version = a.version, b.version
            opened.append(row)
            changed = True
        if changed:
            for name, value in values.items():
                setattr(row, name, value)
            row.updated_at = now
            touched.append(row.id)
    for pair, row in existing.items():
        if pair not in keep:
            touched.append(row.id)
            await session.delete(row)
    await session.flush()
    if new_rows:
        # executemany: one compiled statement, batched by the driver layer
        await session.execute(insert(Conflict), new_rows)
        # announced from the values inserted: reading the rows back would cost a round
        opened.extend(SimpleNamespace(**row) for row in new_rows)
        touched.extend(r["id"] for r in new_rows)
    await _announce(session, EventType.conflict_opened, opened, goals)
    # unfunded-counterweight reads each conflict's status and incentives
    return touched


async def detect_conflicts(
    session: AsyncSession, principal: Principal, page: PageRequest
) -> tuple[list[ConflictRead], str | None]:
    """Re-detect on demand (changes to goals, relations and moments of truth already do)."""
    principal.require(Action.conflicts_resolve)
    await refresh_conflicts(session)
    return await list_conflicts(session, principal, page)


async def list_conflicts(
    session: AsyncSession,
    principal: Principal,
    page: PageRequest,
    *,
    status: ConflictStatus | None = None,
    goal_id: UUID | None = None,
) -> tuple[list[ConflictRead], str | None]:
    """One page of conflicts (of one goal, if given), most severe first, paged by the database."""
    principal.require(Action.conflicts_read)
    if principal.is_partner:
        return [], None  # conflicts are between internal goals: never a partner's to see
    statement = select(Conflict)
    if status is not None:
        statement = statement.where(Conflict.status == status.value)
    if goal_id is not None:
        statement = statement.where(or_(Conflict.goal_a_id == goal_id, Conflict.goal_b_id == goal_id))
    rows, next_cursor = await paginate(session, statement, order_by=LISTING_ORDER, page=page)
    return await _conflict_reads(session, rows), next_cursor


async def first_conflicts_by_goal_ids(
    session: AsyncSession, principal: Principal, goal_ids: list[UUID], *, limit: int
) -> dict[UUID, list[ConflictRead]]:
    """The first ``limit`` conflicts of each goal, most severe first (for batch loading the
    first page of each goal's conflicts; a partner key sees none)."""
    principal.require(Action.conflicts_read)
    if principal.is_partner or not goal_ids:
        return {}
    by_goal = await repository.first_conflicts_of_goals(session, goal_ids, LISTING_ORDER, limit)
    unique = list({c.id: c for rows in by_goal.values() for c in rows}.values())
    reads = {read.id: read for read in await _conflict_reads(session, unique)}
    return {goal_id: [reads[c.id] for c in rows] for goal_id, rows in by_goal.items()}


def conflict_cursor(read: ConflictRead) -> str:
    """The cursor after ``read`` in the listing order (continues a batch-loaded first page)."""
    return encode_cursor([read.severity, read.detected_at, read.id])


async def get_conflict(session: AsyncSession, principal: Principal, conflict_id: UUID) -> ConflictRead:
    principal.require(Action.conflicts_read)
    row = await session.get(Conflict, conflict_id)
    if row is None or principal.is_partner:
        raise NotFoundFor("conflict", conflict_id)
    (read,) = await _conflict_reads(session, [row])
    return read


async def resolve_conflict(
    session: AsyncSession, principal: Principal, conflict_id: UUID, note: str
) -> ConflictRead:
    principal.require(Action.conflicts_resolve)
    row = await session.get(Conflict, conflict_id, with_for_update=True)
    if row is None:
        raise NotFoundFor("conflict", conflict_id)
    if row.status == ConflictStatus.resolved.value:
        raise ConflictError("this conflict is already resolved", conflict=str(conflict_id))
    # The goals as they stand now: the pair reopens when either of them changes later.
    versions = dict(
        (await session.execute(
            select(Goal.id, Goal.version).where(Goal.id.in_([row.goal_a_id, row.goal_b_id]))
        )).all()
    )
    row.goal_a_version, row.goal_b_version = versions[row.goal_a_id], versions[row.goal_b_id]
    row.status = ConflictStatus.resolved.value
    row.resolution_note = note
    row.resolved_at = row.updated_at = utcnow()
    await session.flush()
    await finding_service.refresh_conflicts(session, [row.id])
    await _announce(session, EventType.conflict_resolved, [row])
    (read,) = await _conflict_reads(session, [row])
    return read


async def _announce(
    session: AsyncSession,
    event_type: EventType,
    rows: Sequence[Any],
    goals: Sequence[Goal | Row[Any]] = (),
) -> None:
    """Tell webhook subscribers these conflicts opened or were resolved (one batch); ``rows``
    are conflicts, or anything with their attributes."""
    if not rows:
        return
    keys = {g.id: g.key for g in goals}
    missing = {goal_id for row in rows for goal_id in (row.goal_a_id, row.goal_b_id)} - set(keys)
    if missing:
        keys |= await core_repository.keys_by_id(session, Goal, missing)
    events = [
        webhooks.Event(
            {
                "id": str(row.id),
                "goals": [keys[row.goal_a_id], keys[row.goal_b_id]],
                "severity": row.severity,
                "effect": row.effect,
                "reasons": list(row.reasons),
                "status": row.status,
            },
            link=f"/v1/conflicts/{row.id}",
        )
        for row in rows
    ]
    await webhooks.emit_many(session, event_type, events)


async def _conflict_reads(session: AsyncSession, rows: Sequence[Conflict]) -> list[ConflictRead]:
    """Conflicts with their two goals, read for just the goals of ``rows``."""
    goal_ids = list({goal_id for c in rows for goal_id in (c.goal_a_id, c.goal_b_id)})
    goals: dict[UUID, ConflictGoal] = {}
    if goal_ids:
        statement = (
            select(Goal.id, Goal.key, Unit.key.label("owner"), Metric.key.label("metric"),
                   Goal.direction, Goal.incentive_weight)
            .join(Unit, Unit.id == Goal.owner_id)
            .join(Metric, Metric.id == Goal.metric_id)
            .where(in_ids(session, Goal.id, goal_ids))
        )
        for row in (await session.execute(statement)).all():
            goals[row.id] = ConflictGoal.model_construct(
                key=row.key,
                owner=row.owner,
                metric=row.metric,
                direction=row.direction,
                incentive_weight=row.incentive_weight,
            )
    # model_construct: these are stored rows, checked by the table's constraints when
    # written; validating them again costs more than the query on a page of thousands.
    return [
        ConflictRead.model_construct(
            id=row.id,
            goals=[goals[row.goal_a_id], goals[row.goal_b_id]],
            metric_path=row.metric_path,
            effect=row.effect,
            severity=row.severity,
            reasons=row.reasons,
            shared_touchpoints=row.shared_touchpoints,
            status=ConflictStatus(row.status),
            resolution_note=row.resolution_note,
            resolved_at=row.resolved_at,
            detected_at=row.detected_at,
            updated_at=row.updated_at,
        )
        for row in rows
    ]
