"""Key arguments pass the same rule as REST path keys, before any resolver runs.

A NUL byte in a key used to reach PostgreSQL, which refuses it: a masked internal error.
Now every key (and external id) argument is checked against core/fields.py's ``Key`` /
``ExternalId``, literal or variable, and a bad one refuses the operation with an
``invalid`` error naming the argument.
"""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from service.core.fields import EXTERNAL_ID_PATTERN, KEY_PATTERN
from service.graphql.arguments import RULE
from service.graphql.schema import build_schema
from service.handoffs.models import HandoffEvent
from tests.factories import make_handoff, make_unit

BAD_KEYS = ["a\u0000b", "Upper", "a b", "x" * 65, "", "\u00e9t\u00e9", "-lead"]


def refused(response, argument: str = "key") -> dict:
    assert response.status_code == 200
    body = response.json()
    assert body["data"] is None, body
    [error] = body["errors"]
    assert error["extensions"]["code"] == "invalid"
    assert error["extensions"]["errors"][0]["loc"] == [argument]
    assert error["message"].startswith(f"{argument}: ")
    assert error["message"] != "Unexpected error."
    return error


class TestKeyLiterals:
    @pytest.mark.parametrize("key", BAD_KEYS)
    async def test_a_key_rest_would_refuse_is_an_invalid_error(self, gql, keys, key):
        literal = key.replace("\u0000", "\\u0000")
        response = await gql(f'{{ unit(key: "{literal}") {{ key }} }}', await keys.reader())
        error = refused(response)
        assert KEY_PATTERN in error["message"]

    async def test_the_error_points_at_the_argument(self, gql, keys):
        error = refused(await gql('{ handoff(key: "a\\u0000b") { key } }', await keys.reader()))
        assert error["locations"] == [{"line": 1, "column": 11}]  # at `key:`

    async def test_a_nested_score_key_is_checked_too(self, gql, keys):
        response = await gql('{ scores { touchpoint(key: "a\\u0000b") { value } } }', await keys.reader())
        refused(response)

    async def test_a_case_ref_follows_the_external_id_rule(self, gql, keys):
        error = refused(await gql('{ case(ref: "a\\u0000b") { transfers } }', await keys.reader()), "ref")
        assert EXTERNAL_ID_PATTERN in error["message"]

    async def test_a_key_in_a_fragment_is_checked(self, gql, keys):
        query = '{ ...F } fragment F on Query { goal(key: "a\\u0000b") { key } }'
        refused(await gql(query, await keys.reader()))

    async def test_one_bad_key_refuses_the_whole_operation(self, gql, keys, session):
        await make_unit(session, key="ops")
        response = await gql(
            '{ ok: unit(key: "ops") { key } bad: unit(key: "a\\u0000b") { key } }', await keys.reader()
        )
        refused(response)

    async def test_a_valid_unknown_key_is_still_not_found(self, gql, keys):
        body = (await gql('{ unit(key: "nobody") { key } }', await keys.reader())).json()
        assert body["data"] == {"unit": None}
        assert body["errors"][0]["extensions"]["code"] == "not_found"


class TestKeyVariables:
    QUERY = "query($k: String!) { journey(key: $k) { key } }"

    async def test_a_nul_byte_in_a_variable_is_an_invalid_error(self, gql, keys):
        refused(await gql(self.QUERY, await keys.reader(), {"k": "a\u0000b"}))

    async def test_a_bad_default_value_is_checked(self, gql, keys):
        query = 'query($k: String! = "a\\u0000b") { journey(key: $k) { key } }'
        refused(await gql(query, await keys.reader()))

    async def test_a_variable_of_the_wrong_type_is_graphql_s_own_error(self, gql, keys):
        body = (await gql(self.QUERY, await keys.reader(), {"k": 5})).json()
        assert "String cannot represent" in body["errors"][0]["message"]


class TestMutationKeys:
    UPSERT = """
    mutation($handoff: String!, $id: String!) {
      upsertHandoffEvent(handoff: $handoff, externalId: $id, input: {startedAt: "2026-11-01T09:00:00Z"}) {
        created
      }
    }
    """

    async def test_a_bad_handoff_key_writes_nothing(self, gql, keys, session):
        await make_handoff(session, key="h", expected_within="PT4H")
        response = await gql(self.UPSERT, await keys.writer(), {"handoff": "h\u0000", "id": "e1"})
        refused(response, "handoff")
        assert await session.scalar(select(func.count()).select_from(HandoffEvent)) == 0

    async def test_a_bad_external_id_writes_nothing(self, gql, keys, session):
        await make_handoff(session, key="h", expected_within="PT4H")
        response = await gql(self.UPSERT, await keys.writer(), {"handoff": "h", "id": "e\u00001"})
        refused(response, "externalId")
        assert await session.scalar(select(func.count()).select_from(HandoffEvent)) == 0

    async def test_good_keys_still_write(self, gql, keys, session):
        await make_handoff(session, key="h", expected_within="PT4H")
        response = await gql(self.UPSERT, await keys.writer(), {"handoff": "h", "id": "e1"})
        assert response.json() == {"data": {"upsertHandoffEvent": {"created": True}}}


def test_every_key_argument_carries_the_rule(settings):
    """A new field taking a key cannot forget the rule: every argument named like a key does."""
    schema = build_schema(settings)._schema
    key_names = {"key", "ref", "handoff", "touchpoint", "agreement", "goal", "externalId"}
    missing = []
    for type_name in ("Query", "Mutation", "Scores"):
        for field_name, field in schema.get_type(type_name).fields.items():
            for arg_name, argument in field.args.items():
                definition = argument.extensions["strawberry-definition"]
                if arg_name in key_names and RULE not in definition.metadata:
                    missing.append(f"{type_name}.{field_name}({arg_name})")
    assert missing == []
