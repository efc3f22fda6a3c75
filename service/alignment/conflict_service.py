"""Dueling-goal conflicts, kept with a stable id: detection, listing and resolution.

Goals and metric relations call ``refresh_conflicts`` whenever they change, so the stored
conflicts always match the rules of ``alignment.conflicts``.
"""

from __future__ import annotations

from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from service.alignment import conflicts as conflict_rules
from service.alignment.constants import ConflictStatus
from service.alignment.models import Conflict
from service.alignment.schemas import ConflictGoal, ConflictRead
from service.alignment.structure import Structure, load_structure
from service.core.errors import Conflict as ConflictError
from service.core.errors import NotFoundFor
from service.core.pagination import PageRequest, page_of
from service.core.permissions import Action, Principal
from service.core.types import utcnow


async def refresh_conflicts(session: AsyncSession) -> None:
    """Re-detect every dueling pair and bring the stored conflicts in line.

    New pairs open; pairs that no longer conflict go; a resolved pair stays resolved until
    either of its goals changes (its version moves), then it opens again.
    """
    await session.flush()
    structure = await load_structure(session)
    goal_by_key = {g.key: g for g in structure.goals}
    detected = conflict_rules.detect(structure.facts, structure.relations, structure.moments_of_truth)
    existing = {(c.goal_a_id, c.goal_b_id): c for c in structure.conflicts}
    keep: set[tuple[UUID, UUID]] = set()
    now = utcnow()
    for found in detected:
        a, b = goal_by_key[found.goal_a], goal_by_key[found.goal_b]
        pair = (a.id, b.id)
        keep.add(pair)
        row = existing.get(pair)
        if row is None:
            row = Conflict(goal_a_id=a.id, goal_b_id=b.id, goal_a_version=a.version,
                           goal_b_version=b.version, effect=found.effect, severity=found.severity,
                           incentive_a=found.incentive_a, incentive_b=found.incentive_b,
                           detected_at=now)
            session.add(row)
        elif row.status == ConflictStatus.resolved.value and (
            row.goal_a_version != a.version or row.goal_b_version != b.version
        ):
            row.status = ConflictStatus.open.value
            row.resolution_note = None
            row.resolved_at = None
        row.goal_a_version, row.goal_b_version = a.version, b.version
        row.metric_path = list(found.metric_path)
        row.effect = found.effect
        row.severity = found.severity
        row.reasons = list(found.reasons)
        row.shared_touchpoints = list(found.shared_touchpoints)
        row.incentive_a, row.incentive_b = found.incentive_a, found.incentive_b
        row.updated_at = now
    for pair, row in existing.items():
        if pair not in keep:
            await session.delete(row)
    await session.flush()


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
) -> tuple[list[ConflictRead], str | None]:
    principal.require(Action.conflicts_read)
    if principal.is_partner:
        return [], None  # conflicts are between internal goals: never a partner's to see
    structure = await load_structure(session)
    rows = sorted(
        (c for c in structure.conflicts if status is None or c.status == status.value),
        key=lambda c: (-c.severity, c.detected_at, str(c.id)),
    )
    return page_of([_conflict_read(structure, c) for c in rows], page)


async def conflicts_by_goal_ids(
    session: AsyncSession, principal: Principal, goal_ids: list[UUID]
) -> dict[UUID, list[ConflictRead]]:
    """The conflicts each goal is part of (for batch loading; a partner key sees none)."""
    principal.require(Action.conflicts_read)
    if principal.is_partner:
        return {}
    structure = await load_structure(session)
    wanted = set(goal_ids)
    found: dict[UUID, list[ConflictRead]] = {}
    for row in sorted(structure.conflicts, key=lambda c: (-c.severity, str(c.id))):
        for goal_id in (row.goal_a_id, row.goal_b_id):
            if goal_id in wanted:
                found.setdefault(goal_id, []).append(_conflict_read(structure, row))
    return found


async def get_conflict(session: AsyncSession, principal: Principal, conflict_id: UUID) -> ConflictRead:
    principal.require(Action.conflicts_read)
    structure = await load_structure(session)
    row = next((c for c in structure.conflicts if c.id == conflict_id), None)
    if row is None or principal.is_partner:
        raise NotFoundFor("conflict", conflict_id)
    return _conflict_read(structure, row)


async def resolve_conflict(
    session: AsyncSession, principal: Principal, conflict_id: UUID, note: str
) -> ConflictRead:
    principal.require(Action.conflicts_resolve)
    structure = await load_structure(session)
    row = next((c for c in structure.conflicts if c.id == conflict_id), None)
    if row is None:
        raise NotFoundFor("conflict", conflict_id)
    if row.status == ConflictStatus.resolved.value:
        raise ConflictError("this conflict is already resolved", conflict=str(conflict_id))
    row.status = ConflictStatus.resolved.value
    row.resolution_note = note
    row.resolved_at = row.updated_at = utcnow()
    await session.flush()
    return _conflict_read(structure, row)


def _conflict_read(structure: Structure, row: Conflict) -> ConflictRead:
    facts = {f.key: f for f in structure.facts}
    goals = [facts[structure.goal_key[row.goal_a_id]], facts[structure.goal_key[row.goal_b_id]]]
    return ConflictRead(
        id=row.id,
        goals=[
            ConflictGoal(
                key=g.key,
                owner=g.owner,
                metric=g.metric,
                direction=g.direction,
                incentive_weight=g.incentive_weight,
            )
            for g in goals
        ],
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
