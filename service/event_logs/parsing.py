"""Reading an event log file as it streams in: bytes → text → records → rows.

Nothing here does I/O of its own or holds more than one chunk of the file: the body's
chunks are decompressed (gzip, by header or by its magic bytes) and decoded incrementally,
and CSV records are cut at line ends, a record whose quoted field spans lines being kept
until its closing quote arrives.
"""

from __future__ import annotations

import codecs
import csv
import re
import zlib
from collections import deque
from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from typing import NamedTuple

from service.core.errors import Invalid, PayloadTooLarge
from service.core.fields import EARLIEST, LATEST
from service.event_logs.constants import MAX_VALUE_LENGTH

GZIP_MAGIC = b"\x1f\x8b"
#: Decompressed output is taken at most this much at a time (a small gzip can inflate a lot).
_INFLATE_STEP = 1 << 20
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


class UnreadableBody(Invalid):
    code = "unreadable_log"


@dataclass
class ByteCounter:
    """Bytes received (as sent, compressed or not) and bytes of text after inflating."""

    received: int = 0
    inflated: int = 0


async def inflated(
    chunks: AsyncIterable[bytes], *, gzip: bool | None, max_bytes: int, counter: ByteCounter
) -> AsyncIterator[bytes]:
    """The body's bytes, inflated when it is gzip: ``gzip=True`` (Content-Encoding said so)
    or ``None`` (decided by the first two bytes)."""
    iterator = chunks.__aiter__()
    head = b""
    # The magic number needs two bytes; a first chunk of one byte is possible.
    while len(head) < 2:
        try:
            chunk = await iterator.__anext__()
        except StopAsyncIteration:
            break
        counter.received += len(chunk)
        head += chunk
    compressed = gzip if gzip is not None else head.startswith(GZIP_MAGIC)

    async def rest() -> AsyncIterator[bytes]:
        if head:
            yield head
        async for chunk in iterator:
            counter.received += len(chunk)
            if counter.received > max_bytes:
                raise too_large(max_bytes)
            yield chunk

    if not compressed:
        async for chunk in rest():
            counter.inflated += len(chunk)
            if counter.inflated > max_bytes:
                raise too_large(max_bytes)
            yield chunk
        return
    decompressor = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        async for chunk in rest():
            data = chunk
            while data:
                if decompressor.eof:  # another gzip member follows (as `cat a.gz b.gz` makes)
                    decompressor = zlib.decompressobj(16 + zlib.MAX_WBITS)
                out = decompressor.decompress(data, _INFLATE_STEP)
                data = (
                    decompressor.unused_data if decompressor.eof else decompressor.unconsumed_tail
                )
                counter.inflated += len(out)
                if counter.inflated > max_bytes:
                    raise too_large(max_bytes)
                if out:
                    yield out
    except zlib.error as exc:
        raise UnreadableBody(f"the body is not valid gzip: {exc}", loc=("body",)) from exc
    if not decompressor.eof:
        raise UnreadableBody("the gzip stream ends before its end marker", loc=("body",))


def too_large(max_bytes: int) -> PayloadTooLarge:
    return PayloadTooLarge(
        f"the log is larger than the {max_bytes}-byte limit (after inflating)", max_bytes=max_bytes
    )


async def decoded(chunks: AsyncIterable[bytes]) -> AsyncIterator[str]:
    """UTF-8 text (a byte-order mark is dropped); a byte that is not UTF-8 stops the import."""
    decoder = codecs.getincrementaldecoder("utf-8-sig")()
    offset = 0
    try:
        async for chunk in chunks:
            text = decoder.decode(chunk)
            offset += len(chunk)
            if text:
                yield text
        tail = decoder.decode(b"", final=True)
    except UnicodeDecodeError as exc:
        raise UnreadableBody(
            f"the log is not UTF-8 text (byte {offset + exc.start + 1} cannot be read); "
            "export it as UTF-8",
            loc=("body",),
        ) from exc
    if tail:
        yield tail


class _Lines:
    """The iterator a ``csv.reader`` pulls from: lines queued by ``CsvRecords``."""

    def __init__(self) -> None:
        self.queue: deque[str] = deque()

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        if not self.queue:
            raise StopIteration
        return self.queue.popleft()


