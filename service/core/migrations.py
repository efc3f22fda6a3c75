"""Running and checking Alembic migrations from the CLI, the app and the tests."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect, pool, text
from sqlalchemy.ext.asyncio import AsyncConnection

from service.core.config import display_url, sqlite_file
from service.core.db import sync_url

VERSION_TABLE = "alembic_version"
#: How long a command waits for PostgreSQL to answer before calling it unreachable.
CONNECT_TIMEOUT_SECONDS = 10

_PACKAGE_DIR = Path(__file__).resolve().parent.parent


def script_location() -> Path:
    bundled = _PACKAGE_DIR / "_alembic"  # inside a built wheel
    if bundled.is_dir():
        return bundled
    return _PACKAGE_DIR.parent / "alembic"  # a source checkout or editable install


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(script_location()))
    config.set_main_option("path_separator", "os")
    config.set_main_option("file_template", "%%(year)d-%%(month).2d-%%(day).2d_%%(slug)s")
    config.set_main_option(
        "sqlalchemy.url",
        sync_url(database_url).render_as_string(hide_password=False).replace("%", "%%"),
    )
    return config


def upgrade_to_head(database_url: str) -> None:
    command.upgrade(alembic_config(database_url), "head")


@lru_cache
def head_revisions() -> frozenset[str]:
    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    return frozenset(script.get_heads())


@lru_cache
def known_revisions() -> frozenset[str]:
    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    return frozenset(revision.revision for revision in script.walk_revisions())


@dataclass(frozen=True)
class SchemaState:
    """Where a database stands against this code's migrations, read without changing it."""

    url: str
    #: The revisions in ``alembic_version`` (empty: never migrated).
    revisions: frozenset[str]
    #: Tables other than the version table: another application's, in a database never migrated.
    foreign_tables: tuple[str, ...] = ()

    @property
    def shown(self) -> str:
        return display_url(self.url)

    @property
    def current(self) -> bool:
        return self.revisions == head_revisions()

    @property
    def unknown(self) -> frozenset[str]:
        return self.revisions - known_revisions()

    def describe(self) -> str:
        return ", ".join(sorted(self.revisions)) if self.revisions else "empty"

    def refusal(self) -> str | None:
        """Why a command that needs the current schema may not use this database, or None."""
        if self.current:
            return None
        if self.unknown:
            return (
                f"the database {self.shown} is at revision {self.describe()}, which this version "
                "of SiloSpan does not know: check SILOSPAN_DATABASE_URL, or upgrade SiloSpan and "
                "run `silospan migrate`"
            )
        if self.foreign_tables:
            return (
                f"the database {self.shown} holds {len(self.foreign_tables)} tables but no "
                "SiloSpan schema: check SILOSPAN_DATABASE_URL (a new database is prepared by "
                "`silospan migrate`)"
            )
        if not self.revisions:
            return f"the database {self.shown} has no SiloSpan schema yet: run `silospan migrate`"
        return (
            f"the database {self.shown} is at revision {self.describe()}, older than this "
            f"version's {', '.join(sorted(head_revisions()))}: run `silospan migrate`"
        )

    def migration_refusal(self) -> str | None:
        """Why ``migrate`` must leave this database alone, or None."""
        if self.unknown:
            return (
                f"the database {self.shown} is at revision {self.describe()}, which this version "
                "of SiloSpan does not know (a newer SiloSpan, or another application's "
                "database): check SILOSPAN_DATABASE_URL"
            )
        if self.foreign_tables and not self.revisions:
            shown = ", ".join(self.foreign_tables[:3]) + (", …" if len(self.foreign_tables) > 3 else "")
            return (
                f"the database {self.shown} holds {len(self.foreign_tables)} tables ({shown}) "
                "but no SiloSpan schema: it looks like another application's; check "
                "SILOSPAN_DATABASE_URL, or point it at an empty database"
            )
        return None

    def plan(self) -> str:
        """What ``migrate`` will do, in words."""
        heads = ", ".join(sorted(head_revisions()))
        if self.current:
            return f"current (revision {heads}): nothing to do"
        return f"upgrading from {self.describe()} to revision {heads}"


def inspect_schema(database_url: str) -> SchemaState:
    """Read the schema revision of ``database_url`` without creating or changing anything.

    A SQLite file that does not exist is reported as empty, and is not created.
    """
    path = sqlite_file(database_url)
    if path is not None and not path.exists():
        return SchemaState(database_url, frozenset())
    url = sync_url(database_url)
    connect_args = (
        {"connect_timeout": CONNECT_TIMEOUT_SECONDS}
        if url.get_backend_name() == "postgresql"
        else {}
    )
    engine = create_engine(url, poolclass=pool.NullPool, connect_args=connect_args)
    try:
        with engine.connect() as connection:
            tables = inspect(connection).get_table_names()
            if VERSION_TABLE not in tables:
                return SchemaState(database_url, frozenset(), tuple(sorted(tables)))
            rows = connection.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).all()
            return SchemaState(database_url, frozenset(row[0] for row in rows))
    finally:
        engine.dispose()


async def schema_is_current(connection: AsyncConnection) -> bool:
    try:
        rows = (await connection.execute(text("SELECT version_num FROM alembic_version"))).all()
    except Exception:  # noqa: BLE001 (no version table yet means "not migrated")
        return False
    return frozenset(row[0] for row in rows) == head_revisions()
