"""Queries over event logs: the fast row writer, and discovery in SQL.

Discovery runs in the database with window functions (SQLite ≥ 3.25, PostgreSQL): each
case's rows ordered by time then position (the primary key's order), ``LEAD`` pairing each
row with the next, transfers where the unit changes, and ``LEAD`` again over the transfers
for ping-pongs. Percentiles are ranks over the sorted waits (``ROW_NUMBER``), so memory
stays in the database whatever the size of the log.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import orjson
from sqlalchemy import Select, bindparam, delete, func, select, text, tuple_
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.types import BigInteger, String, Uuid

from service.event_logs.models import EventLog, EventLogArc, EventLogRow, EventLogUnit
from service.event_logs.parsing import Row

# In the order of ``Row``'s fields, after the log: a row is written as ``(log, *row)``.
_COLUMNS = ("log_id", *Row._fields)
# A batch reaches SQLite as one JSON array of rows, inserted by one statement. With
# ``executemany`` the driver takes Python's interpreter lock back for every row, so the
# writes (in aiosqlite's thread) crawled while the parser held it; one statement runs without
# the lock from start to end, and the next batch is parsed meanwhile.
_SQLITE_INSERT = (
    f"INSERT INTO event_log_rows ({', '.join(_COLUMNS)}) SELECT ?, "
    + ", ".join(f"json_extract(value, '$[{i}]')" for i in range(len(Row._fields)))
    + " FROM json_each(?)"
)
_PG_COPY = f"COPY event_log_rows ({', '.join(_COLUMNS)}) FROM STDIN"


def listing() -> Select[Any]:
    return select(EventLog)


def by_key(key: str) -> Select[Any]:
    return select(EventLog).where(EventLog.key == key)


async def get_by_key(session: AsyncSession, key: str) -> EventLog | None:
    return (await session.scalars(by_key(key))).first()


async def insert_rows(session: AsyncSession, log_id: UUID, rows: Sequence[Row]) -> None:
    """Append rows: one statement on SQLite, one ``COPY`` on PostgreSQL."""
    if not rows:
        return
    connection = await session.connection()
    if connection.dialect.name == "sqlite":
        # log_id as SQLite stores a Uuid column; the rows as JSON text (not a BLOB, which
        # json_each would read as SQLite's binary JSON).
        batch = orjson.dumps(rows, default=tuple).decode()  # a Row is a named tuple
        await connection.exec_driver_sql(_SQLITE_INSERT, (log_id.hex, batch))
        return
    raw = await connection.get_raw_connection()
    driver = raw.driver_connection
    assert driver is not None
    driver_error = connection.dialect.loaded_dbapi.Error
    try:
        async with driver.cursor() as cursor, cursor.copy(_PG_COPY) as copy:
            write = copy.write_row
            for r in rows:
                await write((log_id, *r))
    except driver_error as exc:
        # Wrapped as SQLAlchemy wraps its own, so callers see one kind of database error.
        raise DBAPIError.instance(_PG_COPY, None, exc, driver_error) from exc


async def unit_names(session: AsyncSession, log_id: UUID, units: int) -> list[str]:
    """The log's ``units`` unit names, in order. The names its arcs join are kept
    (``event_log_units``): only a log with a unit that never transfers has its rows read."""
    kept = (
        select(EventLogUnit.name).where(EventLogUnit.log_id == log_id).order_by(EventLogUnit.name)
    )
    names = list((await session.scalars(kept)).all())
    if len(names) == units:
        return names
    statement = (
        select(EventLogRow.unit)
        .where(EventLogRow.log_id == log_id)
        .distinct()
        .order_by(EventLogRow.unit)
    )
    return list((await session.scalars(statement)).all())


async def delete_rows(session: AsyncSession, log_id: UUID) -> None:
    await session.execute(delete(EventLogArc).where(EventLogArc.log_id == log_id))
    await session.execute(delete(EventLogRow).where(EventLogRow.log_id == log_id))


@dataclass(frozen=True)
class Totals:
    events: int
    cases: int
    units: int
    first_us: int | None
    last_us: int | None


async def totals(session: AsyncSession, log_id: UUID) -> Totals:
    statement = select(
        func.count(),
        func.count(EventLogRow.case_ref.distinct()),
        func.count(EventLogRow.unit.distinct()),
        func.min(EventLogRow.at_us),
        func.max(EventLogRow.at_us),
    ).where(EventLogRow.log_id == log_id)
    events, cases, units, first, last = (await session.execute(statement)).one()
    return Totals(events, cases, units, first, last)


# Discovery --------------------------------------------------------------------------------------


def _transfers_sql(paused: bool) -> str:
    """Each case's rows paired with the next (``ordered``), and the pairs at different
    units (``transfers``: case, src, dst, the times at both, and the wait less any pause)."""
    pause = "status IN :pauses" if paused else "1 = 0"
    return f"""
    ordered AS (
        SELECT case_ref, unit, at_us, position, status,
               LEAD(unit) OVER (PARTITION BY case_ref ORDER BY at_us, position) AS next_unit,
               LEAD(at_us) OVER (PARTITION BY case_ref ORDER BY at_us, position) AS next_at
        FROM event_log_rows
        WHERE log_id = :log
    ),
    transfers AS (
        SELECT case_ref, at_us, position, unit AS src, next_unit AS dst, next_at,
               CASE WHEN {pause} THEN 0 ELSE next_at - at_us END AS wait
        FROM ordered
        WHERE next_unit IS NOT NULL AND next_unit <> unit
    )"""


def _steps_sql(paused: bool) -> str:
    """Transfers with ``ping``: 1 when the case's next transfer goes back (A -> B -> A with
    repeats collapsed is two consecutive transfers)."""
    return f"""{_transfers_sql(paused)},
    steps AS (
        SELECT case_ref, src, dst, wait,
               CASE WHEN LEAD(dst) OVER (PARTITION BY case_ref ORDER BY at_us, position) = src
                    THEN 1 ELSE 0 END AS ping
        FROM transfers
    )"""


def _bind(statement: Any, log_id: UUID, pauses: Sequence[str]) -> Any:
    binds = [bindparam("log", log_id, type_=Uuid())]
    if pauses:
        binds.append(bindparam("pauses", list(pauses), expanding=True, type_=String()))
    return statement.bindparams(*binds)


@dataclass(frozen=True)
class CaseStats:
    transfers: int
    cases_with_transfer: int
    ping_pongs: int
    cases_with_ping_pong: int
    max_per_case: int
    # Transfers per case at the asked ranks among all cases (absent: 0).
    at_rank: dict[int, int]


def _case_stats_sql(steps: str, ranks: int) -> str:
    """Per-case transfer counts from ``steps``, and the count at ``:r0`` ... (1-based ranks
    among all ``:cases`` sorted by it): the cases without a transfer (0) come first, so rank
    r is rank r - (cases - cases with a transfer) among those that have one."""
    rank_binds = ", ".join(f":r{i}" for i in range(ranks))
    return f"""
    per_case AS (
        SELECT case_ref, COUNT(*) AS t, SUM(ping) AS p FROM {steps} GROUP BY case_ref
    ),
    ranked AS (
        SELECT t, p, ROW_NUMBER() OVER (ORDER BY t) AS rn, COUNT(*) OVER () AS m FROM per_case
    )
    SELECT 0 AS kind, COALESCE(SUM(t), 0), COUNT(*), COALESCE(SUM(p), 0),
           COALESCE(SUM(CASE WHEN p > 0 THEN 1 ELSE 0 END), 0), COALESCE(MAX(t), 0)
    FROM ranked
    UNION ALL
    SELECT 1, rn + :cases - m, t, 0, 0, 0 FROM ranked WHERE rn + :cases - m IN ({rank_binds})
    """


async def _case_stats(
    session: AsyncSession, statement: Any, cases: int, wanted: Sequence[int]
) -> CaseStats:
    statement = statement.bindparams(
        bindparam("cases", cases, type_=BigInteger()),
        *[bindparam(f"r{i}", r, type_=BigInteger()) for i, r in enumerate(wanted)],
    )
    rows = (await session.execute(statement)).all()
    totals_row = next(r for r in rows if r[0] == 0)
    at_rank = {int(r[1]): int(r[2]) for r in rows if r[0] == 1}
    return CaseStats(
        transfers=int(totals_row[1]),
        cases_with_transfer=int(totals_row[2]),
        ping_pongs=int(totals_row[3]),
        cases_with_ping_pong=int(totals_row[4]),
        max_per_case=int(totals_row[5]),
        at_rank=at_rank,
    )


def _wanted(ranks: Sequence[int]) -> list[int]:
    return sorted({r for r in ranks if r >= 1}) or [0]


async def case_stats(
    session: AsyncSession, log_id: UUID, cases: int, ranks: Sequence[int]
) -> CaseStats:
    """Per-case transfer counts computed from the rows, and the count at each of ``ranks``
    (1-based) among all ``cases`` sorted by it (ranks before the first case with a transfer
    are 0). Pause statuses change no count: only waits."""
    wanted = _wanted(ranks)
    sql = f"WITH {_steps_sql(False)}, {_case_stats_sql('steps', len(wanted))}"
    return await _case_stats(session, _bind(text(sql), log_id, ()), cases, wanted)


@dataclass(frozen=True)
class ArcRow:
    source: str
    target: str
    count: int
    cases: int
    ping_pongs: int
    wait_median_us: int
    wait_p80_us: int
    wait_p90_us: int
    wait_max_us: int


def _collate(dialect: str) -> str:
    # Code-point order on both: PostgreSQL's default collation depends on the locale.
    return ' COLLATE "C"' if dialect == "postgresql" else ""


def _arcs_ctes(steps: str) -> str:
    """``arcs``: per arc A -> B of ``steps``, its transfers, cases, ping-pongs and wait ranks."""
    return f"""
    ranked AS (
        SELECT src, dst, case_ref, wait, ping, ROW_NUMBER() OVER arc AS rn,
               -- The whole partition, over the same window: one sort serves both.
               COUNT(*) OVER (arc ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING) AS n
        FROM {steps}
        WINDOW arc AS (PARTITION BY src, dst ORDER BY wait)
    ),
    arcs AS (
        SELECT src, dst, COUNT(*) AS arc_count, COUNT(DISTINCT case_ref) AS cases,
               SUM(ping) AS ping_pongs, MAX(wait) AS wait_max,
               MIN(CASE WHEN rn = (n + 1) / 2 THEN wait END) AS median_low,
               MIN(CASE WHEN rn = n / 2 + 1 THEN wait END) AS median_high,
               MIN(CASE WHEN rn = (8 * n + 9) / 10 THEN wait END) AS p80,
               MIN(CASE WHEN rn = (9 * n + 9) / 10 THEN wait END) AS p90
        FROM ranked
        GROUP BY src, dst
    )"""


# The mean of the two middle waits (the same wait when the count is odd), rounded down to
# the microsecond (waits are never negative: rows are in time order).
_ARC_COLUMNS = (
    "src, dst, arc_count, cases, ping_pongs, (median_low + median_high) / 2, p80, p90, wait_max"
)
#: A stored arc as ``ArcRow`` reads it (``_arc_row``), in ``_ARC_COLUMNS``' order.
_STORED = (
    EventLogArc.src,
    EventLogArc.dst,
    EventLogArc.arc_count,
    EventLogArc.cases,
    EventLogArc.ping_pongs,
    EventLogArc.wait_median_us,
    EventLogArc.wait_p80_us,
    EventLogArc.wait_p90_us,
    EventLogArc.wait_max_us,
)
_STORED_COLUMNS = ", ".join(column.name for column in _STORED)


def _order(dialect: str) -> str:
    """The listing's order: most transfers first, then the names in code-point order."""
    c = _collate(dialect)
    return f"arc_count DESC, src{c}, dst{c}"


