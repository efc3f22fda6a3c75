from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Request, Response

from service.api.deps import IfMatchDep, KeyPath, PageDep, ReadSessionDep, SessionDep, allow
from service.api.idempotency import IdempotencyKeyDep, respond_once
from service.api.problems import problem_responses
from service.core.fields import Page
from service.core.patching import etag_for
from service.core.permissions import Action, Principal
from service.journeys import service as journeys_service
from service.journeys.schemas import JourneyCreate, JourneyRead, JourneyUpdate

router = APIRouter(prefix="/v1/journeys", tags=["journeys"])


@router.get("", responses=problem_responses())
async def list_journeys(
    session: ReadSessionDep,
    principal: Annotated[Principal, allow(Action.journeys_read)],
    page: PageDep,
) -> Page[JourneyRead]:
    """Journeys, by key. A partner key sees none."""
    journeys, next_cursor = await journeys_service.list_journeys(session, principal, page)
    return Page(items=journeys_service.journeys_to_read(journeys), next_cursor=next_cursor)


@router.post("", status_code=201, responses=problem_responses(409))
async def create_journey(
    request: Request,
    body: JourneyCreate,
    session: SessionDep,
    principal: Annotated[Principal, allow(Action.journeys_write)],
    idempotency_key: IdempotencyKeyDep = None,
) -> JourneyRead:
    async def create():
        journey = await journeys_service.create_journey(session, principal, body)
        headers = {"ETag": etag_for(journey.version), "Location": f"/v1/journeys/{journey.key}"}
        return 201, journeys_service.journey_to_read(journey), headers

    return await respond_once(request, session, principal, idempotency_key, create)  # type: ignore[return-value]


@router.get("/{key}", responses=problem_responses(404))
async def get_journey(
    key: KeyPath,
    response: Response,
    session: ReadSessionDep,
    principal: Annotated[Principal, allow(Action.journeys_read)],
) -> JourneyRead:
    journey = await journeys_service.get_journey(session, principal, key)
    response.headers["ETag"] = etag_for(journey.version)
    return journeys_service.journey_to_read(journey)


@router.patch("/{key}", responses=problem_responses(404, 412))
async def update_journey(
    key: KeyPath,
    body: JourneyUpdate,
    response: Response,
    session: SessionDep,
    principal: Annotated[Principal, allow(Action.journeys_write)],
    expected_version: IfMatchDep,
) -> JourneyRead:
    """Change a journey (JSON merge patch; `stages` is replaced whole). A stage that
    touchpoints use cannot be removed (422 naming it): move the touchpoints first."""
    journey = await journeys_service.update_journey(
        session, principal, key, body, expected_version=expected_version
    )
    response.headers["ETag"] = etag_for(journey.version)
    return journeys_service.journey_to_read(journey)


@router.delete("/{key}", status_code=204, responses=problem_responses(404, 409))
async def delete_journey(
    key: KeyPath,
    session: SessionDep,
    principal: Annotated[Principal, allow(Action.journeys_write)],
) -> None:
    """Delete a journey without touchpoints (otherwise 409)."""
    await journeys_service.delete_journey(session, principal, key)
