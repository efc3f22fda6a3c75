"""Query helpers every domain repository shares."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from uuid import UUID

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from service.core.db import metadata


async def ids_by_key(session: AsyncSession, model: Any, keys: Iterable[str]) -> dict[str, UUID]:
    wanted = set(keys)
    if not wanted:
        return {}
    rows = await session.execute(select(model.key, model.id).where(model.key.in_(wanted)))
    return {key: id_ for key, id_ in rows.all()}


async def keys_by_id(session: AsyncSession, model: Any, ids: Iterable[UUID | None]) -> dict[UUID, str]:
    wanted = {id_ for id_ in ids if id_ is not None}
    if not wanted:
        return {}
    rows = await session.execute(select(model.id, model.key).where(model.id.in_(wanted)))
    return {id_: key for id_, key in rows.all()}


async def blocking_references(session: AsyncSession, table_name: str, row_id: UUID) -> dict[str, int]:
    """Rows elsewhere whose foreign keys would stop ``row_id`` from being deleted.

    Derived from the metadata, so a new table that refers to ``table_name`` is counted
    without anyone remembering to add it here. References that cascade or null themselves
    on delete do not block.
    """
    counts: dict[str, int] = {}
    for table in metadata.sorted_tables:
        for fk in table.foreign_keys:
            if fk.column.table.name != table_name:
                continue
            if (fk.ondelete or "").upper() in {"CASCADE", "SET NULL"}:
                continue
            count = await session.scalar(
                select(func.count()).select_from(table).where(fk.parent == row_id)
            )
            if count:
                name = str(table.name)
                counts[name] = counts.get(name, 0) + int(count)
    return counts


async def first_per_parent(
    session: AsyncSession,
    model: Any,
    parent: Any,
    parent_ids: Iterable[UUID],
    order_by: list[Any],
    limit: int,
) -> dict[UUID, list[Any]]:
    """The first ``limit`` rows of ``model`` for each parent id (``parent`` is the column
    naming the parent), in the order ``order_by``: one statement for every parent, ranked
    with a window function, for the first page of a nested list."""
    wanted = set(parent_ids)
    found: dict[UUID, list[Any]] = {parent_id: [] for parent_id in wanted}
    if not wanted:
        return found
    position = func.row_number().over(partition_by=parent, order_by=order_by).label("position")
    ranked = select(model.id.label("row_id"), position).where(parent.in_(wanted)).subquery()
    statement = (
        select(model)
        .join(ranked, ranked.c.row_id == model.id)
        .where(ranked.c.position <= limit)
        .order_by(parent, *order_by)
    )
    for row in (await session.scalars(statement)).all():
        found[getattr(row, parent.key)].append(row)
    return found
