"""What a partner key sees and may name: the same through REST and GraphQL, and nothing it
may not see is told apart from what does not exist.

The courier (a partner) has the agreement ``courier-sla``; the rival (another partner) has
``rival-sla``. A handoff from the rival to the courier runs under the rival's agreement and
serves an internal touchpoint; the courier's joint goal names that touchpoint and contributes
to an internal goal.
"""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from service.goals import service as goals_service
from service.goals.models import Goal, GoalContribution, GoalTouchpoint
from service.goals.schemas import JointGoalCreate
from tests.factories import (
    SYSTEM,
    make_agreement,
    make_goal,
    make_handoff,
    make_joint_goal,
    make_journey,
    make_metric,
    make_touchpoint,
    make_unit,
)
from tests.problems import assert_problem

PROPOSE = "/v1/partner-agreements/courier-sla/joint-goals"


async def count(session, model) -> int:
    return await session.scalar(select(func.count()).select_from(model))


def proposal(**overrides) -> dict:
    return {
        "key": "faster",
        "title": "Faster parcels",
        "owner": "courier",
        "metric": "on-time",
        "direction": "increase",
        "kind": "means",
        **overrides,
    }


@pytest.fixture
async def world(session):
    for key, kind in (("service", "department"), ("ops", "department"),
                      ("courier", "partner"), ("rival", "partner")):
        await make_unit(session, key=key, kind=kind)
    for key in ("on-time", "secret", "rival-metric"):
        await make_metric(session, key=key)
    await make_journey(session, key="j", stages=["a"])
    await make_touchpoint(session, key="door", journey="j", stage="a", owner="ops")
    await make_agreement(session, key="courier-sla", partner="courier", internal_owner="service",
                         status="active")
    await make_agreement(session, key="rival-sla", partner="rival", internal_owner="service",
                         status="active")
    await make_goal(session, key="internal-goal", owner="service", metric="secret")
    await make_joint_goal(session, "rival-sla", key="rival-goal", owner="rival",
                          metric="rival-metric")
    await goals_service.propose_joint_goal(
        session,
        SYSTEM,
        "courier-sla",
        JointGoalCreate(key="delivered", title="Delivered", owner="courier", metric="on-time",
                        direction="increase", kind="ends", touchpoints=["door"],
                        contributes_to=["internal-goal"]),
    )
    await make_handoff(session, key="h-shared", from_unit="rival", to_unit="courier",
                       touchpoint="door", agreement="rival-sla")


# Item: references a partner sends resolve through its own scope ------------------------------


class TestAPartnerProposalCannotProbe:
    async def test_a_key_taken_elsewhere_answers_like_a_free_one(self, client, keys, session, world):
        headers = await keys.partner("courier")
        taken = await client.post(PROPOSE, json=proposal(key="rival-goal"), headers=headers)
        free = await client.post(PROPOSE, json=proposal(key="never-used"), headers=headers)
        assert (taken.status_code, free.status_code) == (201, 201), taken.text
        assert taken.json()["key"] == "courier.rival-goal"
        assert free.json()["key"] == "courier.never-used"
        internal = await client.post(PROPOSE, json=proposal(key="internal-goal"), headers=headers)
        assert internal.status_code == 201, internal.text
        # the other partner's goal is untouched
        rival = await client.get("/v1/goals/rival-goal", headers=await keys.reader())
        assert rival.json()["agreement"] == "rival-sla"

    async def test_its_own_key_again_is_409(self, client, keys, session, world):
        headers = await keys.partner("courier")
        first = await client.post(PROPOSE, json=proposal(), headers=headers)
        assert first.status_code == 201, first.text
        again = await client.post(PROPOSE, json=proposal(title="Again"), headers=headers)
        assert_problem(again, 409, "key_exists")
        assert (await client.get("/v1/goals/courier.faster", headers=headers)).status_code == 200

    async def test_the_company_cannot_take_a_partners_key_space(self, client, keys, session, world):
        response = await client.post(
            "/v1/goals",
            json={**proposal(key="courier.later", owner="service"), "agreement": None},
            headers=await keys.writer(),
        )
        body = assert_problem(response, 422, "invalid")
        assert body["errors"][0]["loc"] == ["body", "key"]

    @pytest.mark.parametrize(
        ("field", "hidden", "absent"),
        [
            ("owner", "service", "nowhere"),
            ("owner", "rival", "nowhere"),
            ("metric", "secret", "nowhere"),
            ("metric", "rival-metric", "nowhere"),
            ("touchpoints", ["door"], ["nowhere"]),
            ("contributes_to", ["internal-goal"], ["nowhere"]),
            ("contributes_to", ["rival-goal"], ["nowhere"]),
        ],
    )
    async def test_what_it_cannot_see_answers_like_what_does_not_exist(
        self, client, keys, session, world, field, hidden, absent
    ):
        headers = await keys.partner("courier")
        goals, touchpoints, links = (
            await count(session, Goal), await count(session, GoalTouchpoint),
            await count(session, GoalContribution),
        )
        refused = await client.post(PROPOSE, json=proposal(**{field: hidden}), headers=headers)
        missing = await client.post(PROPOSE, json=proposal(**{field: absent}), headers=headers)
        first = assert_problem(refused, 422, "unknown_reference")
        second = assert_problem(missing, 422, "unknown_reference")
        name = hidden[0] if isinstance(hidden, list) else hidden
        gone = absent[0] if isinstance(absent, list) else absent
        assert first["errors"][0]["loc"] == second["errors"][0]["loc"] == ["body", field]
        assert set(first) == set(second)
        assert first["detail"].replace(name, "K") == second["detail"].replace(gone, "K")
        assert (
            await count(session, Goal), await count(session, GoalTouchpoint),
            await count(session, GoalContribution),
        ) == (goals, touchpoints, links)

    async def test_a_metric_of_its_agreements_goals_may_be_named(self, client, keys, world):
        response = await client.post(PROPOSE, json=proposal(), headers=await keys.partner("courier"))
        assert response.status_code == 201, response.text
        assert response.json()["metric"] == "on-time"

    async def test_the_partner_sees_the_metrics_it_may_name(self, client, keys, world):
        headers = await keys.partner("courier")
        listed = (await client.get("/v1/metrics", headers=headers)).json()["items"]
        assert [m["key"] for m in listed] == ["on-time"]
        assert (await client.get("/v1/metrics/secret", headers=headers)).status_code == 404


