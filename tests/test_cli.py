"""The ``silospan`` command, run in-process against a fresh database of each backend.

No test touches the real user data directory: XDG_DATA_HOME and HOME point into the test's
temporary directory, so the embedded default lands there too.
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from alembic import command
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import make_url
from typer.testing import CliRunner

from service.api.schema_export import render_graphql, render_openapi
from service.api_keys.service import SYSTEM
from service.cli import app
from service.core.config import Settings, get_settings
from service.core.db import Database, sync_url, transaction
from service.core.migrations import alembic_config, head_revisions
from service.main import create_app
from service.org_units import service as org_units_service
from service.org_units.schemas import UnitCreate
from tests.servers import fresh_database

runner = CliRunner()
PG_URL = os.environ.get("SILOSPAN_TEST_DATABASE_URL")
BACKENDS = ["sqlite"] + (["postgresql"] if PG_URL else [])
HEAD = ", ".join(sorted(head_revisions()))



@pytest.fixture(autouse=True)
def environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A private user data directory and no configured database; settings read afresh."""
    data_home = tmp_path / "data-home"
    monkeypatch.setenv("XDG_DATA_HOME", str(data_home))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("SILOSPAN_DATABASE_URL", raising=False)
    monkeypatch.setenv("SILOSPAN_LOG_LEVEL", "WARNING")
    get_settings.cache_clear()
    yield data_home
    get_settings.cache_clear()


