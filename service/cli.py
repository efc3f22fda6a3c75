"""The ``silospan`` command.

Only ``migrate``, ``serve`` and ``demo`` change the schema; every other command that uses the
database first checks that it is at this code's revision and otherwise refuses, naming the
command to run. Configuration mistakes (a bad setting, an unreachable database, a taken
port) end in one line on stderr and a non-zero exit, never a traceback.
"""

from __future__ import annotations

import asyncio
import errno
import signal
import socket
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn
from uuid import UUID

import typer
from rich import box
from rich.console import Console
from rich.table import Table
from typer.core import TyperCommand, TyperGroup

from service.core.config import Settings, data_dir, display_url, get_settings, sqlite_file
from service.core.permissions import Role

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession


class _HidesFlagTypes:
    """Help without a ``<bool>`` type beside flags such as ``--help``: they take no value."""

    def get_params(self, ctx: Any) -> list[Any]:
        params = super().get_params(ctx)  # type: ignore[misc]
        for param in params:
            if getattr(param, "is_flag", False) and param.metavar is None:
                param.metavar = ""
        return params


class Command(_HidesFlagTypes, TyperCommand):
    pass


class Group(_HidesFlagTypes, TyperGroup):
    pass


app = typer.Typer(
    cls=Group,
    no_args_is_help=True,
    help="SiloSpan: where silos hurt the customer.",
    # An unexpected error still shows its traceback, but never local variables (secrets).
    pretty_exceptions_show_locals=False,
)
keys_app = typer.Typer(cls=Group, no_args_is_help=True, help="Manage API keys.")
app.add_typer(keys_app, name="keys")
out = Console()
err = Console(stderr=True)

HostOption = Annotated[str, typer.Option(help="Interface to listen on.")]
PortOption = Annotated[int, typer.Option(help="Port to listen on.", min=1, max=65535)]

#: Exit statuses: a refusal or failure, and a configuration (or usage) error.
FAILED, MISCONFIGURED = 1, 2


