"""Keyset pagination with opaque cursors.

A cursor is the sort key of the last row of a page, base64url-encoded JSON. Pages stay
stable while rows are added, and every page is one indexed range scan.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import orjson
from sqlalchemy import Integer, String, and_, literal, or_, tuple_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql import ColumnElement, Select, operators
from sqlalchemy.sql.elements import UnaryExpression
from sqlalchemy.types import TypeDecorator, TypeEngine

from service.core.errors import Invalid
from service.core.fields import EARLIEST, LATEST, MAX_DURATION


@dataclass(frozen=True, slots=True)
class PageRequest:
    limit: int
    cursor: str | None = None


class InvalidCursor(Invalid):
    code = "invalid_cursor"


def invalid_cursor() -> Invalid:
    return InvalidCursor(
        "cursor is malformed or belongs to another listing", loc=("query", "cursor")
    )


# A cursor holds the sort key of a stored row, so each value must be one a row can hold:
# times are stored client instants or derived from them (a due date is a start plus at most
# MAX_DURATION), integers fit their column. Anything else is forged, and must not reach
# the database (PostgreSQL refuses NUL, SQLite integers past 64 bits, both far dates).
_EARLIEST = EARLIEST
_LATEST = LATEST + MAX_DURATION
_INT_BITS = {"SmallInteger": 16, "Integer": 32, "BigInteger": 64}


def _time(value: Any) -> datetime:
    if not isinstance(value, str):
        raise TypeError("time")
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("naive")
    try:
        moment = moment.astimezone(UTC)
    except OverflowError as exc:
        raise ValueError("range") from exc
    if not _EARLIEST <= moment <= _LATEST:
        raise ValueError("range")
    return moment


def _sql_type(column: ColumnElement[Any]) -> TypeEngine[Any]:
    kind = column.type
    return kind.impl_instance if isinstance(kind, TypeDecorator) else kind


def _text(value: Any, sql_type: String) -> str:
    if not isinstance(value, str):
        raise TypeError("text")
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
        raise ValueError("control character")
    if sql_type.length is not None and len(value) > sql_type.length:
        raise ValueError("length")
    return value


def _integer(value: Any, sql_type: Integer) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError("integer")
    names = [cls.__name__ for cls in type(sql_type).__mro__]
    bits = next((_INT_BITS[n] for n in names if n in _INT_BITS), 64)
    if not -(2 ** (bits - 1)) <= value < 2 ** (bits - 1):
        raise ValueError("range")
    return value


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
        raise invalid_cursor() from exc
    if not isinstance(values, list) or len(values) != len(columns):
        raise invalid_cursor()
    decoded = []
    for value, column in zip(values, columns, strict=True):
        try:
            expected = column.type.python_type
            # SQLModel's string columns report ``object`` as their Python type, which any
            # JSON value would pass: strings and integers go by their SQL type.
            sql_type = _sql_type(column)
            if expected is datetime:
                value = _time(value)
            elif expected is UUID:
                if not isinstance(value, str):
                    raise TypeError("uuid")
                value = UUID(value)
            elif isinstance(sql_type, String):
                value = _text(value, sql_type)
            elif isinstance(sql_type, Integer) and expected in (int, object):
                value = _integer(value, sql_type)
            elif (
                not isinstance(value, str | int | float)
                or not isinstance(value, expected)
                or isinstance(value, bool) != (expected is bool)
            ):
                raise ValueError("type")
        except (TypeError, ValueError, NotImplementedError) as exc:
            raise invalid_cursor() from exc
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
