"""What /graphql cannot read is a 400 problem, never a 500 and never text/plain.

A request that is not one GraphQL operation is refused before any GraphQL work, as
``application/problem+json`` naming what was wrong; a readable operation that GraphQL
refuses stays a GraphQL response with ``errors``.
"""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from service.graphql.http import MAX_JSON_DEPTH
from service.handoffs.models import HandoffEvent
from tests.factories import make_handoff
from tests.problems import assert_problem

JSON = {"content-type": "application/json"}


def nested(depth: int) -> str:
    return '{"a":' * depth + "1" + "}" * depth


async def post_raw(client, headers, body: bytes, content_type: str = "application/json"):
    return await client.post(
        "/graphql", content=body, headers={**headers, "content-type": content_type}
    )


def refused(response, loc: list[str] | None = None) -> dict:
    body = assert_problem(response, 400, "bad_graphql_request")
    assert body["instance"] == "/graphql"
    if loc is not None:
        assert body["errors"][0]["loc"] == loc
    return body


class TestBodiesThatAreNotJson:
    async def test_invalid_utf8_is_a_400_problem(self, client, keys):
        response = await post_raw(client, await keys.reader(), b'{"query": "{ units \xff }"}')
        body = refused(response, ["body"])
        assert "UTF-8" in body["detail"]

    async def test_an_escaped_lone_surrogate_is_a_400_problem(self, client, keys):
        body = b'{"query": "query($k: String!) { unit(key: $k) { key } }", "variables": {"k": "\\ud800"}}'
        refused(await post_raw(client, await keys.reader(), body), ["body"])

    @pytest.mark.parametrize("body", [b"{", b"", b"NaN", b'{"query": "{ units }",}'])
    async def test_malformed_json_is_a_400_problem(self, client, keys, body):
        response = await post_raw(client, await keys.reader(), body)
        assert "not valid JSON" in refused(response, ["body"])["detail"]

    async def test_without_a_key_it_is_still_a_401(self, client):
        response = await post_raw(client, {}, b'"query"')
        assert_problem(response, 401, "unauthenticated")


class TestDeepNesting:
    async def test_variables_nested_1000_deep_are_a_400_problem(self, client, keys):
        body = '{"query": "{ __typename }", "variables": {"v": ' + nested(1000) + "}}"
        response = await post_raw(client, await keys.reader(), body.encode())
        assert "deeper than" in refused(response, ["body"])["detail"]

    async def test_arrays_nested_1000_deep_are_a_400_problem(self, client, keys):
        body = '{"query": "{ __typename }", "variables": {"v": ' + "[" * 1000 + "]" * 1000 + "}}"
        refused(await post_raw(client, await keys.reader(), body.encode()), ["body"])

    async def test_just_past_the_limit_is_refused(self, client, keys):
        # The body and variables are two levels: the value may nest MAX_JSON_DEPTH - 2.
        reader = await keys.reader()
        query = '{"query": "{ __typename }", "variables": {"v": '
        at_limit = await post_raw(client, reader, (query + nested(MAX_JSON_DEPTH - 2) + "}}").encode())
        assert at_limit.status_code == 200
        assert at_limit.json() == {"data": {"__typename": "Query"}}
        over = await post_raw(client, reader, (query + nested(MAX_JSON_DEPTH - 1) + "}}").encode())
        refused(over, ["body"])

    async def test_a_deeply_nested_query_is_a_graphql_syntax_error(self, client, keys):
        query = "{ unit(key: " + "[" * 1000 + "]" * 1000 + ") { key } }"
        response = await client.post("/graphql", json={"query": query}, headers=await keys.reader())
        assert response.status_code == 200
        assert "nested too deeply" in response.json()["errors"][0]["message"]