def fail(message: str, code: int = FAILED) -> NoReturn:
    """One line on stderr, then exit with ``code``."""
    err.print(message, style="red", markup=False, highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def say(message: str) -> None:
    err.print(message, markup=False, highlight=False, soft_wrap=True)


def settings() -> Settings:
    """The settings, or one line naming the first bad one."""
    from pydantic import ValidationError

    try:
        return get_settings()
    except ValidationError as exc:
        errors = exc.errors()
        first = errors[0]
        where = "SILOSPAN_" + str(first["loc"][0]).upper() if first["loc"] else "the settings"
        message = first["msg"].removeprefix("Value error, ")
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        fail(f"invalid {where}: {message}{more}", MISCONFIGURED)


@contextmanager
def database_errors(config: Settings) -> Iterator[None]:
    """Turn a database that cannot be reached or used into one line."""
    from alembic.util.exc import CommandError
    from sqlalchemy.exc import DBAPIError

    shown = display_url(config.database_url)
    try:
        yield
    except DBAPIError as exc:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        fail(f"cannot use the database {shown}: {reason}")
    except CommandError as exc:
        fail(f"cannot migrate the database {shown}: {exc}")
    except OSError as exc:
        fail(f"cannot use the database {shown}: {exc.strerror or exc}")


def check_port(host: str, port: int) -> None:
    """Fail now, before anything is printed or written, if uvicorn could not listen there."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET  # as uvicorn chooses
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                fail(
                    f"port {port} on {host} is already in use: "
                    f"choose another with --port (e.g. --port {port + 1 if port < 65535 else 8000})"
                )
            fail(f"cannot listen on {host}:{port}: {exc.strerror or exc}", MISCONFIGURED)


def prepare_database_dir(config: Settings) -> None:
    """Create the user's data directory for the embedded default; other paths must exist."""
    path = sqlite_file(config.database_url)
    if path is None or path.parent.is_dir():
        return
    if path.parent == data_dir():
        path.parent.mkdir(parents=True, exist_ok=True)
        return
    fail(
        f"the directory of the SQLite database {path} does not exist: create it, or set "
        "SILOSPAN_DATABASE_URL to another place",
        MISCONFIGURED,
    )


def migrate_database(config: Settings) -> None:
    from service.core.migrations import inspect_schema, upgrade_to_head

    say(f"database: {display_url(config.database_url)}")
    with database_errors(config):
        prepare_database_dir(config)
        state = inspect_schema(config.database_url)
        if refusal := state.migration_refusal():
            fail(refusal)
        say(f"schema:   {state.plan()}")
        if not state.current:
            upgrade_to_head(config.database_url)
            say("schema:   done: current")


def require_current_schema(config: Settings) -> None:
    """Refuse, without creating anything, a database that is not at this code's revision."""
    from service.core.migrations import inspect_schema

    with database_errors(config):
        state = inspect_schema(config.database_url)
    if refusal := state.refusal():
        fail(refusal)


@asynccontextmanager
async def unit_of_work(config: Settings) -> AsyncIterator[AsyncSession]:
    from service.core.db import Database, transaction

    db = Database.from_settings(config)
    try:
        async with transaction(db.write_sessions) as session:
            yield session
    finally:
        await db.dispose()


def run_on_database(config: Settings, work: Any) -> Any:
    """Run the coroutine ``work``; a domain error or a database error ends in one line."""
    from service.core.errors import DomainError

    with database_errors(config):
        try:
            return asyncio.run(work)
        except DomainError as exc:
            fail(exc.detail)


@app.command(cls=Command)
def migrate() -> None:
    """Bring the database schema to the newest migration (says which database, and from
    which revision to which)."""
    migrate_database(settings())


@app.command(cls=Command)
def serve(
    host: HostOption = "127.0.0.1",
    port: PortOption = 8000,
    workers: Annotated[
        int, typer.Option(help="Worker processes (each with its own connection pool).", min=1)
    ] = 1,
) -> None:
    """Migrate the database, then serve the API with uvicorn."""
    config = settings()
    check_port(host, port)
    migrate_database(config)
    _run(config, host, port, workers)


@app.command(cls=Command)
def worker(
    metrics_port: Annotated[
        int | None,
        typer.Option(
            help="Serve this worker's delivery counters for Prometheus on this port "
            "(GET /metrics, no key: bind it where only the scraper reaches). Off by default.",
            min=1,
            max=65535,
        ),
    ] = None,
    metrics_host: Annotated[str, typer.Option(help="Interface for --metrics-port.")] = "127.0.0.1",
) -> None:
    """Deliver webhooks: the dispatcher alone, as `serve` runs it beside the API (set
    SILOSPAN_WEBHOOKS_DISPATCH_SECONDS=0 on the API to leave delivery to workers). Any number
    may run on one PostgreSQL. Stops on Ctrl+C or SIGTERM."""
    config = settings()
    require_current_schema(config)
    say(f"database: {display_url(config.database_url)}")
    if metrics_port is not None:
        from service.webhooks.metrics import serve_deliveries

        try:
            serve_deliveries(metrics_host, metrics_port)
        except OSError as exc:
            fail(f"cannot serve metrics on {metrics_host}:{metrics_port}: {exc.strerror}")
        say(f"metrics: http://{metrics_host}:{metrics_port}/metrics")
    say("delivering webhooks; Ctrl+C stops")
    with database_errors(config):
        asyncio.run(_deliver(config))


async def _deliver(config: Settings) -> None:
    from service.core.db import Database
    from service.webhooks import dispatcher

    db = Database.from_settings(config)
    task = asyncio.current_task()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, task.cancel)  # type: ignore[union-attr]
    try:
        await dispatcher.run(db, config, interval=config.webhooks_dispatch_seconds or 1.0)
    except asyncio.CancelledError:
        say("stopped")
    finally:
        await db.dispose()


def _run(config: Settings, host: str, port: int, workers: int = 1) -> None:
    import uvicorn

    uvicorn.run(
        "service.main:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        access_log=False,
        # An idle keep-alive connection is closed after this; a stalled request body is
        # answered 408 by the app (SILOSPAN_BODY_TIMEOUT_SECONDS).
        timeout_keep_alive=config.keep_alive_seconds,
        # Request line and headers: at most 16 KiB (uvicorn's default, stated so it stays).
        h11_max_incomplete_event_size=16 * 1024,
    )


@keys_app.command("create", cls=Command)
def create_key(
    name: Annotated[str, typer.Option(help="Who or what uses the key.")],
    role: Annotated[Role, typer.Option(help="admin, writer, reader or partner.")],
    partner: Annotated[
        str | None, typer.Option(help="For role partner: the partner unit's key.")
    ] = None,
) -> None:
    """Create an API key and print its secret (only the secret) on stdout."""
    from pydantic import ValidationError

    from service.api_keys.schemas import ApiKeyCreate

    try:
        data = ApiKeyCreate(name=name, role=role, partner=partner)
    except ValidationError as exc:
        fail(f"invalid key: {exc.errors()[0]['msg']}", MISCONFIGURED)
    config = settings()
    require_current_schema(config)
    typer.echo(run_on_database(config, _create_key(config, data)))


