from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Response

from service.api.deps import PageDep, ReadSessionDep, SessionDep, allow
from service.api.problems import problem_responses
from service.api_keys import service as api_keys_service
from service.api_keys.schemas import ApiKeyCreate, ApiKeyCreated, ApiKeyRead
from service.core.fields import Page
from service.core.permissions import Action, Principal

router = APIRouter(prefix="/v1/api-keys", tags=["api keys"])
AdminDep = Annotated[Principal, allow(Action.api_keys_manage)]


@router.get("", responses=problem_responses())
async def list_api_keys(session: ReadSessionDep, principal: AdminDep, page: PageDep) -> Page[ApiKeyRead]:
    keys, next_cursor = await api_keys_service.list_page(session, principal, page)
    return Page(items=await api_keys_service.to_read(session, keys), next_cursor=next_cursor)


@router.post("", status_code=201, responses=problem_responses())
async def create_api_key(
    body: ApiKeyCreate, response: Response, session: SessionDep, principal: AdminDep
) -> ApiKeyCreated:
    """Issue a key. The secret is in this response only; SiloSpan keeps just its hash.

    This create takes no Idempotency-Key: replaying it would mean storing the secret.
    """
    key, secret = await api_keys_service.create(session, principal, body)
    response.headers["Location"] = f"/v1/api-keys/{key.id}"
    response.headers["Cache-Control"] = "no-store"
    return await api_keys_service.to_created(session, key, secret)


@router.get("/{key_id}", responses=problem_responses(404))
async def get_api_key(key_id: UUID, session: ReadSessionDep, principal: AdminDep) -> ApiKeyRead:
    key = await api_keys_service.get(session, principal, key_id)
    (read,) = await api_keys_service.to_read(session, [key])
    return read


@router.post("/{key_id}/revoke", responses=problem_responses(404))
async def revoke_api_key(key_id: UUID, session: SessionDep, principal: AdminDep) -> ApiKeyRead:
    """Revoke a key: it stops working at once. Revoking twice is harmless."""
    key = await api_keys_service.revoke(session, principal, key_id)
    (read,) = await api_keys_service.to_read(session, [key])
    return read


@router.delete("/{key_id}", status_code=204, responses=problem_responses(404))
async def delete_api_key(key_id: UUID, session: SessionDep, principal: AdminDep) -> None:
    """Revoke a key (the record stays, for the audit trail)."""
    await api_keys_service.revoke(session, principal, key_id)
