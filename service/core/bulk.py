"""Bulk ingestion: validated in batches, upserted by natural key, every bad item named.

Items arrive in batches (raw JSON documents as ``bytes`` from NDJSON, or already-parsed
objects from a JSON array). Each batch is validated with one pydantic call, references are
resolved with one query, and rows are written with one ``INSERT … ON CONFLICT`` statement,
so the per-item cost is parsing and validation, not round trips.

Atomic ingestion writes nothing when any item is bad: after the first bad item it only
validates, so the reply can still list every bad item by index.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable, Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from operator import itemgetter
from typing import Any, Generic, TypeVar

import orjson
from pydantic import TypeAdapter, ValidationError
from sqlalchemy import Column, MetaData, String, Table, Uuid, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.schema import CreateTable

from service.core.config import Settings
from service.core.errors import Invalid, PayloadTooLarge
from service.core.types import UTCDateTime

ItemT = TypeVar("ItemT")


@dataclass(frozen=True, slots=True)
class ItemError:
    index: int
    loc: list[str | int]
    msg: str


@dataclass
class BulkResult:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0
    errors: list[ItemError] = field(default_factory=list)
    errors_truncated: bool = False

    @property
    def received(self) -> int:
        return self.created + self.updated + self.unchanged + self.rejected


class BulkRejected(Invalid):
    """An atomic bulk request with bad items: nothing was written."""

    code = "bulk_rejected"

    def __init__(self, result: BulkResult) -> None:
        super().__init__(
            f"{result.rejected} item(s) are invalid; nothing was written",
            errors=[
                {"loc": [e.index, *e.loc], "msg": e.msg, "index": e.index} for e in result.errors
            ],
            rejected=result.rejected,
            errors_truncated=result.errors_truncated,
        )


@dataclass
class Prepared:
    """What a domain's ``prepare`` step returns for a batch of valid items."""

    rows: list[dict[str, Any]]  # column values, in item order, one per accepted item
    indexes: list[int]  # the item index of each row
    errors: list[ItemError]


@dataclass(frozen=True)
class UpsertSpec:
    table: Table
    key_columns: tuple[str, ...]
    compare_columns: tuple[str, ...]  # a change in any of these makes the row "updated"
    touch_column: str | None = "updated_at"  # set to the row's value only when it changes


class BulkIngest(Generic[ItemT]):
    def __init__(
        self,
        *,
        item_schema: type[ItemT],
        prepare: Callable[[list[tuple[int, ItemT]]], Awaitable[Prepared]],
        spec: UpsertSpec,
        atomic: bool,
        max_items: int,
        max_errors: int,
    ) -> None:
        self._single = TypeAdapter(item_schema)
        self._many = TypeAdapter(list[item_schema])  # type: ignore[valid-type]
        self._prepare = prepare
        self._spec = spec
        self._atomic = atomic
        self._max_items = max_items
        self._max_errors = max_errors
        self.result = BulkResult()
        self._rejected_indexes: set[int] = set()

    async def run(self, session: AsyncSession, batches: AsyncIterable[Sequence[Any]]) -> BulkResult:
        # Batch N is written while batch N+1 is read and validated: the database works
        # (in its own process, or SQLite's thread) while Python parses.
        writing: asyncio.Future[None] | None = None
        seen = 0
        try:
            async for batch in batches:
                if not batch:
                    continue
                if seen + len(batch) > self._max_items:
                    raise PayloadTooLarge(
                        f"a bulk request takes at most {self._max_items} items; split it",
                        max_items=self._max_items,
                    )
                valid = self._validate(batch, first_index=seen)
                seen += len(batch)
                if writing is not None:
                    await writing  # one statement at a time on the connection
                    writing = None
                if not valid:
                    continue
                prepared = await self._prepare(valid)
                self._reject(prepared.errors)
                if prepared.rows and not (self._atomic and self.result.errors):
                    writing = asyncio.ensure_future(self._write(session, prepared))
            if writing is not None:
                await writing
                writing = None
        finally:
            if writing is not None:  # an error while a write was in flight: let it finish
                await asyncio.gather(writing, return_exceptions=True)
        return self.result

    # Validation ----------------------------------------------------------------------------

    def _validate(self, batch: Sequence[Any], *, first_index: int) -> list[tuple[int, ItemT]]:
        try:
            if isinstance(batch[0], bytes):
                # Each line must be exactly one JSON document. Validating the lines joined
                # into one array would take a line such as '{...}, {...}' as two items and
                # shift the index of every later item.
                items = self._many.validate_python([orjson.loads(raw) for raw in batch])
            else:
                items = self._many.validate_python(batch)
            return [(first_index + i, item) for i, item in enumerate(items)]
        except (ValidationError, orjson.JSONDecodeError):
            pass  # at least one bad item: find each one (rare, so one at a time is fine)
        valid: list[tuple[int, ItemT]] = []
        for offset, raw in enumerate(batch):
            index = first_index + offset
            try:
                if isinstance(raw, bytes):
                    item = self._single.validate_json(raw)
                else:
                    item = self._single.validate_python(raw)
            except ValidationError as exc:
                self._reject(
                    ItemError(index, [p if isinstance(p, int) else str(p) for p in e["loc"]], e["msg"])
                    for e in exc.errors(include_url=False)
                )
                continue
            valid.append((index, item))
        return valid

    def _reject(self, errors: Iterable[ItemError]) -> None:
        for error in errors:
            if error.index not in self._rejected_indexes:
                self._rejected_indexes.add(error.index)
                self.result.rejected += 1
            if len(self.result.errors) < self._max_errors:
                self.result.errors.append(error)
            else:
                self.result.errors_truncated = True

    # Writing -------------------------------------------------------------------------------

    async def _write(self, session: AsyncSession, prepared: Prepared) -> None:
        created, updated, unchanged = await upsert_rows(session, self._spec, prepared.rows)
        self.result.created += created
        self.result.updated += updated
        self.result.unchanged += unchanged


