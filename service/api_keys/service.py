"""API keys: issuing, authenticating and revoking."""

from __future__ import annotations

import hashlib
import secrets
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from service.api_keys import repository
from service.api_keys.models import ApiKey
from service.api_keys.schemas import ApiKeyCreate, ApiKeyCreated, ApiKeyRead
from service.core.errors import Invalid, NotFoundFor, Unauthenticated
from service.core.pagination import PageRequest
from service.core.permissions import Action, Principal, Role
from service.core.types import utcnow
from service.org_units import service as org_units_service

SECRET_PREFIX = "ss_"

#: The identity of operator commands (``silospan keys create``, ``silospan demo``).
SYSTEM = Principal(key_id=UUID(int=0), name="system", role=Role.admin)


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _new_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(32)


async def authenticate(session: AsyncSession, secret: str) -> Principal:
    if not secret.startswith(SECRET_PREFIX) or len(secret) > 128:
        raise Unauthenticated("the API key is not valid")
    key = await repository.get_by_hash(session, hash_secret(secret))
    if key is None or key.revoked_at is not None:
        raise Unauthenticated("the API key is not valid or has been revoked")
    return Principal(
        key_id=key.id, name=key.name, role=Role(key.role), partner_unit_id=key.partner_unit_id
    )


async def create(
    session: AsyncSession, principal: Principal, data: ApiKeyCreate
) -> tuple[ApiKey, str]:
    principal.require(Action.api_keys_manage)
    partner_unit_id = None
    if data.role is Role.partner:
        if data.partner is None:
            raise Invalid("a partner key must name its partner unit", loc=("body", "partner"))
        unit = await org_units_service.get_external(session, data.partner, field="partner")
        partner_unit_id = unit.id
    elif data.partner is not None:
        raise Invalid("only partner keys are bound to a unit", loc=("body", "partner"))
    secret = _new_secret()
    key = ApiKey(
        name=data.name,
        role=data.role.value,
        partner_unit_id=partner_unit_id,
        secret_hash=hash_secret(secret),
        prefix=secret[:10],
    )
    session.add(key)
    await session.flush()
    return key, secret


async def get(session: AsyncSession, principal: Principal, key_id: UUID) -> ApiKey:
    principal.require(Action.api_keys_manage)
    key = await repository.get(session, key_id)
    if key is None:
        raise NotFoundFor("api key", key_id)
    return key


async def list_page(
    session: AsyncSession, principal: Principal, page: PageRequest
) -> tuple[list[ApiKey], str | None]:
    principal.require(Action.api_keys_manage)
    return await repository.list_page(session, page)


async def revoke(session: AsyncSession, principal: Principal, key_id: UUID) -> ApiKey:
    key = await get(session, principal, key_id)
    if key.revoked_at is None:
        key.revoked_at = utcnow()
        await session.flush()
    return key


async def to_read(session: AsyncSession, keys: list[ApiKey]) -> list[ApiKeyRead]:
    partners = await org_units_service.keys_for_ids(session, [k.partner_unit_id for k in keys])
    return [
        ApiKeyRead(
            id=k.id,
            name=k.name,
            role=Role(k.role),
            partner=partners.get(k.partner_unit_id) if k.partner_unit_id else None,
            prefix=k.prefix,
            created_at=k.created_at,
            revoked_at=k.revoked_at,
        )
        for k in keys
    ]


async def to_created(session: AsyncSession, key: ApiKey, secret: str) -> ApiKeyCreated:
    (read,) = await to_read(session, [key])
    return ApiKeyCreated(**read.model_dump(), secret=secret)
