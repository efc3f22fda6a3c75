"""Goals: who aims at what, how it is paid, where it touches the customer, what it serves.

Joint goals are goals on a partner agreement: either side proposes them (a partner key on
its own agreements only), and they stay ``proposed`` until a writer accepts them. Every
change re-detects dueling-goal conflicts.

A partner's proposal lives in the partner's own key space: the server stores the key it
sends as ``<partner unit key>.<key>``, and keys of that form are reserved for goals on that
partner's agreements. So a partner's key never collides with a goal it cannot see, and a
409 only ever names one of its own goals. Every reference a partner sends (owner, metric,
touchpoints, contributes_to) resolves through what it may read; anything else is
``UnknownReference``, exactly like a key that does not exist.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any
from uuid import UUID

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from service import visibility
from service.alignment import conflict_service, finding_service
from service.core import repository as core_repository
from service.core.db import is_unique_violation
from service.core.errors import (
    Conflict,
    Invalid,
    KeyExists,
    NotFound,
    NotFoundFor,
    StillReferenced,
    UnknownReference,
)
from service.core.pagination import PageRequest
from service.core.patching import check_version, merge
from service.core.permissions import Action, Principal
from service.core.types import utcnow
from service.goals import repository
from service.goals.constants import Direction, GoalKind, GoalStatus, ProposedBy
from service.goals.models import Goal, GoalCheckIn
from service.goals.schemas import (
    CheckInCreate,
    CheckInRead,
    GoalCreate,
    GoalRead,
    GoalUpdate,
    JointGoalCreate,
)
from service.journeys import service as journeys_service
from service.metrics import service as metrics_service
from service.org_units import service as org_units_service
from service.partner_agreements import service as agreements_service
from service.partner_agreements.models import PartnerAgreement
from service.webhooks import service as webhooks
from service.webhooks.constants import EventType

RESOURCE = "goal"
KEY_MAX = 64  # the length of a key (core.fields.Key), a partner's prefix included


class GoalCycle(Invalid):
    code = "goal_cycle"


class NotProposed(Conflict):
    code = "not_proposed"


def _scope(principal: Principal) -> Any:
    return repository.readable(principal, agreements_service.readable_ids(principal))


# Goals -----------------------------------------------------------------------------------------


async def get(session: AsyncSession, principal: Principal, key: str) -> Goal:
    principal.require(Action.goals_read)
    return await _visible(session, principal, key)


async def get_many(session: AsyncSession, principal: Principal, ids: list[UUID]) -> list[Goal | None]:
    principal.require(Action.goals_read)
    return await repository.get_many(session, _scope(principal), ids)


async def list_page(
    session: AsyncSession,
    principal: Principal,
    page: PageRequest,
    *,
    owner: str | None = None,
    metric: str | None = None,
    agreement: str | None = None,
    touchpoint: str | None = None,
    status: GoalStatus | None = None,
) -> tuple[list[Goal], str | None]:
    principal.require(Action.goals_read)
    filters: dict[str, UUID] = {}
    for name, key, lookup in (
        ("owner_id", owner, org_units_service.ids_for_keys),
        ("metric_id", metric, metrics_service.ids_for_keys),
        ("agreement_id", agreement, agreements_service.agreement_ids_for_keys),
        ("touchpoint_id", touchpoint, journeys_service.touchpoint_ids_for_keys),
    ):
        if key is None:
            continue
        found = (await lookup(session, [key])).get(key)
        if found is None:
            return [], None  # filtering by something that does not exist matches nothing
        filters[name] = found
    return await repository.list_page(
        session, _scope(principal), page, status=status.value if status else None, **filters
    )


async def create(session: AsyncSession, principal: Principal, data: GoalCreate) -> Goal:
    principal.require(Action.goals_write)
    agreement = await agreements_service.resolve_agreement(session, data.agreement)
    await _refuse_reserved_key(session, data.key, agreement)
    goal = await _insert(
        session,
        principal,
        data,
        key=data.key,
        agreement=agreement,
        status=data.status,
        proposed_by=ProposedBy.internal,
    )
    # One findings round for the goal and the conflicts it opened
    touched = await conflict_service.refresh_for_goals(session, [goal.id], refresh_findings=False)
    await finding_service.refresh_around(session, goals=[goal.id], conflicts=touched)
    return goal


async def update(
    session: AsyncSession,
    principal: Principal,
    key: str,
    patch: GoalUpdate,
    *,
    expected_version: int | None = None,
) -> Goal:
    principal.require(Action.goals_write)
    goal = await _visible(session, principal, key, for_update=True)
    check_version(goal.version, expected_version)
    (current,) = await to_read(session, [goal])
    data = merge(current.model_dump(include=set(GoalCreate.model_fields)), patch, GoalCreate)
    agreement = await agreements_service.resolve_agreement(session, data.agreement)
    if agreement is None or agreement.id != goal.agreement_id:
        await _refuse_reserved_key(session, goal.key, agreement)
    # Staff see every reference, so ``current`` holds them all: a reference whose key stays
    # keeps its id unlooked-up, and the links (and the acyclic graph) stand as they are
    # unless their keys change. A partner's ``current`` may hide some: it resolves them all.
    touchpoints_change = principal.is_partner or set(data.touchpoints) != set(current.touchpoints)
    targets_change = principal.is_partner or set(data.contributes_to) != set(current.contributes_to)
    keep: dict[str, Any] = {}
    if not principal.is_partner:
        if data.owner == current.owner:
            keep["owner"] = goal.owner_id
        if data.metric == current.metric:
            keep["metric"] = goal.metric_id
        if not (touchpoints_change or targets_change):
            # the links are not replaced: their ids are not needed
            keep["touchpoints"] = keep["contributes_to"] = None
    references = await _resolve(session, principal, data, agreement, keep=keep)
    if targets_change:
        await _refuse_cycle(session, goal, references["contributes_to"])
    reached_before = (
        await finding_service.affected(session, goals=[goal.id])
        if _findings_read_change(current, data)
        else None
    )
    goal.title, goal.owner_id, goal.metric_id = data.title, references["owner"], references["metric"]
    goal.direction, goal.kind = data.direction.value, data.kind.value
    goal.target, goal.baseline = data.target, data.baseline
    goal.incentive_weight = data.incentive_weight
    goal.period_start, goal.period_end = data.period_start, data.period_end
    goal.agreement_id = agreement.id if agreement else None
    _set_status(goal, data.status)
    goal.version += 1
    goal.updated_at = utcnow()
    await session.flush()
    if touchpoints_change or targets_change:
        await repository.replace_links(
            session, goal.id, references["touchpoints"], references["contributes_to"]
        )
    touched = await conflict_service.refresh_for_goals(
        session, [goal.id], refresh_findings=reached_before is None
    )
    if reached_before is not None:
        reached = await finding_service.affected(session, goals=[goal.id], conflicts=touched)
        await finding_service.refresh(session, reached_before | reached)
    return goal


def _findings_read_change(current: GoalRead, data: GoalCreate) -> bool:
    """Whether the change touches what findings read of a goal (a new title or target does
    not; a conflict it opens or closes refreshes its own findings)."""

    def read(goal: GoalRead | GoalCreate) -> tuple[Any, ...]:
        return (
            goal.owner,
            goal.metric,
            goal.kind,
            goal.status,
            goal.agreement,
            frozenset(goal.touchpoints),
            frozenset(goal.contributes_to),
        )

    return read(current) != read(data)


async def delete(session: AsyncSession, principal: Principal, key: str) -> None:
    principal.require(Action.goals_write)
    goal = await _visible(session, principal, key, for_update=True)
    references = await core_repository.blocking_references(session, Goal.__tablename__, goal.id)
    if references:
        # The only restricting reference is another goal contributing to this one.
        raise StillReferenced(RESOURCE, key, references)
    reached = await finding_service.affected(session, goals=[goal.id])
    await conflict_service.forget_goal(session, goal.id)
    await session.delete(goal)
    await session.flush()
    await finding_service.refresh(session, reached)


async def to_read(
    session: AsyncSession, goals: Sequence[Goal], principal: Principal | None = None
) -> list[GoalRead]:
    """Goals as ``principal`` may see them (``service.visibility``): a reference it may not
    read is null, or left out of a list, exactly as the GraphQL ``Goal`` type shows it."""
    ids = [g.id for g in goals]
    touchpoint_links = await repository.touchpoint_ids(session, ids)
    target_links = await repository.contribution_ids(session, ids)
    touchpoint_keys = await journeys_service.touchpoint_keys_for_ids(
        session, [t for linked in touchpoint_links.values() for t in linked]
    )
    target_keys = await core_repository.keys_by_id(
        session, Goal, [t for linked in target_links.values() for t in linked]
    )
    units = await org_units_service.keys_for_ids(session, [g.owner_id for g in goals])
    metrics = await metrics_service.keys_for_ids(session, [g.metric_id for g in goals])
    agreements = await agreements_service.agreement_keys_for_ids(
        session, [g.agreement_id for g in goals]
    )
    shown = await visibility.visible(
        session,
        principal,
        units=[g.owner_id for g in goals],
        metrics=[g.metric_id for g in goals],
        agreements=[g.agreement_id for g in goals],
        touchpoints=[t for linked in touchpoint_links.values() for t in linked],
        goals=[t for linked in target_links.values() for t in linked],
    )
    return [
        GoalRead(
            id=g.id,
            key=g.key,
            title=g.title,
            owner=shown.key(g.owner_id, units),
            metric=shown.key(g.metric_id, metrics),
            direction=Direction(g.direction),
            target=g.target,
            baseline=g.baseline,
            kind=GoalKind(g.kind),
            incentive_weight=g.incentive_weight,
            period_start=g.period_start,
            period_end=g.period_end,
            touchpoints=shown.keys(touchpoint_links.get(g.id, []), touchpoint_keys),
            contributes_to=shown.keys(target_links.get(g.id, []), target_keys),
            agreement=shown.key(g.agreement_id, agreements),
            status=GoalStatus(g.status),
            proposed_by=ProposedBy(g.proposed_by),
            accepted_at=g.accepted_at,
            version=g.version,
            created_at=g.created_at,
            updated_at=g.updated_at,
        )
        for g in goals
    ]


# Joint goals -----------------------------------------------------------------------------------


async def propose_joint_goal(
    session: AsyncSession, principal: Principal, agreement_key: str, data: JointGoalCreate
) -> Goal:
    """A goal on the agreement, ``proposed`` until accepted. A partner key may propose only
    on its own agreements (another partner's agreement does not exist for it)."""
    principal.require(Action.joint_goals_propose)
    agreement = await agreements_service.visible(session, principal, agreement_key)
    if principal.is_partner:
        key = await _partner_key(session, agreement, data.key)
    else:
        key = data.key
        await _refuse_reserved_key(session, key, agreement)
    goal = await _insert(
        session,
        principal,
        data,
        key=key,
        agreement=agreement,
        status=GoalStatus.proposed,
        proposed_by=ProposedBy.partner if principal.is_partner else ProposedBy.internal,
    )
    touched = await conflict_service.refresh_for_goals(session, [goal.id], refresh_findings=False)
    await finding_service.refresh_around(session, goals=[goal.id], conflicts=touched)
    await _announce(session, EventType.joint_goal_proposed, goal, agreement)
    return goal


async def _announce(
    session: AsyncSession, event_type: EventType, goal: Goal, agreement: PartnerAgreement
) -> None:
    """Tell webhook subscribers, the agreement's partner among them, of a joint goal."""
    await webhooks.emit(
        session,
        event_type,
        {
            "agreement": agreement.key,
            "goal": goal.key,
            "status": goal.status,
            "proposed_by": goal.proposed_by,
        },
        link=f"/v1/goals/{goal.key}",
        concerns=[agreement.partner_id],
    )


async def accept_joint_goal(
    session: AsyncSession, principal: Principal, agreement_key: str, goal_key: str
) -> Goal:
    """Internal acceptance: a proposed joint goal becomes active."""
    principal.require(Action.joint_goals_accept)
    agreement = await agreements_service.visible(session, principal, agreement_key)
    goal = await _visible(session, principal, goal_key, for_update=True)
    if goal.agreement_id != agreement.id:
        raise NotFoundFor(f"joint goal of {agreement_key}", goal_key)
    if goal.status != GoalStatus.proposed.value:
        # Not ``status=``: that member of the problem body is the HTTP status.
        raise NotProposed(
            f"goal {goal_key!r} is {goal.status}, not proposed", current_status=goal.status
        )
    async with finding_service.watch(session, goals=[goal.id]):
        _set_status(goal, GoalStatus.active)
        goal.version += 1
        goal.updated_at = utcnow()
        await session.flush()
        await conflict_service.refresh_for_goals(session, [goal.id])
    await _announce(session, EventType.joint_goal_accepted, goal, agreement)
    return goal


async def list_joint_goals(
    session: AsyncSession, principal: Principal, agreement_key: str, page: PageRequest
) -> tuple[list[Goal], str | None]:
    principal.require(Action.goals_read)
    agreement = await agreements_service.visible(session, principal, agreement_key)
    return await repository.list_page(session, _scope(principal), page, agreement_id=agreement.id)


# Check-ins -------------------------------------------------------------------------------------


async def add_check_in(
    session: AsyncSession, principal: Principal, key: str, data: CheckInCreate
) -> GoalCheckIn:
    principal.require(Action.goals_write)
    goal = await _visible(session, principal, key)
    check_in = GoalCheckIn(goal_id=goal.id, at=data.at or utcnow(), value=data.value, note=data.note)
    session.add(check_in)
    await session.flush()
    return check_in


async def list_check_ins(
    session: AsyncSession, principal: Principal, key: str, page: PageRequest
) -> tuple[list[GoalCheckIn], str | None]:
    principal.require(Action.goals_read)
    goal = await _visible(session, principal, key)
    return await repository.list_check_ins(session, goal.id, page)


async def first_check_ins(
    session: AsyncSession, principal: Principal, goal_ids: list[UUID], *, limit: int
) -> dict[UUID, list[GoalCheckIn]]:
    """The first ``limit`` check-ins (by time) of each visible goal, in one statement."""
    principal.require(Action.goals_read)
    visible = [g.id for g in await repository.get_many(session, _scope(principal), goal_ids) if g]
    c = GoalCheckIn
    return await core_repository.first_per_parent(session, c, c.goal_id, visible, [c.at, c.id], limit)


async def check_ins_to_read(session: AsyncSession, rows: Sequence[GoalCheckIn]) -> list[CheckInRead]:
    keys = await core_repository.keys_by_id(session, Goal, [r.goal_id for r in rows])
    return [
        CheckInRead(
            id=r.id, goal=keys[r.goal_id], at=r.at, value=r.value, note=r.note,
            created_at=r.created_at,
        )
        for r in rows
    ]


# Batches (for GraphQL loaders) -----------------------------------------------------------------


async def list_by_owner_ids(
    session: AsyncSession, principal: Principal, owner_ids: list[UUID]
) -> list[Goal]:
    principal.require(Action.goals_read)
    return await repository.list_by(session, _scope(principal), Goal.owner_id, owner_ids)


async def list_by_agreement_ids(
    session: AsyncSession, principal: Principal, agreement_ids: list[UUID]
) -> list[Goal]:
    principal.require(Action.goals_read)
    return await repository.list_by(session, _scope(principal), Goal.agreement_id, agreement_ids)


async def list_by_touchpoint_ids(
    session: AsyncSession, principal: Principal, touchpoint_ids: list[UUID]
) -> dict[UUID, list[Goal]]:
    """Visible goals naming each touchpoint."""
    principal.require(Action.goals_read)
    links = await repository.goals_by_touchpoint(session, touchpoint_ids)
    goal_ids = sorted({g for ids in links.values() for g in ids})
    goals = {g.id: g for g in await repository.get_many(session, _scope(principal), goal_ids) if g}
    return {
        touchpoint_id: sorted((goals[g] for g in ids if g in goals), key=lambda goal: goal.key)
        for touchpoint_id, ids in links.items()
    }


async def touchpoint_ids_by_goal_ids(
    session: AsyncSession, goal_ids: list[UUID]
) -> dict[UUID, list[UUID]]:
    return await repository.touchpoint_ids(session, goal_ids)


async def contribution_ids_by_goal_ids(
    session: AsyncSession, goal_ids: list[UUID]
) -> dict[UUID, list[UUID]]:
    return await repository.contribution_ids(session, goal_ids)


async def touchpoint_keys_by_goal_ids(
    session: AsyncSession, goal_ids: list[UUID]
) -> dict[UUID, list[str]]:
    links = await repository.touchpoint_ids(session, goal_ids)
    keys = await journeys_service.touchpoint_keys_for_ids(
        session, [t for ids in links.values() for t in ids]
    )
    return {goal_id: sorted(keys[t] for t in ids) for goal_id, ids in links.items()}


async def contributes_to_by_goal_ids(
    session: AsyncSession, goal_ids: list[UUID]
) -> dict[UUID, list[str]]:
    links = await repository.contribution_ids(session, goal_ids)
    keys = await core_repository.keys_by_id(session, Goal, [t for ids in links.values() for t in ids])
    return {goal_id: sorted(keys[t] for t in ids) for goal_id, ids in links.items()}


# Internals -------------------------------------------------------------------------------------


async def _visible(
    session: AsyncSession, principal: Principal, key: str, *, for_update: bool = False
) -> Goal:
    goal = await repository.get_by_key(session, _scope(principal), key, for_update=for_update)
    if goal is None:
        raise NotFoundFor(RESOURCE, key)
    return goal


def _set_status(goal: Goal, status: GoalStatus) -> None:
    if goal.status == GoalStatus.proposed.value and status is GoalStatus.active:
        goal.accepted_at = utcnow()
    goal.status = status.value


async def _insert(
    session: AsyncSession,
    principal: Principal,
    data: GoalCreate | JointGoalCreate,
    *,
    key: str,
    agreement: PartnerAgreement | None,
    status: GoalStatus,
    proposed_by: ProposedBy,
) -> Goal:
    if key in data.contributes_to:
        raise GoalCycle(
            f"a goal cannot contribute to itself: {key} → {key}",
            loc=("body", "contributes_to"),
            cycle=[key, key],
        )
    references = await _resolve(session, principal, data, agreement)
    goal = Goal(
        key=key,
        title=data.title,
        owner_id=references["owner"],
        metric_id=references["metric"],
        direction=data.direction.value,
        target=data.target,
        baseline=data.baseline,
        kind=data.kind.value,
        incentive_weight=data.incentive_weight,
        period_start=data.period_start,
        period_end=data.period_end,
        agreement_id=agreement.id if agreement else None,
        status=status.value,
        proposed_by=proposed_by.value,
        accepted_at=utcnow() if agreement is not None and status is GoalStatus.active else None,
    )
    session.add(goal)
    try:
        await session.flush()
    except IntegrityError as exc:
        if is_unique_violation(exc):
            raise KeyExists(RESOURCE, key) from exc
        raise
    await repository.add_links(
        session, goal.id, references["touchpoints"], references["contributes_to"]
    )
    return goal


async def _resolve(
    session: AsyncSession,
    principal: Principal,
    data: GoalCreate | JointGoalCreate,
    agreement: PartnerAgreement | None,
    *,
    keep: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The ids ``data`` names, by field; ``keep``: fields already known (a patch that leaves
    them as they are), not looked up again."""
    keep = keep or {}
    # Each through the caller's own scope: what it may not read is as unknown as what
    # does not exist (a partner: its own unit, its agreements' goals and their metrics,
    # no touchpoint).
    if "owner" in keep:
        owner = keep["owner"]
    else:
        owner = await _in_scope(org_units_service.get, session, principal, "owner", data.owner)
    if agreement is not None and owner not in (agreement.partner_id, agreement.internal_owner_id):
        raise Invalid(
            f"owner: a goal on agreement {agreement.key!r} is owned by its partner or its "
            "internal owner",
            loc=("body", "owner"),
        )
    references = {"owner": owner, **keep}
    if "metric" not in keep:
        references["metric"] = await _in_scope(
            metrics_service.get, session, principal, "metric", data.metric
        )
    if "touchpoints" not in keep:
        references["touchpoints"] = [
            await _in_scope(journeys_service.get_touchpoint, session, principal, "touchpoints", key)
            for key in data.touchpoints
        ]
    if "contributes_to" not in keep:
        # Only goals the caller may see: a partner cannot tie its proposal to (or probe for)
        # internal goals or another partner's.
        targets = await repository.ids_by_key(session, _scope(principal), data.contributes_to)
        for key in data.contributes_to:
            if key not in targets:
                raise UnknownReference("contributes_to", RESOURCE, key)
        references["contributes_to"] = [targets[k] for k in data.contributes_to]
    return references


async def _in_scope(
    get: Any, session: AsyncSession, principal: Principal, field: str, key: str
) -> UUID:
    """The id of ``key`` through the owning service's scoped ``get``; absent or not the
    caller's to see, it is the same ``UnknownReference`` naming ``field``."""
    try:
        return (await get(session, principal, key)).id
    except NotFound as exc:
        raise UnknownReference(field, exc.extra["resource"], key) from None


async def _partner_key(session: AsyncSession, agreement: PartnerAgreement, key: str) -> str:
    """The key a partner's proposal is stored under: in the partner's own key space."""
    partner = (await org_units_service.keys_for_ids(session, [agreement.partner_id]))[
        agreement.partner_id
    ]
    spaced = f"{partner}.{key}"
    if len(spaced) > KEY_MAX:
        raise Invalid(
            f"key: with the partner's prefix {partner + '.'!r} it must stay within "
            f"{KEY_MAX} characters",
            loc=("body", "key"),
        )
    return spaced


async def _refuse_reserved_key(
    session: AsyncSession, key: str, agreement: PartnerAgreement | None
) -> None:
    """``<unit>.<…>`` with an outside unit's key is that partner's key space: only goals on
    that partner's agreements may use it (so its proposals never meet a hidden goal)."""
    prefix, dot, _ = key.partition(".")
    if not dot:
        return
    try:
        unit = await org_units_service.get_external(session, prefix, field="key")
    except Invalid:  # no unit, or an internal one: nobody's key space
        return
    if agreement is None or agreement.partner_id != unit.id:
        raise Invalid(
            f"key: keys starting {prefix + '.'!r} are reserved for goals on {prefix}'s "
            "agreements",
            loc=("body", "key"),
        )


async def _refuse_cycle(session: AsyncSession, goal: Goal, target_ids: list[UUID]) -> None:
    """``goal`` → targets must not lead back to ``goal`` through contributes_to."""
    edges: dict[UUID, list[UUID]] = defaultdict(list)
    for source, target in await repository.contribution_edges(session):
        if source != goal.id:
            edges[source].append(target)
    edges[goal.id] = list(target_ids)
    path = _path_back(edges, goal.id)
    if path is None:
        return
    keys = await core_repository.keys_by_id(session, Goal, path)
    named = [keys[node] for node in path]
    raise GoalCycle(
        f"contributes_to would close a cycle: {' → '.join(named)}",
        loc=("body", "contributes_to"),
        cycle=named,
    )


def _path_back(edges: dict[UUID, list[UUID]], start: UUID) -> list[UUID] | None:
    """A path start → … → start along ``edges``, if there is one (iterative DFS)."""
    stack: list[tuple[UUID, list[UUID]]] = [(target, [start, target]) for target in edges[start]]
    seen: set[UUID] = set()
    while stack:
        node, path = stack.pop()
        if node == start:
            return path
        if node in seen:
            continue
        seen.add(node)
        stack.extend((nxt, [*path, nxt]) for nxt in edges.get(node, []))
    return None