async def upsert_rows(
    session: AsyncSession, spec: UpsertSpec, rows: list[dict[str, Any]]
) -> tuple[int, int, int]:
    """Insert or update ``rows`` and count (created, updated, unchanged).

    Two statements, counted by the database itself, so the counts stay exact when other
    transactions write the same keys: ``INSERT … ON CONFLICT DO NOTHING`` creates what is
    new; only if some rows already existed, ``INSERT … ON CONFLICT DO UPDATE … WHERE``
    changes those whose values differ. Unchanged rows are never written. A key repeated in
    one request ends with its last values.

    On PostgreSQL rows are written in key order, so concurrent upserts of overlapping keys
    lock them in the same order and cannot deadlock each other (within one batch).
    """
    connection = await session.connection()
    if connection.dialect.name == "postgresql":
        if len(rows) > 1 and _unique_keys(spec, rows):
            return await _upsert_by_copy(connection, spec, rows)
        rows = _in_key_order(spec, rows)
    insert_sql, update_sql, encode = _statements(spec, connection.dialect)
    params = encode(rows)
    created = (await connection.exec_driver_sql(insert_sql, params)).rowcount
    if created == len(rows):
        return created, 0, 0
    # Rows just inserted equal themselves, so this second pass leaves them alone.
    updated = (await connection.exec_driver_sql(update_sql, params)).rowcount
    return created, updated, len(rows) - created - updated


def _unique_keys(spec: UpsertSpec, rows: list[dict[str, Any]]) -> bool:
    return len({tuple(row[c] for c in spec.key_columns) for row in rows}) == len(rows)