# Item: REST and GraphQL show a partner the same ----------------------------------------------

GOAL = """{ goal(key: "delivered") { key owner { key } metric { key } touchpoints { key }
  contributesTo { key } agreement { key } } }"""
HANDOFF = """{ handoff(key: "h-shared") { key fromUnit { key } toUnit { key }
  touchpoint { key } agreement { key } } }"""
AGREEMENT = """{ partnerAgreement(key: "courier-sla") { key partner { key }
  internalOwner { key } } }"""


def _key(value):
    return None if value is None else value["key"]


async def _both(client, headers, path, query):
    rest = await client.get(path, headers=headers)
    assert rest.status_code == 200, rest.text
    graph = await client.post("/graphql", json={"query": query}, headers=headers)
    body = graph.json()
    assert "errors" not in body, body
    return rest.json(), next(iter(body["data"].values()))


class TestBothDoorsShowTheSame:
    @pytest.mark.parametrize(
        ("caller", "expected"),
        [
            ("partner", {"owner": "courier", "metric": "on-time", "touchpoints": [],
                         "contributes_to": [], "agreement": "courier-sla"}),
            ("writer", {"owner": "courier", "metric": "on-time", "touchpoints": ["door"],
                        "contributes_to": ["internal-goal"], "agreement": "courier-sla"}),
        ],
    )
    async def test_a_goal(self, client, keys, world, caller, expected):
        headers = await (keys.partner("courier") if caller == "partner" else keys.writer())
        rest, graph = await _both(client, headers, "/v1/goals/delivered", GOAL)
        shown = {
            "owner": _key(graph["owner"]),
            "metric": _key(graph["metric"]),
            "touchpoints": [t["key"] for t in graph["touchpoints"]],
            "contributes_to": [g["key"] for g in graph["contributesTo"]],
            "agreement": _key(graph["agreement"]),
        }
        assert {field: rest[field] for field in expected} == shown == expected

    @pytest.mark.parametrize(
        ("caller", "expected"),
        [
            ("partner", {"from_unit": None, "to_unit": "courier", "touchpoint": None,
                         "agreement": None}),
            ("writer", {"from_unit": "rival", "to_unit": "courier", "touchpoint": "door",
                        "agreement": "rival-sla"}),
        ],
    )
    async def test_a_handoff(self, client, keys, world, caller, expected):
        headers = await (keys.partner("courier") if caller == "partner" else keys.writer())
        rest, graph = await _both(client, headers, "/v1/handoffs/h-shared", HANDOFF)
        shown = {
            "from_unit": _key(graph["fromUnit"]),
            "to_unit": _key(graph["toUnit"]),
            "touchpoint": _key(graph["touchpoint"]),
            "agreement": _key(graph["agreement"]),
        }
        assert {field: rest[field] for field in expected} == shown == expected

    @pytest.mark.parametrize(
        ("caller", "expected"),
        [
            ("partner", {"partner": "courier", "internal_owner": None}),
            ("writer", {"partner": "courier", "internal_owner": "service"}),
        ],
    )
    async def test_an_agreement(self, client, keys, world, caller, expected):
        headers = await (keys.partner("courier") if caller == "partner" else keys.writer())
        rest, graph = await _both(client, headers, "/v1/partner-agreements/courier-sla", AGREEMENT)
        shown = {"partner": _key(graph["partner"]), "internal_owner": _key(graph["internalOwner"])}
        assert {field: rest[field] for field in expected} == shown == expected

    async def test_lists_mask_the_same_way(self, client, keys, world):
        headers = await keys.partner("courier")
        goals = (await client.get("/v1/goals", headers=headers)).json()["items"]
        assert [(g["key"], g["touchpoints"], g["contributes_to"]) for g in goals] == [
            ("delivered", [], [])
        ]
        handoffs = (await client.get("/v1/handoffs", headers=headers)).json()["items"]
        assert [(h["from_unit"], h["agreement"]) for h in handoffs] == [(None, None)]
        joint = (await client.get(PROPOSE, headers=headers)).json()["items"]
        assert [g["contributes_to"] for g in joint] == [[]]
