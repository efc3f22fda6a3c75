"""The findings sweep, a background task of ``silospan serve``.

Writes keep findings current, but buffering judges the 90 days before now, and that window
moves with the clock; rows written before findings were kept have none yet. Every tick
re-evaluates one bounded batch of subjects (``finding_service.sweep``), in its own short
transaction. With several replicas on PostgreSQL, a tick runs only where it takes a
transaction-scoped advisory lock, so replicas take turns instead of repeating each other.
"""

from __future__ import annotations

import asyncio

import structlog
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from service.alignment import finding_service
from service.core.db import Database, is_transient, transaction

log = structlog.get_logger("silospan.sweep")

#: pg_try_advisory_xact_lock key of the sweep ("silospan" in ASCII, as a bigint).
LOCK_KEY = 0x73696C6F7370616E


async def run(db: Database, *, interval: float, batch: int) -> None:
    """Sweep forever, one batch every ``interval`` seconds (until cancelled)."""
    cursor = finding_service.SweepCursor()
    while True:
        await asyncio.sleep(interval)
        try:
            await tick(db, cursor, batch)
        except asyncio.CancelledError:
            raise
        except DBAPIError as exc:
            if not is_transient(exc):
                log.exception("findings sweep tick failed")
            else:  # a long write (a bulk on SQLite) holds the lock: the next tick retries
                log.warning("findings sweep skipped a tick: the database is busy")
        except Exception:
            # A lock timeout or a failed statement costs one tick; the next one retries.
            log.exception("findings sweep tick failed")


async def tick(db: Database, cursor: finding_service.SweepCursor, batch: int) -> int:
    """One batch; returns how many subjects it re-evaluated (0 when another replica leads)."""
    async with transaction(db.write_sessions) as session:
        if not await _lead(session):
            return 0
        return await finding_service.sweep(session, cursor, batch)


async def _lead(session: AsyncSession) -> bool:
    if session.get_bind().dialect.name != "postgresql":
        return True  # SQLite has one writer at a time anyway
    statement = text("SELECT pg_try_advisory_xact_lock(:key)")
    return bool((await session.execute(statement, {"key": LOCK_KEY})).scalar())
