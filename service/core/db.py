"""Engines, sessions and the metadata every table hangs off.

SQLite is the embedded default and PostgreSQL the production database; both go through the
same async SQLAlchemy engine API. On SQLite the write engine opens every transaction with
``BEGIN IMMEDIATE`` so concurrent writers queue on the busy timeout instead of failing with
"database is locked" when a deferred read transaction tries to upgrade to a write.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlmodel import SQLModel

from service.core.config import Settings

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
SQLModel.metadata.naming_convention = NAMING_CONVENTION
metadata = SQLModel.metadata

SQLITE_BUSY_TIMEOUT_MS = 10_000


def async_url(url: str | URL) -> URL:
    """The async-driver form of a configured URL (``sqlite://`` → aiosqlite, PostgreSQL → psycopg)."""
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return parsed.set(drivername="sqlite+aiosqlite")
    if backend == "postgresql":
        return parsed.set(drivername="postgresql+psycopg")
    raise ValueError(f"unsupported database backend {backend!r}: use sqlite or postgresql")


def sync_url(url: str | URL) -> URL:
    """The blocking-driver form, for Alembic and benchmarks."""
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return parsed.set(drivername="sqlite")
    if backend == "postgresql":
        return parsed.set(drivername="postgresql+psycopg")
    raise ValueError(f"unsupported database backend {backend!r}: use sqlite or postgresql")


def _configure_sqlite(engine: AsyncEngine, *, begin: str, query_only: bool = False) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take BEGIN away from the driver so the "begin" hook below decides the lock mode.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        if query_only:
            cursor.execute("PRAGMA query_only=ON")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql(begin)


def _pool(settings: Settings) -> dict[str, float]:
    return {
        "pool_size": settings.db_pool_size,
        "max_overflow": settings.db_pool_overflow,
        "pool_timeout": settings.db_pool_timeout_seconds,
    }


def create_engine_for(url: str | URL, *, settings: Settings, read_only: bool = False) -> AsyncEngine:
    target = async_url(url)
    if target.get_backend_name() == "sqlite":
        engine = create_async_engine(target, **_pool(settings))
        _configure_sqlite(
            engine, begin="BEGIN" if read_only else "BEGIN IMMEDIATE", query_only=read_only
        )
        return engine
    return create_async_engine(
        target,
        **_pool(settings),
        pool_pre_ping=True,
        # Every timestamp crosses the wire as UTC; date buckets are computed in UTC.
        connect_args={"options": "-c timezone=UTC"},
    )


@dataclass
class Database:
    """The engines and session factories of one running service."""

    write_engine: AsyncEngine
    read_engine: AsyncEngine
    write_sessions: async_sessionmaker[AsyncSession]
    read_sessions: async_sessionmaker[AsyncSession]

    @classmethod
    def from_settings(cls, settings: Settings) -> Database:
        write_engine = create_engine_for(settings.database_url, settings=settings)
        if settings.read_database_url:
            read_engine = create_engine_for(
                settings.read_database_url, settings=settings, read_only=True
            )
        elif settings.is_sqlite:
            read_engine = create_engine_for(settings.database_url, settings=settings, read_only=True)
        else:
            read_engine = write_engine
        return cls(
            write_engine=write_engine,
            read_engine=read_engine,
            write_sessions=async_sessionmaker(
                write_engine, class_=AsyncSession, expire_on_commit=False
            ),
            read_sessions=async_sessionmaker(
                read_engine, class_=AsyncSession, expire_on_commit=False
            ),
        )

    async def dispose(self) -> None:
        await self.write_engine.dispose()
        if self.read_engine is not self.write_engine:
            await self.read_engine.dispose()


@asynccontextmanager
async def transaction(sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """One unit of work: commit when the block ends cleanly, roll back when it raises."""
    async with sessions() as session:
        try:
            yield session
            await session.commit()
        except BaseException:
            await session.rollback()
            raise


def _sqlstate(exc: DBAPIError) -> str | None:
    return getattr(exc.orig, "sqlstate", None)


def is_unique_violation(exc: IntegrityError) -> bool:
    if _sqlstate(exc) == "23505":
        return True
    return "UNIQUE constraint failed" in str(exc.orig)


def is_foreign_key_violation(exc: IntegrityError) -> bool:
    if _sqlstate(exc) == "23503":
        return True
    return "FOREIGN KEY constraint failed" in str(exc.orig)


def is_transient(exc: DBAPIError) -> bool:
    """Serialization failures, deadlocks and an SQLite lock held past the busy timeout."""
    if _sqlstate(exc) in {"40001", "40P01"}:
        return True
    return "database is locked" in str(exc.orig)
