"""`kill -9` of the server in the middle of a bulk write (RELIABILITY.md, "Crash consistency").

A real uvicorn server on its own committed database receives a streamed NDJSON bulk
request and is killed with SIGKILL halfway through the stream, while its transaction holds
written but uncommitted batches. The database must then hold none of that request, pass
its integrity check, and a retry of the same request on a restarted server must yield
exactly one effect: every event once, and a second retry changes nothing.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator

import httpx
import orjson
import pytest
from sqlalchemy import create_engine, text

from service.core.db import sync_url
from tests.servers import Server, fresh_database, running_server

pytestmark = [pytest.mark.concurrency, pytest.mark.e2e]
PG_URL = os.environ.get("SILOSPAN_TEST_DATABASE_URL")

CHUNKS = 20
PER_CHUNK = 2_500
EVENTS = CHUNKS * PER_CHUNK
NDJSON = {"Content-Type": "application/x-ndjson"}


def chunks(kill: Server | None = None) -> Iterator[bytes]:
    """The same 50,000 events every time; with ``kill``, SIGKILL the server halfway."""
    for c in range(CHUNKS):
        if kill is not None and c == CHUNKS // 2:
            time.sleep(1)  # let the server write the first half into its open transaction
            os.kill(kill.process.pid, signal.SIGKILL)
            kill.process.wait(timeout=30)
        lines = (
            orjson.dumps({
                "handoff": "intake",
                "external_id": f"e{i}",
                "started_at": f"2026-03-{1 + i % 28:02d}T09:00:00Z",
                "delivered_at": f"2026-03-{1 + i % 28:02d}T11:00:00Z",
                "quality": 1 + i % 5,
            })
            for i in range(c * PER_CHUNK, (c + 1) * PER_CHUNK)
        )
        yield b"\n".join(lines) + b"\n"


def client_for(server: Server) -> httpx.Client:
    headers = {"Authorization": f"Bearer {server.admin_key}"}
    return httpx.Client(base_url=server.base_url, headers=headers, timeout=300)


def stored_events(url: str) -> int:
    engine = create_engine(sync_url(url))
    try:
        with engine.connect() as conn:
            return conn.execute(text("SELECT COUNT(*) FROM handoff_events")).scalar_one()
    finally:
        engine.dispose()


def rows_inserted_and_rolled_back(url: str) -> int:
    """PostgreSQL's count of rows ever inserted into handoff_events, committed or not."""
    engine = create_engine(sync_url(url))
    try:
        with engine.connect() as conn:
            for _ in range(50):  # the killed backend's statistics arrive as it exits
                inserted = conn.execute(text(
                    "SELECT n_tup_ins FROM pg_stat_user_tables WHERE relname = 'handoff_events'"
                )).scalar_one()
                if inserted:
                    return inserted
                conn.execute(text("SELECT pg_stat_clear_snapshot()"))
                time.sleep(0.1)
            return 0
    finally:
        engine.dispose()


def sqlite_integrity(url: str) -> list[str]:
    engine = create_engine(sync_url(url))
    try:
        with engine.connect() as conn:
            return [row[0] for row in conn.execute(text("PRAGMA integrity_check"))]
    finally:
        engine.dispose()


@pytest.fixture
def database_url(backend: str) -> Iterator[str]:
    with fresh_database(PG_URL if backend == "postgresql" else None) as url:
        yield url


@pytest.mark.parametrize("atomic", ["true", "false"])
def test_a_killed_bulk_write_leaves_nothing_and_a_retry_counts_once(
    backend: str, database_url: str, atomic: str
) -> None:
    with running_server(database_url) as server, client_for(server) as client:
        for unit in ("front", "back"):
            body = {"key": unit, "name": unit.title(), "kind": "department"}
            client.post("/v1/units", json=body).raise_for_status()
        client.post("/v1/handoffs", json={
            "key": "intake", "from_unit": "back", "to_unit": "front",
            "deliverable": "Case notes", "expected_within": "PT4H",
        }).raise_for_status()
        with pytest.raises(httpx.TransportError):
            client.post(
                "/v1/handoff-events/bulk", params={"atomic": atomic},
                content=chunks(kill=server), headers=NDJSON,
            )
        assert server.process.returncode == -signal.SIGKILL

    # The request was one transaction and never committed: none of it is there.
    assert stored_events(database_url) == 0
    if backend == "sqlite":
        assert sqlite_integrity(database_url) == ["ok"]
    else:  # the kill did land mid-write: rows were inserted, then rolled back
        assert rows_inserted_and_rolled_back(database_url) >= PER_CHUNK

    with running_server(database_url) as server, client_for(server) as client:
        retry = client.post(
            "/v1/handoff-events/bulk", params={"atomic": atomic}, content=chunks(), headers=NDJSON
        )
        assert retry.status_code == 200, retry.text
        assert retry.json() | {"errors": []} == {
            "created": EVENTS, "updated": 0, "unchanged": 0, "rejected": 0,
            "errors": [], "errors_truncated": False,
        }
        again = client.post(
            "/v1/handoff-events/bulk", params={"atomic": atomic}, content=chunks(), headers=NDJSON
        )
        assert again.status_code == 200, again.text
        assert (again.json()["created"], again.json()["unchanged"]) == (0, EVENTS)

    assert stored_events(database_url) == EVENTS
    if backend == "sqlite":
        assert sqlite_integrity(database_url) == ["ok"]
