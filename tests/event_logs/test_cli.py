"""``silospan import-log``: the same import as the API, from a file, on the configured database."""

from __future__ import annotations

import gzip
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from typer.testing import CliRunner

from service.cli import app
from service.core.config import get_settings
from service.core.db import sync_url
from service.core.migrations import upgrade_to_head
from tests.event_logs.logs import LOG, LOG_XES
from tests.servers import fresh_database

runner = CliRunner()
PG_URL = os.environ.get("SILOSPAN_TEST_DATABASE_URL")
BACKENDS = ["sqlite"] + (["postgresql"] if PG_URL else [])


@pytest.fixture(params=BACKENDS)
def database(request, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv("SILOSPAN_LOG_LEVEL", "WARNING")
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'cli.db'}"
        upgrade_to_head(url)
        monkeypatch.setenv("SILOSPAN_DATABASE_URL", url)
        get_settings.cache_clear()
        yield url
    else:
        with fresh_database(PG_URL) as url:
            upgrade_to_head(url)
            monkeypatch.setenv("SILOSPAN_DATABASE_URL", url)
            get_settings.cache_clear()
            yield url
    get_settings.cache_clear()


def count(url: str, table: str) -> int:
    engine = create_engine(sync_url(url))
    try:
        with engine.connect() as connection:
            return connection.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()
    finally:
        engine.dispose()


class TestImportLog:
    def test_imports_a_gzip_file_and_reports_bad_rows(self, database, tmp_path):
        path = tmp_path / "support.csv.gz"
        path.write_bytes(gzip.compress(LOG.encode()))
        result = runner.invoke(app, ["import-log", str(path), "--key", "support"])
        assert result.exit_code == 0, result.output
        assert "support: 12 events, 4 cases, 3 units, 5 rejected rows" in result.stdout
        assert "line 14: no unit" in result.stdout
        assert count(database, "event_log_rows") == 12

    def test_strict_refuses_the_file_and_keeps_nothing(self, database, tmp_path):
        path = tmp_path / "support.csv"
        path.write_text(LOG)
        result = runner.invoke(app, ["import-log", str(path), "--key", "s", "--strict"])
        assert result.exit_code == 1
        assert "5 row(s) are invalid" in result.stderr
        assert count(database, "event_logs") == 0
        assert count(database, "event_log_rows") == 0

    def test_maps_columns(self, database, tmp_path):
        path = tmp_path / "tickets.csv"
        path.write_text(
            "Ticket;Group;When\nT-1;Ops;2026-07-01 10:00:00\nT-1;Desk;2026-07-01 11:00:00\n"
        )
        result = runner.invoke(
            app,
            [
                "import-log",
                str(path),
                "--key",
                "t",
                "--case",
                "Ticket",
                "--unit",
                "Group",
                "--time",
                "When",
                "--delimiter",
                ";",
                "--assume-tz",
                "Europe/Paris",
            ],
        )
        assert result.exit_code == 0, result.output
        assert "t: 2 events, 1 cases, 2 units, 0 rejected rows" in result.stdout

    def test_reads_xes_by_its_suffix(self, database, tmp_path):
        path = tmp_path / "support.xes.gz"
        path.write_bytes(gzip.compress(LOG_XES.encode()))
        result = runner.invoke(app, ["import-log", str(path), "--key", "x"])
        assert result.exit_code == 0, result.output
        assert "x: 12 events, 4 cases, 3 units, 4 rejected rows" in result.stdout


def test_help_shows_each_mapping_default():
    # Rich reads square brackets in help text as markup: the defaults must survive it.
    result = runner.invoke(app, ["import-log", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    for shown in (
        "default: case; XES: the trace's concept:name",
        "default: unit; XES: org:group",
        "default: time; XES: time:timestamp",
        "default: activity; XES: concept:name",
        "default: status; XES: lifecycle:transition",
        "default: resource; XES: org:resource",
        "default: xes for a .xes or .xes.gz file, else csv",
    ):
        assert shown in result.output