async def _create_key(config: Settings, data: Any) -> str:
    from service.api_keys import service as api_keys_service

    async with unit_of_work(config) as session:
        _, secret = await api_keys_service.create(session, api_keys_service.SYSTEM, data)
    return secret


@keys_app.command("list", cls=Command)
def list_keys() -> None:
    """List the API keys: id, name, role, partner, created, revoked (never a secret)."""
    config = settings()
    require_current_schema(config)
    keys = run_on_database(config, _list_keys(config))
    if not keys:
        say("no API keys yet: create one with `silospan keys create`")
        return
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    for header in ("id", "name", "role", "partner", "created (UTC)", "revoked (UTC)"):
        # Ids and times stay whole, to be copied; names and partners wrap if they must.
        table.add_column(header, no_wrap=header not in ("name", "partner"))
    for key in keys:
        table.add_row(
            str(key.id),
            key.name,
            key.role.value,
            key.partner or "",
            f"{key.created_at:%Y-%m-%d %H:%M}",
            f"{key.revoked_at:%Y-%m-%d %H:%M}" if key.revoked_at else "",
        )
    # Piped (not a terminal): as wide as the rows need, so every line holds one key.
    console = out if out.is_terminal else Console(width=1000)
    console.print(table, markup=False, highlight=False)


async def _list_keys(config: Settings) -> list[Any]:
    from service.api_keys import service as api_keys_service
    from service.core.pagination import PageRequest

    keys: list[Any] = []
    cursor: str | None = None
    async with unit_of_work(config) as session:
        while True:
            page, cursor = await api_keys_service.list_page(
                session, api_keys_service.SYSTEM, PageRequest(limit=500, cursor=cursor)
            )
            keys += await api_keys_service.to_read(session, page)
            if cursor is None:
                return keys


@keys_app.command("revoke", cls=Command)
def revoke_key(
    key_id: Annotated[UUID, typer.Argument(help="The key's id, as `silospan keys list` shows it.")],
) -> None:
    """Revoke an API key: requests with it get 401 from now on."""
    config = settings()
    require_current_schema(config)
    key = run_on_database(config, _revoke_key(config, key_id))
    typer.echo(
        f"revoked {key.id} ({key.name}, {key.role.value}) at {key.revoked_at:%Y-%m-%d %H:%M} UTC"
    )


async def _revoke_key(config: Settings, key_id: UUID) -> Any:
    from service.api_keys import service as api_keys_service

    async with unit_of_work(config) as session:
        key = await api_keys_service.revoke(session, api_keys_service.SYSTEM, key_id)
        (read,) = await api_keys_service.to_read(session, [key])
    return read


@app.command("export-schema", cls=Command)
def export_schema(
    out_dir: Annotated[Path, typer.Option(help="Where to write the files.")] = Path("openapi"),
) -> None:
    """Write openapi.json and schema.graphql for the running code."""
    from service.api.schema_export import render_graphql, render_openapi

    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "openapi.json").write_text(render_openapi())
    (out_dir / "schema.graphql").write_text(render_graphql())
    say(f"wrote {out_dir / 'openapi.json'} and {out_dir / 'schema.graphql'}")


@app.command(cls=Command)
def demo(host: HostOption = "127.0.0.1", port: PortOption = 8000) -> None:
    """Load the demo organisation (if the database is empty), print a key and the URLs, serve."""
    from service.demo import load_demo

    config = settings()
    check_port(host, port)
    migrate_database(config)
    secret, loaded = run_on_database(config, load_demo())
    base = f"http://{host}:{port}"
    err.print("[bold]SiloSpan demo[/bold]" + (" (loaded the demo organisation)" if loaded else ""))
    typer.echo(f"database:    {display_url(config.database_url)}")
    typer.echo(f"reader key:  {secret}")
    typer.echo(f"dashboard:   {base}/dashboard")
    typer.echo(f"API docs:    {base}/docs")
    typer.echo(f"units:       curl -H 'Authorization: Bearer {secret}' {base}/v1/units")
    typer.echo(f"OpenAPI:     {base}/openapi.json")
    typer.echo(f"GraphQL:     {base}/graphql")
    typer.echo(f"findings:    curl -H 'Authorization: Bearer {secret}' {base}/v1/findings")
    _run(config, host, port)


