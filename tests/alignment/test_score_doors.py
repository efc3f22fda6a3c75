"""One path per score: whichever door asks, a subject's score is the same, field by field.

REST's single score, REST's list item and GraphQL (top-level ``scores`` and the nested
``score`` of the subject) must agree on value, reason, method, window, components and
details for the same window.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.factories import (
    make_agreement,
    make_event,
    make_goal,
    make_handoff,
    make_journey,
    make_metric,
    make_review,
    make_touchpoint,
    make_unit,
)

AS_OF = datetime(2026, 3, 20, tzinfo=UTC)
WINDOW = {"from": "2026-03-01T00:00:00+00:00", "to": "2026-04-01T00:00:00+00:00",
          "as_of": AS_OF.isoformat()}
GQL_WINDOW = f'from: "{WINDOW["from"]}", to: "{WINDOW["to"]}", asOf: "{WINDOW["as_of"]}"'
SCORE_FIELDS = """
    value reason method
    window { from to asOf }
    components { name value count weight reason extra }
    details
"""


@pytest.fixture
async def org(session):
    """A courier partner and two departments; handoffs with events, a review and a
    touchpoint; goals on both sides."""
    await make_unit(session, key="front", kind="team")
    await make_unit(session, key="ops")
    await make_unit(session, key="courier", kind="partner")
    await make_journey(session, key="claim")
    await make_touchpoint(session, key="desk", journey="claim", owner="front", moment_of_truth=True)
    await make_metric(session, key="speed")
    await make_metric(session, key="csat", kind="survey_score")
    await make_handoff(session, key="files", from_unit="ops", to_unit="front", touchpoint="desk",
                       expected_within="PT4H")
    await make_handoff(session, key="parcels", from_unit="courier", to_unit="ops",
                       expected_within="P1D")
    start = datetime(2026, 3, 2, 9, tzinfo=UTC)
    for n in range(6):
        started = start + timedelta(days=n)
        late = n % 3 == 0
        await make_event(session, "files", external_id=f"f{n}", started_at=started,
                         delivered_at=started + timedelta(hours=6 if late else 2),
                         quality=2 + n % 4, rework=n == 4, customer_impact=n == 5)
        await make_event(session, "parcels", external_id=f"p{n}", started_at=started,
                         delivered_at=started + timedelta(hours=30 if late else 20))
    await make_review(session, "files", at=datetime(2026, 3, 10, tzinfo=UTC), timeliness=2,
                      quality=4)
    await make_goal(session, key="fast", owner="ops", metric="speed", direction="decrease",
                    incentive_weight=1.0)
    await make_goal(session, key="careful", owner="front", metric="speed", direction="increase",
                    touchpoints=["desk"])
    await make_agreement(session, key="delivery", partner="courier", internal_owner="ops")


def _component(component: dict[str, Any]) -> dict[str, Any]:
    # A null weight or reason reads the same as an absent one.
    return {k: v for k, v in component.items() if not (k in ("weight", "reason") and v is None)}


def from_rest(body: dict[str, Any]) -> dict[str, Any]:
    return {
        "value": body["value"],
        "reason": body["reason"],
        "method": body["method"],
        "window": body["window"],
        "components": {name: _component(c) for name, c in body["components"].items()},
        "details": body["details"],
    }


def from_graphql(score: dict[str, Any]) -> dict[str, Any]:
    components = {}
    for c in score["components"]:
        plain = {"value": c["value"], "count": c["count"], "weight": c["weight"], "reason": c["reason"]}
        components[c["name"]] = _component(plain | c["extra"])
    window = score["window"]
    return {
        "value": score["value"],
        "reason": score["reason"],
        "method": score["method"],
        "window": {"from": window["from"], "to": window["to"], "as_of": window["asOf"]},
        "components": components,
        "details": score["details"],
    }


def same_instant(window: dict[str, str]) -> dict[str, datetime]:
    return {name: datetime.fromisoformat(value) for name, value in window.items()}


async def rest(client, headers, path: str) -> dict[str, Any]:
    response = await client.get(path, params=WINDOW, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


async def graphql(client, headers, query: str) -> dict[str, Any]:
    response = await client.post("/graphql", json={"query": query}, headers=headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert "errors" not in body, body
    return body["data"]


def assert_same(*doors: dict[str, Any]) -> None:
    first = doors[0]
    assert first["value"] is not None or first["reason"]
    for door in doors[1:]:
        assert same_instant(door["window"]) == same_instant(first["window"])
        assert {k: v for k, v in door.items() if k != "window"} == {
            k: v for k, v in first.items() if k != "window"
        }


async def test_a_handoff_score_is_the_same_through_every_door(client, keys, org):
    reader = await keys.reader()
    single = from_rest(await rest(client, reader, "/v1/scores/handoffs/files"))
    listed = await rest(client, reader, "/v1/scores/handoffs")
    (item,) = [s for s in listed["items"] if s["subject"]["key"] == "files"]
    data = await graphql(
        client,
        reader,
        f"""{{
          scores {{ handoff(key: "files", {GQL_WINDOW}) {{ {SCORE_FIELDS} }} }}
          handoff(key: "files") {{ score({GQL_WINDOW}) {{ {SCORE_FIELDS} }} }}
        }}""",
    )
    # The medians are part of the one path: every door reports them.
    assert single["details"]["median_cycle_time"] == "PT2H"
    assert single["details"]["median_lateness"] == "PT2H"
    assert_same(
        single,
        from_rest(item),
        from_graphql(data["scores"]["handoff"]),
        from_graphql(data["handoff"]["score"]),
    )


async def test_a_unit_score_is_the_same_through_every_door(client, keys, org):
    reader = await keys.reader()
    single = from_rest(await rest(client, reader, "/v1/scores/units/ops"))
    data = await graphql(
        client,
        reader,
        f"""{{
          scores {{ unit(key: "ops", {GQL_WINDOW}) {{ {SCORE_FIELDS} }} }}
          unit(key: "ops") {{ score({GQL_WINDOW}) {{ {SCORE_FIELDS} }} }}
        }}""",
    )
    assert single["components"]["goal_alignment"]["conflicted"] == 1
    assert_same(
        single, from_graphql(data["scores"]["unit"]), from_graphql(data["unit"]["score"])
    )


async def test_a_touchpoint_score_is_the_same_through_every_door(client, keys, org):
    reader = await keys.reader()
    single = from_rest(await rest(client, reader, "/v1/scores/touchpoints/desk"))
    data = await graphql(
        client,
        reader,
        f"""{{
          scores {{ touchpoint(key: "desk", {GQL_WINDOW}) {{ {SCORE_FIELDS} }} }}
          touchpoint(key: "desk") {{ score({GQL_WINDOW}) {{ {SCORE_FIELDS} }} }}
          journey(key: "claim") {{ touchpoints {{ key score({GQL_WINDOW}) {{ {SCORE_FIELDS} }} }} }}
        }}""",
    )
    (on_journey,) = data["journey"]["touchpoints"]
    assert single["details"]["upstream"][0]["handoff"] == "files"
    assert_same(
        single,
        from_graphql(data["scores"]["touchpoint"]),
        from_graphql(data["touchpoint"]["score"]),
        from_graphql(on_journey["score"]),
    )


async def test_a_partner_score_is_the_same_through_every_door(client, keys, org):
    reader = await keys.reader()
    single = from_rest(await rest(client, reader, "/v1/scores/partners/courier"))
    data = await graphql(
        client,
        reader,
        f"""{{
          scores {{ partner(key: "courier", {GQL_WINDOW}) {{ {SCORE_FIELDS} }} }}
          partner(key: "courier") {{ partnerScore({GQL_WINDOW}) {{ {SCORE_FIELDS} }} }}
        }}""",
    )
    assert single["value"] is not None
    assert_same(
        single,
        from_graphql(data["scores"]["partner"]),
        from_graphql(data["partner"]["partnerScore"]),
    )