class CsvRecords:
    """CSV records with the line each starts on, from text fed in pieces.

    A record is complete once its quotes balance (RFC 4180 doubles a quote inside a quoted
    field, so counting them is enough), so a field with a line break inside quotes stays
    one field however the text was cut.
    """

    def __init__(self, delimiter: str = ",") -> None:
        self._delimiter = delimiter
        self._lines = _Lines()
        self._reader = csv.reader(self._lines, delimiter=delimiter)
        self._pending = ""
        self._line = 0
        self._open_since = 0  # the line an unfinished quoted record started on (0: none)
        self._open_quotes = 0

    def feed(self, text: str) -> list[tuple[int, list[str]]]:
        parts = (self._pending + text).split("\n")
        self._pending = parts.pop()
        return self._records(parts)

    def finish(self) -> list[tuple[int, list[str]]]:
        parts = [self._pending] if self._pending else []
        self._pending = ""
        records = self._records(parts)
        if self._open_since:
            start, self._open_since = self._open_since, 0
            self._lines.queue.clear()
            records.append((start, None))  # type: ignore[arg-type]
        return records

    def _records(self, parts: list[str]) -> list[tuple[int, list[str]]]:
        if not self._open_since and not any('"' in part for part in parts):
            # No quote anywhere (the common case): a line is a record; csv reads the lot.
            first = self._line + 1
            self._line += len(parts)
            reader = csv.reader(parts, delimiter=self._delimiter)
            return list(zip(range(first, self._line + 1), reader, strict=True))
        records: list[tuple[int, list[str]]] = []
        queue = self._lines.queue
        reader = self._reader
        for part in parts:
            self._line += 1
            quotes = part.count('"')
            if self._open_since:
                queue.append(part + "\n")
                self._open_quotes += quotes
                if self._open_quotes % 2 == 0:
                    records.append((self._open_since, next(reader)))
                    self._open_since = 0
                continue
            if quotes % 2:
                queue.append(part + "\n")
                self._open_since, self._open_quotes = self._line, quotes
                continue
            queue.append(part)
            records.append((self._line, next(reader)))
        return records


# Rows ------------------------------------------------------------------------------------------


class Row(NamedTuple):
    position: int
    case_ref: str
    unit: str
    at_us: int
    activity: str | None
    status: str | None
    resource: str | None


@dataclass
class Mapping:
    """Which column (CSV) or attribute (XES) holds each field of a row."""

    case: str = "case"
    unit: str = "unit"
    time: str = "time"
    activity: str | None = "activity"
    status: str | None = "status"
    resource: str | None = "resource"
    # Fields the caller named explicitly: a missing column is then an error, not a null.
    explicit: set[str] = field(default_factory=set)

    def as_dict(self) -> dict[str, str | None]:
        return {
            "case": self.case,
            "unit": self.unit,
            "time": self.time,
            "activity": self.activity,
            "status": self.status,
            "resource": self.resource,
        }


REQUIRED = ("case", "unit", "time")
OPTIONAL = ("activity", "status", "resource")


