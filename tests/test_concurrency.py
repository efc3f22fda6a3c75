"""Concurrent writers against a committed database (``live_app``), on every backend.

Each test sends overlapping requests at once through one ASGI client; the app runs them on
its own connection pool, so they race in the database as real clients' requests would
(SQLite serialises writers with BEGIN IMMEDIATE; PostgreSQL runs them side by side). Any
5xx is a failure: a 503 would mean a lock wait or serialization failure escaped.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import timedelta

import httpx
import orjson
import pytest
from sqlalchemy import func, select

from service.api_keys import service as api_keys_service
from service.api_keys.service import SYSTEM
from service.core.permissions import Role
from service.handoffs import service as handoffs_service
from service.handoffs.models import HandoffEvent
from service.idempotency import service as idempotency_service
from service.org_units.models import Unit
from tests.problems import assert_problem

pytestmark = [pytest.mark.concurrency, pytest.mark.e2e]

EVENT = {"started_at": "2026-01-01T10:00:00Z", "quality": 4, "case_ref": "CASE-1"}


async def handoff_rows(live) -> dict[str, str]:
    """external_id → id of every stored event."""
    async with live.database.read_sessions() as session:
        rows = await session.execute(select(HandoffEvent.external_id, HandoffEvent.id))
        return {external_id: str(id_) for external_id, id_ in rows.all()}


async def event_count(live) -> int:
    async with live.database.read_sessions() as session:
        return await session.scalar(select(func.count()).select_from(HandoffEvent))


def assert_no_server_errors(responses: list[httpx.Response]) -> None:
    failures = [(r.status_code, r.text) for r in responses if r.status_code >= 500]
    assert failures == [], failures[:3]


@pytest.fixture
async def live(live_app):
    """The live app with units ``ops`` and ``branch`` and a handoff ``kyc`` between them."""
    async with live_app.client() as client:
        headers = {"Authorization": f"Bearer {await live_app.secret(Role.admin)}"}
        for key in ("ops", "branch"):
            response = await client.post(
                "/v1/units", json={"key": key, "name": key, "kind": "department"}, headers=headers
            )
            assert response.status_code == 201, response.text
        response = await client.post(
            "/v1/handoffs",
            json={
                "key": "kyc",
                "from_unit": "ops",
                "to_unit": "branch",
                "deliverable": "KYC",
                "expected_within": "PT4H",
            },
            headers=headers,
        )
        assert response.status_code == 201, response.text
        live_app.client_instance = client
        live_app.headers = {"Authorization": f"Bearer {await live_app.secret(Role.writer)}"}
        yield live_app


class TestConcurrentEventUpserts:
    async def test_sixteen_senders_of_one_event_make_one_row(self, live):
        client = live.client_instance
        responses = await asyncio.gather(
            *(
                client.put("/v1/handoffs/kyc/events/e1", json=EVENT, headers=live.headers)
                for _ in range(16)
            )
        )
        assert_no_server_errors(responses)
        assert sorted(r.status_code for r in responses) == [200] * 15 + [201]
        assert len({r.json()["id"] for r in responses}) == 1
        assert await handoff_rows(live) == {"e1": responses[0].json()["id"]}

    async def test_eight_writers_with_overlapping_events_lose_and_duplicate_nothing(self, live):
        client = live.client_instance
        shared = [f"shared-{n}" for n in range(25)]

        async def writer(number: int) -> list[httpx.Response]:
            own = [f"w{number}-{n}" for n in range(25)]
            # Interleave, and start at a different place, so writers collide throughout.
            ids = [x for pair in zip(shared[number:] + shared[:number], own) for x in pair]
            responses = []
            for external_id in ids:
                responses.append(
                    await client.put(
                        f"/v1/handoffs/kyc/events/{external_id}", json=EVENT, headers=live.headers
                    )
                )
            return responses

        results = await asyncio.gather(*(writer(n) for n in range(8)))
        responses = [r for batch in results for r in batch]
        assert_no_server_errors(responses)
        assert len(responses) == 400
        assert {r.status_code for r in responses} <= {200, 201}
        created = Counter(r.json()["external_id"] for r in responses if r.status_code == 201)
        distinct = set(shared) | {f"w{w}-{n}" for w in range(8) for n in range(25)}
        assert set(created) == distinct
        assert set(created.values()) == {1}  # each event created exactly once
        ids_seen: dict[str, set[str]] = {}
        for response in responses:
            ids_seen.setdefault(response.json()["external_id"], set()).add(response.json()["id"])
        assert all(len(ids) == 1 for ids in ids_seen.values())
        stored = await handoff_rows(live)
        assert len(stored) == await event_count(live) == len(distinct) == 225
        assert {k: {v} for k, v in stored.items()} == ids_seen

    async def test_concurrent_updates_of_one_event_end_with_one_senders_values(self, live):
        client = live.client_instance
        first = await client.put("/v1/handoffs/kyc/events/e1", json=EVENT, headers=live.headers)
        assert first.status_code == 201
        responses = await asyncio.gather(
            *(
                client.put(
                    "/v1/handoffs/kyc/events/e1",
                    json={**EVENT, "note": f"sender {n}"},
                    headers=live.headers,
                )
                for n in range(16)
            )
        )
        assert_no_server_errors(responses)
        assert {r.status_code for r in responses} == {200}
        assert {r.json()["id"] for r in responses} == {first.json()["id"]}
        final = await client.get("/v1/handoffs/kyc/events", headers=live.headers)
        assert [e["note"] for e in final.json()["items"]] in [[f"sender {n}"] for n in range(16)]
        assert await event_count(live) == 1


class TestConcurrentBulkIngestion:
    @pytest.mark.parametrize("reverse_some", [False, True], ids=["same-order", "opposed-order"])
    async def test_overlapping_bulk_requests_add_up(self, live, reverse_some):
        client = live.client_instance
        requests = []
        for number in range(6):
            ids = [f"e{n:04d}" for n in range(number * 100, number * 100 + 300)]
            if reverse_some and number % 2:
                ids.reverse()
            lines = (
                orjson.dumps({"handoff": "kyc", "external_id": external_id, **EVENT})
                for external_id in ids
            )
            requests.append(b"\n".join(lines))
        headers = {**live.headers, "content-type": "application/x-ndjson"}
        responses = await asyncio.gather(
            *(
                client.post("/v1/handoff-events/bulk", content=body, headers=headers)
                for body in requests
            )
        )
        assert_no_server_errors(responses)
        assert {r.status_code for r in responses} == {200}
        reports = [r.json() for r in responses]
        for report in reports:
            assert report["created"] + report["updated"] + report["unchanged"] == 300
            assert report["rejected"] == 0
            assert report["updated"] == 0  # every sender sends the same values
        distinct = 5 * 100 + 300
        assert sum(report["created"] for report in reports) == distinct
        assert sum(report["unchanged"] for report in reports) == 6 * 300 - distinct
        assert await event_count(live) == len(await handoff_rows(live)) == distinct

    async def test_bulk_and_single_upserts_of_the_same_events_agree(self, live):
        client = live.client_instance
        ids = [f"e{n}" for n in range(200)]
        body = b"\n".join(
            orjson.dumps({"handoff": "kyc", "external_id": external_id, **EVENT})
            for external_id in ids
        )
        headers = {**live.headers, "content-type": "application/x-ndjson"}
        singles = [
            client.put(f"/v1/handoffs/kyc/events/{external_id}", json=EVENT, headers=live.headers)
            for external_id in ids[::10]
        ]
        responses = await asyncio.gather(
            client.post("/v1/handoff-events/bulk", content=body, headers=headers), *singles
        )
        assert_no_server_errors(responses)
        bulk, single_responses = responses[0], responses[1:]
        created_singly = sum(r.status_code == 201 for r in single_responses)
        assert bulk.json()["created"] + created_singly == 200
        assert bulk.json()["unchanged"] == 200 - bulk.json()["created"]
        assert await event_count(live) == 200


class TestConcurrentVersionCheckedUpdates:
    async def test_forty_writers_keep_forty_changes(self, live):
        client = live.client_instance
        path = "/v1/units/ops"

        async def append_tag(tag: int) -> list[int]:
            statuses = []
            for _ in range(500):
                current = await client.get(path, headers=live.headers)
                statuses.append(current.status_code)
                ref = current.json()["external_ref"]
                tags = f"{ref},{tag}" if ref else str(tag)
                response = await client.patch(
                    path,
                    json={"external_ref": tags},
                    headers={**live.headers, "If-Match": current.headers["etag"]},
                )
                statuses.append(response.status_code)
                if response.status_code == 200:
                    return statuses
                assert response.status_code == 412, response.text
            raise AssertionError(f"tag {tag} never got through")

        results = await asyncio.gather(*(append_tag(tag) for tag in range(40)))
        statuses = [s for result in results for s in result]
        assert all(s < 500 for s in statuses), Counter(statuses)
        final = await client.get(path, headers=live.headers)
        tags = final.json()["external_ref"].split(",")
        assert sorted(map(int, tags)) == list(range(40))
        assert final.json()["version"] == 41
        assert final.headers["etag"] == '"41"'


class TestUpsertLockOrder:
    async def test_crossing_upserts_of_the_same_keys_do_not_deadlock(self, live):
        """A holds k1; B upserts [k2, k1]; then A upserts k2. Written in request order, B
        would hold k2 while waiting for k1 (a deadlock); in key order B waits for k1 first."""

        def item(external_id: str) -> dict:
            return {"handoff": "kyc", "external_id": external_id, **EVENT}

        async def one_batch(*items: dict):
            yield list(items)

        async with live.database.write_sessions() as a, live.database.write_sessions() as b:
            await handoffs_service.ingest_events(a, SYSTEM, one_batch(item("k1")))
            crossing = asyncio.ensure_future(
                handoffs_service.ingest_events(b, SYSTEM, one_batch(item("k2"), item("k1")))
            )
            await asyncio.sleep(0.5)  # let B reach its insert and wait on A's k1
            await handoffs_service.ingest_events(a, SYSTEM, one_batch(item("k2")))
            await a.commit()
            result = await crossing
            await b.commit()
        assert (result.created, result.unchanged) == (0, 2)
        assert sorted(await handoff_rows(live)) == ["k1", "k2"]


class TestConcurrentIdempotentCreates:
    async def test_sixteen_retries_of_one_create_replay_it_or_ask_to_retry(self, live):
        """Every caller gets the first 201 (replayed) or a retriable 409, never key_exists."""
        client = live.client_instance
        headers = {**live.headers, "Idempotency-Key": "create-desk-1"}
        payload = {"key": "desk", "name": "Help desk", "kind": "team"}
        responses = await asyncio.gather(
            *(client.post("/v1/units", json=payload, headers=headers) for _ in range(16))
        )
        assert_no_server_errors(responses)
        created = [r for r in responses if r.status_code == 201]
        in_flight = [r for r in responses if r.status_code == 409]
        assert len(created) + len(in_flight) == 16, Counter(r.status_code for r in responses)
        originals = [r for r in created if "idempotent-replayed" not in r.headers]
        assert len(originals) == 1
        assert all(r.json() == originals[0].json() for r in created)
        replayed = [r for r in created if r is not originals[0]]
        assert all(r.headers["idempotent-replayed"] == "true" for r in replayed)
        for response in in_flight:
            assert_problem(response, 409, "idempotency_in_flight")
            assert int(response.headers["retry-after"]) >= 1
        # A retry after the first request finished is always the replay.
        retry = await client.post("/v1/units", json=payload, headers=headers)
        assert (retry.status_code, retry.json()) == (201, originals[0].json())
        assert retry.headers["idempotent-replayed"] == "true"
        async with live.database.read_sessions() as session:
            units = await session.scalar(
                select(func.count()).select_from(Unit).where(Unit.key == "desk")
            )
        assert units == 1

    async def test_a_key_held_by_a_running_request_answers_in_flight(self, live):
        if not live.url.startswith("postgresql"):
            pytest.skip("SQLite runs one write transaction at a time: the request would wait")
        client = live.client_instance
        headers = {**live.headers, "Idempotency-Key": "create-desk-2"}
        payload = {"key": "desk", "name": "Help desk", "kind": "team"}
        secret = headers["Authorization"].removeprefix("Bearer ")
        async with live.database.read_sessions() as session:
            principal = await api_keys_service.authenticate(session, secret)
        async with live.database.write_sessions() as running:
            stored = await idempotency_service.claim(
                running, principal, "create-desk-2", request_hash="-", ttl=timedelta(hours=24)
            )
            assert stored is None
            response = await client.post("/v1/units", json=payload, headers=headers)
            await running.rollback()  # the running request failed: nothing was stored
        assert_problem(response, 409, "idempotency_in_flight")
        assert response.headers["retry-after"] == "1"
        retry = await client.post("/v1/units", json=payload, headers=headers)
        assert retry.status_code == 201, retry.text
        assert "idempotent-replayed" not in retry.headers


# Saturation and shutdown ---------------------------------------------------------------------


async def test_a_saturated_pool_answers_503_with_retry_after_quickly(backend):
    """Every connection held elsewhere: a request waits SILOSPAN_DB_POOL_TIMEOUT_SECONDS for
    one, then gets a 503 problem with Retry-After, instead of hanging."""
    import contextlib
    import time

    from service.core.config import Settings, get_settings
    from service.core.db import Database
    from service.core.migrations import upgrade_to_head
    from service.main import create_app
    from tests.conftest import _new_database

    database = _new_database(backend, "pool")
    upgrade_to_head(database.url)
    settings = Settings(
        database_url=database.url, db_pool_size=1, db_pool_overflow=0,
        db_pool_timeout_seconds=0.5, log_json=False, log_level="ERROR",
        findings_sweep_seconds=0, webhooks_dispatch_seconds=0,
    )
    app = create_app(settings)
    app.dependency_overrides[get_settings] = lambda: settings
    db = app.state.db = Database.from_settings(settings)
    try:
        async with contextlib.AsyncExitStack() as held:
            for engine in {db.write_engine, db.read_engine}:  # one engine on PostgreSQL
                await held.enter_async_context(engine.connect())
            transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
                secret_free = {"Authorization": "Bearer ss_" + "x" * 43}
                started = time.monotonic()
                response = await client.get("/v1/units", headers=secret_free)
                elapsed = time.monotonic() - started
        assert response.status_code == 503, response.text
        assert response.headers["Retry-After"] == "1"
        assert response.headers["content-type"].startswith("application/problem+json")
        assert response.json()["code"] == "retry"
        assert elapsed < 5
    finally:
        await db.dispose()
        database.cleanup()  # type: ignore[operator]


async def test_sigterm_lets_the_request_in_flight_finish(backend):
    """A bulk upload still streaming when the server gets SIGTERM is read to its end and
    answered; then the server exits."""
    import signal

    from tests.conftest import PG_URL
    from tests.servers import fresh_database, running_server

    with (
        fresh_database(PG_URL if backend == "postgresql" else None) as url,
        running_server(url) as server,
    ):
        admin = {"Authorization": f"Bearer {server.admin_key}"}
        async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as client:
            for key in ("ops", "branch"):
                body = {"key": key, "name": key, "kind": "department"}
                assert (await client.post("/v1/units", json=body, headers=admin)).status_code == 201
            body = {"key": "kyc", "from_unit": "ops", "to_unit": "branch", "deliverable": "KYC",
                    "expected_within": "PT4H"}
            assert (await client.post("/v1/handoffs", json=body, headers=admin)).status_code == 201
            first_sent = asyncio.Event()

            async def slowly():
                for n in range(3):
                    line = {"handoff": "kyc", "external_id": f"e{n}",
                            "started_at": "2026-11-02T09:00:00Z"}
                    yield orjson.dumps(line) + b"\n"
                    first_sent.set()
                    await asyncio.sleep(1)

            upload = asyncio.create_task(
                client.post(
                    "/v1/handoff-events/bulk",
                    content=slowly(),
                    headers={**admin, "Content-Type": "application/x-ndjson"},
                )
            )
            await first_sent.wait()
            await asyncio.sleep(0.3)
            server.process.send_signal(signal.SIGTERM)
            response = await upload

        assert response.status_code == 200, response.text
        assert response.json()["created"] == 3
        # uvicorn shuts down gracefully, then re-raises the signal it caught.
        assert await asyncio.to_thread(server.process.wait, 30) in (0, -signal.SIGTERM)
