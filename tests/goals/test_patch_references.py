"""A goal patch looks up only the references whose keys change (goals.service.update): what
it keeps must stay exactly as stored, and what it changes is checked as on create."""

from __future__ import annotations

import pytest

from service.goals.models import GoalContribution, GoalTouchpoint
from tests.factories import make_goal
from tests.goals.test_rest import count, read_goal, swift, world  # noqa: F401  (fixtures)
from tests.problems import assert_problem


@pytest.fixture
async def serving(client, keys, session, swift):  # noqa: F811
    """swift (marketing's, at call and chat) contributes to ``loyal``; ``other`` serves none."""
    await make_goal(session, key="loyal", owner="service", metric="rapport")
    await make_goal(session, key="other", owner="marketing", metric="rapport")
    response = await patch(client, keys, {"contributes_to": ["loyal"]})
    assert response.status_code == 200, response.text


async def patch(client, keys, body: dict, key: str = "swift"):
    return await client.patch(f"/v1/goals/{key}", json=body, headers=await keys.writer())


async def links(session) -> tuple[int, int]:
    return await count(session, GoalTouchpoint), await count(session, GoalContribution)


async def test_new_touchpoints_keep_the_goals_it_serves(client, keys, session, serving):
    response = await patch(client, keys, {"touchpoints": ["chat"]})
    assert response.status_code == 200, response.text
    assert (response.json()["touchpoints"], response.json()["contributes_to"]) == (["chat"], ["loyal"])
    assert await links(session) == (1, 1)


async def test_new_targets_keep_the_touchpoints(client, keys, session, serving):
    response = await patch(client, keys, {"contributes_to": ["other", "loyal"]})
    assert response.status_code == 200, response.text
    assert response.json()["touchpoints"] == ["call", "chat"]
    assert sorted(response.json()["contributes_to"]) == ["loyal", "other"]
    assert await links(session) == (2, 2)


@pytest.mark.parametrize("body", [{"metric": "rapport"}, {"title": "Renamed"}, {"direction": "increase"}])
async def test_other_changes_keep_owner_metric_and_links(client, keys, session, serving, body):
    response = await patch(client, keys, body)
    assert response.status_code == 200, response.text
    read = await read_goal(client, keys, "swift")
    expected = {"owner": "marketing", "metric": "handle-time", "touchpoints": ["call", "chat"],
                "contributes_to": ["loyal"], **body}
    assert {name: read[name] for name in expected} == expected
    assert await links(session) == (2, 1)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"owner": "nobody"}, "owner"),
        ({"metric": "nothing"}, "metric"),
        ({"touchpoints": ["call", "nowhere"]}, "touchpoints"),
        ({"contributes_to": ["missing"]}, "contributes_to"),
    ],
)
async def test_a_changed_reference_is_still_checked(client, keys, session, swift, body, field):  # noqa: F811
    problem = assert_problem(await patch(client, keys, body), 422, "unknown_reference")
    assert problem["detail"].startswith(f"{field}:")
    read = await read_goal(client, keys, "swift")
    assert (read["owner"], read["metric"], read["touchpoints"]) == ("marketing", "handle-time", ["call", "chat"])


async def test_a_changed_target_is_still_checked_for_cycles(client, keys, session, serving):
    response = await patch(client, keys, {"contributes_to": ["swift"]}, key="loyal")
    assert_problem(response, 422, "goal_cycle")
    assert await links(session) == (2, 1)
