"""The dashboard's journey view in one query, with a constant number of SQL statements."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from service.api_keys.service import SYSTEM
from service.goals import service as goals_service
from service.goals.schemas import GoalCreate
from service.metrics import service as metrics_service
from service.metrics.schemas import MetricCreate, MetricRelationCreate
from tests.factories import make_event, make_handoff, make_journey, make_touchpoint, make_unit

RECENT = (datetime.now(UTC) - timedelta(days=3)).isoformat()  # inside the default window

JOURNEY_VIEW = """
query JourneyView($key: String!) {
  journey(key: $key) {
    key
    score { value }
    touchpoints {
      key
      momentOfTruth
      owner { key ring }
      score { value components { name value count } }
      upstream {
        depth
        handoff {
          key
          score { value }
          fromUnit {
            key
            goals { key conflicts { items { severity metricPath status } } }
          }
        }
      }
    }
  }
}
"""


async def build_organisation(session, touchpoints: int) -> None:
    """``touchpoints`` touchpoints, each served by two handoffs from units with goals that
    duel over the touchpoint."""
    await make_journey(session, key="j", stages=["s"])
    await metrics_service.create(session, SYSTEM, MetricCreate(key="speed", name="S", kind="operational"))
    await metrics_service.create(session, SYSTEM, MetricCreate(key="care", name="C", kind="survey_score"))
    await metrics_service.create_relation(
        session, SYSTEM, MetricRelationCreate(from_metric="speed", to_metric="care", effect=1)
    )
    for t in range(touchpoints):
        owner = await make_unit(session, key=f"front-{t}")
        await make_touchpoint(session, key=f"t{t}", journey="j", stage="s", owner=owner.key,
                              moment_of_truth=t % 2 == 0)
        for side, direction, metric in (("a", "decrease", "speed"), ("b", "increase", "care")):
            provider = await make_unit(session, key=f"back-{t}-{side}")
            handoff = await make_handoff(session, key=f"h{t}{side}", from_unit=provider.key,
                                         to_unit=owner.key, touchpoint=f"t{t}")
            for n in range(3):
                await make_event(session, handoff=handoff.key, external_id=f"e{n}",
                                 started_at=RECENT, delivered_at=RECENT, quality=4)
            await goals_service.create(
                session,
                SYSTEM,
                GoalCreate(key=f"g{t}{side}", title="G", owner=provider.key, metric=metric,
                           direction=direction, kind="means", touchpoints=[f"t{t}"],
                           incentive_weight=0.1 if side == "a" else 0.0),
            )
    await session.commit()


async def run_view(gql, keys, count_statements) -> tuple[dict, int]:
    reader = await keys.reader()
    with count_statements() as statements:
        response = await gql(JOURNEY_VIEW, reader, {"key": "j"})
    body = response.json()
    assert response.status_code == 200 and "errors" not in body, body
    return body["data"]["journey"], len(statements)


class TestJourneyView:
    async def test_answers_the_whole_cross_silo_view(self, gql, keys, session, count_statements):
        await build_organisation(session, touchpoints=2)
        journey, _ = await run_view(gql, keys, count_statements)
        first = journey["touchpoints"][0]
        assert first["owner"] == {"key": "front-0", "ring": 1}
        assert [u["depth"] for u in first["upstream"]] == [1, 1]
        provider = first["upstream"][0]["handoff"]["fromUnit"]
        assert provider["goals"][0]["conflicts"]["items"][0]["severity"] == 3  # MoT + one incentive
        assert first["upstream"][0]["handoff"]["score"]["value"] is not None
        assert {c["name"] for c in first["score"]["components"]} == {
            "chain_health",
            "customer_satisfaction",
        }

    async def test_statement_count_does_not_grow_with_the_answer(
        self, gql, keys, session, connection, count_statements
    ):
        await keys.reader()  # created before the savepoint, so it outlives the rollback
        savepoint = await connection.begin_nested()
        await build_organisation(session, touchpoints=3)
        small_view, small = await run_view(gql, keys, count_statements)
        await savepoint.rollback()

        await build_organisation(session, touchpoints=30)
        large_view, large = await run_view(gql, keys, count_statements)

        assert len(small_view["touchpoints"]) == 3 and len(large_view["touchpoints"]) == 30
        assert small == large, f"{small} statements for 3 touchpoints, {large} for 30"


NESTED_LISTS = """
{
  journeys { items { key score { value } } }
  touchpoints { items { key feedback(first: 2) { items { score } nextCursor } } }
  handoffs { items { key reviews(first: 2) { items { quality } nextCursor } } }
  goals { items { key checkIns(first: 2) { items { value } nextCursor } } }
}
"""


async def build_lists(session, count: int) -> None:
    """``count`` journeys, each with a touchpoint rated three times, a handoff reviewed three
    times and a goal checked in three times: three per parent, so every first page of two
    has a next page."""
    from service.goals.schemas import CheckInCreate
    from tests.factories import make_feedback, make_review

    for n in range(count):
        await make_journey(session, key=f"lj{n}", stages=["s"])
        owner = await make_unit(session, key=f"lu{n}")
        await make_touchpoint(session, key=f"lt{n}", journey=f"lj{n}", stage="s", owner=owner.key)
        await make_handoff(session, key=f"lh{n}", to_unit=owner.key, touchpoint=f"lt{n}")
        await metrics_service.create(
            session, SYSTEM, MetricCreate(key=f"lm{n}", name="M", kind="operational")
        )
        await goals_service.create(
            session,
            SYSTEM,
            GoalCreate(key=f"lg{n}", title="G", owner=owner.key, metric=f"lm{n}",
                       direction="increase", kind="ends"),
        )
        for r in range(3):
            at = f"2026-03-0{r + 1}T12:00:00+00:00"
            await make_feedback(session, touchpoint=f"lt{n}", at=at, score=r + 2)
            await make_review(session, f"lh{n}", at=at)
            await goals_service.add_check_in(session, SYSTEM, f"lg{n}", CheckInCreate(at=at, value=r))
    await session.commit()


async def test_nested_lists_and_journey_scores_are_batched(
    gql, keys, session, connection, count_statements
):
    """Journey.score, Touchpoint.feedback, Handoff.reviews and Goal.checkIns go through
    DataLoaders: 2 parents or 6, the same statements; each first page ends with a cursor
    its parent's own listing continues from."""
    reader = await keys.reader()  # created before the savepoint, so it outlives the rollback
    counts = []
    for size in (2, 6):
        savepoint = await connection.begin_nested() if size == 2 else None
        await build_lists(session, size)
        with count_statements() as statements:
            response = await gql(NESTED_LISTS, reader)
        body = response.json()
        assert "errors" not in body, body
        data = body["data"]
        assert len(data["journeys"]["items"]) == size
        for touchpoint in data["touchpoints"]["items"]:
            assert [f["score"] for f in touchpoint["feedback"]["items"]] == [2, 3]
            assert touchpoint["feedback"]["nextCursor"]
        for handoff in data["handoffs"]["items"]:
            assert len(handoff["reviews"]["items"]) == 2 and handoff["reviews"]["nextCursor"]
        for goal in data["goals"]["items"]:
            assert [c["value"] for c in goal["checkIns"]["items"]] == [0, 1]
            rest = await gql(
                f'{{ goal(key: "{goal["key"]}") {{ checkIns(first: 2, after: '
                f'"{goal["checkIns"]["nextCursor"]}") {{ items {{ value }} nextCursor }} }} }}',
                reader,
            )
            assert rest.json()["data"]["goal"]["checkIns"] == {
                "items": [{"value": 2.0}], "nextCursor": None
            }
        counts.append(len(statements))
        if savepoint is not None:
            await savepoint.rollback()
    assert counts[0] == counts[1], f"{counts[0]} statements for 2 parents, {counts[1]} for 6"