def _arcs_sql(paused: bool, dialect: str, *, after: bool, limit: bool, only: bool) -> str:
    """Live arcs with pause statuses; the stored ones (``event_log_arcs``) without. After
    the arc ``:a_src -> :a_dst`` of ``:a_count`` transfers: a stored page starts at that
    arc's ``listing_rank`` (one index range), a live one compares in the listing's order."""
    c = _collate(dialect)
    conditions = []
    if paused:
        head, columns, source, order = (
            f"WITH {_steps_sql(True)}, {_arcs_ctes('steps')}",
            _ARC_COLUMNS,
            "arcs",
            _order(dialect),
        )
        if after:
            conditions.append(
                f"(arc_count < :a_count OR (arc_count = :a_count AND (src{c} > :a_src"
                f" OR (src = :a_src AND dst{c} > :a_dst))))"
            )
    else:
        head, columns, source, order = "", _STORED_COLUMNS, "event_log_arcs", "listing_rank"
        conditions.append("log_id = :log")
        if after:
            conditions.append(
                "listing_rank > (SELECT listing_rank FROM event_log_arcs WHERE log_id = :log"
                " AND src = :a_src AND dst = :a_dst AND arc_count = :a_count)"
            )
    if only:
        conditions.append("src = :o_src AND dst = :o_dst")
    where = f"WHERE {' AND '.join(conditions)}" if conditions else ""
    return f"""
    {head}
    SELECT {columns}
    FROM {source}
    {where}
    ORDER BY {order}
    {"LIMIT :limit" if limit else ""}
    """


