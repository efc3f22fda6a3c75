"""Hostile queries are refused with a clear error, before any database work."""

from __future__ import annotations

import pytest

from service.core.config import Environment
from service.graphql.schema import build_schema
from service.graphql.security import MAX_EXPANDED_FIELDS, MAX_FRAGMENT_DEPTH, MAX_PAGE_PRODUCT
from tests.factories import make_unit


def _refused(body: dict) -> list[str]:
    assert body.get("data") in (None, {}) or all(v is None for v in body["data"].values()), body
    return [e["message"] for e in body["errors"]]


async def _statements_after_auth(gql, headers, query, count_statements) -> tuple[dict, int]:
    with count_statements() as statements:
        response = await gql(query, headers)
    assert response.status_code == 200
    # The key lookup is the only query a refused request may cost (savepoints are the test
    # harness's own bookkeeping).
    work = [
        s for s in statements
        if "api_keys" not in s and not s.lstrip().upper().startswith(("SAVEPOINT", "RELEASE", "ROLLBACK"))
    ]
    return response.json(), len(work)


class TestLimits:
    async def test_an_over_deep_query_is_refused(self, gql, keys, count_statements):
        nested = "parent { " * 14 + "key" + " }" * 14
        body, statements = await _statements_after_auth(
            gql, await keys.reader(), f'{{ unit(key: "x") {{ {nested} }} }}', count_statements
        )
        assert any("exceeds maximum operation depth" in m for m in _refused(body))
        assert statements == 0

    async def test_an_alias_flood_is_refused(self, gql, keys, count_statements):
        aliases = " ".join(f'a{i}: unit(key: "u") {{ key }}' for i in range(40))
        body, statements = await _statements_after_auth(
            gql, await keys.reader(), f"{{ {aliases} }}", count_statements
        )
        assert any("aliases" in m for m in _refused(body))
        assert statements == 0

    async def test_a_token_flood_is_refused(self, gql, keys, count_statements):
        fields = " ".join("key" for _ in range(3000))
        body, statements = await _statements_after_auth(
            gql, await keys.reader(), f"{{ units {{ items {{ {fields} }} }} }}", count_statements
        )
        assert any("token" in m.lower() for m in _refused(body))
        assert statements == 0

    async def test_an_oversized_page_is_refused(self, gql, keys, count_statements):
        body, statements = await _statements_after_auth(
            gql, await keys.reader(), "{ units(first: 1000) { items { key } } }", count_statements
        )
        assert body["errors"][0]["extensions"]["code"] == "page_too_large"
        assert body["data"] is None
        assert statements == 0

    @pytest.mark.parametrize("first", [0, -5, 501])
    async def test_page_sizes_outside_the_bounds_are_refused(self, gql, keys, first):
        body = (await gql(f"{{ handoffs(first: {first}) {{ items {{ key }} }} }}", await keys.reader())).json()
        assert body["errors"][0]["extensions"]["code"] == "page_too_large"


    async def test_a_nested_page_over_the_nested_maximum_is_refused(self, gql, keys, session):
        await make_unit(session, key="u")
        query = '{ handoff(key: "h") { events(first: 101) { items { dueAt } } } }'
        body = (await gql(query, await keys.reader())).json()
        assert body["errors"][0]["extensions"]["code"] in {"page_too_large", "not_found"}

    async def test_get_queries_are_off_unless_enabled(self, client, keys, settings):
        response = await client.get("/graphql?query={units{items{key}}}", headers=await keys.reader())
        if settings.graphql_ide_enabled:
            assert response.status_code == 200
        else:
            assert response.status_code in (404, 405)


class TestNestedPageCost:
    """Nested pages multiply; over MAX_PAGE_PRODUCT rows the query is refused, once."""

    @staticmethod
    def _costly(body: dict) -> list[dict]:
        _refused(body)
        errors = body["errors"]
        assert all(e["extensions"]["code"] == "query_too_costly" for e in errors), errors
        return errors

    async def test_nested_pages_that_multiply_too_far_are_refused(
        self, gql, keys, count_statements
    ):
        query = "{ handoffs(first: 500) { items { events(first: 100) { items { dueAt } } } } }"
        body, statements = await _statements_after_auth(
            gql, await keys.reader(), query, count_statements
        )
        assert statements == 0
        [error] = self._costly(body)
        assert error["message"] == (
            "handoffs(first: 500) × events(first: 100) could return up to 50,000 rows; "
            "at most 10,000 are allowed: ask for smaller pages"
        )
        assert error["locations"] == [{"line": 1, "column": 34}]
        assert error["extensions"] == {
            "code": "query_too_costly", "cost": 50_000, "maximum": MAX_PAGE_PRODUCT
        }

    async def test_fields_under_the_costly_page_are_not_reported_again(self, gql, keys):
        query = (
            "{ handoffs(first: 500) { items { events(first: 100) { items { dueAt status "
            "handoff { reviews(first: 100) { items { needs } } } } } } } }"
        )
        [error] = self._costly((await gql(query, await keys.reader())).json())
        assert error["message"].startswith("handoffs(first: 500) × events(first: 100) ")

    async def test_each_costly_page_is_named_once(self, gql, keys):
        query = (
            "{ handoffs(first: 500) { items { events(first: 100) { items { dueAt } } "
            "reviews(first: 100) { items { needs } } } } }"
        )
        errors = self._costly((await gql(query, await keys.reader())).json())
        assert [e["message"].split(" could")[0] for e in errors] == [
            "handoffs(first: 500) × events(first: 100)",
            "handoffs(first: 500) × reviews(first: 100)",
        ]

    async def test_defaults_and_variables_count(self, gql, keys):
        query = "query($n: Int) { handoffs(first: $n) { items { events { items { dueAt } } } } }"
        [error] = self._costly((await gql(query, await keys.reader(), {"n": 1})).json())
        assert error["message"].startswith(
            "handoffs(first: $n, counted as 500) × events(50 by default) could return up to 25,000"
        )

    async def test_a_page_inside_a_fragment_multiplies_with_the_spread(self, gql, keys):
        query = (
            "{ handoffs(first: 500) { ...Events } } "
            "fragment Events on HandoffPage { items { events(first: 100) { items { dueAt } } } }"
        )
        [error] = self._costly((await gql(query, await keys.reader())).json())
        assert error["extensions"]["cost"] == 50_000

    async def test_a_page_inside_an_inline_fragment_counts(self, gql, keys):
        query = (
            "{ handoffs(first: 500) { ... on HandoffPage { items { "
            "events(first: 100) { items { dueAt } } } } } }"
        )
        [error] = self._costly((await gql(query, await keys.reader())).json())
        assert error["extensions"]["cost"] == 50_000

    async def test_a_fragment_spread_twice_is_reported_once(self, gql, keys):
        query = (
            "{ handoffs(first: 500) { ...Events ...Events } } "
            "fragment Events on HandoffPage { items { events(first: 100) { items { dueAt } } } }"
        )
        assert len(self._costly((await gql(query, await keys.reader())).json())) == 1

    async def test_pages_within_the_limit_pass(self, gql, keys):
        query = "{ handoffs(first: 100) { items { events(first: 100) { items { dueAt } } } } }"
        body = (await gql(query, await keys.reader())).json()
        assert body == {"data": {"handoffs": {"items": []}}}


