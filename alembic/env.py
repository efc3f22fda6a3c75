"""Alembic environment: targets the service's metadata, runs on SQLite and PostgreSQL."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine, pool

import service.models  # noqa: F401  (registers every table on the metadata)
from service.core.config import get_settings
from service.core.db import metadata, sync_url

config = context.config


def _url() -> str:
    configured = config.get_main_option("sqlalchemy.url")
    url = configured or get_settings().database_url
    return sync_url(url).render_as_string(hide_password=False)


def _skip_empty_revisions(context_, revision, directives) -> None:
    # An autogenerate run that finds nothing writes no file.
    script = directives[0]
    if script.upgrade_ops.is_empty():
        directives[:] = []


def run_migrations_offline() -> None:
    context.configure(
        url=_url(),
        target_metadata=metadata,
        literal_binds=True,
        render_as_batch=True,
        dialect_opts={"paramstyle": "named"},
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connectable = config.attributes.get("connection")
    if connectable is None:
        engine = create_engine(_url(), poolclass=pool.NullPool)
        with engine.connect() as connection:
            _run(connection)
        engine.dispose()
    else:
        _run(connectable)


def _run(connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        # SQLite cannot ALTER most things: batch mode rebuilds tables instead.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        process_revision_directives=_skip_empty_revisions,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
