"""Keyset pagination with opaque cursors.

A cursor is the sort key of the last row of a page, base64url-encoded JSON. Pages stay
stable while rows are added, and every page is one indexed range scan.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar
from uuid import UUID

import orjson
from sqlalchemy import Integer, and_, literal, literal_column, or_, tuple_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql import ColumnElement, Select, operators
from sqlalchemy.sql.elements import UnaryExpression

from service.core.errors import Invalid

RowT = TypeVar("RowT")


@dataclass(frozen=True, slots=True)
class PageRequest:
    limit: int
    cursor: str | None = None


def _invalid_cursor() -> Invalid:
    return Invalid("cursor is malformed or belongs to another listing", loc=("query", "cursor"))


def encode_cursor(values: Sequence[Any]) -> str:
    def plain(value: Any) -> Any:
        if isinstance(value, UUID):
            return str(value)
        if isinstance(value, datetime):
            return value.isoformat()
        return value

    raw = orjson.dumps([plain(v) for v in values])
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def decode_cursor(cursor: str, columns: Sequence[ColumnElement[Any]]) -> list[Any]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        values = orjson.loads(raw)
    except (binascii.Error, ValueError, orjson.JSONDecodeError) as exc:
        raise _invalid_cursor() from exc
    if not isinstance(values, list) or len(values) != len(columns):
        raise _invalid_cursor()
    decoded = []
    for value, column in zip(values, columns, strict=True):
        expected = column.type.python_type
        try:
            if expected is datetime:
                value = datetime.fromisoformat(value)
                if value.tzinfo is None:
                    raise ValueError("naive")
            elif expected is UUID:
                value = UUID(value)
            elif not isinstance(value, expected) or isinstance(value, bool) != (expected is bool):
                raise ValueError("type")
        except (TypeError, ValueError) as exc:
            raise _invalid_cursor() from exc
        decoded.append(value)
    return decoded


async def paginate(
    session: AsyncSession,
    statement: Select[Any],
    *,
    order_by: Sequence[ColumnElement[Any]],
    page: PageRequest,
) -> tuple[list[Any], str | None]:
    """One page of ``statement`` ordered by the (unique, non-null) columns ``order_by``.

    A column may be given as ``column.desc()`` to sort that column the other way.
    """
    columns = [_plain(column) for column in order_by]
    if page.cursor:
        after = decode_cursor(page.cursor, columns)
        statement = statement.where(_after(order_by, after))
    statement = statement.order_by(*order_by).limit(page.limit + 1)
    rows = list((await session.execute(statement)).scalars().all())
    if len(rows) <= page.limit:
        return rows, None
    rows = rows[: page.limit]
    last = rows[-1]
    return rows, encode_cursor([getattr(last, column.key) for column in columns])


def _descending(column: ColumnElement[Any]) -> bool:
    return isinstance(column, UnaryExpression) and column.modifier is operators.desc_op


def _plain(column: ColumnElement[Any]) -> ColumnElement[Any]:
    return column.element if _descending(column) else column  # type: ignore[attr-defined]


def _after(order_by: Sequence[ColumnElement[Any]], values: Sequence[Any]) -> ColumnElement[bool]:
    """Rows strictly after ``values`` in the order ``order_by``."""
    columns = [_plain(column) for column in order_by]
    # Bind each value with its column's type, so SQLite compares stored UTC text and
    # UUID hex with values encoded the same way.
    bounds = [literal(value, column.type) for value, column in zip(values, columns, strict=True)]
    if not any(_descending(column) for column in order_by):
        return tuple_(*columns) > tuple_(*bounds)  # one index range
    # Mixed directions: (c1 beyond v1) OR (c1 = v1 AND c2 beyond v2) OR ...
    branches = []
    for index, column in enumerate(order_by):
        plain, bound = columns[index], bounds[index]
        beyond = plain < bound if _descending(column) else plain > bound
        equal_before = [columns[i] == bounds[i] for i in range(index)]
        branches.append(and_(*equal_before, beyond))
    return or_(*branches)


def page_of(items: list[RowT], page: PageRequest) -> tuple[list[RowT], str | None]:
    """A page of a list computed in memory; the cursor is the position of the next item."""
    start = 0
    if page.cursor:
        (start,) = decode_cursor(page.cursor, [literal_column("position", Integer)])
        start = max(0, start)
    chunk = items[start : start + page.limit]
    more = start + page.limit < len(items)
    return chunk, encode_cursor([start + page.limit]) if more else None
