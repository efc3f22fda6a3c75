"""Idempotency-Key: a retried POST returns the first response instead of acting twice.

Records are scoped per API key, kept at least ``idempotency_ttl_hours`` and written in the
same transaction as the change they describe, so a stored response always matches a
committed write.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import select

from service.core.db import is_unique_violation
from service.core.errors import Conflict, Invalid
from service.core.permissions import Principal
from service.core.types import utcnow
from service.idempotency.models import IdempotencyRecord


class IdempotencyKeyReused(Invalid):
    code = "idempotency_key_reused"


class IdempotencyInFlight(Conflict):
    code = "idempotency_in_flight"


@dataclass(frozen=True, slots=True)
class StoredResponse:
    status_code: int
    headers: dict[str, str]
    body: bytes


async def find(
    session: AsyncSession,
    principal: Principal,
    key: str,
    *,
    request_hash: str,
    ttl: timedelta,
) -> StoredResponse | None:
    record = (
        await session.scalars(
            select(IdempotencyRecord).where(
                IdempotencyRecord.api_key_id == principal.key_id,
                IdempotencyRecord.idempotency_key == key,
                IdempotencyRecord.created_at >= utcnow() - ttl,
            )
        )
    ).first()
    if record is None:
        return None
    if record.request_hash != request_hash:
        raise IdempotencyKeyReused(
            "this Idempotency-Key was used with a different request; use a new key",
            loc=("header", "Idempotency-Key"),
        )
    return StoredResponse(record.status_code, dict(record.response_headers), record.response_body)


async def remember(
    session: AsyncSession,
    principal: Principal,
    key: str,
    *,
    method: str,
    path: str,
    request_hash: str,
    response: StoredResponse,
    ttl: timedelta,
) -> None:
    # Expired records (including this key's) go first, so the key can be reused after the TTL.
    await session.execute(
        delete(IdempotencyRecord).where(IdempotencyRecord.created_at < utcnow() - ttl)
    )
    session.add(
        IdempotencyRecord(
            api_key_id=principal.key_id,
            idempotency_key=key,
            method=method,
            path=path[:512],
            request_hash=request_hash,
            status_code=response.status_code,
            response_headers=response.headers,
            response_body=response.body,
        )
    )
    try:
        await session.flush()
    except IntegrityError as exc:
        if is_unique_violation(exc):
            raise IdempotencyInFlight(
                "another request with this Idempotency-Key is being processed; retry shortly"
            ) from exc
        raise