def instant_us(text: str, assume_tz: tzinfo | None) -> int | str:
    """Microseconds since the epoch for an ISO 8601 timestamp, or why it cannot be read."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return f"time {_quote(text)} is not an ISO 8601 timestamp"
    if moment.tzinfo is None:
        if assume_tz is None:
            return (
                f"time {_quote(text)} has no offset: add one, or name the zone with "
                "assume_tz (e.g. assume_tz=Europe/Paris)"
            )
        moment = moment.replace(tzinfo=assume_tz)
    try:
        utc = moment.astimezone(UTC)
    except (OverflowError, ValueError):
        utc = None
    if utc is None or not EARLIEST <= utc <= LATEST:
        return f"time {_quote(text)} is outside 1900-01-01 .. 9000-01-01"
    return (utc - EPOCH) // _MICROSECOND


def from_us(value: int) -> datetime:
    return EPOCH + timedelta(microseconds=value)


def _quote(text: str) -> str:
    return repr(text[:60] + ("…" if len(text) > 60 else ""))


# Control characters other than tab and line breaks (PostgreSQL refuses NUL in text).
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")


def clean(name: str, value: str | None) -> str | None | tuple[str]:
    """The value stripped (None when empty), or a 1-tuple with the reason it is refused."""
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    if len(value) > MAX_VALUE_LENGTH:
        return (f"{name} is longer than {MAX_VALUE_LENGTH} characters",)
    if _CONTROL.search(value):
        return (f"{name} contains a control character",)
    return value


def make_row(position: int, values: dict[str, str | None], assume_tz: tzinfo | None) -> Row | str:
    """A row from the raw values of one record, or the reason it is rejected."""
    cleaned: dict[str, str | None] = {}
    for name in (*REQUIRED, *OPTIONAL):
        value = clean(name, values.get(name))
        if isinstance(value, tuple):
            return value[0]
        cleaned[name] = value
    for name in REQUIRED:
        if cleaned[name] is None:
            return f"no {name}"
    at = instant_us(cleaned["time"], assume_tz)  # type: ignore[arg-type]
    if isinstance(at, str):
        return at
    return Row(
        position,
        cleaned["case"],  # type: ignore[arg-type]
        cleaned["unit"],  # type: ignore[arg-type]
        at,
        cleaned["activity"],
        cleaned["status"],
        cleaned["resource"],
    )


class CsvRows:
    """Rows from CSV records: the first record is the header, named by ``mapping``."""

    def __init__(self, mapping: Mapping, assume_tz: tzinfo | None) -> None:
        self.mapping = mapping
        self.assume_tz = assume_tz
        self._columns: dict[str, int] | None = None

    def header(self, fields: list[str]) -> None:
        names = [name.strip() for name in fields]
        index = {name: i for i, name in reversed(list(enumerate(names)))}
        columns: dict[str, int] = {}
        missing = []
        for name, column in self.mapping.as_dict().items():
            if column is None:
                continue
            if column in index:
                columns[name] = index[column]
            elif name in REQUIRED or name in self.mapping.explicit:
                missing.append(f"{name} (column {column!r})")
        if missing:
            raise Invalid(
                f"the header has no column for {', '.join(missing)}; it has "
                f"{', '.join(repr(n) for n in names[:20])}. Name the columns with the "
                "query parameters case, unit, time, activity, status, resource",
                loc=("query",),
            )
        self._columns = columns
        # The columns of case, unit, time, activity, status and resource, for ``_plain_row``.
        self._positions = tuple(columns.get(name) for name in (*REQUIRED, *OPTIONAL))
        self._width = max(columns.values()) + 1

    @property
    def has_header(self) -> bool:
        return self._columns is not None

    def row(self, line: int, fields: list[str]) -> Row | str:
        assert self._columns is not None
        width = len(fields)
        if width >= self._width:
            plain = self._plain_row(line, fields)
            if plain is not None:
                return plain
        values = {name: fields[i] if i < width else None for name, i in self._columns.items()}
        return make_row(line, values, self.assume_tz)

    def _plain_row(self, line: int, fields: list[str]) -> Row | None:
        """The row of a record with nothing to reject, read without ``make_row``'s
        per-field checks (most of the parse time of a large log); None when anything is
        off, so that ``make_row`` gives the reason."""
        c, u, t, a, s, r = self._positions
        case, unit, time = fields[c].strip(), fields[u].strip(), fields[t].strip()  # type: ignore[index]
        activity = fields[a].strip() if a is not None else ""
        status = fields[s].strip() if s is not None else ""
        resource = fields[r].strip() if r is not None else ""
        if not (case and unit and time):
            return None
        values = (case, unit, time, activity, status, resource)
        if max(map(len, values)) > MAX_VALUE_LENGTH or _CONTROL.search("".join(values)):
            return None
        at = instant_us(time, self.assume_tz)
        if isinstance(at, str):
            return None
        return Row(line, case, unit, at, activity or None, status or None, resource or None)


# XES -------------------------------------------------------------------------------------------

#: XES attribute elements that carry one value (lists and containers are not read).
_XES_VALUES = frozenset({"string", "date", "int", "float", "boolean", "id"})


def xes_mapping(**given: str | None) -> Mapping:
    """The attributes read from an XES log: IEEE 1849 standard extensions by default."""
    chosen = {field: value for field, value in given.items() if value is not None}
    defaults = {
        "case": "concept:name",  # of the trace
        "unit": "org:group",
        "time": "time:timestamp",
        "activity": "concept:name",
        "status": "lifecycle:transition",
        "resource": "org:resource",
    }
    return Mapping(**{**defaults, **chosen}, explicit=set(chosen))


class XesEvents:
    """Rows from XES bytes fed in pieces, with expat: no tree is built, so memory holds one
    trace's events at most (a trace's attributes may follow its events). The case is the
    trace's attribute; every other field is the event's (or, if the event lacks it, the
    trace's). ``position`` is the event's ordinal in the file; rejections give its line."""

    def __init__(self, mapping: Mapping, assume_tz: tzinfo | None) -> None:
        import xml.parsers.expat

        self.mapping = mapping
        self.assume_tz = assume_tz
        self._parser = xml.parsers.expat.ParserCreate(namespace_separator=" ")
        self._parser.StartElementHandler = self._start
        self._parser.EndElementHandler = self._end
        self._error = xml.parsers.expat.ExpatError
        self._stack: list[str] = []
        self._trace: dict[str, str] | None = None
        self._events: list[tuple[int, int, dict[str, str]]] = []
        self._event: dict[str, str] | None = None
        self._event_line = 0
        self._ordinal = 0
        self._out: list[tuple[int, Row | str]] = []
        self.saw_log = False

    def feed(self, data: bytes) -> list[tuple[int, Row | str]]:
        try:
            self._parser.Parse(data, False)
        except self._error as exc:
            raise UnreadableBody(f"the body is not well-formed XES: {exc}", loc=("body",)) from exc
        out, self._out = self._out, []
        return out

    def finish(self) -> list[tuple[int, Row | str]]:
        out = self.feed(b"")
        try:
            self._parser.Parse(b"", True)
        except self._error as exc:
            raise UnreadableBody(f"the body is not well-formed XES: {exc}", loc=("body",)) from exc
        if not self.saw_log:
            raise UnreadableBody("the body is not an XES log (no <log> element)", loc=("body",))
        return out + self._out

    def _start(self, name: str, attrs: dict[str, str]) -> None:
        local = name.rsplit(" ", 1)[-1]
        parent = self._stack[-1] if self._stack else None
        self._stack.append(local)
        if local == "log" and parent is None:
            self.saw_log = True
        elif local == "trace" and parent == "log":
            self._trace, self._events = {}, []
        elif local == "event" and parent == "trace":
            self._event = {}
            self._event_line = self._parser.CurrentLineNumber
        elif local in _XES_VALUES and "key" in attrs and "value" in attrs:
            if parent == "event" and self._event is not None:
                self._event[attrs["key"]] = attrs["value"]
            elif parent == "trace" and self._trace is not None:
                self._trace[attrs["key"]] = attrs["value"]

    def _end(self, name: str) -> None:
        local = self._stack.pop()
        if local == "event" and self._event is not None and self._stack[-1:] == ["trace"]:
            self._ordinal += 1
            self._events.append((self._event_line, self._ordinal, self._event))
            self._event = None
        elif local == "trace" and self._trace is not None and self._stack[-1:] == ["log"]:
            self._emit(self._trace, self._events)
            self._trace, self._events = None, []

    def _emit(self, trace: dict[str, str], events: list[tuple[int, int, dict[str, str]]]) -> None:
        fields = self.mapping.as_dict()
        case = trace.get(fields["case"] or "")
        for line, ordinal, event in events:
            values: dict[str, str | None] = {"case": case}
            for name in ("unit", "time", "activity", "status", "resource"):
                attribute = fields[name]
                # The event's own attribute; else the trace's (but a trace's concept:name is
                # the case, not an activity of each event).
                inherited = None if name == "activity" else trace.get(attribute or "")
                values[name] = None if attribute is None else event.get(attribute, inherited)
            row = make_row(ordinal, values, self.assume_tz)
            self._out.append((line, row))
