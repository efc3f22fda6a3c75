"""Bulk requests: bodies read as NDJSON streamed line by line or a JSON array, and the report
every bulk endpoint answers with."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import orjson
from fastapi import Request
from pydantic import BaseModel, Field

from service.core.bulk import BulkResult
from service.core.config import Settings
from service.core.errors import DomainError, Invalid, PayloadTooLarge
from service.core.fields import ReadModel

BATCH_SIZE = 2000
NDJSON_TYPES = frozenset({"application/x-ndjson", "application/ndjson", "application/jsonl"})


class UnsupportedMediaType(DomainError):
    code = "unsupported_media_type"
    title = "Unsupported media type"
    status = 415


def _media_type(request: Request) -> str:
    return request.headers.get("content-type", "application/json").split(";")[0].strip().lower()


def _declared_length(request: Request) -> int | None:
    value = request.headers.get("content-length")
    return int(value) if value and value.isdigit() else None


async def item_batches(request: Request, settings: Settings) -> AsyncIterator[list[Any]]:
    """Batches of items: raw ``bytes`` documents from NDJSON, parsed objects from JSON."""
    media_type = _media_type(request)
    if media_type in NDJSON_TYPES:
        async for batch in _ndjson_batches(request, settings.bulk_max_ndjson_bytes):
            yield batch
    elif media_type == "application/json" or media_type.endswith("+json"):
        items = await _json_array(request, settings.bulk_max_json_bytes)
        for start in range(0, len(items), BATCH_SIZE):
            yield items[start : start + BATCH_SIZE]
    else:
        raise UnsupportedMediaType(
            f"send application/json (an array) or application/x-ndjson, not {media_type!r}"
        )


async def _ndjson_batches(request: Request, max_bytes: int) -> AsyncIterator[list[bytes]]:
    declared = _declared_length(request)
    if declared is not None and declared > max_bytes:
        raise _too_large(max_bytes)
    received = 0
    pending = b""
    batch: list[bytes] = []
    async for chunk in request.stream():
        received += len(chunk)
        if received > max_bytes:
            raise _too_large(max_bytes)
        lines = (pending + chunk).split(b"\n")
        pending = lines.pop()
        for line in lines:
            line = line.strip()
            if line:
                batch.append(line)
        if len(batch) >= BATCH_SIZE:
            yield batch
            batch = []
    if pending.strip():
        batch.append(pending.strip())
    if batch:
        yield batch


async def _json_array(request: Request, max_bytes: int) -> list[Any]:
    declared = _declared_length(request)
    if declared is not None and declared > max_bytes:
        raise _too_large(max_bytes)
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > max_bytes:
            raise _too_large(max_bytes)
    try:
        items = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise Invalid(f"the body is not valid JSON: {exc}", loc=("body",)) from exc
    if not isinstance(items, list):
        raise Invalid("the body must be a JSON array of items", loc=("body",))
    return items


def _too_large(max_bytes: int) -> PayloadTooLarge:
    return PayloadTooLarge(
        f"the body is larger than the {max_bytes}-byte limit for this endpoint; split it",
        max_bytes=max_bytes,
    )


#: Item models of bodies that endpoints read themselves; the OpenAPI builder adds their schemas.
BODY_MODELS: list[type[BaseModel]] = []


def bulk_request_body(item: type[BaseModel]) -> dict[str, Any]:
    """OpenAPI for a body the endpoint reads itself: a JSON array, or NDJSON of the same items.

    Only the JSON array is listed under ``content``: client generators know no NDJSON media
    type and would warn, or mistype the whole body. The NDJSON variant is described in words
    and, for tools, in ``x-ndjson`` (its media types and the schema of each line)."""
    BODY_MODELS.append(item)
    ref = {"$ref": f"#/components/schemas/{item.__name__}"}
    return {
        "requestBody": {
            "required": True,
            "description": "A JSON array of items (`application/json`), or the same items "
            "streamed as NDJSON, one per line (`application/x-ndjson`, also "
            "`application/ndjson` or `application/jsonl`; see `x-ndjson`).",
            "content": {"application/json": {"schema": {"type": "array", "items": ref}}},
            "x-ndjson": {"mediaTypes": sorted(NDJSON_TYPES), "itemSchema": ref},
        }
    }


class BulkItemError(ReadModel):
    index: int = Field(description="0-based position of the item in the request.")
    loc: list[str | int] = Field(description="Where in the request: the item's index, then the field.")
    msg: str


class BulkReport(ReadModel):
    created: int
    updated: int
    unchanged: int
    rejected: int
    errors: list[BulkItemError] = Field(description="Every rejected item (up to the limit).")
    errors_truncated: bool = Field(description="More errors occurred than are listed.")


def bulk_report(result: BulkResult) -> BulkReport:
    return BulkReport(
        created=result.created,
        updated=result.updated,
        unchanged=result.unchanged,
        rejected=result.rejected,
        errors=[
            BulkItemError(index=e.index, loc=e.request_loc, msg=e.msg)
            for e in result.sorted_errors()
        ],
        errors_truncated=result.errors_truncated,
    )
