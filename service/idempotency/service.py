"""Idempotency-Key: a retried POST returns the first response instead of acting twice.

Records are scoped per API key, kept at least ``idempotency_ttl_hours`` and written in the
same transaction as the change they describe, so a stored response always matches a
committed write.

Concurrent requests with one key: ``claim`` takes the key for the request's transaction
before anything is read or written, so only one of them runs the create. The others wait
briefly for it and get its stored response, or, while it is still running, a 409
``idempotency_in_flight`` with ``Retry-After``: never the create's own error (such as
``key_exists``), which would look permanent. On PostgreSQL the key is a transaction-scoped
advisory lock; on SQLite write transactions already run one at a time (``BEGIN
IMMEDIATE``), so a later request only begins once the first has committed.
"""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete, func
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
    retry_after = 1

    def __init__(self) -> None:
        super().__init__(
            "another request with this Idempotency-Key is still being processed; retry after "
            f"{self.retry_after} s to get its response"
        )


#: Namespace of the two-key advisory locks on (API key, Idempotency-Key) (PostgreSQL).
LOCK_NAMESPACE = 0x1DE4_0001
#: How long a request waits for another one with its key before answering in flight:
#: the pauses between attempts, about 0.75 s in all (a create takes milliseconds).
CLAIM_PAUSES = (0.01, 0.02, 0.04, 0.08, 0.1, 0.2, 0.3)


@dataclass(frozen=True, slots=True)
class StoredResponse:
    status_code: int
    headers: dict[str, str]
    body: bytes


async def claim(
    session: AsyncSession,
    principal: Principal,
    key: str,
    *,
    request_hash: str,
    ttl: timedelta,
) -> StoredResponse | None:
    """Take ``key`` for this transaction, then return its stored response, if any.

    ``None`` means this request runs the create and must ``remember`` its response in the
    same transaction. Raises ``IdempotencyInFlight`` while another transaction holds it.
    """
    await _lock(session, principal, key)
    return await find(session, principal, key, request_hash=request_hash, ttl=ttl)


async def _lock(session: AsyncSession, principal: Principal, key: str) -> None:
    if session.get_bind().dialect.name != "postgresql":
        return  # SQLite: this transaction began IMMEDIATE, after any other writer's commit
    digest = hashlib.sha256(f"{principal.key_id}\0{key}".encode()).digest()
    lock_key = int.from_bytes(digest[:4], "big", signed=True)
    take = select(func.pg_try_advisory_xact_lock(LOCK_NAMESPACE, lock_key))
    for pause in (*CLAIM_PAUSES, None):
        if await session.scalar(take):
            return  # held until this transaction commits or rolls back
        if pause is None:
            raise IdempotencyInFlight()
        await asyncio.sleep(pause)


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
            raise IdempotencyInFlight() from exc
        raise
