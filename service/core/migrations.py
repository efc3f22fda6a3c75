"""Running and checking Alembic migrations from the CLI, the app and the tests."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from service.core.db import sync_url

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


async def schema_is_current(connection: AsyncConnection) -> bool:
    try:
        rows = (await connection.execute(text("SELECT version_num FROM alembic_version"))).all()
    except Exception:  # noqa: BLE001 (no version table yet means "not migrated")
        return False
    return frozenset(row[0] for row in rows) == head_revisions()
