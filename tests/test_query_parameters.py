"""Query parameters a route does not take are refused: a typo is an error, not a no-op."""

from __future__ import annotations

from tests.factories import make_unit
from tests.problems import assert_problem


async def test_an_unknown_query_parameter_is_422_naming_it(client, keys, session):
    await make_unit(session, key="ops", kind="team")
    response = await client.get("/v1/units?knid=team", headers=await keys.reader())
    body = assert_problem(response, 422, "invalid")
    assert body["errors"] == [{"loc": ["query", "knid"], "msg": "unknown parameter"}]


async def test_known_parameters_still_work(client, keys, session):
    await make_unit(session, key="ops", kind="team")
    response = await client.get("/v1/units?kind=team&limit=5", headers=await keys.reader())
    assert [u["key"] for u in response.json()["items"]] == ["ops"]


async def test_without_a_key_the_answer_is_401_first(client):
    response = await client.get("/v1/units?api_key=ss_whatever")
    assert_problem(response, 401, "unauthenticated")


async def test_operations_endpoints_need_neither_key_nor_strictness(client):
    assert (await client.get("/healthz?probe=1")).status_code == 200
