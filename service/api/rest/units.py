from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

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
from service.org_units import service as units_service
from service.org_units.constants import UnitKind
from service.org_units.schemas import UnitCreate, UnitRead, UnitUpdate

router = APIRouter(prefix="/v1/units", tags=["units"])


@router.get("", responses=problem_responses())
async def list_units(
    session: ReadSessionDep,
    principal: Annotated[Principal, allow(Action.units_read)],
    page: PageDep,
    kind: UnitKind | None = None,
    parent: KeyFilter = None,
    ring: Annotated[int | None, Query(ge=1, le=1000)] = None,
) -> Page[UnitRead]:
    units, next_cursor = await units_service.list_page(
        session, principal, page, kind=kind, parent=parent, ring=ring
    )
    return Page(items=await units_service.to_read(session, units), next_cursor=next_cursor)


@router.post("", status_code=201, responses=problem_responses(409))
async def create_unit(
    request: Request,
    body: UnitCreate,
    session: SessionDep,
    principal: Annotated[Principal, allow(Action.units_write)],
    idempotency_key: IdempotencyKeyDep = None,
) -> UnitRead:
    async def create():
        unit = await units_service.create(session, principal, body)
        (read,) = await units_service.to_read(session, [unit])
        return 201, read, {"ETag": etag_for(unit.version), "Location": f"/v1/units/{unit.key}"}

    return await respond_once(request, session, principal, idempotency_key, create)  # type: ignore[return-value]


@router.get("/{key}", responses=problem_responses(404))
async def get_unit(
    key: KeyPath,
    response: Response,
    session: ReadSessionDep,
    principal: Annotated[Principal, allow(Action.units_read)],
) -> UnitRead:
    unit = await units_service.get(session, principal, key)
    response.headers["ETag"] = etag_for(unit.version)
    (read,) = await units_service.to_read(session, [unit])
    return read


@router.patch("/{key}", responses=problem_responses(404, 409, 412))
async def update_unit(
    key: KeyPath,
    body: UnitUpdate,
    response: Response,
    session: SessionDep,
    principal: Annotated[Principal, allow(Action.units_write)],
    expected_version: IfMatchDep,
) -> UnitRead:
    unit = await units_service.update(
        session, principal, key, body, expected_version=expected_version
    )
    response.headers["ETag"] = etag_for(unit.version)
    (read,) = await units_service.to_read(session, [unit])
    return read


@router.delete("/{key}", status_code=204, responses=problem_responses(404, 409))
async def delete_unit(
    key: KeyPath,
    session: SessionDep,
    principal: Annotated[Principal, allow(Action.units_write)],
) -> None:
    await units_service.delete(session, principal, key)