def _in_key_order(spec: UpsertSpec, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Sorted by key, stably (repeats keep their order, so the last values still win). The
    order is Python's: UUIDs by value and strings by code point, which is also the order of
    ``_key_order`` in SQL."""
    return sorted(rows, key=lambda row: tuple(row[c] for c in spec.key_columns))


def _key_order(staging: Table, spec: UpsertSpec) -> list[Any]:
    """The key columns to ORDER BY, in ``_in_key_order``'s order: text by byte ("C"
    collation, which for UTF-8 is code point order), UUIDs by value."""
    columns = [staging.c[c] for c in spec.key_columns]
    return [c.collate("C") if _is_text(c.type) else c for c in columns]


def _is_text(column_type: Any) -> bool:
    return isinstance(getattr(column_type, "impl_instance", column_type), String)


async def _upsert_by_copy(
    connection: AsyncConnection, spec: UpsertSpec, rows: list[dict[str, Any]]
) -> tuple[int, int, int]:
    """PostgreSQL: COPY the batch into a temporary staging table, then upsert from it.

    COPY moves rows several times faster than row-by-row inserts. The same two set-based
    statements then count created and updated rows; a batch whose keys repeat takes the
    row-by-row path instead, which applies repeats in order.
    """
    staging = _staging_table(spec)
    columns = [c.name for c in spec.table.columns]
    raw = await connection.get_raw_connection()
    driver = raw.driver_connection
    assert driver is not None
    create_sql, copy_sql, insert_sql, update_sql = _copy_statements(spec, connection.dialect)
    take = itemgetter(*columns)
    driver_error = connection.dialect.loaded_dbapi.Error
    statement = create_sql
    try:
        async with driver.cursor() as cursor:
            await cursor.execute(statement)
            statement = copy_sql
            async with cursor.copy(statement) as copy:
                for row in rows:
                    await copy.write_row(take(row))
            statement = insert_sql
            await cursor.execute(statement)
            created = cursor.rowcount
            updated = 0
            if created < len(rows):
                statement = update_sql
                await cursor.execute(statement)
                updated = cursor.rowcount
            statement = f"TRUNCATE {staging.name}"
            await cursor.execute(statement)
    except driver_error as exc:
        # Raised by the driver, not through SQLAlchemy: wrap it the way SQLAlchemy wraps its
        # own, so callers and the problem handlers see one kind of database error (and a
        # deadlock or serialization failure is answered as transient, not as a 500).
        raise DBAPIError.instance(statement, None, exc, driver_error) from exc
    return created, updated, len(rows) - created - updated


def _staging_table(spec: UpsertSpec) -> Table:
    return Table(
        f"staging_{spec.table.name}",
        MetaData(),
        *(Column(c.name, c.type) for c in spec.table.columns),
        prefixes=["TEMPORARY"],
        postgresql_on_commit="DROP",
    )


@lru_cache
def _copy_statements(spec: UpsertSpec, dialect: Dialect) -> tuple[str, str, str, str]:
    staging = _staging_table(spec)
    columns = [c.name for c in spec.table.columns]
    create_sql = str(CreateTable(staging, if_not_exists=True).compile(dialect=dialect))
    copy_sql = f"COPY {staging.name} ({', '.join(columns)}) FROM STDIN"
    source = select(*(staging.c[c] for c in columns)).order_by(*_key_order(staging, spec))
    statement = postgresql.insert(spec.table).from_select(columns, source)
    insert_sql = str(statement.on_conflict_do_nothing().compile(dialect=dialect))
    update_sql = str(_on_conflict_update(spec, statement).compile(dialect=dialect))
    return create_sql, copy_sql, insert_sql, update_sql


def _on_conflict_update(spec: UpsertSpec, statement: Any) -> Any:
    table = spec.table
    excluded = statement.excluded
    assignments = {c: excluded[c] for c in spec.compare_columns}
    if spec.touch_column:
        assignments[spec.touch_column] = excluded[spec.touch_column]
    return statement.on_conflict_do_update(
        index_elements=list(spec.key_columns),
        set_=assignments,
        where=or_(*(table.c[c].is_distinct_from(excluded[c]) for c in spec.compare_columns)),
    )


_STATEMENTS: dict[tuple[int, str], tuple[str, str, Callable[[list[dict]], list]]] = {}


def _statements(spec: UpsertSpec, dialect: Dialect) -> tuple[str, str, Callable[[list[dict]], list]]:
    """The two upsert statements as driver SQL, and an encoder for their parameters.

    Rows go to the driver's ``executemany`` directly, with values encoded once per column by
    a fast path for the hot types, instead of through per-value ORM processing: bulk
    ingestion spends its time in the database, not in Python.
    """
    cache_key = (id(spec), dialect.name)
    if cache_key in _STATEMENTS:
        return _STATEMENTS[cache_key]
    table = spec.table
    insert = postgresql.insert if dialect.name == "postgresql" else sqlite.insert
    columns = [c.name for c in table.columns]
    do_nothing = insert(table).on_conflict_do_nothing()
    do_update = _on_conflict_update(spec, insert(table))
    # Positional parameters (tuples, not dicts) are the cheapest form for every driver.
    if dialect.paramstyle in ("pyformat", "named"):
        dialect = type(dialect)(paramstyle="format")
    compiled_insert = do_nothing.compile(dialect=dialect, column_keys=columns)
    compiled_update = do_update.compile(dialect=dialect, column_keys=columns)
    encoders = {c.name: _encoder(c.type, dialect) for c in table.columns}
    positional = compiled_insert.positiontup
    assert positional is not None and positional == compiled_update.positiontup
    names = list(positional)
    take = itemgetter(*names)
    converted = [(i, encoders[n]) for i, n in enumerate(names) if encoders[n] is not None]

    def encode(rows: list[dict]) -> list:
        encoded = []
        for row in rows:
            values = list(take(row))
            for i, convert in converted:
                if values[i] is not None:
                    values[i] = convert(values[i])
            encoded.append(tuple(values))
        return encoded

    _STATEMENTS[cache_key] = (compiled_insert.string, compiled_update.string, encode)
    return _STATEMENTS[cache_key]


def _sqlite_datetime_encoder() -> Callable[[datetime], str]:
    """The text SQLAlchemy's SQLite DATETIME writes, in UTC (the first 26 characters of the
    aware ISO form are the naive one). A column often repeats one value (``created_at`` of
    a batch), so the last conversion is kept."""
    last: list[Any] = [None, None]

    def encode(value: datetime) -> str:
        if value is not last[0]:
            last[0], last[1] = value, value.astimezone(UTC).isoformat(" ", "microseconds")[:26]
        return last[1]

    return encode


def _encoder(column_type: Any, dialect: Dialect) -> Callable[[Any], Any] | None:
    if dialect.name == "sqlite":
        if isinstance(column_type, UTCDateTime):
            return _sqlite_datetime_encoder()
        if isinstance(column_type, Uuid):
            return lambda v: v.hex
    elif isinstance(column_type, (UTCDateTime, Uuid)):
        return None  # psycopg adapts aware datetimes and UUIDs natively
    return column_type.dialect_impl(dialect).bind_processor(dialect)


def record_outcomes(
    counter: Any, created: int = 0, updated: int = 0, unchanged: int = 0, rejected: int = 0
) -> None:
    """Count ingested items by outcome on a Prometheus counter labelled ``outcome``."""
    for outcome, count in (
        ("created", created),
        ("updated", updated),
        ("unchanged", unchanged),
        ("rejected", rejected),
    ):
        if count:
            counter.labels(outcome).inc(count)


async def run_ingest(
    session: AsyncSession,
    batches: AsyncIterable[Sequence[Any]],
    *,
    item_schema: type[ItemT],
    prepare: Callable[[list[tuple[int, ItemT]]], Awaitable[Prepared]],
    spec: UpsertSpec,
    atomic: bool,
    settings: Settings,
    counter: Any,
) -> BulkResult:
    """One bulk request, within the configured limits, counted on ``counter``.

    Atomic: any bad item raises ``BulkRejected`` (every bad item by index) and nothing of the
    request stays written. Not atomic: the valid items are written, the bad ones reported.
    """
    ingest = BulkIngest(
        item_schema=item_schema,
        prepare=prepare,
        spec=spec,
        atomic=atomic,
        max_items=settings.bulk_max_items,
        max_errors=settings.bulk_max_reported_errors,
    )
    if not atomic:
        result = await ingest.run(session, batches)
        record_outcomes(counter, result.created, result.updated, result.unchanged, result.rejected)
        return result
    # All or nothing is decided here, not by each door: the batches written before the first
    # bad item are undone with their savepoint, whatever the caller does next.
    async with session.begin_nested() as savepoint:
        result = await ingest.run(session, batches)
        if result.errors:
            await savepoint.rollback()
    if result.errors:
        record_outcomes(counter, rejected=result.rejected)
        raise BulkRejected(result)
    record_outcomes(counter, result.created, result.updated, result.unchanged, result.rejected)
    return result
