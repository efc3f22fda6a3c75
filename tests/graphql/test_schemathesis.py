"""Property-based tests of the GraphQL schema from the committed SDL, against a real server.

Schemathesis generates queries and mutations for every root field; none may end in a server
error, and none may hit an unexpected (masked) error: every refusal is a domain error with
its code, or a GraphQL validation error.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from tests.servers import Server

pytestmark = pytest.mark.e2e  # starts a real server or subprocess

ROOT = Path(__file__).resolve().parent.parent.parent
schema = schemathesis.graphql.from_path(ROOT / "openapi" / "schema.graphql")


@schema.parametrize()
@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_graphql_answers_every_generated_query(case, live_server: Server) -> None:
    response = case.call(
        base_url=f"{live_server.base_url}/graphql",
        headers={"Authorization": f"Bearer {live_server.admin_key}"},
        timeout=30,
    )
    assert response.status_code < 500, response.text
    body = response.json()
    unexpected = [e for e in body.get("errors") or [] if e.get("message") == "Unexpected error."]
    assert unexpected == [], f"{case.body}: {unexpected}"
