from __future__ import annotations

from collections.abc import Callable
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import event


@pytest.fixture
def gql(client):
    """POST a GraphQL document; returns the httpx response."""

    async def call(query: str, headers: dict[str, str], variables: dict[str, Any] | None = None):
        return await client.post(
            "/graphql", json={"query": query, "variables": variables or {}}, headers=headers
        )

    return call


@pytest.fixture
def count_statements(engine) -> Callable[[], Any]:
    """A context manager counting the SQL statements sent while it is open."""

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