async def has_arc(session: AsyncSession, log_id: UUID, arc: tuple[int, str, str]) -> bool:
    """The log's stored arcs hold ``(count, source, target)``."""
    statement = select(EventLogArc.src).where(
        EventLogArc.log_id == log_id,
        EventLogArc.src == arc[1],
        EventLogArc.dst == arc[2],
        EventLogArc.arc_count == arc[0],
    )
    return (await session.execute(statement)).first() is not None


#: Each case's steps, computed once when an import finishes (a temporary table: the
#: connection's own, gone with it).
_STEPS_TABLE = "discovery_steps"


_STEPS_COLUMNS = (
    "case_ref TEXT NOT NULL, src TEXT NOT NULL, dst TEXT NOT NULL, wait BIGINT NOT NULL,"
    " ping INTEGER NOT NULL DEFAULT 0"
)


async def _fill_steps_in_case_order(session: AsyncSession, table: str, log_id: UUID) -> None:
    """SQLite: the transfers in case order take consecutive rowids, and a transfer is a
    ping when the row after it is its case's next transfer, back to where it came from. At
    600,000 transfers that is 0.55 s less than ``_steps_sql``'s second window, which sorts
    the transfers again; on PostgreSQL the UPDATE costs more than that sort."""
    await session.execute(
        text(f"CREATE TEMPORARY TABLE {_STEPS_TABLE} (seq INTEGER PRIMARY KEY, {_STEPS_COLUMNS})")
    )
    fill = f"""
    INSERT INTO {table} (case_ref, src, dst, wait)
    WITH {_transfers_sql(False)}
    SELECT case_ref, src, dst, wait FROM transfers ORDER BY case_ref, at_us, position
    """
    await session.execute(_bind(text(fill), log_id, ()))
    await session.execute(
        text(
            f"UPDATE {table} SET ping = 1 WHERE EXISTS (SELECT 1 FROM {table} AS next_step"
            f" WHERE next_step.seq = {_STEPS_TABLE}.seq + 1"
            f" AND next_step.case_ref = {_STEPS_TABLE}.case_ref"
            f" AND next_step.dst = {_STEPS_TABLE}.src)"
        )
    )


