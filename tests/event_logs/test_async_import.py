"""POST /v1/event-logs with `Prefer: respond-async`: 202 once the file is received, the import
goes on after the response, and GET shows it `importing`, then `ready` or `failed`.

The import runs after the response, in its own transactions: these tests use a committed
database (``live_app``), not the rolled-back transaction of the other tests.
"""

from __future__ import annotations

import asyncio
import gzip

import pytest
from sqlalchemy import func, select

from service.core.config import get_settings
from service.core.permissions import Role
from service.event_logs import importer
from service.event_logs.models import EventLogRow
from tests.event_logs.logs import LOG, REJECTIONS

pytestmark = pytest.mark.concurrency

LATER = {"Content-Type": "text/csv", "Prefer": "respond-async"}


@pytest.fixture
async def live(live_app):
    async with live_app.client() as client:
        live_app.http = client
        live_app.writer = {"Authorization": f"Bearer {await live_app.secret(Role.writer)}"}
        yield live_app
    await importer.stop_background()


async def settled(live, key: str) -> dict:
    """The log once its import has ended (it runs in this event loop, after the response)."""
    for _ in range(200):
        log = (await live.http.get(f"/v1/event-logs/{key}", headers=live.writer)).json()
        if log["status"] != "importing":
            return log
        await asyncio.sleep(0.05)
    raise AssertionError(f"{key} still importing: {log}")


async def rows_in(live) -> int:
    async with live.database.read_sessions() as session:
        return await session.scalar(select(func.count()).select_from(EventLogRow))


async def test_the_answer_is_202_importing_and_the_log_becomes_ready(live):
    response = await live.http.post(
        "/v1/event-logs?key=later", content=LOG.encode(), headers={**LATER, **live.writer}
    )
    assert response.status_code == 202, response.text
    assert response.headers["Preference-Applied"] == "respond-async"
    assert response.headers["Location"] == "/v1/event-logs/later"
    assert response.json()["status"] == "importing"

    log = await settled(live, "later")
    assert log["status"] == "ready"
    # The same counts as the same file imported while the client waits (test_import.py).
    assert (log["rows_read"], log["events"], log["cases"], log["units"]) == (17, 12, 4, 3)
    assert [r["line"] for r in log["rejections"]] == [line for line, _ in REJECTIONS]
    assert log["bytes_read"] == len(LOG.encode())


async def test_without_the_preference_the_answer_waits_for_the_import(live):
    response = await live.http.post(
        "/v1/event-logs?key=now",
        content=LOG.encode(),
        headers={"Content-Type": "text/csv", "Prefer": "return=minimal", **live.writer},
    )
    assert response.status_code == 201, response.text
    assert "Preference-Applied" not in response.headers
    assert response.json()["status"] == "ready"


async def test_a_broken_file_ends_failed_with_nothing_kept(live):
    broken = gzip.compress(LOG.encode())[:-12]
    response = await live.http.post(
        "/v1/event-logs?key=broken",
        content=broken,
        headers={**LATER, "Content-Encoding": "gzip", **live.writer},
    )
    assert response.status_code == 202, response.text
    log = await settled(live, "broken")
    assert log["status"] == "failed"
    assert "gzip" in log["failure_reason"]
    assert await rows_in(live) == 0


async def test_a_strict_rejection_is_kept_as_failed_with_its_rejections(live):
    # Nobody waits for a 422 here: the log stays, failed, saying which rows were bad.
    response = await live.http.post(
        "/v1/event-logs?key=picky&strict=true",
        content=LOG.encode(),
        headers={**LATER, **live.writer},
    )
    assert response.status_code == 202, response.text
    log = await settled(live, "picky")
    assert log["status"] == "failed"
    assert "strict" in log["failure_reason"]
    assert [r["line"] for r in log["rejections"]] == [line for line, _ in REJECTIONS]
    assert await rows_in(live) == 0


async def test_a_file_over_the_limit_is_413_before_any_log_exists(live):
    small = live.app.dependency_overrides[get_settings]().model_copy(
        update={"event_log_max_bytes": 100}
    )
    live.app.dependency_overrides[get_settings] = lambda: small
    response = await live.http.post(
        "/v1/event-logs?key=huge", content=LOG.encode(), headers={**LATER, **live.writer}
    )
    assert response.status_code == 413, response.text
    missing = await live.http.get("/v1/event-logs/huge", headers=live.writer)
    assert missing.status_code == 404


async def test_shutting_down_fails_an_import_in_flight(live, monkeypatch):
    started = asyncio.Event()
    original = importer._Job._write

    async def slow_write(self, rows):
        started.set()
        await asyncio.sleep(30)
        await original(self, rows)

    monkeypatch.setattr(importer._Job, "_write", slow_write)
    response = await live.http.post(
        "/v1/event-logs?key=cut", content=LOG.encode(), headers={**LATER, **live.writer}
    )
    assert response.status_code == 202, response.text
    await asyncio.wait_for(started.wait(), 10)
    await importer.stop_background()

    log = (await live.http.get("/v1/event-logs/cut", headers=live.writer)).json()
    assert log["status"] == "failed"
    assert await rows_in(live) == 0
