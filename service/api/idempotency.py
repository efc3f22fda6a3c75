"""Idempotent POST creates over HTTP (see service.idempotency for the rules)."""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Annotated

import orjson
from fastapi import Header, Request
from fastapi.responses import Response
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from service.core.permissions import Principal
from service.idempotency import service as idempotency_service

IdempotencyKeyDep = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=255,
        pattern=r"^[\x21-\x7e]+$",
        description="Retrying with the same key and body returns the first response; "
        "the same key with another body is refused (422). While a request with the key is "
        "still running, another gets 409 `idempotency_in_flight` with Retry-After. "
        "Kept 24 hours.",
    ),
]

Created = tuple[int, BaseModel, dict[str, str]]


def _canonical(body: bytes) -> bytes:
    """The same JSON document hashes the same whatever its spacing or key order."""
    try:
        return orjson.dumps(orjson.loads(body), option=orjson.OPT_SORT_KEYS)
    except orjson.JSONDecodeError:
        return body


async def respond_once(
    request: Request,
    session: AsyncSession,
    principal: Principal,
    idempotency_key: str | None,
    create: Callable[[], Awaitable[Created]],
) -> Response:
    """Run ``create`` once per Idempotency-Key and answer with its (stored) response."""
    if idempotency_key is None:
        status, model, headers = await create()
        return Response(model.model_dump_json(), status, headers, "application/json")
    ttl = timedelta(hours=request.app.state.settings.idempotency_ttl_hours)
    digest = hashlib.sha256()
    for part in (request.method, request.url.path, request.url.query):
        digest.update(part.encode() + b"\0")
    digest.update(_canonical(await request.body()))
    request_hash = digest.hexdigest()
    stored = await idempotency_service.claim(
        session, principal, idempotency_key, request_hash=request_hash, ttl=ttl
    )
    if stored is None:
        status, model, headers = await create()
        stored = idempotency_service.StoredResponse(status, headers, model.model_dump_json().encode())
        await idempotency_service.remember(
            session,
            principal,
            idempotency_key,
            method=request.method,
            path=request.url.path,
            request_hash=request_hash,
            response=stored,
            ttl=ttl,
        )
        return Response(stored.body, stored.status_code, stored.headers, "application/json")
    return Response(
        stored.body,
        stored.status_code,
        {**stored.headers, "Idempotent-Replayed": "true"},
        "application/json",
    )
