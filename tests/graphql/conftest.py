from __future__ import annotations

from typing import Any

import pytest


@pytest.fixture
def gql(client):
    """POST a GraphQL document; returns the httpx response."""

    async def call(query: str, headers: dict[str, str], variables: dict[str, Any] | None = None):
        return await client.post(
            "/graphql", json={"query": query, "variables": variables or {}}, headers=headers
        )

    return call
