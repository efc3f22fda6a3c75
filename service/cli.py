"""The ``silospan`` command."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from service.core.config import get_settings
from service.core.permissions import Role

app = typer.Typer(no_args_is_help=True, help="SiloSpan: where silos hurt the customer.")
keys_app = typer.Typer(no_args_is_help=True, help="Manage API keys.")
app.add_typer(keys_app, name="keys")
err = Console(stderr=True)

HostOption = Annotated[str, typer.Option(help="Interface to listen on.")]
PortOption = Annotated[int, typer.Option(help="Port to listen on.", min=1, max=65535)]


@app.command()
def migrate() -> None:
    """Bring the database schema to the newest migration."""
    from service.core.migrations import upgrade_to_head

    upgrade_to_head(get_settings().database_url)
    err.print("[green]database schema is current[/green]")


@app.command()
def serve(
    host: HostOption = "127.0.0.1",
    port: PortOption = 8000,
    workers: Annotated[
        int, typer.Option(help="Worker processes (each with its own connection pool).", min=1)
    ] = 1,
) -> None:
    """Migrate the database, then serve the API with uvicorn."""
    migrate()
    _run(host, port, workers)


def _run(host: str, port: int, workers: int = 1) -> None:
    import uvicorn

    settings = get_settings()
    uvicorn.run(
        "service.main:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        access_log=False,
        # An idle keep-alive connection is closed after this; a stalled request body is
        # answered 408 by the app (SILOSPAN_BODY_TIMEOUT_SECONDS).
        timeout_keep_alive=settings.keep_alive_seconds,
        # Request line and headers: at most 16 KiB (uvicorn's default, stated so it stays).
        h11_max_incomplete_event_size=16 * 1024,
    )


@keys_app.command("create")
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
    from service.core.errors import DomainError

    try:
        data = ApiKeyCreate(name=name, role=role, partner=partner)
    except ValidationError as exc:
        err.print(f"[red]invalid key:[/red] {exc.errors()[0]['msg']}")
        raise typer.Exit(2) from exc
    try:
        secret = asyncio.run(_create_key(data))
    except DomainError as exc:
        err.print(f"[red]{exc.detail}[/red]")
        raise typer.Exit(1) from exc
    typer.echo(secret)


async def _create_key(data) -> str:
    from service.api_keys import service as api_keys_service
    from service.core.db import Database, transaction

    migrate()
    db = Database.from_settings(get_settings())
    try:
        async with transaction(db.write_sessions) as session:
            _, secret = await api_keys_service.create(session, api_keys_service.SYSTEM, data)
        return secret
    finally:
        await db.dispose()


@app.command("export-schema")
def export_schema(
    out_dir: Annotated[Path, typer.Option(help="Where to write the files.")] = Path("openapi"),
) -> None:
    """Write openapi.json and schema.graphql for the running code."""
    from service.api.schema_export import render_graphql, render_openapi

    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "openapi.json").write_text(render_openapi())
    (out_dir / "schema.graphql").write_text(render_graphql())
    err.print(f"wrote {out_dir / 'openapi.json'} and {out_dir / 'schema.graphql'}")


@app.command()
def demo(host: HostOption = "127.0.0.1", port: PortOption = 8000) -> None:
    """Load the demo organisation (if the database is empty), print a key and the URLs, serve."""
    from service.demo import load_demo

    migrate()
    secret, loaded = asyncio.run(load_demo())
    base = f"http://{host}:{port}"
    err.print("[bold]SiloSpan demo[/bold]" + (" (loaded the demo organisation)" if loaded else ""))
    typer.echo(f"reader key:  {secret}")
    typer.echo(f"API docs:    {base}/docs")
    typer.echo(f"units:       curl -H 'Authorization: Bearer {secret}' {base}/v1/units")
    typer.echo(f"OpenAPI:     {base}/openapi.json")
    typer.echo(f"GraphQL:     {base}/graphql")
    typer.echo(f"findings:    curl -H 'Authorization: Bearer {secret}' {base}/v1/findings")
    _run(host, port)




if __name__ == "__main__":
    app()