async def test_a_goals_conflicts_are_paged_in_the_listing_order(gql, client, keys, session):
    """Goal.conflicts is a nested page: the first from the batched loader, the next from
    the cursor, together the goal's conflicts in the order of GET /v1/conflicts."""
    await make_journey(session, key="j", stages=["s"])
    await make_unit(session, key="hub-owner")
    await make_touchpoint(session, key="t", journey="j", stage="s", owner="hub-owner",
                          moment_of_truth=True)
    await metrics_service.create(session, SYSTEM, MetricCreate(key="speed", name="S", kind="operational"))
    await metrics_service.create(session, SYSTEM, MetricCreate(key="care", name="C", kind="survey_score"))
    await metrics_service.create_relation(
        session, SYSTEM, MetricRelationCreate(from_metric="speed", to_metric="care", effect=1)
    )
    await goals_service.create(session, SYSTEM, GoalCreate(
        key="hub", title="G", owner="hub-owner", metric="speed", direction="decrease",
        kind="means", touchpoints=["t"], incentive_weight=0.2))
    for n in range(3):
        await make_unit(session, key=f"rival-{n}")
        await goals_service.create(session, SYSTEM, GoalCreate(
            key=f"rival{n}", title="G", owner=f"rival-{n}", metric="care", direction="increase",
            kind="means", touchpoints=["t"] if n else [], incentive_weight=0.1 * n))
    await session.commit()
    reader = await keys.reader()

    listing = (await client.get("/v1/conflicts", headers=reader)).json()["items"]
    expected = [
        {"id": c["id"], "severity": c["severity"]}
        for c in listing
        if "hub" in {g["key"] for g in c["goals"]}
    ]
    assert len(expected) == 3 and len({c["severity"] for c in expected}) > 1

    query = """query($after: String) { goal(key: "hub") {
        conflicts(first: 2, after: $after) { items { id severity } nextCursor } } }"""
    first = (await gql(query, reader, {"after": None})).json()["data"]["goal"]["conflicts"]
    assert first["items"] == expected[:2] and first["nextCursor"]
    second = (await gql(query, reader, {"after": first["nextCursor"]})).json()
    assert second["data"]["goal"]["conflicts"] == {"items": expected[2:], "nextCursor": None}
