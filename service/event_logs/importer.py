"""Importing a log: streamed, written in batches, all or nothing.

An import is long (a 2 GB export is minutes of work), so it does not run in one request
transaction: the log is created in status ``importing`` and committed, each batch of rows
is committed with the log's progress counts (``GET`` shows them growing, and SQLite's write
lock is released between batches), and the log becomes ``ready`` at the end. If anything
fails (a body that is not UTF-8 or gzip, a limit, a dropped connection, the database), the
rows written so far are deleted and the log is marked ``failed`` with the reason, so a
failed import leaves nothing half-written; posting the same key again replaces it. A strict
import with a bad row removes the log entirely: nothing of the file was taken.

This is why this module, unlike the services, opens and commits its own transactions.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from collections.abc import AsyncIterable, AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from uuid import UUID
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import structlog
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from service.alignment import finding_service
from service.core.db import is_unique_violation, transaction
from service.core.errors import Conflict, DomainError, Invalid, KeyExists
from service.core.permissions import Action, Principal
from service.core.types import utcnow
from service.event_logs import arc_subjects, repository
from service.event_logs import service as event_logs_service
from service.event_logs.constants import MAX_REPORTED_REJECTIONS, LogFormat, LogStatus
from service.event_logs.errors import hidden_from_partners
from service.event_logs.models import EventLog
from service.event_logs.parsing import (
    ByteCounter,
    CsvRecords,
    CsvRows,
    Mapping,
    Row,
    XesEvents,
    decoded,
    from_us,
    inflated,
    too_large,
)
from service.webhooks import service as webhooks
from service.webhooks.constants import EventType

RESOURCE = "event log"
logger = structlog.get_logger("silospan.event_logs")
#: Rows written (and committed) at once.
BATCH_ROWS = 20_000
#: An import that has not written for this long is taken as dead (its process crashed):
#: posting its key again replaces it.
STALE_AFTER = timedelta(minutes=10)


class LogBeingImported(Conflict):
    code = "log_importing"


class StrictRejected(Invalid):
    code = "log_rejected"


@dataclass
class ImportOptions:
    key: str
    name: str | None = None
    format: LogFormat = LogFormat.csv
    mapping: Mapping = field(default_factory=Mapping)
    assume_tz: str | None = None
    strict: bool = False
    delimiter: str = ","
    #: True: the body is gzip (Content-Encoding); None: decide by its first bytes.
    gzip: bool | None = None
    max_bytes: int = 1 << 40


@dataclass
class Progress:
    bytes_read: int
    rows_read: int
    events: int
    rejected: int


def zone(name: str | None) -> ZoneInfo | None:
    if name is None:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise Invalid(
            f"assume_tz {name!r} is not a time zone name such as Europe/Paris or UTC",
            loc=("query", "assume_tz"),
        ) from exc


def _checked(principal: Principal, options: ImportOptions) -> ZoneInfo | None:
    """Refuses what can be refused before any work; returns the zone for offset-less times."""
    principal.require(Action.events_write)
    hidden_from_partners(principal, options.key)
    if len(options.delimiter) != 1:
        raise Invalid("delimiter must be one character", loc=("query", "delimiter"))
    return zone(options.assume_tz)


async def import_log(
    sessions: async_sessionmaker[AsyncSession],
    principal: Principal,
    options: ImportOptions,
    body: AsyncIterable[bytes],
    *,
    on_progress: Callable[[Progress], None] | None = None,
) -> EventLog:
    assume = _checked(principal, options)
    log_id = await _start(sessions, options)
    job = _Job(sessions, log_id, options, on_progress)
    try:
        await job.run(body, assume)
    except BaseException as exc:
        await job.abandon(exc)
        raise
    return await _log(sessions, log_id)


async def _log(sessions: async_sessionmaker[AsyncSession], log_id: UUID) -> EventLog:
    async with transaction(sessions) as session:
        log = await session.get(EventLog, log_id)
        assert log is not None
        return log


# Imports that go on after the response (Prefer: respond-async) -----------------------------

#: Running imports, held so that none is garbage-collected half-way; ``stop_background``
#: cancels them when the process shuts down (each log is then ``failed``, its rows removed).
_BACKGROUND: set[asyncio.Task[None]] = set()
SPOOL_CHUNK = 1 << 20


async def spool(body: AsyncIterable[bytes], max_bytes: int) -> Path:
    """The body, written to a temporary file as it arrives (a log imported after the response
    must be read whole first: the client does not wait to send the rest)."""
    descriptor, name = tempfile.mkstemp(prefix="silospan-log-", suffix=".upload")
    path = Path(name)
    received = 0
    try:
        with os.fdopen(descriptor, "wb") as file:
            async for chunk in body:
                received += len(chunk)
                if received > max_bytes:
                    raise too_large(max_bytes)
                await asyncio.to_thread(file.write, chunk)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return path


async def import_log_later(
    sessions: async_sessionmaker[AsyncSession],
    principal: Principal,
    options: ImportOptions,
    spooled: Path,
) -> EventLog:
    """Starts importing the spooled file and returns the log in status ``importing``; the
    work goes on in this process, and the spooled file is removed when it ends. A strict
    rejection keeps the log as ``failed`` with its rejections (nobody waits for a 422)."""
    try:
        assume = _checked(principal, options)
        log_id = await _start(sessions, options)
    except BaseException:
        spooled.unlink(missing_ok=True)
        raise
    log = await _log(sessions, log_id)  # read first: the answer shows it `importing`
    job = _Job(sessions, log_id, options, None, keep_rejected_log=True)
    task = asyncio.create_task(_run_later(job, spooled, assume))
    _BACKGROUND.add(task)
    task.add_done_callback(_BACKGROUND.discard)
    return log


async def _run_later(job: _Job, spooled: Path, assume: ZoneInfo | None) -> None:
    try:
        await job.run(_read_file(spooled), assume)
    except BaseException as exc:
        await job.abandon(exc)
        if not isinstance(exc, Exception):
            raise  # cancelled at shutdown: the log is failed, the task ends as cancelled
        logger.info("event_log_failed", log_id=str(job.log_id), reason=_reason(exc))
    finally:
        spooled.unlink(missing_ok=True)


async def _read_file(path: Path) -> AsyncIterator[bytes]:
    with path.open("rb") as file:
        while chunk := await asyncio.to_thread(file.read, SPOOL_CHUNK):
            yield chunk


async def stop_background() -> None:
    """Cancels the imports still running and waits for each to mark its log failed."""
    tasks = list(_BACKGROUND)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def _start(sessions: async_sessionmaker[AsyncSession], options: ImportOptions) -> UUID:
    mapping = {**options.mapping.as_dict(), "assume_tz": options.assume_tz}
    if options.format is LogFormat.csv:
        mapping["delimiter"] = options.delimiter
    try:
        async with transaction(sessions) as session:
            existing = await repository.get_by_key(session, options.key)
            if existing is not None:
                if existing.status == LogStatus.ready.value:
                    raise KeyExists(RESOURCE, options.key)
                if (
                    existing.status == LogStatus.importing.value
                    and utcnow() - existing.updated_at < STALE_AFTER
                ):
                    raise LogBeingImported(
                        f"event log {options.key!r} is being imported; wait for it, or "
                        "DELETE it to stop it",
                        key=options.key,
                    )
                # A failed import, or one whose process died: replaced.
                await repository.delete_rows(session, existing.id)
                await session.delete(existing)
                await session.flush()
            log = EventLog(
                key=options.key,
                name=options.name or options.key,
                format=options.format.value,
                status=LogStatus.importing.value,
                mapping=mapping,
            )
            session.add(log)
            await session.flush()
            return log.id
    except IntegrityError as exc:  # another request created the same key just now
        if is_unique_violation(exc):
            raise KeyExists(RESOURCE, options.key) from exc
        raise


class _Job:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        log_id: UUID,
        options: ImportOptions,
        on_progress: Callable[[Progress], None] | None,
        *,
        keep_rejected_log: bool = False,
    ) -> None:
        self.sessions = sessions
        self.keep_rejected_log = keep_rejected_log
        self.log_id = log_id
        self.options = options
        self.on_progress = on_progress
        self.counter = ByteCounter()
        self.rows_read = 0
        self.events = 0
        self.rejected = 0
        self.rejections: list[dict] = []
        self.pending: list[Row] = []
        self.writing: asyncio.Future[None] | None = None

    def _reject(self, line: int, reason: str) -> None:
        self.rejected += 1
        if len(self.rejections) < MAX_REPORTED_REJECTIONS:
            self.rejections.append({"line": line, "reason": reason})

    async def run(self, body: AsyncIterable[bytes], assume: ZoneInfo | None) -> None:
        options = self.options
        chunks = inflated(
            body, gzip=options.gzip, max_bytes=options.max_bytes, counter=self.counter
        )
        if options.format is LogFormat.xes:
            events = XesEvents(options.mapping, assume)
            async for chunk in chunks:
                await self._take(events.feed(chunk))
            await self._take(events.finish())
        else:
            records = CsvRecords(options.delimiter)
            rows = CsvRows(options.mapping, assume)
            async for piece in decoded(chunks):
                await self._take(_csv_rows(records.feed(piece), rows))
            await self._take(_csv_rows(records.finish(), rows))
            if not rows.has_header:
                raise Invalid("the log is empty: expected a header line, then rows", loc=("body",))
        if options.strict and self.rejected:
            raise StrictRejected(
                f"{self.rejected} row(s) are invalid and strict=true: nothing was imported",
                rejected=self.rejected,
                rejections=self.rejections,
                errors=[
                    {"loc": ["body", r["line"]], "msg": r["reason"], "line": r["line"]}
                    for r in self.rejections
                ],
            )
        await self._flush()
        await self._finish()

    async def _take(self, items: list[tuple[int, Row | str]]) -> None:
        strict = self.options.strict
        for line, row in items:
            self.rows_read += 1
            if isinstance(row, str):
                self._reject(line, row)
                continue
            if strict and self.rejected:
                continue  # nothing will be written: only count what else is wrong
            self.pending.append(row)
        if len(self.pending) >= BATCH_ROWS:
            # The batch is written while the next one is parsed: the database works (in its
            # own process, or SQLite's thread) while Python reads. One write at a time.
            await self._wait_for_write()
            rows, self.pending = self.pending, []
            self.writing = asyncio.ensure_future(self._write(rows))

    async def _wait_for_write(self) -> None:
        if self.writing is not None:
            writing, self.writing = self.writing, None
            await writing

    async def _flush(self) -> None:
        await self._wait_for_write()
        rows, self.pending = self.pending, []
        await self._write(rows)

    async def _write(self, rows: list[Row]) -> None:
        async with transaction(self.sessions) as session:
            await repository.insert_rows(session, self.log_id, rows)
            self.events += len(rows)
            log = await session.get(EventLog, self.log_id)
            assert log is not None
            self._copy_progress(log)
        if self.on_progress is not None:
            self.on_progress(
                Progress(self.counter.received, self.rows_read, self.events, self.rejected)
            )

    def _copy_progress(self, log: EventLog) -> None:
        log.bytes_read = self.counter.received
        log.rows_read = self.rows_read
        log.events = self.events
        log.rejected = self.rejected
        log.rejections = list(self.rejections)
        log.updated_at = utcnow()

    async def _finish(self) -> None:
        async with transaction(self.sessions) as session:
            totals = await repository.totals(session, self.log_id)
            log = await session.get(EventLog, self.log_id)
            assert log is not None
            self._copy_progress(log)
            log.events = totals.events
            log.cases = totals.cases
            log.units = totals.units
            log.first_at = from_us(totals.first_us) if totals.first_us is not None else None
            log.last_at = from_us(totals.last_us) if totals.last_us is not None else None
            # Discovery without pause statuses, once: a ready log never changes.
            log.discovered = await event_logs_service.discover(session, self.log_id, totals.cases)
            log.status = LogStatus.ready.value
            log.finished_at = utcnow()
            log.transfers = log.discovered["transfers"]
            await arc_subjects.record_units(session, log)
            await finding_service.refresh_logs(session, [log.id])
            log.arcs_judged_at = utcnow()
            # In the transaction that makes the log ready: subscribers hear of it exactly
            # when GET shows it (partners see no event log, so it concerns none of them).
            await webhooks.emit(
                session,
                EventType.event_log_ready,
                {
                    "key": log.key,
                    "name": log.name,
                    "events": log.events,
                    "cases": log.cases,
                    "units": log.units,
                    "rejected": log.rejected,
                },
                link=f"/v1/event-logs/{log.key}",
            )

    async def abandon(self, exc: BaseException) -> None:
        """Undo the rows written so far; keep the log as ``failed`` with the reason (or, for
        a strict rejection, not at all)."""
        if self.writing is not None:  # let a write in flight end before undoing it
            await asyncio.gather(self.writing, return_exceptions=True)
            self.writing = None
        try:
            await self._abandon(exc)
        except Exception:  # the original error is the one to report
            logger.exception("event_log_cleanup_failed", log_id=str(self.log_id))

    async def _abandon(self, exc: BaseException) -> None:
        async with transaction(self.sessions) as session:
            await repository.delete_rows(session, self.log_id)
            log = await session.get(EventLog, self.log_id)
            if log is None:
                return
            if isinstance(exc, StrictRejected) and not self.keep_rejected_log:
                await session.delete(log)
                return
            self._copy_progress(log)
            log.events = 0
            log.status = LogStatus.failed.value
            log.failure_reason = _reason(exc)
            log.finished_at = utcnow()


def _csv_rows(records: list, rows: CsvRows) -> list[tuple[int, Row | str]]:
    """Rows (or why not) from CSV records; the first non-blank record is the header."""
    out: list[tuple[int, Row | str]] = []
    for line, fields in records:
        if fields is None:
            out.append((line, "a quoted field is never closed"))
        elif not fields or (len(fields) == 1 and not fields[0].strip()):
            continue  # a blank line
        elif not rows.has_header:
            rows.header(fields)
        else:
            out.append((line, rows.row(line, fields)))
    return out


def _reason(exc: BaseException) -> str:
    if isinstance(exc, DomainError):
        return exc.detail
    name = type(exc).__name__
    if name == "ClientDisconnect":
        return "the client disconnected before the whole file arrived"
    return f"the import stopped ({name}); post the file again"
