"""A request whose transaction fails transiently (deadlock, serialization failure, a lock
held past the busy timeout) is run again; only if every attempt fails is it a 503."""

from __future__ import annotations

import pytest
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncSession

from service.api.deps import get_write_sessions
from tests.problems import assert_problem


def _failing_commits(connection, failures: int):
    """Sessions whose first ``failures`` commits fail as if the database were locked."""
    state = {"left": failures, "commits": 0}

    class FlakySession(AsyncSession):
        async def commit(self) -> None:
            state["commits"] += 1
            if state["left"] > 0:
                state["left"] -= 1
                raise OperationalError("COMMIT", {}, Exception("database is locked"))
            await super().commit()

    def sessions():
        return FlakySession(
            bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False
        )

    return sessions, state


@pytest.fixture
def flaky(app, connection):
    def install(failures: int):
        sessions, state = _failing_commits(connection, failures)
        app.dependency_overrides[get_write_sessions] = lambda: sessions
        return state

    return install


async def test_a_transient_failure_is_retried_transparently(client, keys, flaky):
    headers = await keys.writer()
    state = flaky(failures=1)
    response = await client.post(
        "/v1/units", json={"key": "ops", "name": "Ops", "kind": "team"}, headers=headers
    )
    assert response.status_code == 201, response.text
    assert state["commits"] == 2
    listed = await client.get("/v1/units?kind=team", headers=headers)
    assert [u["key"] for u in listed.json()["items"]] == ["ops"]


async def test_after_three_attempts_the_client_gets_503_and_nothing_is_written(
    client, keys, flaky
):
    headers = await keys.writer()
    state = flaky(failures=5)
    response = await client.post(
        "/v1/units", json={"key": "ops", "name": "Ops", "kind": "team"}, headers=headers
    )
    body = assert_problem(response, 503, "retry")
    assert response.headers["retry-after"] == "1"
    assert "busy" in body["detail"]
    assert state["commits"] == 3
    listed = await client.get("/v1/units?kind=team", headers=headers)
    assert listed.json()["items"] == []
