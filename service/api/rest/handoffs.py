from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from service import visibility
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
from service.core.fields import EXTERNAL_ID_PATTERN, Page
from service.core.patching import etag_for
from service.core.permissions import Action, Principal
from service.handoffs import service as handoffs_service
from service.handoffs.constants import EventStatus, HandoffStatus
from service.handoffs.schemas import (
    BulkEventItem,
    EventRead,
    EventUpsert,
    HandoffCreate,
    HandoffRead,
    HandoffUpdate,
    ReviewCreate,
    ReviewRead,
)

router = APIRouter(prefix="/v1/handoffs", tags=["handoffs"])
bulk_router = APIRouter(prefix="/v1/handoff-events", tags=["handoffs"])


@router.get("", responses=problem_responses())
async def list_handoffs(
    session: ReadSessionDep,
    principal: Annotated[Principal, allow(Action.handoffs_read)],
    page: PageDep,
    from_unit: KeyFilter = None,
    to_unit: KeyFilter = None,
    touchpoint: KeyFilter = None,
    agreement: KeyFilter = None,
    status: HandoffStatus | None = None,
) -> Page[HandoffRead]:
    """Handoffs, by key. A partner key lists only the handoffs it provides or receives."""
    handoffs, next_cursor = await handoffs_service.list_page(
        session,
        principal,
        page,
        from_unit=from_unit,
        to_unit=to_unit,
        touchpoint=touchpoint,
        agreement=agreement,
        status=status,
    )
    return Page(items=await visibility.handoffs_to_read(session, principal, handoffs), next_cursor=next_cursor)


@router.post("", status_code=201, responses=problem_responses(409))
async def create_handoff(
    request: Request,
    body: HandoffCreate,
    session: SessionDep,
    principal: Annotated[Principal, allow(Action.handoffs_write)],
    idempotency_key: IdempotencyKeyDep = None,
) -> HandoffRead:
    async def create():
        handoff = await handoffs_service.create(session, principal, body)
        (read,) = await visibility.handoffs_to_read(session, principal, [handoff])
        headers = {"ETag": etag_for(handoff.version), "Location": f"/v1/handoffs/{handoff.key}"}
        return 201, read, headers

    return await respond_once(request, session, principal, idempotency_key, create)  # type: ignore[return-value]


@router.get("/{key}", responses=problem_responses(404))
async def get_handoff(
    key: KeyPath,
    response: Response,
    session: ReadSessionDep,
    principal: Annotated[Principal, allow(Action.handoffs_read)],
) -> HandoffRead:
    handoff = await handoffs_service.get(session, principal, key)
    response.headers["ETag"] = etag_for(handoff.version)
    (read,) = await visibility.handoffs_to_read(session, principal, [handoff])
    return read


@router.patch("/{key}", responses=problem_responses(404, 412))
async def update_handoff(
    key: KeyPath,
    body: HandoffUpdate,
    response: Response,
    session: SessionDep,
    principal: Annotated[Principal, allow(Action.handoffs_write)],
    expected_version: IfMatchDep,
) -> HandoffRead:
    """Change a handoff (JSON merge patch). Retire it with {"status": "retired"}."""
    handoff = await handoffs_service.update(
        session, principal, key, body, expected_version=expected_version
    )
    response.headers["ETag"] = etag_for(handoff.version)
    (read,) = await visibility.handoffs_to_read(session, principal, [handoff])
    return read


@router.delete("/{key}", status_code=204, responses=problem_responses(404, 409))
async def delete_handoff(
    key: KeyPath,
    session: SessionDep,
    principal: Annotated[Principal, allow(Action.handoffs_write)],
) -> None:
    """Delete a handoff with no events or reviews (otherwise 409: retire it instead)."""
    await handoffs_service.delete(session, principal, key)


@router.put(
    "/{key}/events/{external_id}",
    responses={
        **problem_responses(404),
        201: {"model": EventRead, "description": "Created"},
    },
)
async def upsert_handoff_event(
    key: KeyPath,
    external_id: ExternalIdPath,
    body: EventUpsert,
    response: Response,
    session: SessionDep,
    principal: Annotated[Principal, allow(Action.events_write)],
) -> EventRead:
    """Register one occurrence, keyed by the source system's id: 201 when created, 200 when
    updated or unchanged. Sending it again is safe."""
    event, created = await handoffs_service.upsert_event(session, principal, key, external_id, body)
    response.status_code = 201 if created else 200
    (read,) = await handoffs_service.events_to_read(session, principal, [event])
    return read


@router.get("/{key}/events", responses=problem_responses(404))
async def list_handoff_events(
    key: KeyPath,
    session: ReadSessionDep,
    principal: Annotated[Principal, allow(Action.events_read)],
    page: PageDep,
    status: EventStatus | None = None,
    case_ref: Annotated[str | None, Query(pattern=EXTERNAL_ID_PATTERN)] = None,
) -> Page[EventRead]:
    """Occurrences by due date: pending (not yet due), delivered, or overdue."""
    _, events, next_cursor = await handoffs_service.list_events(
        session, principal, key, page, status=status, case_ref=case_ref
    )
    items = await handoffs_service.events_to_read(session, principal, events)
    return Page(items=items, next_cursor=next_cursor)


@router.post("/{key}/reviews", status_code=201, responses=problem_responses(404))
async def create_handoff_review(
    request: Request,
    key: KeyPath,
    body: ReviewCreate,
    session: SessionDep,
    principal: Annotated[Principal, allow(Action.reviews_write)],
    idempotency_key: IdempotencyKeyDep = None,
) -> ReviewRead:
    """The receiving unit's pulse on the handoff (writer, admin, or the receiving partner)."""

    async def create():
        review = await handoffs_service.add_review(session, principal, key, body)
        (read,) = await handoffs_service.reviews_to_read(session, [review])
        return 201, read, {}

    return await respond_once(request, session, principal, idempotency_key, create)  # type: ignore[return-value]


@router.get("/{key}/reviews", responses=problem_responses(404))
async def list_handoff_reviews(
    key: KeyPath,
    session: ReadSessionDep,
    principal: Annotated[Principal, allow(Action.reviews_read)],
    page: PageDep,
) -> Page[ReviewRead]:
    reviews, next_cursor = await handoffs_service.list_reviews(session, principal, key, page)
    return Page(items=await handoffs_service.reviews_to_read(session, reviews), next_cursor=next_cursor)


@bulk_router.post(
    "/bulk",
    responses=problem_responses(413, 415),
    openapi_extra=bulk_request_body(BulkEventItem),
)
async def bulk_upsert_handoff_events(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    principal: Annotated[Principal, allow(Action.events_write)],
    atomic: Annotated[
        bool, Query(description="All or nothing (default). false writes the valid items.")
    ] = True,
) -> BulkReport:
    """Upsert many occurrences, each with `handoff` and `external_id`.

    Send a JSON array, or stream NDJSON (`application/x-ndjson`, one event per line; up to
    1,000,000 events). Atomic by default: any bad item gives 422 listing every bad item by
    index, and nothing is written. With `?atomic=false` the valid items are written and the
    reply lists the rejected ones.
    """
    result = await handoffs_service.ingest_events(
        session, principal, item_batches(request, settings), atomic=atomic, settings=settings
    )
    return bulk_report(result)
