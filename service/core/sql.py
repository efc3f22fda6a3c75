"""SQL expressions that need a different spelling on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

from sqlalchemy import Float, Uuid, any_, bindparam
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.functions import FunctionElement


class seconds_between(FunctionElement[float]):
    """``later - earlier`` in seconds, as a float."""

    type = Float()
    inherit_cache = True
    name = "seconds_between"


@compiles(seconds_between, "postgresql")
def _seconds_postgresql(element: seconds_between, compiler: Any, **kw: Any) -> str:
    earlier, later = list(element.clauses)
    return (
        f"EXTRACT(EPOCH FROM ({compiler.process(later, **kw)} - {compiler.process(earlier, **kw)}))"
    )


@compiles(seconds_between, "sqlite")
def _seconds_sqlite(element: seconds_between, compiler: Any, **kw: Any) -> str:
    earlier, later = list(element.clauses)
    return (
        f"((julianday({compiler.process(later, **kw)}) - "
        f"julianday({compiler.process(earlier, **kw)})) * 86400.0)"
    )


def in_ids(
    session: AsyncSession, column: ColumnElement[UUID], ids: Sequence[UUID]
) -> ColumnElement[bool]:
    """``column IN (ids)``; on PostgreSQL as ``= ANY(:ids)``, with the ids as one array.

    psycopg re-parses the text of a statement too long to cache on every call, and an
    expanded ``IN (:id_1, …, :id_500)`` is that long; one array parameter keeps it short
    and constant. SQLite binds parameters natively, and its planner drives an index from an
    expanded IN list, so there the plain IN stays.
    """
    if session.get_bind().dialect.name == "postgresql":
        return column == any_(bindparam(None, list(ids), type_=postgresql.ARRAY(Uuid())))
    return column.in_(ids)