def _fragments(count: int, spreads_each: int) -> str:
    """A document whose fragment i spreads fragment i + 1 ``spreads_each`` times."""
    fragments = [
        f"fragment F{i} on Query {{ {' '.join([f'...F{i + 1}'] * spreads_each)} }}"
        for i in range(count)
    ]
    fragments.append(f"fragment F{count} on Query {{ __typename }}")
    return "{ ...F0 } " + " ".join(fragments)


class TestFragmentExpansion:
    """What a document expands to through its fragments is bounded, not only what it spells."""

    async def test_a_fragment_fan_out_is_refused_at_once(self, gql, keys, count_statements):
        """Refused by the expansion count before any limiter walks it (2^18 fields took the
        limiters seconds; the 10^15 document below would never end without the count)."""
        reader = await keys.reader()
        body, statements = await _statements_after_auth(
            gql, reader, _fragments(18, 2), count_statements
        )
        [error] = body["errors"]
        assert error["extensions"] == {"code": "query_too_large", "maximum": MAX_EXPANDED_FIELDS}
        assert "selects 262,144 fields" in error["message"]
        assert body["data"] is None
        assert statements == 0

    async def test_a_huge_fan_out_is_refused_too(self, gql, keys):
        body = (await gql(_fragments(15, 10), await keys.reader())).json()  # 10^15
        assert "more than a billion" in body["errors"][0]["message"]

    async def test_fragments_spread_too_deep_are_refused(self, gql, keys):
        body = (await gql(_fragments(MAX_FRAGMENT_DEPTH, 1), await keys.reader())).json()
        [error] = body["errors"]
        assert error["extensions"] == {"code": "query_too_large", "maximum": MAX_FRAGMENT_DEPTH}

    async def test_fragments_at_the_limits_answer(self, gql, keys):
        reader = await keys.reader()
        deep = (await gql(_fragments(MAX_FRAGMENT_DEPTH - 1, 1), reader)).json()
        assert deep == {"data": {"__typename": "Query"}}
        wide = (await gql(_fragments(12, 2), reader)).json()  # 4,096 fields
        assert wide == {"data": {"__typename": "Query"}}

    async def test_a_fragment_cycle_is_graphql_s_own_error(self, gql, keys):
        query = "{ ...A } fragment A on Query { ...B } fragment B on Query { ...A }"
        body = (await gql(query, await keys.reader())).json()
        assert any("Cannot spread fragment" in e["message"] for e in body["errors"])


class TestMaskedErrors:
    async def test_a_domain_error_keeps_its_code(self, gql, keys):
        body = (await gql('{ unit(key: "nobody") { key } }', await keys.reader())).json()
        assert body["data"] == {"unit": None}
        assert body["errors"][0]["extensions"]["code"] == "not_found"

    async def test_invalid_input_is_a_clear_error(self, gql, keys, session):
        await make_unit(session, key="a")
        query = (
            'mutation { upsertHandoffEvent(handoff: "h", externalId: "e", input: '
            '{startedAt: "2026-11-01T09:00:00"}) { created } }'
        )
        body = (await gql(query, await keys.writer())).json()
        error = body["errors"][0]
        assert error["extensions"]["code"] == "invalid"
        assert "timezone" in error["message"]


class TestProductionSchema:
    def test_introspection_and_suggestions_are_off_in_production(self, settings):
        production = settings.model_copy(update={"environment": Environment.production})
        schema = build_schema(production)
        result = schema.execute_sync("{ __schema { types { name } } }")
        assert result.errors and "introspection" in str(result.errors[0]).lower()
        typo = schema.execute_sync("{ unitz { key } }")
        assert typo.errors and "Did you mean" not in str(typo.errors[0])