@app.command("import-log", cls=Command)
def import_log(
    file: Annotated[
        Path,
        typer.Argument(
            help="The log: CSV with a header line, or XES; gzip or not.",
            exists=True,
            dir_okay=False,
        ),
    ],
    key: Annotated[str, typer.Option(help="The new log's key.")],
    format: Annotated[
        str | None,
        typer.Option(help="csv or xes (default: xes for a .xes or .xes.gz file, else csv)."),
    ] = None,
    name: Annotated[str | None, typer.Option(help="A name (default: the key).")] = None,
    case: Annotated[
        str | None,
        typer.Option(help="Column of the case (default: case; XES: the trace's concept:name)."),
    ] = None,
    unit: Annotated[
        str | None,
        typer.Option(help="Column (XES: attribute) of the unit (default: unit; XES: org:group)."),
    ] = None,
    time: Annotated[
        str | None,
        typer.Option(help="Column of the time, ISO 8601 (default: time; XES: time:timestamp)."),
    ] = None,
    activity: Annotated[
        str | None,
        typer.Option(help="Column of the activity (default: activity; XES: concept:name)."),
    ] = None,
    status: Annotated[
        str | None,
        typer.Option(help="Column of the status (default: status; XES: lifecycle:transition)."),
    ] = None,
    resource: Annotated[
        str | None,
        typer.Option(help="Column of the resource (default: resource; XES: org:resource)."),
    ] = None,
    assume_tz: Annotated[
        str | None, typer.Option(help="Zone for times without an offset, e.g. Europe/Paris.")
    ] = None,
    strict: Annotated[bool, typer.Option(help="Import nothing if any row is bad.")] = False,
    delimiter: Annotated[str, typer.Option(help="The CSV delimiter.")] = ",",
) -> None:
    """Import an event log file into the configured database, with a progress bar, as
    POST /v1/event-logs does."""
    from service.event_logs.constants import LogFormat
    from service.event_logs.importer import ImportOptions
    from service.event_logs.parsing import Mapping, xes_mapping

    if format is None:
        format = "xes" if file.name.lower().endswith((".xes", ".xes.gz")) else "csv"
    try:
        log_format = LogFormat(format)
    except ValueError:
        fail(f"--format must be csv or xes, not {format!r}", MISCONFIGURED)
    given = {
        "case": case,
        "unit": unit,
        "time": time,
        "activity": activity,
        "status": status,
        "resource": resource,
    }
    chosen = {field: value for field, value in given.items() if value is not None}
    options = ImportOptions(
        key=key,
        name=name,
        format=log_format,
        mapping=(
            xes_mapping(**chosen)
            if log_format is LogFormat.xes
            else Mapping(**chosen, explicit=set(chosen))
        ),
        assume_tz=assume_tz,
        strict=strict,
        delimiter=delimiter,
    )
    config = settings()
    require_current_schema(config)
    log = run_on_database(config, _import_log(config, file, options))
    typer.echo(
        f"{log.key}: {log.events} events, {log.cases} cases, {log.units} units, "
        f"{log.rejected} rejected rows"
    )
    for rejection in log.rejections[:10]:
        typer.echo(f"  line {rejection['line']}: {rejection['reason']}")
    if log.rejected > 10:
        typer.echo(f"  ... {log.rejected - 10} more (GET /v1/event-logs/{log.key} lists 100)")


async def _import_log(config: Settings, file: Path, options: Any) -> Any:
    import time as clock

    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeElapsedColumn

    from service.api_keys.service import SYSTEM
    from service.core.db import Database
    from service.event_logs.importer import import_log

    size = file.stat().st_size
    started = clock.monotonic()
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TextColumn("{task.fields[rows]:,} rows  {task.fields[rate]:,.0f} rows/s"),
        TimeElapsedColumn(),
    )
    db = Database.from_settings(config)
    with Progress(*columns, console=err, transient=False) as progress:
        task = progress.add_task(f"importing {file.name}", total=size, rows=0, rate=0.0)

        async def chunks() -> AsyncIterator[bytes]:
            with file.open("rb") as source:
                while chunk := source.read(1 << 20):
                    progress.update(task, advance=len(chunk))
                    yield chunk

        def on_progress(state: Any) -> None:
            elapsed = max(clock.monotonic() - started, 1e-6)
            progress.update(task, rows=state.rows_read, rate=state.rows_read / elapsed)

        try:
            return await import_log(
                db.write_sessions, SYSTEM, options, chunks(), on_progress=on_progress
            )
        finally:
            await db.dispose()


if __name__ == "__main__":
    app()
