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
from service.goals.schemas import GoalRead, JointGoalCreate
from service.partner_agreements import service as agreements_service
from service.partner_agreements.constants import AgreementStatus
from service.partner_agreements.schemas import AgreementCreate, AgreementRead, AgreementUpdate

router = APIRouter(prefix="/v1/partner-agreements", tags=["partner agreements"])
Reader = Annotated[Principal, allow(Action.agreements_read)]
Writer = Annotated[Principal, allow(Action.agreements_write)]


@router.get("", responses=problem_responses())
async def list_partner_agreements(
    session: ReadSessionDep,
    principal: Reader,
    page: PageDep,
    partner: KeyFilter = None,
    internal_owner: KeyFilter = None,
    status: AgreementStatus | None = None,
) -> Page[AgreementRead]:
    """Agreements by key. A partner key lists only its own."""
    agreements, next_cursor = await agreements_service.list_page(
        session, principal, page, partner=partner, internal_owner=internal_owner, status=status
    )
    return Page(items=await agreements_service.to_read(session, agreements, principal), next_cursor=next_cursor)


@router.post("", status_code=201, responses=problem_responses(409))
async def create_partner_agreement(
    request: Request,
    body: AgreementCreate,
    session: SessionDep,
    principal: Writer,
    idempotency_key: IdempotencyKeyDep = None,
) -> AgreementRead:
    async def create():
        agreement = await agreements_service.create(session, principal, body)
        (read,) = await agreements_service.to_read(session, [agreement], principal)
        headers = {
            "ETag": etag_for(agreement.version),
            "Location": f"/v1/partner-agreements/{agreement.key}",
        }
        return 201, read, headers

    return await respond_once(request, session, principal, idempotency_key, create)  # type: ignore[return-value]


@router.get("/{key}", responses=problem_responses(404))
async def get_partner_agreement(
    key: KeyPath, response: Response, session: ReadSessionDep, principal: Reader
) -> AgreementRead:
    agreement = await agreements_service.get(session, principal, key)
    response.headers["ETag"] = etag_for(agreement.version)
    (read,) = await agreements_service.to_read(session, [agreement], principal)
    return read


@router.patch("/{key}", responses=problem_responses(404, 412))
async def update_partner_agreement(
    key: KeyPath,
    body: AgreementUpdate,
    response: Response,
    session: SessionDep,
    principal: Writer,
    expected_version: IfMatchDep,
) -> AgreementRead:
    agreement = await agreements_service.update(
        session, principal, key, body, expected_version=expected_version
    )
    response.headers["ETag"] = etag_for(agreement.version)
    (read,) = await agreements_service.to_read(session, [agreement], principal)
    return read


@router.delete("/{key}", status_code=204, responses=problem_responses(404, 409))
async def delete_partner_agreement(key: KeyPath, session: SessionDep, principal: Writer) -> None:
    """Delete an agreement no goal or handoff refers to (otherwise 409)."""
    await agreements_service.delete(session, principal, key)


@router.get("/{key}/joint-goals", responses=problem_responses(404))
async def list_joint_goals(
    key: KeyPath,
    session: ReadSessionDep,
    principal: Annotated[Principal, allow(Action.goals_read)],
    page: PageDep,
) -> Page[GoalRead]:
    goals, next_cursor = await goals_service.list_joint_goals(session, principal, key, page)
    return Page(items=await goals_service.to_read(session, goals, principal), next_cursor=next_cursor)


@router.post("/{key}/joint-goals", status_code=201, responses=problem_responses(404, 409))
async def propose_joint_goal(
    request: Request,
    key: KeyPath,
    body: JointGoalCreate,
    session: SessionDep,
    principal: Annotated[Principal, allow(Action.joint_goals_propose)],
    idempotency_key: IdempotencyKeyDep = None,
) -> GoalRead:
    """Propose a goal on the agreement (a partner key: on its own agreements). It is
    `proposed` until a writer accepts it; its owner is the partner or the internal owner."""

    async def create():
        goal = await goals_service.propose_joint_goal(session, principal, key, body)
        (read,) = await goals_service.to_read(session, [goal], principal)
        return 201, read, {"ETag": etag_for(goal.version), "Location": f"/v1/goals/{goal.key}"}

    return await respond_once(request, session, principal, idempotency_key, create)  # type: ignore[return-value]


@router.post("/{key}/joint-goals/{goal_key}/accept", responses=problem_responses(404, 409))
async def accept_joint_goal(
    key: KeyPath,
    goal_key: KeyPath,
    response: Response,
    session: SessionDep,
    principal: Annotated[Principal, allow(Action.joint_goals_accept)],
) -> GoalRead:
    """Accept a proposed joint goal: it becomes active (409 if it is not proposed)."""
    goal = await goals_service.accept_joint_goal(session, principal, key, goal_key)
    response.headers["ETag"] = etag_for(goal.version)
    (read,) = await goals_service.to_read(session, [goal], principal)
    return read
