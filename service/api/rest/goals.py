from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Request, Response

from service.api.deps import (
    IfMatchDep,
    KeyFilter,
    KeyPath,
    PageDep,
    ReadSessionDep,
    SessionDep,
    allow,
)
from service.api.idempotency import IdempotencyKeyDep, respond_once
from service.api.problems import problem_responses
from service.core.fields import Page
from service.core.patching import etag_for
from service.core.permissions import Action, Principal
from service.goals import service as goals_service
from service.goals.constants import GoalStatus
from service.goals.schemas import CheckInCreate, CheckInRead, GoalCreate, GoalRead, GoalUpdate

router = APIRouter(prefix="/v1/goals", tags=["goals"])
Reader = Annotated[Principal, allow(Action.goals_read)]
Writer = Annotated[Principal, allow(Action.goals_write)]


@router.get("", responses=problem_responses())
async def list_goals(
    session: ReadSessionDep,
    principal: Reader,
    page: PageDep,
    owner: KeyFilter = None,
    metric: KeyFilter = None,
    agreement: KeyFilter = None,
    touchpoint: KeyFilter = None,
    status: GoalStatus | None = None,
) -> Page[GoalRead]:
    """Goals by key. A partner key lists only the joint goals of its own agreements."""
    goals, next_cursor = await goals_service.list_page(
        session,
        principal,
        page,
        owner=owner,
        metric=metric,
        agreement=agreement,
        touchpoint=touchpoint,
        status=status,
    )
    return Page(items=await goals_service.to_read(session, goals, principal), next_cursor=next_cursor)


@router.post("", status_code=201, responses=problem_responses(409))
async def create_goal(
    request: Request,
    body: GoalCreate,
    session: SessionDep,
    principal: Writer,
    idempotency_key: IdempotencyKeyDep = None,
) -> GoalRead:
    """Create a goal. A `contributes_to` chain that would close a cycle is refused (422
    naming the cycle); conflicts with other goals are detected at once."""

    async def create():
        goal = await goals_service.create(session, principal, body)
        (read,) = await goals_service.to_read(session, [goal], principal)
        return 201, read, {"ETag": etag_for(goal.version), "Location": f"/v1/goals/{goal.key}"}

    return await respond_once(request, session, principal, idempotency_key, create)  # type: ignore[return-value]


@router.get("/{key}", responses=problem_responses(404))
async def get_goal(
    key: KeyPath, response: Response, session: ReadSessionDep, principal: Reader
) -> GoalRead:
    goal = await goals_service.get(session, principal, key)
    response.headers["ETag"] = etag_for(goal.version)
    (read,) = await goals_service.to_read(session, [goal], principal)
    return read


@router.patch("/{key}", responses=problem_responses(404, 412))
async def update_goal(
    key: KeyPath,
    body: GoalUpdate,
    response: Response,
    session: SessionDep,
    principal: Writer,
    expected_version: IfMatchDep,
) -> GoalRead:
    """Change a goal (JSON merge patch), its status included: retire it with
    {"status": "retired"}."""
    goal = await goals_service.update(session, principal, key, body, expected_version=expected_version)
    response.headers["ETag"] = etag_for(goal.version)
    (read,) = await goals_service.to_read(session, [goal], principal)
    return read


@router.delete("/{key}", status_code=204, responses=problem_responses(404, 409))
async def delete_goal(key: KeyPath, session: SessionDep, principal: Writer) -> None:
    """Delete a goal no other goal contributes to (otherwise 409)."""
    await goals_service.delete(session, principal, key)


@router.post("/{key}/check-ins", status_code=201, responses=problem_responses(404))
async def create_goal_check_in(
    request: Request,
    key: KeyPath,
    body: CheckInCreate,
    session: SessionDep,
    principal: Writer,
    idempotency_key: IdempotencyKeyDep = None,
) -> CheckInRead:
    """Record where the goal's metric stands."""

    async def create():
        check_in = await goals_service.add_check_in(session, principal, key, body)
        (read,) = await goals_service.check_ins_to_read(session, [check_in])
        return 201, read, {}

    return await respond_once(request, session, principal, idempotency_key, create)  # type: ignore[return-value]


@router.get("/{key}/check-ins", responses=problem_responses(404))
async def list_goal_check_ins(
    key: KeyPath, session: ReadSessionDep, principal: Reader, page: PageDep
) -> Page[CheckInRead]:
    rows, next_cursor = await goals_service.list_check_ins(session, principal, key, page)
    return Page(items=await goals_service.check_ins_to_read(session, rows), next_cursor=next_cursor)
