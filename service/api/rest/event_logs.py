"""Event logs: import a ticketing system's export, then read the handoffs discovered in it."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Query, Request, Response

from service.api.deps import (
    KeyPath,
    PageDep,
    ReadSessionDep,
    SessionDep,
    SettingsDep,
    WriteSessionsDep,
    allow,
)
from service.api.problems import problem_responses
from service.core.fields import KEY_PATTERN, Page
from service.core.permissions import Action, Principal
from service.event_logs import adoption, importer
from service.event_logs import service as event_logs_service
from service.event_logs.constants import LogFormat
from service.event_logs.models import EventLog
from service.event_logs.parsing import Mapping, xes_mapping
from service.event_logs.schemas import (
    AdoptRead,
    AdoptRequest,
    ArcRead,
    ConformanceRead,
    EventLogRead,
    Rejection,
    SummaryRead,
)

router = APIRouter(prefix="/v1/event-logs", tags=["event-logs"])
Reader = Annotated[Principal, allow(Action.handoffs_read)]
Writer = Annotated[Principal, allow(Action.events_write)]

_Column = Annotated[str | None, Query(min_length=1, max_length=200)]
PauseStatuses = Annotated[
    list[str] | None,
    Query(
        max_length=20,
        description="Statuses whose time does not count in waits (repeat the parameter, or "
        "separate with commas): a row in such a status pauses the case's clock until its "
        "next row.",
    ),
]

_IMPORT_BODY = {
    "requestBody": {
        "required": True,
        "description": "The log file, streamed: CSV with a header line (UTF-8), or XES "
        "(IEEE 1849). The format is `format=` if given, else XES for an XML media type "
        "(`application/xml`, `text/xml`, `*+xml`) and CSV for any other (`text/csv`, "
        "`application/octet-stream`, ...). gzip is accepted, by `Content-Encoding: gzip` or "
        "by its content. Listed here as `application/octet-stream`, the one binary media "
        "type that client generators support.",
        "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
    }
}


def to_read(log: EventLog) -> EventLogRead:
    read = EventLogRead.model_validate(log)
    read.rejections = [Rejection.model_validate(r) for r in log.rejections]
    return read


def _respond_async(prefer: str | None) -> bool:
    """Whether ``Prefer`` (RFC 7240) asks for ``respond-async``."""
    preferences = (p.split(";")[0].split("=")[0].strip().lower() for p in (prefer or "").split(","))
    return "respond-async" in preferences


@router.post(
    "",
    status_code=201,
    responses={
        202: {
            "model": EventLogRead,
            "description": "With `Prefer: respond-async`: the file is received and the log, "
            "in status `importing`, goes on in the background. Poll its `Location` until "
            "`ready` or `failed`.",
        },
        **problem_responses(409, 413),
    },
    openapi_extra=_IMPORT_BODY,
)
async def import_event_log(
    request: Request,
    response: Response,
    sessions: WriteSessionsDep,
    settings: SettingsDep,
    principal: Writer,
    key: Annotated[str, Query(pattern=KEY_PATTERN, description="The new log's key.")],
    format: Annotated[
        LogFormat | None,
        Query(description="csv or xes; default: xes for an XML content type, else csv."),
    ] = None,
    name: Annotated[str | None, Query(min_length=1, max_length=200)] = None,
    case: _Column = None,
    unit: _Column = None,
    time: _Column = None,
    activity: _Column = None,
    status: _Column = None,
    resource: _Column = None,
    unit_attribute: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=200,
            description="XES: the same as `unit` (org:resource makes the discovery per person).",
        ),
    ] = None,
    assume_tz: Annotated[
        str | None,
        Query(
            max_length=64,
            description="Zone for timestamps without an offset (e.g. Europe/Paris); without "
            "it such rows are rejected.",
        ),
    ] = None,
    strict: Annotated[
        bool, Query(description="Reject the whole file (422, nothing kept) on any bad row.")
    ] = False,
    delimiter: Annotated[str, Query(min_length=1, max_length=1)] = ",",
    prefer: Annotated[
        str | None,
        Header(
            description="`respond-async`: answer 202 as soon as the file is received (it is "
            "kept in a temporary file) instead of 201 when the import is done.",
        ),
    ] = None,
) -> EventLogRead:
    """Import an event log (CSV or XES), streamed and written in batches.

    CSV columns (defaults in brackets): `case` [case], `unit` [unit], `time` [time, ISO 8601],
    `activity` [activity], `status` [status], `resource` [resource]; the last three are
    optional unless named. XES attributes: `case` [the trace's concept:name], `unit`
    [org:group], `time` [time:timestamp], `activity` [concept:name], `status`
    [lifecycle:transition], `resource` [org:resource]; an event without one takes its
    trace's. Rows without a case, unit or time, or with a time that has no
    offset (unless `assume_tz`), are rejected: counted, and the first 100 listed with their
    line numbers. Answers 201 with the log once it is `ready`, or, with
    `Prefer: respond-async`, 202 once the file is received, the log `importing` (its counts
    grow as batches are written). A failed import keeps no rows (the log stays `failed` with
    the reason; post the key again to retry).
    """
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if format is None:
        is_xml = media_type in ("application/xml", "text/xml") or media_type.endswith("+xml")
        format = LogFormat.xes if is_xml else LogFormat.csv
    given = {
        "case": case,
        "unit": unit if unit is not None else unit_attribute,
        "time": time,
        "activity": activity,
        "status": status,
        "resource": resource,
    }
    if format is LogFormat.xes:
        mapping = xes_mapping(**given)
    else:
        chosen = {field: value for field, value in given.items() if value is not None}
        mapping = Mapping(**chosen, explicit=set(chosen))
    encoding = request.headers.get("content-encoding", "").strip().lower()
    options = importer.ImportOptions(
        key=key,
        name=name,
        format=format,
        mapping=mapping,
        assume_tz=assume_tz,
        strict=strict,
        delimiter=delimiter,
        gzip=True if encoding == "gzip" else None,
        max_bytes=settings.event_log_max_bytes,
    )
    if _respond_async(prefer):
        spooled = await importer.spool(request.stream(), settings.event_log_max_bytes)
        log = await importer.import_log_later(sessions, principal, options, spooled)
        response.status_code = 202
        response.headers["Preference-Applied"] = "respond-async"
    else:
        log = await importer.import_log(sessions, principal, options, request.stream())
    response.headers["Location"] = f"/v1/event-logs/{log.key}"
    return to_read(log)


@router.get("", responses=problem_responses())
async def list_event_logs(
    session: ReadSessionDep, principal: Reader, page: PageDep
) -> Page[EventLogRead]:
    """Imported logs, newest first."""
    logs, next_cursor = await event_logs_service.list_page(session, principal, page)
    return Page(items=[to_read(log) for log in logs], next_cursor=next_cursor)


@router.get("/{key}", responses=problem_responses(404))
async def get_event_log(key: KeyPath, session: ReadSessionDep, principal: Reader) -> EventLogRead:
    """The log: status (importing, ready, failed with the reason), counts, rejected rows."""
    return to_read(await event_logs_service.get(session, principal, key))


@router.delete("/{key}", status_code=204, responses=problem_responses(404))
async def delete_event_log(key: KeyPath, session: SessionDep, principal: Writer) -> None:
    await event_logs_service.delete(session, principal, key)


@router.get("/{key}/summary", responses=problem_responses(404, 409))
async def event_log_summary(
    key: KeyPath,
    session: ReadSessionDep,
    principal: Reader,
    pause_statuses: PauseStatuses = None,
) -> SummaryRead:
    """Cases, events, units, transfers, ping-pongs, and transfers per case."""
    return await event_logs_service.summary(session, principal, key, pause_statuses or ())


@router.get("/{key}/handoffs", responses=problem_responses(404, 409))
async def event_log_handoffs(
    key: KeyPath,
    session: ReadSessionDep,
    principal: Reader,
    page: PageDep,
    pause_statuses: PauseStatuses = None,
) -> Page[ArcRead]:
    """The discovered arcs A -> B (never A -> A), most transfers first: count, cases,
    ping-pongs whose first step is the arc, and the wait (median, p90, max)."""
    arcs, next_cursor = await event_logs_service.handoffs(
        session, principal, key, page, pause_statuses or ()
    )
    return Page(items=[event_logs_service.arc_read(a) for a in arcs], next_cursor=next_cursor)


@router.get("/{key}/conformance", responses=problem_responses(404, 409))
async def event_log_conformance(
    key: KeyPath,
    session: ReadSessionDep,
    principal: Reader,
    pause_statuses: PauseStatuses = None,
    limit: Annotated[
        int, Query(ge=1, le=500, description="At most this many unregistered arcs (50).")
    ] = 50,
) -> ConformanceRead:
    """The log against the registered handoffs. A log unit maps to the registered unit whose
    key is its derived key (`units` lists them: the name itself when it is a valid key, else
    a slug plus 6 hex digits of its SHA-256). Lists the discovered arcs with no active
    registered handoff between their units, the active handoffs between units of the log
    never observed, and those whose observed p90 wait exceeds expected_within."""
    return await event_logs_service.conformance(
        session, principal, key, pause_statuses or (), limit=limit
    )


@router.post("/{key}/handoffs/adopt", responses=problem_responses(404, 409))
async def adopt_event_log_handoff(
    key: KeyPath,
    body: AdoptRequest,
    session: SessionDep,
    settings: SettingsDep,
    principal: Writer,
) -> AdoptRead:
    """Register a discovered arc as a handoff, with one occurrence per transfer.

    Creates the units that do not exist (key: the name's derived key unless given;
    `external_ref`: the log's name), the handoff (`expected_within` by default the observed
    p80 wait rounded up to a readable duration), and its events (`started_at` = the row at
    `from`, `delivered_at` = the next row at `to`, `case_ref` = the case, `external_id` =
    `<log>:<line>`). Adopting again changes nothing."""
    return await adoption.adopt(session, principal, key, body, settings)
