from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from service.api.bulk import BulkReport, bulk_report, bulk_request_body, item_batches
from service.api.deps import (
    ExternalIdPath,
    IfMatchDep,
    KeyFilter,
    KeyPath,
    PageDep,
    ReadSessionDep,
    SessionDep,
    SettingsDep,
    allow,
)
from service.api.idempotency import IdempotencyKeyDep, respond_once
from service.api.problems import problem_responses
from service.core.fields import EXTERNAL_ID_PATTERN, Name, Page, Timestamp
from service.core.patching import etag_for
from service.core.permissions import Action, Principal
from service.journeys import service as journeys_service
from service.journeys.constants import FeedbackScale
from service.journeys.schemas import (
    BulkFeedbackItem,
    FeedbackRead,
    FeedbackUpsert,
    TouchpointCreate,
    TouchpointRead,
    TouchpointUpdate,
)

router = APIRouter(prefix="/v1/touchpoints", tags=["touchpoints"])
feedback_router = APIRouter(prefix="/v1/feedback", tags=["touchpoints"])


@router.get("", responses=problem_responses())
async def list_touchpoints(
    session: ReadSessionDep,
    principal: Annotated[Principal, allow(Action.touchpoints_read)],
    page: PageDep,
    journey: KeyFilter = None,
    owner: KeyFilter = None,
    stage: Annotated[Name | None, Query(description="A stage name of the journey.")] = None,
) -> Page[TouchpointRead]:
    """Touchpoints, by key. A partner key sees none."""
    touchpoints, next_cursor = await journeys_service.list_touchpoints(
        session, principal, page, journey=journey, owner=owner, stage=stage
    )
    return Page(
        items=await journeys_service.touchpoints_to_read(session, touchpoints),
        next_cursor=next_cursor,
    )


@router.post("", status_code=201, responses=problem_responses(409))
async def create_touchpoint(
    request: Request,
    body: TouchpointCreate,
    session: SessionDep,
    principal: Annotated[Principal, allow(Action.touchpoints_write)],
    idempotency_key: IdempotencyKeyDep = None,
) -> TouchpointRead:
    """Create a touchpoint in one of its journey's stages; its owner becomes ring 1."""

    async def create():
        touchpoint = await journeys_service.create_touchpoint(session, principal, body)
        (read,) = await journeys_service.touchpoints_to_read(session, [touchpoint])
        headers = {
            "ETag": etag_for(touchpoint.version),
            "Location": f"/v1/touchpoints/{touchpoint.key}",
        }
        return 201, read, headers

    return await respond_once(request, session, principal, idempotency_key, create)  # type: ignore[return-value]


@router.get("/{key}", responses=problem_responses(404))
async def get_touchpoint(
    key: KeyPath,
    response: Response,
    session: ReadSessionDep,
    principal: Annotated[Principal, allow(Action.touchpoints_read)],
) -> TouchpointRead:
    touchpoint = await journeys_service.get_touchpoint(session, principal, key)
    response.headers["ETag"] = etag_for(touchpoint.version)
    (read,) = await journeys_service.touchpoints_to_read(session, [touchpoint])
    return read


@router.patch("/{key}", responses=problem_responses(404, 412))
async def update_touchpoint(
    key: KeyPath,
    body: TouchpointUpdate,
    response: Response,
    session: SessionDep,
    principal: Annotated[Principal, allow(Action.touchpoints_write)],
    expected_version: IfMatchDep,
) -> TouchpointRead:
    """Change a touchpoint (JSON merge patch). A new owner moves the rings with it."""
    touchpoint = await journeys_service.update_touchpoint(
        session, principal, key, body, expected_version=expected_version
    )
    response.headers["ETag"] = etag_for(touchpoint.version)
    (read,) = await journeys_service.touchpoints_to_read(session, [touchpoint])
    return read


@router.delete("/{key}", status_code=204, responses=problem_responses(404, 409))
async def delete_touchpoint(
    key: KeyPath,
    session: SessionDep,
    principal: Annotated[Principal, allow(Action.touchpoints_write)],
) -> None:
    """Delete a touchpoint no handoff, feedback or goal refers to (otherwise 409)."""
    await journeys_service.delete_touchpoint(session, principal, key)


@router.put(
    "/{key}/feedback/{external_id}",
    responses={
        **problem_responses(404),
        201: {"model": FeedbackRead, "description": "Created"},
    },
)
async def upsert_touchpoint_feedback(
    key: KeyPath,
    external_id: ExternalIdPath,
    body: FeedbackUpsert,
    response: Response,
    session: SessionDep,
    principal: Annotated[Principal, allow(Action.feedback_write)],
) -> FeedbackRead:
    """Record one customer rating, keyed by the survey system's id: 201 when created, 200
    when updated or unchanged. Sending it again is safe."""
    feedback, created = await journeys_service.upsert_feedback(
        session, principal, key, external_id, body
    )
    response.status_code = 201 if created else 200
    (read,) = await journeys_service.feedback_to_read(session, [feedback])
    return read


@router.get("/{key}/feedback", responses=problem_responses(404))
async def list_touchpoint_feedback(
    key: KeyPath,
    session: ReadSessionDep,
    principal: Annotated[Principal, allow(Action.feedback_read)],
    page: PageDep,
    scale: FeedbackScale | None = None,
    case_ref: Annotated[str | None, Query(pattern=EXTERNAL_ID_PATTERN)] = None,
    at_from: Annotated[
        Timestamp | None,
        Query(alias="from", description="Only feedback given at or after this time."),
    ] = None,
    at_to: Annotated[
        Timestamp | None,
        Query(alias="to", description="Only feedback given before this time."),
    ] = None,
) -> Page[FeedbackRead]:
    """A touchpoint's feedback, oldest first. `from` and `to` are ISO 8601 timestamps with
    an offset; the window is [from, to)."""
    _, rows, next_cursor = await journeys_service.list_feedback(
        session,
        principal,
        key,
        page,
        scale=scale,
        case_ref=case_ref,
        at_from=at_from,
        at_to=at_to,
    )
    return Page(
        items=await journeys_service.feedback_to_read(session, rows), next_cursor=next_cursor
    )


@feedback_router.post(
    "/bulk",
    responses=problem_responses(413, 415),
    openapi_extra=bulk_request_body(BulkFeedbackItem),
)
async def bulk_upsert_feedback(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    principal: Annotated[Principal, allow(Action.feedback_write)],
    atomic: Annotated[
        bool, Query(description="All or nothing (default). false writes the valid items.")
    ] = True,
) -> BulkReport:
    """Upsert many customer ratings, each with `touchpoint` and `external_id`.

    Send a JSON array, or stream NDJSON (`application/x-ndjson`, one record per line).
    Atomic by default: any bad item gives 422 listing every bad item by index, and nothing
    is written. With `?atomic=false` the valid items are written and the reply lists the
    rejected ones.
    """
    result = await journeys_service.ingest_feedback(
        session, principal, item_batches(request, settings), atomic=atomic, settings=settings
    )
    return bulk_report(result)
