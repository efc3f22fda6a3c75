"""The ``silospan`` command, run in-process against a fresh SQLite file."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from typer.testing import CliRunner

from service.api.schema_export import render_graphql, render_openapi
from service.cli import app
from service.core.config import Settings, get_settings
from service.core.db import Database
from service.main import create_app

runner = CliRunner()


@pytest.fixture
def database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("SILOSPAN_DATABASE_URL", url)
    monkeypatch.setenv("SILOSPAN_LOG_LEVEL", "WARNING")
    get_settings.cache_clear()
    yield url
    get_settings.cache_clear()


def units_status(url: str, secret: str, path: str = "/v1/units") -> int:
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


class TestKeysCreate:
    def test_prints_only_a_working_secret(self, database):
        result = runner.invoke(app, ["keys", "create", "--name", "ci", "--role", "reader"])
        assert result.exit_code == 0, result.output
        secret = result.stdout.strip()
        assert secret.startswith("ss_") and "\n" not in secret
        assert units_status(database, secret) == 200

    def test_a_partner_key_needs_an_existing_partner_unit(self, database):
        result = runner.invoke(
            app, ["keys", "create", "--name", "p", "--role", "partner", "--partner", "nobody"]
        )
        assert result.exit_code != 0
        assert result.stdout == ""

    def test_an_unknown_role_is_refused(self, database):
        result = runner.invoke(app, ["keys", "create", "--name", "x", "--role", "owner"])
        assert result.exit_code == 2
        assert result.stdout == ""


class TestDemo:
    def test_loads_the_demo_prints_a_working_key_and_the_urls(self, database, monkeypatch):
        served = {}
        monkeypatch.setattr(uvicorn, "run", lambda *args, **kwargs: served.update(kwargs))
        result = runner.invoke(app, ["demo", "--port", "8765"])
        assert result.exit_code == 0, result.output
        lines = dict(line.split(":", 1) for line in result.stdout.splitlines())
        secret = lines["reader key"].strip()
        assert lines["API docs"].strip() == "http://127.0.0.1:8765/docs"
        assert lines["GraphQL"].strip() == "http://127.0.0.1:8765/graphql"
        assert served["port"] == 8765
        assert units_status(database, secret) == 200
        assert units_status(database, secret, "/v1/cases/case-7781") == 200

    def test_a_second_run_keeps_the_data_and_prints_a_new_key(self, database, monkeypatch):
        monkeypatch.setattr(uvicorn, "run", lambda *args, **kwargs: None)
        first = runner.invoke(app, ["demo"])
        second = runner.invoke(app, ["demo"])
        assert first.exit_code == second.exit_code == 0
        assert "loaded the demo organisation" in first.output
        assert "loaded the demo organisation" not in second.output
        assert first.stdout.splitlines()[0] != second.stdout.splitlines()[0]


class TestServe:
    def test_serves_with_the_workers_and_keep_alive_asked_for(self, database, monkeypatch):
        served = {}
        monkeypatch.setattr(uvicorn, "run", lambda *args, **kwargs: served.update(kwargs))
        monkeypatch.setenv("SILOSPAN_KEEP_ALIVE_SECONDS", "7")
        get_settings.cache_clear()
        result = runner.invoke(app, ["serve", "--port", "8766", "--workers", "3"])
        assert result.exit_code == 0, result.output
        assert (served["port"], served["workers"], served["timeout_keep_alive"]) == (8766, 3, 7)
        assert served["h11_max_incomplete_event_size"] == 16 * 1024


class TestExportSchema:
    def test_writes_the_documents_of_the_running_code(self, tmp_path):
        result = runner.invoke(app, ["export-schema", "--out-dir", str(tmp_path)])
        assert result.exit_code == 0, result.output
        assert (tmp_path / "openapi.json").read_text() == render_openapi()
        assert (tmp_path / "schema.graphql").read_text() == render_graphql()
