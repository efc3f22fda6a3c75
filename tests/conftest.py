"""Test databases and clients.

Every test runs against SQLite, and against PostgreSQL too when
``SILOSPAN_TEST_DATABASE_URL`` is set. Each backend gets a fresh database per test session
(per xdist worker), migrated with Alembic; each test runs inside one transaction that is
rolled back at the end, and every request the app handles commits only to a savepoint of it.
Tests marked ``concurrency`` get their own committed database instead (``live_app``).
"""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from service.api.deps import get_read_sessions, get_write_sessions
from service.api_keys import service as api_keys_service
from service.api_keys.schemas import ApiKeyCreate
from service.core.config import Settings, get_settings
from service.core.db import Database, create_engine_for
from service.core.migrations import upgrade_to_head
from service.core.permissions import Role
from service.core.telemetry import configure_logging
from service.main import create_app
from tests.servers import Server, fresh_database, running_server

PG_URL = os.environ.get("SILOSPAN_TEST_DATABASE_URL")
BACKENDS = ["sqlite"] + (["postgresql"] if PG_URL else [])


@dataclass
class TestDatabase:
    backend: str
    url: str
    cleanup: object


def _worker() -> str:
    return os.environ.get("PYTEST_XDIST_WORKER", "main")


def _new_database(backend: str, label: str) -> TestDatabase:
    if backend == "sqlite":
        folder = Path(tempfile.mkdtemp(prefix=f"silospan-{label}-"))
        url = f"sqlite:///{folder / 'test.db'}"

        def cleanup() -> None:
            for path in folder.iterdir():
                path.unlink()
            folder.rmdir()

        return TestDatabase(backend, url, cleanup)
    assert PG_URL is not None
    name = f"silospan_{label}_{_worker()}_{uuid.uuid4().hex[:8]}"
    admin = create_engine(
        make_url(PG_URL).set(drivername="postgresql+psycopg"), isolation_level="AUTOCOMMIT"
    )
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))

    def cleanup() -> None:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    url = make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    return TestDatabase(backend, url, cleanup)


@pytest.fixture(scope="session", params=BACKENDS)
def test_database(request: pytest.FixtureRequest) -> Iterator[TestDatabase]:
    database = _new_database(request.param, "test")
    upgrade_to_head(database.url)
    yield database
    database.cleanup()  # type: ignore[operator]


@pytest.fixture(scope="session")
def backend(test_database: TestDatabase) -> str:
    return test_database.backend


@pytest.fixture(scope="session")
def settings(test_database: TestDatabase) -> Settings:
    settings = Settings(database_url=test_database.url, log_json=False, log_level="WARNING")
    # As `serve` does at startup (the test clients run no lifespan): without it, structlog's
    # defaults render an error's traceback with every frame's locals, thousands of lines.
    configure_logging(settings.log_level, json=settings.log_json)
    return settings


@pytest.fixture(scope="session")
async def engine(settings: Settings) -> AsyncIterator[AsyncEngine]:
    engine = create_engine_for(settings.database_url, settings=settings)
    yield engine
    await engine.dispose()


