from __future__ import annotations

from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import select

from service.api_keys.models import ApiKey
from service.core.pagination import PageRequest, paginate


async def get_by_hash(session: AsyncSession, secret_hash: str) -> ApiKey | None:
    return (await session.scalars(select(ApiKey).where(ApiKey.secret_hash == secret_hash))).first()


async def get(session: AsyncSession, key_id: UUID) -> ApiKey | None:
    return await session.get(ApiKey, key_id)


async def list_page(session: AsyncSession, page: PageRequest) -> tuple[list[ApiKey], str | None]:
    return await paginate(session, select(ApiKey), order_by=[ApiKey.created_at, ApiKey.id], page=page)