async def store_discovery(
    session: AsyncSession, log_id: UUID, cases: int, ranks: Sequence[int]
) -> CaseStats:
    """Discovery without pause statuses, once, when the import finishes: stores the arcs
    (``event_log_arcs``) and returns the per-case figures (as ``case_stats``). The steps are
    computed once into a temporary table that both read: one pass of the window functions
    over the rows instead of two."""
    dialect = session.get_bind().dialect.name
    temp = "pg_temp" if dialect == "postgresql" else "temp"
    table = f"{temp}.{_STEPS_TABLE}"
    # Left by an import whose transaction failed on this pooled connection, if any.
    await session.execute(text(f"DROP TABLE IF EXISTS {table}"))
    if dialect == "sqlite":
        await _fill_steps_in_case_order(session, table, log_id)
    else:
        await session.execute(text(f"CREATE TEMPORARY TABLE {_STEPS_TABLE} ({_STEPS_COLUMNS})"))
        fill = f"""
        INSERT INTO {table} (case_ref, src, dst, wait, ping)
        WITH {_steps_sql(False)} SELECT case_ref, src, dst, wait, ping FROM steps
        """
        await session.execute(_bind(text(fill), log_id, ()))
    store = f"""
    INSERT INTO event_log_arcs (log_id, listing_rank, {_STORED_COLUMNS})
    WITH {_arcs_ctes(table)}
    SELECT :log, ROW_NUMBER() OVER (ORDER BY {_order(dialect)}), {_ARC_COLUMNS} FROM arcs
    """
    await session.execute(_bind(text(store), log_id, ()))
    wanted = _wanted(ranks)
    figures = f"WITH {_case_stats_sql(table, len(wanted))}"
    stats = await _case_stats(session, text(figures), cases, wanted)
    await session.execute(text(f"DROP TABLE {table}"))
    return stats