@pytest.fixture
async def connection(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    async with engine.connect() as conn:
        transaction = await conn.begin()
        try:
            yield conn
        finally:
            await transaction.rollback()


def _joined_session(connection: AsyncConnection) -> AsyncSession:
    return AsyncSession(
        bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False
    )


@pytest.fixture
async def session(connection: AsyncConnection) -> AsyncIterator[AsyncSession]:
    """For service tests and factories: shares the test's transaction with the app."""
    async with _joined_session(connection) as session:
        yield session


class _RunningTest:
    """The connection of the test running now, which the shared app's sessions join."""

    connection: AsyncConnection | None = None


def _app_on_test_connection(settings: Settings):
    application = create_app(settings)

    def sessions() -> AsyncSession:
        assert _RunningTest.connection is not None, "the app is used outside a test"
        return _joined_session(_RunningTest.connection)

    application.dependency_overrides[get_write_sessions] = lambda: sessions
    application.dependency_overrides[get_read_sessions] = lambda: sessions
    application.dependency_overrides[get_settings] = lambda: settings
    return application


@pytest.fixture(scope="session")
def shared_app(settings: Settings):
    """One app per database for the whole session: FastAPI resolves each route's
    dependencies the first time the route is matched, which costs more than most tests."""
    return _app_on_test_connection(settings)


@pytest.fixture
def app(shared_app, connection: AsyncConnection) -> Iterator[Any]:
    """The shared app, joined to this test's transaction. Overrides a test sets are undone
    after it; a test that adds routes takes ``own_app`` instead."""
    baseline = dict(shared_app.dependency_overrides)
    _RunningTest.connection = connection
    try:
        yield shared_app
    finally:
        _RunningTest.connection = None
        shared_app.dependency_overrides.clear()
        shared_app.dependency_overrides.update(baseline)


@pytest.fixture
def own_app(settings: Settings, app) -> Any:
    """An app of this test's own (for a test that adds routes), on the test's transaction."""
    return _app_on_test_connection(settings)


@pytest.fixture
async def client(app) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield client


class Keys:
    """API keys for each role, created on first use inside the test's transaction."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session
        self._secrets: dict[tuple[Role, str | None], str] = {}

    async def secret(self, role: Role, partner: str | None = None) -> str:
        if (role, partner) not in self._secrets:
            data = ApiKeyCreate(name=f"test {role.value}", role=role, partner=partner)
            _, secret = await api_keys_service.create(self._session, api_keys_service.SYSTEM, data)
            await self._session.commit()
            self._secrets[(role, partner)] = secret
        return self._secrets[(role, partner)]

    async def headers(self, role: Role, partner: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {await self.secret(role, partner)}"}

    async def admin(self) -> dict[str, str]:
        return await self.headers(Role.admin)

    async def writer(self) -> dict[str, str]:
        return await self.headers(Role.writer)

    async def reader(self) -> dict[str, str]:
        return await self.headers(Role.reader)

    async def partner(self, unit_key: str) -> dict[str, str]:
        return await self.headers(Role.partner, unit_key)


@pytest.fixture
def keys(session: AsyncSession) -> Keys:
    return Keys(session)


@pytest.fixture
def count_statements(engine) -> Callable[[], Any]:
    """A context manager collecting the SQL statements sent while it is open."""

    @contextmanager
    def counting():
        statements: list[str] = []

        def record(conn, cursor, statement, *args: Any) -> None:
            statements.append(statement)

        event.listen(engine.sync_engine, "before_cursor_execute", record)
        try:
            yield statements
        finally:
            event.remove(engine.sync_engine, "before_cursor_execute", record)

    return counting


# Committed databases, for concurrency -----------------------------------------------------


@dataclass
class LiveApp:
    app: object
    database: Database
    url: str

    def client(self) -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=self.app, raise_app_exceptions=False)
        return httpx.AsyncClient(transport=transport, base_url="http://test", timeout=60)

    async def secret(self, role: Role, partner: str | None = None) -> str:
        from service.core.db import transaction

        async with transaction(self.database.write_sessions) as session:
            data = ApiKeyCreate(name=f"live {role.value}", role=role, partner=partner)
            _, secret = await api_keys_service.create(session, api_keys_service.SYSTEM, data)
        return secret


@pytest.fixture
async def live_app(backend: str) -> AsyncIterator[LiveApp]:
    """An app on its own freshly migrated database, with real commits and a connection pool."""
    database = _new_database(backend, "live")
    upgrade_to_head(database.url)
    live_settings = Settings(database_url=database.url, log_json=False, log_level="WARNING")
    application = create_app(live_settings)
    application.dependency_overrides[get_settings] = lambda: live_settings
    db = Database.from_settings(live_settings)
    application.state.db = db
    try:
        yield LiveApp(application, db, database.url)
    finally:
        await db.dispose()
        database.cleanup()  # type: ignore[operator]


@pytest.fixture(scope="session")
def live_server(backend: str) -> Iterator[Server]:
    """A real uvicorn server on its own fresh database, with an admin key (for fuzzing)."""
    with (
        fresh_database(PG_URL if backend == "postgresql" else None) as url,
        running_server(url) as running,
    ):
        yield running