@pytest.fixture(params=BACKENDS)
def empty_database(request, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A database that exists and was never migrated, configured as SILOSPAN_DATABASE_URL."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'cli.db'}"
        with create_engine(url).connect():
            pass  # creates the empty file
        monkeypatch.setenv("SILOSPAN_DATABASE_URL", url)
        yield url
        return
    with fresh_database(PG_URL) as url:
        monkeypatch.setenv("SILOSPAN_DATABASE_URL", url)
        yield url


@pytest.fixture
def database(empty_database: str) -> str:
    """The same, migrated by ``silospan migrate``."""
    result = runner.invoke(app, ["migrate"])
    assert result.exit_code == 0, result.output
    return empty_database


def tables(url: str) -> list[str]:
    engine = create_engine(sync_url(url))
    try:
        with engine.connect() as connection:
            return sorted(inspect(connection).get_table_names())
    finally:
        engine.dispose()


def revisions(url: str) -> set[str]:
    engine = create_engine(sync_url(url))
    try:
        with engine.connect() as connection:
            rows = connection.execute(text("SELECT version_num FROM alembic_version"))
            return {row[0] for row in rows}
    finally:
        engine.dispose()


def execute(url: str, *statements: str) -> None:
    engine = create_engine(sync_url(url))
    try:
        with engine.begin() as connection:
            for statement in statements:
                connection.execute(text(statement))
    finally:
        engine.dispose()


def status_with(url: str, secret: str, path: str = "/v1/units") -> int:
    """The status a request with ``secret`` gets from an app on ``url``."""

    async def call() -> int:
        settings = Settings(database_url=url)
        application = create_app(settings)
        application.dependency_overrides[get_settings] = lambda: settings
        application.state.db = Database.from_settings(settings)
        try:
            transport = httpx.ASGITransport(app=application)
            async with httpx.AsyncClient(transport=transport, base_url="http://cli") as client:
                response = await client.get(path, headers={"Authorization": f"Bearer {secret}"})
                return response.status_code
        finally:
            await application.state.db.dispose()

    return asyncio.run(call())


def create_unit(url: str, key: str, kind: str) -> None:
    async def create() -> None:
        db = Database.from_settings(Settings(database_url=url))
        try:
            async with transaction(db.write_sessions) as session:
                await org_units_service.create(
                    session, SYSTEM, UnitCreate(key=key, name=key.title(), kind=kind)
                )
        finally:
            await db.dispose()

    asyncio.run(create())


def error_line(result) -> str:
    """The one line a refused command prints on stderr (and nothing on stdout)."""
    assert result.exit_code != 0
    assert isinstance(result.exception, SystemExit), result.exception
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert "Traceback" not in result.output
    return lines[-1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def with_password(url: str) -> str:
    """``url`` with a password (ignored by the test server's trust authentication)."""
    return make_url(url).set(password="s3cret-pw").render_as_string(hide_password=False)


class TestDefaultDatabase:
    def test_is_one_file_in_the_user_data_dir(self, environment):
        path = environment / "silospan" / "silospan.db"
        assert Settings().database_url == f"sqlite:///{path}"

    def test_every_directory_talks_to_the_same_database(
        self, environment, tmp_path, monkeypatch
    ):
        first, second = tmp_path / "terminal-1", tmp_path / "terminal-2"
        first.mkdir()
        second.mkdir()
        monkeypatch.chdir(first)
        migrated = runner.invoke(app, ["migrate"])
        assert migrated.exit_code == 0, migrated.output
        path = environment / "silospan" / "silospan.db"
        assert path.is_file()  # the data directory was created for it
        assert f"database: sqlite:///{path}" in migrated.stderr

        monkeypatch.chdir(second)
        created = runner.invoke(app, ["keys", "create", "--name", "t", "--role", "reader"])
        assert created.exit_code == 0, created.output
        assert status_with(f"sqlite:///{path}", created.stdout.strip()) == 200
        assert list(first.iterdir()) == list(second.iterdir()) == []

    def test_the_environment_still_overrides_it(self, environment, tmp_path, monkeypatch):
        url = f"sqlite:///{tmp_path / 'elsewhere.db'}"
        monkeypatch.setenv("SILOSPAN_DATABASE_URL", url)
        result = runner.invoke(app, ["migrate"])
        assert result.exit_code == 0, result.output
        assert f"database: {url}" in result.stderr
        assert not environment.exists()

    def test_another_missing_directory_is_not_created(self, tmp_path, monkeypatch):
        monkeypatch.setenv("SILOSPAN_DATABASE_URL", f"sqlite:///{tmp_path / 'typo' / 'x.db'}")
        line = error_line(runner.invoke(app, ["migrate"]))
        assert "does not exist" in line and "SILOSPAN_DATABASE_URL" in line
        assert not (tmp_path / "typo").exists()


class TestMigrate:
    def test_says_which_database_and_from_which_revision_to_which(self, empty_database):
        result = runner.invoke(app, ["migrate"])
        assert result.exit_code == 0, result.output
        assert result.stdout == ""
        assert f"database: {empty_database}" in result.stderr
        assert f"from empty to revision {HEAD}" in result.stderr
        assert revisions(empty_database) == set(head_revisions())

        again = runner.invoke(app, ["migrate"])
        assert again.exit_code == 0, again.output
        assert f"current (revision {HEAD}): nothing to do" in again.stderr

    def test_upgrades_an_older_revision_and_says_so(self, empty_database):
        command.upgrade(alembic_config(empty_database), "0005")
        result = runner.invoke(app, ["migrate"])
        assert result.exit_code == 0, result.output
        assert f"from 0005 to revision {HEAD}" in result.stderr
        assert revisions(empty_database) == set(head_revisions())

    @pytest.mark.skipif(not PG_URL, reason="PostgreSQL only: SQLite URLs have no password")
    def test_hides_the_password(self, monkeypatch):
        with fresh_database(PG_URL) as url:
            monkeypatch.setenv("SILOSPAN_DATABASE_URL", with_password(url))
            result = runner.invoke(app, ["migrate"])
            assert result.exit_code == 0, result.output
            assert "s3cret-pw" not in result.output
            user, rest = url.split("://", 1)[1].split("@", 1)
            assert f"database: postgresql+psycopg://{user}:***@{rest}" in result.stderr

    def test_leaves_another_applications_database_alone(self, empty_database):
        execute(empty_database, "CREATE TABLE invoices (id integer primary key)")
        line = error_line(runner.invoke(app, ["migrate"]))
        assert "holds 1 tables (invoices) but no SiloSpan schema" in line
        assert tables(empty_database) == ["invoices"]

    def test_refuses_a_revision_it_does_not_know(self, database):
        execute(database, "UPDATE alembic_version SET version_num = 'ffff'")
        line = error_line(runner.invoke(app, ["migrate"]))
        assert "revision ffff, which this version of SiloSpan does not know" in line
        assert revisions(database) == {"ffff"}


KEY_COMMANDS = [
    ["keys", "create", "--name", "x", "--role", "reader"],
    ["keys", "list"],
    ["keys", "revoke", "00000000-0000-0000-0000-000000000001"],
]


class TestKeyCommandsNeedTheCurrentSchema:
    @pytest.mark.parametrize("args", KEY_COMMANDS, ids=lambda args: args[1])
    def test_refuse_an_empty_database_and_create_nothing(self, empty_database, args):
        line = error_line(runner.invoke(app, args))
        assert line.endswith("has no SiloSpan schema yet: run `silospan migrate`")
        assert tables(empty_database) == []

    @pytest.mark.parametrize("args", KEY_COMMANDS, ids=lambda args: args[1])
    def test_refuse_an_older_revision(self, empty_database, args):
        command.upgrade(alembic_config(empty_database), "0005")
        line = error_line(runner.invoke(app, args))
        assert f"is at revision 0005, older than this version's {HEAD}" in line
        assert line.endswith("run `silospan migrate`")
        assert revisions(empty_database) == {"0005"}

    def test_refuse_an_unknown_revision(self, database):
        execute(database, "UPDATE alembic_version SET version_num = 'ffff'")
        line = error_line(runner.invoke(app, KEY_COMMANDS[0]))
        assert "revision ffff, which this version of SiloSpan does not know" in line

    def test_refuse_another_applications_database(self, empty_database):
        execute(empty_database, "CREATE TABLE invoices (id integer primary key)")
        line = error_line(runner.invoke(app, KEY_COMMANDS[0]))
        assert "holds 1 tables but no SiloSpan schema: check SILOSPAN_DATABASE_URL" in line
        assert tables(empty_database) == ["invoices"]

    def test_do_not_create_a_missing_sqlite_file(self, tmp_path, monkeypatch):
        path = tmp_path / "missing.db"
        monkeypatch.setenv("SILOSPAN_DATABASE_URL", f"sqlite:///{path}")
        line = error_line(runner.invoke(app, KEY_COMMANDS[0]))
        assert "run `silospan migrate`" in line
        assert not path.exists()


COMMANDS = [["migrate"], ["serve"], ["demo"], *KEY_COMMANDS]


class TestConfigurationErrors:
    @pytest.mark.parametrize("args", COMMANDS, ids=" ".join)
    @pytest.mark.parametrize("url", ["nonsense", "mysql://u@h/db", "postgresql+psycopg://u@h:x/d"])
    def test_a_bad_database_url_is_one_line(self, monkeypatch, args, url):
        monkeypatch.setattr(uvicorn, "run", lambda *a, **k: pytest.fail("served"))
        monkeypatch.setenv("SILOSPAN_DATABASE_URL", url)
        result = runner.invoke(app, args)
        line = error_line(result)
        assert line.startswith("invalid SILOSPAN_DATABASE_URL: ")
        assert len(result.stderr.strip().splitlines()) == 1
        assert result.exit_code == 2

    @pytest.mark.parametrize("args", COMMANDS, ids=" ".join)
    def test_an_invalid_setting_is_one_line(self, monkeypatch, args):
        monkeypatch.setenv("SILOSPAN_DB_POOL_SIZE", "0")
        result = runner.invoke(app, args)
        assert error_line(result).startswith("invalid SILOSPAN_DB_POOL_SIZE: ")
        assert len(result.stderr.strip().splitlines()) == 1

    @pytest.mark.parametrize("args", COMMANDS, ids=" ".join)
    def test_an_unreachable_database_is_one_line_without_the_password(self, monkeypatch, args):
        monkeypatch.setattr(uvicorn, "run", lambda *a, **k: pytest.fail("served"))
        port = free_port()  # nothing listens there
        url = f"postgresql+psycopg://someone:s3cret-pw@127.0.0.1:{port}/db"
        monkeypatch.setenv("SILOSPAN_DATABASE_URL", url)
        if args[0] in ("serve", "demo"):
            args = [*args, "--port", str(free_port())]
        result = runner.invoke(app, args)
        shown = f"postgresql+psycopg://someone:***@127.0.0.1:{port}/db"
        assert error_line(result).startswith(f"cannot use the database {shown}: ")
        assert "s3cret-pw" not in result.output
        assert result.exit_code == 1

    @pytest.mark.parametrize("args", [["demo"], ["serve"]], ids=" ".join)
    def test_a_taken_port_is_found_before_anything_is_done(
        self, environment, monkeypatch, args
    ):
        monkeypatch.setattr(uvicorn, "run", lambda *a, **k: pytest.fail("served"))
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            port = taken.getsockname()[1]
            result = runner.invoke(app, [*args, "--port", str(port)])
        line = error_line(result)
        assert line == (
            f"port {port} on 127.0.0.1 is already in use: "
            f"choose another with --port (e.g. --port {port + 1})"
        )
        assert not environment.exists()  # no database made, no key minted


class TestKeysCreate:
    def test_prints_only_a_working_secret(self, database):
        result = runner.invoke(app, ["keys", "create", "--name", "ci", "--role", "reader"])
        assert result.exit_code == 0, result.output
        secret = result.stdout.strip()
        assert secret.startswith("ss_") and "\n" not in secret
        assert status_with(database, secret) == 200

    def test_a_partner_key_needs_an_existing_partner_unit(self, database):
        result = runner.invoke(
            app, ["keys", "create", "--name", "p", "--role", "partner", "--partner", "nobody"]
        )
        assert "nobody" in error_line(result)

    def test_an_unknown_role_is_refused(self, database):
        result = runner.invoke(app, ["keys", "create", "--name", "x", "--role", "owner"])
        assert result.exit_code == 2
        assert result.stdout == ""


class TestKeysList:
    def test_a_table_of_every_key_without_secrets(self, database):
        create_unit(database, "swiftline", "partner")
        secrets = [
            runner.invoke(app, ["keys", "create", *args]).stdout.strip()
            for args in (
                ["--name", "tour", "--role", "writer"],
                ["--name", "swiftline portal", "--role", "partner", "--partner", "swiftline"],
            )
        ]
        result = runner.invoke(app, ["keys", "list"])
        assert result.exit_code == 0, result.output
        header, _rule, *rows = result.stdout.strip().splitlines()
        assert header.split() == [
            "id", "name", "role", "partner", "created", "(UTC)", "revoked", "(UTC)"
        ]
        assert len(rows) == 2
        assert rows[0].split()[1:3] == ["tour", "writer"]
        assert rows[1].split()[1:5] == ["swiftline", "portal", "partner", "swiftline"]
        for secret in secrets:
            assert secret[3:] not in result.output

    def test_shows_when_a_key_was_revoked(self, database):
        runner.invoke(app, ["keys", "create", "--name", "old", "--role", "reader"])
        key_id = runner.invoke(app, ["keys", "list"]).stdout.strip().splitlines()[2].split()[0]
        assert runner.invoke(app, ["keys", "revoke", key_id]).exit_code == 0
        row = runner.invoke(app, ["keys", "list"]).stdout.strip().splitlines()[2].split()
        assert len(row) == 1 + 1 + 1 + 2 + 2  # id, name, role, created and revoked (date, time)
        assert row[3] == row[5]  # revoked the day it was created

    def test_says_when_there_are_none(self, database):
        result = runner.invoke(app, ["keys", "list"])
        assert result.exit_code == 0
        assert result.stdout == ""
        assert "no API keys yet" in result.stderr


class TestKeysRevoke:
    def test_the_key_stops_working(self, database):
        secret = runner.invoke(app, ["keys", "create", "--name", "t", "--role", "reader"]).stdout
        key_id = runner.invoke(app, ["keys", "list"]).stdout.strip().splitlines()[2].split()[0]
        assert status_with(database, secret.strip()) == 200

        result = runner.invoke(app, ["keys", "revoke", key_id])
        assert result.exit_code == 0, result.output
        assert result.stdout.startswith(f"revoked {key_id} (t, reader) at ")
        assert status_with(database, secret.strip()) == 401

        again = runner.invoke(app, ["keys", "revoke", key_id])
        assert again.exit_code == 0 and again.stdout == result.stdout  # the first time stays

    def test_an_unknown_id_is_one_line(self, database):
        line = error_line(
            runner.invoke(app, ["keys", "revoke", "00000000-0000-0000-0000-000000000001"])
        )
        assert line == "api key 00000000-0000-0000-0000-000000000001 does not exist"

    def test_a_malformed_id_is_a_usage_error(self, database):
        result = runner.invoke(app, ["keys", "revoke", "tour"])
        assert result.exit_code == 2


class TestHelp:
    @pytest.mark.parametrize(
        "args",
        [[], ["keys"], ["migrate"], ["serve"], ["demo"], ["export-schema"],
         ["keys", "create"], ["keys", "list"], ["keys", "revoke"]],
        ids=lambda args: " ".join(args) or "silospan",
    )
    def test_flags_show_no_type(self, args):
        result = runner.invoke(app, [*args, "--help"])
        assert result.exit_code == 0, result.output
        assert "--help" in result.stdout
        assert "<bool>" not in result.stdout


class TestDemo:
    def test_loads_the_demo_prints_a_working_key_and_the_urls(self, database, monkeypatch):
        served = {}
        monkeypatch.setattr(uvicorn, "run", lambda *args, **kwargs: served.update(kwargs))
        port = free_port()
        result = runner.invoke(app, ["demo", "--port", str(port)])
        assert result.exit_code == 0, result.output
        lines = dict(line.split(":", 1) for line in result.stdout.splitlines())
        secret = lines["reader key"].strip()
        assert lines["database"].strip() == database
        assert lines["API docs"].strip() == f"http://127.0.0.1:{port}/docs"
        assert lines["GraphQL"].strip() == f"http://127.0.0.1:{port}/graphql"
        assert served["port"] == port
        assert status_with(database, secret) == 200
        assert status_with(database, secret, "/v1/cases/case-7781") == 200

    def test_a_second_run_keeps_the_data_and_prints_a_new_key(self, database, monkeypatch):
        monkeypatch.setattr(uvicorn, "run", lambda *args, **kwargs: None)
        port = str(free_port())
        first = runner.invoke(app, ["demo", "--port", port])
        second = runner.invoke(app, ["demo", "--port", port])
        assert first.exit_code == second.exit_code == 0
        assert "loaded the demo organisation" in first.output
        assert "loaded the demo organisation" not in second.output
        assert first.stdout.splitlines()[1] != second.stdout.splitlines()[1]

    def test_migrates_an_empty_database_first(self, empty_database, monkeypatch):
        monkeypatch.setattr(uvicorn, "run", lambda *args, **kwargs: None)
        result = runner.invoke(app, ["demo", "--port", str(free_port())])
        assert result.exit_code == 0, result.output
        assert f"database: {empty_database}" in result.stderr
        assert revisions(empty_database) == set(head_revisions())


class TestServe:
    def test_serves_with_the_workers_and_keep_alive_asked_for(self, database, monkeypatch):
        served = {}
        monkeypatch.setattr(uvicorn, "run", lambda *args, **kwargs: served.update(kwargs))
        monkeypatch.setenv("SILOSPAN_KEEP_ALIVE_SECONDS", "7")
        get_settings.cache_clear()
        port = free_port()
        result = runner.invoke(app, ["serve", "--port", str(port), "--workers", "3"])
        assert result.exit_code == 0, result.output
        assert (served["port"], served["workers"], served["timeout_keep_alive"]) == (port, 3, 7)
        assert served["h11_max_incomplete_event_size"] == 16 * 1024
        assert f"database: {database}" in result.stderr


class TestExportSchema:
    def test_writes_the_documents_of_the_running_code(self, tmp_path):
        result = runner.invoke(app, ["export-schema", "--out-dir", str(tmp_path)])
        assert result.exit_code == 0, result.output
        assert (tmp_path / "openapi.json").read_text() == render_openapi()
        assert (tmp_path / "schema.graphql").read_text() == render_graphql()


# silospan worker ---------------------------------------------------------------------------------


class TestWorker:
    def test_refuses_a_database_without_the_schema(self, empty_database):
        line = error_line(runner.invoke(app, ["worker"]))
        assert line.endswith("has no SiloSpan schema yet: run `silospan migrate`")
        assert tables(empty_database) == []

    def test_a_taken_metrics_port_is_refused(self, database):
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            port = taken.getsockname()[1]
            line = error_line(runner.invoke(app, ["worker", "--metrics-port", str(port)]))
        assert line.startswith(f"cannot serve metrics on 127.0.0.1:{port}: "), line

    @pytest.mark.e2e  # starts `silospan worker` as a subprocess
    def test_delivers_a_queued_webhook_and_stops_on_sigterm(self, database, tmp_path):
        import signal
        import subprocess
        import sys
        import threading
        import time
        from http.server import BaseHTTPRequestHandler, HTTPServer

        from service.webhooks import service as webhooks_service
        from service.webhooks.schemas import WebhookCreate

        received: list[str] = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers["Content-Length"]))
                received.append(self.headers["webhook-id"])
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        server = HTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        env = {
            **os.environ,
            "SILOSPAN_DATABASE_URL": database,
            "SILOSPAN_WEBHOOKS_ALLOW_HTTP": "true",
            "SILOSPAN_WEBHOOKS_ALLOW_PRIVATE": "true",
            "SILOSPAN_WEBHOOKS_DISPATCH_SECONDS": "0.2",
        }
        config = Settings(database_url=database, webhooks_allow_http=True, webhooks_allow_private=True)

        async def queue() -> str:
            db = Database.from_settings(config)
            try:
                async with transaction(db.write_sessions) as session:
                    url = f"http://127.0.0.1:{server.server_address[1]}/hook"
                    hook, _ = await webhooks_service.create(
                        session, SYSTEM, WebhookCreate(url=url), config
                    )
                    delivery = await webhooks_service.send_test(session, SYSTEM, hook.id)
                    return delivery.message_id
            finally:
                await db.dispose()

        message_id = asyncio.run(queue())
        metrics_port = free_port()
        worker = subprocess.Popen(
            [sys.executable, "-m", "service.cli", "worker", "--metrics-port", str(metrics_port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=(tmp_path / "worker.log").open("w"),
        )
        try:
            deadline = time.monotonic() + 30
            while not received and time.monotonic() < deadline and worker.poll() is None:
                time.sleep(0.1)
            log = tmp_path / "worker.log"
            assert received == [message_id], log.read_text()
            # The worker's own count of what it delivered, for Prometheus.
            counted = (
                "silospan_webhook_deliveries_total"
                '{event_type="webhook.test",outcome="succeeded"} 1.0'
            )
            while time.monotonic() < deadline:
                metrics = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics").text
                if counted in metrics:
                    break
                time.sleep(0.1)
            assert counted in metrics, metrics
            # The queue gauges are the API's, read from the database when it is scraped.
            assert "silospan_webhook_queue_depth" not in metrics
            worker.send_signal(signal.SIGTERM)
            assert worker.wait(timeout=15) == 0, log.read_text()
        finally:
            if worker.poll() is None:
                worker.kill()
            server.shutdown()
            server.server_close()