class TestBodiesThatAreNotOneOperation:
    @pytest.mark.parametrize(
        ("body", "kind"),
        [(b'"query"', "a string"), (b"1", "a number"), (b"null", "null"), (b"true", "a boolean")],
    )
    async def test_a_json_value_that_is_not_an_object_is_a_400_problem(
        self, client, keys, body, kind
    ):
        response = await post_raw(client, await keys.reader(), body)
        detail = refused(response, ["body"])["detail"]
        assert detail == f"the body must be a JSON object with a query, not {kind}"

    async def test_a_batch_is_a_400_problem(self, client, keys):
        response = await client.post(
            "/graphql", json=[{"query": "{ __typename }"}], headers=await keys.reader()
        )
        assert "batching is off" in refused(response, ["body"])["detail"]

    async def test_an_unsupported_content_type_is_a_400_problem(self, client, keys):
        response = await post_raw(client, await keys.reader(), b"{ units { items { key } } }", "text/plain")
        body = refused(response, ["header", "content-type"])
        assert body["detail"] == "send the operation as application/json, not text/plain"

    async def test_no_content_type_is_a_400_problem(self, client, keys):
        response = await client.post(
            "/graphql", content=b'{"query": "{ __typename }"}', headers=await keys.reader()
        )
        refused(response, ["header", "content-type"])

    async def test_a_charset_parameter_is_fine(self, client, keys):
        response = await post_raw(
            client, await keys.reader(), b'{"query": "{ __typename }"}', "application/json; charset=utf-8"
        )
        assert response.json() == {"data": {"__typename": "Query"}}

    @pytest.mark.parametrize(
        ("payload", "loc", "detail"),
        [
            ({}, ["body", "query"], "query is missing: send the GraphQL document as a string"),
            ({"query": 1}, ["body", "query"], "query is a number: send the GraphQL document as a string"),
            (
                {"query": "{ __typename }", "variables": [1]},
                ["body", "variables"],
                "variables must be a JSON object, not an array",
            ),
            (
                {"query": "{ __typename }", "variables": "{}"},
                ["body", "variables"],
                "variables must be a JSON object, not a string",
            ),
            (
                {"query": "{ __typename }", "extensions": 3},
                ["body", "extensions"],
                "extensions must be a JSON object, not a number",
            ),
            (
                {"query": "{ __typename }", "operationName": 5},
                ["body", "operationName"],
                "operationName must be a string, not a number",
            ),
        ],
    )
    async def test_a_member_of_the_wrong_type_is_a_400_problem(
        self, client, keys, payload, loc, detail
    ):
        response = await client.post("/graphql", json=payload, headers=await keys.reader())
        assert refused(response, loc)["detail"] == detail

    async def test_an_empty_query_is_a_400_problem(self, client, keys):
        response = await client.post("/graphql", json={"query": ""}, headers=await keys.reader())
        assert "query is empty" in refused(response)["detail"]

    async def test_an_unknown_operation_name_is_a_400_problem(self, client, keys):
        response = await client.post(
            "/graphql",
            json={"query": "query A { __typename }", "operationName": "B"},
            headers=await keys.reader(),
        )
        assert 'Unknown operation named "B"' in refused(response)["detail"]

    async def test_null_members_are_fine(self, client, keys):
        payload = {"query": "{ __typename }", "variables": None, "operationName": None, "extensions": None}
        response = await client.post("/graphql", json=payload, headers=await keys.reader())
        assert response.json() == {"data": {"__typename": "Query"}}


class TestGet:
    @pytest.fixture(autouse=True)
    def _get_queries_on(self, settings):
        if not settings.graphql_ide_enabled:
            pytest.skip("GET queries are off in this environment")

    async def test_a_mutation_over_get_is_a_400_problem_and_writes_nothing(
        self, client, keys, session
    ):
        await make_handoff(session, key="h")
        mutation = (
            'mutation { upsertHandoffEvent(handoff: "h", externalId: "e1", '
            'input: {startedAt: "2026-11-01T09:00:00Z", dueAt: "2026-11-01T10:00:00Z"}) { created } }'
        )
        response = await client.get(
            "/graphql", params={"query": mutation}, headers=await keys.writer()
        )
        body = refused(response)
        assert body["detail"] == "mutations are not allowed when using GET: send it with POST"
        assert await session.scalar(select(func.count()).select_from(HandoffEvent)) == 0

    async def test_variables_that_are_not_json_are_a_400_problem(self, client, keys):
        params = {"query": "{ __typename }", "variables": "{"}
        response = await client.get("/graphql", params=params, headers=await keys.reader())
        assert "query.variables is not valid JSON" in refused(response, ["query", "variables"])["detail"]

    async def test_variables_that_are_not_an_object_are_a_400_problem(self, client, keys):
        params = {"query": "{ __typename }", "variables": "[1]"}
        response = await client.get("/graphql", params=params, headers=await keys.reader())
        refused(response, ["query", "variables"])

    async def test_deep_variables_are_a_400_problem(self, client, keys):
        params = {"query": "{ __typename }", "variables": '{"v": ' + nested(1000) + "}"}
        response = await client.get("/graphql", params=params, headers=await keys.reader())
        refused(response, ["query", "variables"])

    async def test_a_query_over_get_still_answers(self, client, keys):
        params = {"query": "{ __typename }", "variables": "{}"}
        response = await client.get("/graphql", params=params, headers=await keys.reader())
        assert response.json() == {"data": {"__typename": "Query"}}


class TestOtherMethods:
    @pytest.mark.parametrize("method", ["PUT", "PATCH", "DELETE", "OPTIONS"])
    async def test_another_method_is_a_405_problem_naming_get_and_post(self, client, keys, method):
        response = await client.request(method, "/graphql", headers=await keys.reader())
        body = assert_problem(response, 405, "method_not_allowed")
        assert response.headers["allow"] == "GET, POST"
        assert body["detail"] == f"{method} is not supported here; use GET, POST"