async def arcs(
    session: AsyncSession,
    log_id: UUID,
    pauses: Sequence[str],
    *,
    limit: int | None = None,
    after: tuple[int, str, str] | None = None,
    only: tuple[str, str] | None = None,
) -> list[ArcRow]:
    """Arcs, most transfers first (then by names, in code-point order)."""
    dialect = session.get_bind().dialect.name
    sql = _arcs_sql(
        bool(pauses),
        dialect,
        after=after is not None,
        limit=limit is not None,
        only=only is not None,
    )
    statement = _bind(text(sql), log_id, pauses)
    if after is not None:
        statement = statement.bindparams(
            bindparam("a_count", after[0], type_=BigInteger()),
            bindparam("a_src", after[1], type_=String()),
            bindparam("a_dst", after[2], type_=String()),
        )
    if only is not None:
        statement = statement.bindparams(
            bindparam("o_src", only[0], type_=String()), bindparam("o_dst", only[1], type_=String())
        )
    if limit is not None:
        statement = statement.bindparams(bindparam("limit", limit, type_=BigInteger()))
    result = await session.execute(statement)
    return [_arc_row(r) for r in result.all()]


def _arc_row(r: Any) -> ArcRow:
    return ArcRow(
        source=r[0],
        target=r[1],
        count=int(r[2]),
        cases=int(r[3]),
        ping_pongs=int(r[4]),
        wait_median_us=int(r[5]),
        wait_p80_us=int(r[6]),
        wait_p90_us=int(r[7]),
        wait_max_us=int(r[8]),
    )


async def stored_arcs_between(
    session: AsyncSession, log_id: UUID, pairs: Sequence[tuple[str, str]]
) -> list[ArcRow]:
    """The stored arcs source -> target of these pairs of names, in the listing's order:
    one primary-key lookup each."""
    found = []
    for start in range(0, len(pairs), 500):
        statement = select(*_STORED, EventLogArc.listing_rank).where(
            EventLogArc.log_id == log_id,
            tuple_(EventLogArc.src, EventLogArc.dst).in_(pairs[start : start + 500]),
        )
        found.extend((await session.execute(statement)).all())
    return [_arc_row(r) for r in sorted(found, key=lambda r: r[-1])]


async def stored_arc_count(session: AsyncSession, log_id: UUID) -> int:
    """How many arcs the log's discovery stored: the last place in the listing."""
    statement = select(func.max(EventLogArc.listing_rank)).where(EventLogArc.log_id == log_id)
    return int((await session.scalar(statement)) or 0)


async def arc_transfers(
    session: AsyncSession, log_id: UUID, source: str, target: str, *, batch: int = 5000
):
    """Every transfer source -> target of the log: (case, position of the row at source,
    its time, the time of the row at target), in batches, ordered by case and position."""
    sql = f"""
    WITH {_transfers_sql(False)}
    SELECT case_ref, position, at_us, next_at FROM transfers
    WHERE src = :src AND dst = :dst
    ORDER BY case_ref, position
    """
    statement = _bind(text(sql), log_id, ()).bindparams(
        bindparam("src", source, type_=String()), bindparam("dst", target, type_=String())
    )
    result = await session.stream(statement)
    async for partition in result.partitions(batch):
        yield [(r[0], int(r[1]), int(r[2]), int(r[3])) for r in partition]
