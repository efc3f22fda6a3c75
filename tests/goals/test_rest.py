"""REST: /v1/goals and their check-ins, and the conflicts goal changes re-detect."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select

from service.alignment.models import Conflict
from service.goals.models import Goal, GoalCheckIn, GoalContribution, GoalTouchpoint
from tests.factories import (
    make_agreement,
    make_goal,
    make_joint_goal,
    make_journey,
    make_metric,
    make_touchpoint,
    make_unit,
)
from tests.problems import assert_problem


def instant(value: str) -> datetime:
    return datetime.fromisoformat(value)


async def count(session, model, **where) -> int:
    statement = select(func.count()).select_from(model)
    for column, value in where.items():
        statement = statement.where(getattr(model, column) == value)
    return await session.scalar(statement)


def goal_body(**overrides) -> dict:
    return {
        "key": "swift",
        "title": "Swift calls",
        "owner": "marketing",
        "metric": "handle-time",
        "direction": "decrease",
        "kind": "means",
        **overrides,
    }


@pytest.fixture
async def world(session):
    """Internal units ``marketing`` and ``service``; partners ``courier`` and ``rival``;
    metrics ``handle-time`` and ``rapport``; touchpoints ``call`` and ``chat`` (owned by
    service); agreements ``courier-sla`` (courier with service) and ``rival-sla`` (rival
    with marketing)."""
    await make_unit(session, key="marketing")
    await make_unit(session, key="service")
    await make_unit(session, key="courier", kind="partner")
    await make_unit(session, key="rival", kind="supplier")
    await make_metric(session, key="handle-time", kind="operational")
    await make_metric(session, key="rapport", kind="survey_score")
    await make_journey(session, key="calls", stages=["call"])
    for key in ("call", "chat"):
        await make_touchpoint(session, key=key, journey="calls", stage="call", owner="service")
    await make_agreement(session, key="courier-sla", partner="courier", internal_owner="service")
    await make_agreement(session, key="rival-sla", partner="rival", internal_owner="marketing")


@pytest.fixture
async def swift(session, world) -> Goal:
    """marketing's goal to cut handle time at both touchpoints."""
    return await make_goal(
        session,
        key="swift",
        title="Swift calls",
        owner="marketing",
        metric="handle-time",
        direction="decrease",
        kind="means",
        target=180.0,
        baseline=240.0,
        incentive_weight=0.2,
        period_start="2026-01-01",
        period_end="2026-12-31",
        touchpoints=["call", "chat"],
    )


@pytest.fixture
async def joint(session, world):
    """Proposed joint goals: ``courier-on-time`` on courier-sla and ``rival-speed`` on
    rival-sla, each owned by its partner."""
    await make_joint_goal(session, "courier-sla", key="courier-on-time", metric="handle-time")
    await make_joint_goal(session, "rival-sla", key="rival-speed", metric="handle-time")


async def read_goal(client, keys, key: str) -> dict:
    response = await client.get(f"/v1/goals/{key}", headers=await keys.reader())
    assert response.status_code == 200, response.text
    return response.json()


# Create ------------------------------------------------------------------------------------


class TestCreateGoal:
    async def test_every_field_round_trips(self, client, keys, session, world):
        await make_goal(session, key="loyal", owner="service", metric="rapport")
        payload = goal_body(
            title="Swift calls",
            direction="decrease",
            target=180.5,
            baseline=240.0,
            kind="means",
            incentive_weight=0.25,
            period_start="2026-01-01",
            period_end="2026-06-30",
            touchpoints=["call", "chat"],
            contributes_to=["loyal"],
            status="active",
        )
        response = await client.post("/v1/goals", json=payload, headers=await keys.writer())
        assert response.status_code == 201, response.text
        body = response.json()
        expected = {
            "key": "swift",
            "title": "Swift calls",
            "owner": "marketing",
            "metric": "handle-time",
            "direction": "decrease",
            "target": 180.5,
            "baseline": 240.0,
            "kind": "means",
            "incentive_weight": 0.25,
            "period_start": "2026-01-01",
            "period_end": "2026-06-30",
            "touchpoints": ["call", "chat"],
            "contributes_to": ["loyal"],
            "agreement": None,
            "status": "active",
            "proposed_by": "internal",
            "accepted_at": None,
            "version": 1,
        }
        assert {k: body[k] for k in expected} == expected
        assert response.headers["etag"] == '"1"'
        assert response.headers["location"] == "/v1/goals/swift"
        read = await read_goal(client, keys, "swift")
        assert read == body
        assert await count(session, GoalTouchpoint) == 2
        assert await count(session, GoalContribution) == 1

    async def test_defaults(self, client, keys, world):
        response = await client.post("/v1/goals", json=goal_body(), headers=await keys.writer())
        assert response.status_code == 201, response.text
        body = response.json()
        assert {
            k: body[k]
            for k in (
                "target",
                "baseline",
                "incentive_weight",
                "period_start",
                "period_end",
                "touchpoints",
                "contributes_to",
                "agreement",
                "status",
                "proposed_by",
                "accepted_at",
            )
        } == {
            "target": None,
            "baseline": None,
            "incentive_weight": 0.0,
            "period_start": None,
            "period_end": None,
            "touchpoints": [],
            "contributes_to": [],
            "agreement": None,
            "status": "active",
            "proposed_by": "internal",
            "accepted_at": None,
        }

    @pytest.mark.parametrize("direction", ["increase", "decrease", "maintain"])
    @pytest.mark.parametrize("kind", ["means", "ends"])
    async def test_every_direction_and_kind(self, client, keys, world, direction, kind):
        response = await client.post(
            "/v1/goals", json=goal_body(direction=direction, kind=kind), headers=await keys.writer()
        )
        assert response.status_code == 201, response.text
        read = await read_goal(client, keys, "swift")
        assert (read["direction"], read["kind"]) == (direction, kind)

    @pytest.mark.parametrize(
        ("start", "end"),
        [(None, "2026-12-31"), ("2026-01-01", None), (None, None), ("2026-05-01", "2026-05-01")],
    )
    async def test_periods_may_be_open_ended(self, client, keys, world, start, end):
        response = await client.post(
            "/v1/goals",
            json=goal_body(period_start=start, period_end=end),
            headers=await keys.writer(),
        )
        assert response.status_code == 201, response.text
        read = await read_goal(client, keys, "swift")
        assert (read["period_start"], read["period_end"]) == (start, end)

    @pytest.mark.parametrize("status", ["active", "proposed", "retired"])
    async def test_any_status_may_be_given(self, client, keys, world, status):
        response = await client.post(
            "/v1/goals", json=goal_body(status=status), headers=await keys.writer()
        )
        assert response.status_code == 201, response.text
        assert response.json()["status"] == status
        assert response.json()["accepted_at"] is None

    @pytest.mark.parametrize("owner", ["courier", "service"])
    async def test_an_active_goal_on_an_agreement_is_accepted_at_once(
        self, client, keys, world, owner
    ):
        before = datetime.now(UTC)
        response = await client.post(
            "/v1/goals",
            json=goal_body(owner=owner, agreement="courier-sla"),
            headers=await keys.writer(),
        )
        assert response.status_code == 201, response.text
        body = response.json()
        assert (body["agreement"], body["owner"], body["status"]) == (
            "courier-sla",
            owner,
            "active",
        )
        assert body["proposed_by"] == "internal"
        assert before <= instant(body["accepted_at"]) <= datetime.now(UTC)

    async def test_a_proposed_goal_on_an_agreement_is_not_accepted(self, client, keys, world):
        response = await client.post(
            "/v1/goals",
            json=goal_body(owner="courier", agreement="courier-sla", status="proposed"),
            headers=await keys.writer(),
        )
        assert response.status_code == 201, response.text
        assert response.json()["status"] == "proposed"
        assert response.json()["accepted_at"] is None

    @pytest.mark.parametrize("owner", ["marketing", "rival"])
    async def test_a_goal_on_an_agreement_owned_by_neither_party_is_422(
        self, client, keys, session, world, owner
    ):
        response = await client.post(
            "/v1/goals",
            json=goal_body(owner=owner, agreement="courier-sla"),
            headers=await keys.writer(),
        )
        body = assert_problem(response, 422, "invalid")
        assert body["errors"][0]["loc"] == ["body", "owner"]
        assert await count(session, Goal) == 0

    async def test_period_start_after_period_end_is_422(self, client, keys, session, world):
        response = await client.post(
            "/v1/goals",
            json=goal_body(period_start="2026-07-01", period_end="2026-06-30"),
            headers=await keys.writer(),
        )
        body = assert_problem(response, 422, "validation_failed")
        assert body["errors"][0]["loc"] == ["body"]
        assert "period_start" in body["errors"][0]["msg"]
        assert await count(session, Goal) == 0

    @pytest.mark.parametrize("weight", [-0.01, -1, 1001])
    async def test_an_incentive_weight_out_of_range_is_422(
        self, client, keys, session, world, weight
    ):
        response = await client.post(
            "/v1/goals", json=goal_body(incentive_weight=weight), headers=await keys.writer()
        )
        body = assert_problem(response, 422, "validation_failed")
        assert [e["loc"] for e in body["errors"]] == [["body", "incentive_weight"]]
        assert await count(session, Goal) == 0

    async def test_repeated_touchpoints_are_422(self, client, keys, session, world):
        response = await client.post(
            "/v1/goals",
            json=goal_body(touchpoints=["call", "chat", "call"]),
            headers=await keys.writer(),
        )
        body = assert_problem(response, 422, "validation_failed")
        assert [e["loc"] for e in body["errors"]] == [["body", "touchpoints"]]
        assert await count(session, Goal) == 0
        assert await count(session, GoalTouchpoint) == 0

    async def test_repeated_contributes_to_keys_are_422(self, client, keys, session, world):
        await make_goal(session, key="loyal", owner="service", metric="rapport")
        response = await client.post(
            "/v1/goals",
            json=goal_body(contributes_to=["loyal", "loyal"]),
            headers=await keys.writer(),
        )
        body = assert_problem(response, 422, "validation_failed")
        assert [e["loc"] for e in body["errors"]] == [["body", "contributes_to"]]
        assert await count(session, Goal) == 1

    @pytest.mark.parametrize(
        ("field", "value"),
        [
            ("owner", "nowhere"),
            ("metric", "nowhere"),
            ("touchpoints", ["call", "nowhere"]),
            ("contributes_to", ["nowhere"]),
            ("agreement", "nowhere"),
        ],
    )
    async def test_an_unknown_reference_is_422_naming_the_field(
        self, client, keys, session, world, field, value
    ):
        response = await client.post(
            "/v1/goals", json=goal_body(**{field: value}), headers=await keys.writer()
        )
        body = assert_problem(response, 422, "unknown_reference")
        assert body["errors"][0]["loc"] == ["body", field]
        assert body["field"] == field
        assert "nowhere" in body["detail"]
        assert await count(session, Goal) == 0
        assert await count(session, GoalTouchpoint) == 0

    @pytest.mark.parametrize(
        ("payload", "loc"),
        [
            (goal_body(direction="up"), ["body", "direction"]),
            (goal_body(kind="lever"), ["body", "kind"]),
            (goal_body(status="paused"), ["body", "status"]),
            (goal_body(key="Swift Calls"), ["body", "key"]),
            (goal_body(title=""), ["body", "title"]),
            (goal_body(period_end="30/06/2026"), ["body", "period_end"]),
            (goal_body(target="high"), ["body", "target"]),
            (goal_body(touchpoints="call"), ["body", "touchpoints"]),
            (goal_body(touchpoints=["Not A Key"]), ["body", "touchpoints", 0]),
            (goal_body(proposed_by="partner"), ["body", "proposed_by"]),
            (goal_body(accepted_at="2026-01-01T00:00:00Z"), ["body", "accepted_at"]),
            (goal_body(id="00000000-0000-0000-0000-000000000001"), ["body", "id"]),
            (goal_body(version=3), ["body", "version"]),
        ],
    )
    async def test_an_invalid_body_is_422_naming_the_field(
        self, client, keys, session, world, payload, loc
    ):
        response = await client.post("/v1/goals", json=payload, headers=await keys.writer())
        body = assert_problem(response, 422, "validation_failed")
        assert [e["loc"] for e in body["errors"]] == [loc]
        assert await count(session, Goal) == 0

    async def test_contributing_to_itself_is_a_cycle(self, client, keys, session, world):
        response = await client.post(
            "/v1/goals", json=goal_body(contributes_to=["swift"]), headers=await keys.writer()
        )
        body = assert_problem(response, 422, "goal_cycle")
        assert body["cycle"] == ["swift", "swift"]
        assert "swift → swift" in body["detail"]
        assert body["errors"][0]["loc"] == ["body", "contributes_to"]
        assert await count(session, Goal) == 0
        assert await count(session, GoalContribution) == 0

    async def test_a_duplicate_key_is_409(self, client, keys, session, swift):
        response = await client.post(
            "/v1/goals", json=goal_body(title="Again"), headers=await keys.writer()
        )
        body = assert_problem(response, 409, "key_exists")
        assert (body["resource"], body["key"]) == ("goal", "swift")
        assert await count(session, Goal) == 1
        assert (await read_goal(client, keys, "swift"))["touchpoints"] == ["call", "chat"]

    async def test_a_reader_may_not_create(self, client, keys, session, world):
        response = await client.post("/v1/goals", json=goal_body(), headers=await keys.reader())
        assert_problem(response, 403, "forbidden")
        assert await count(session, Goal) == 0

    async def test_a_partner_may_not_create_even_on_its_agreement(
        self, client, keys, session, world
    ):
        response = await client.post(
            "/v1/goals",
            json=goal_body(owner="courier", agreement="courier-sla"),
            headers=await keys.partner("courier"),
        )
        assert_problem(response, 403, "forbidden")
        assert await count(session, Goal) == 0

    async def test_idempotency_key_replays_the_first_response(self, client, keys, session, world):
        headers = {**await keys.writer(), "Idempotency-Key": "goal-1"}
        first = await client.post("/v1/goals", json=goal_body(), headers=headers)
        second = await client.post("/v1/goals", json=goal_body(), headers=headers)
        assert first.status_code == second.status_code == 201
        assert second.json() == first.json()
        assert second.headers["location"] == "/v1/goals/swift"
        assert second.headers["idempotent-replayed"] == "true"
        assert await count(session, Goal) == 1

    async def test_idempotency_key_with_another_body_is_422(self, client, keys, session, world):
        headers = {**await keys.writer(), "Idempotency-Key": "goal-2"}
        await client.post("/v1/goals", json=goal_body(), headers=headers)
        response = await client.post("/v1/goals", json=goal_body(key="other"), headers=headers)
        assert_problem(response, 422, "idempotency_key_reused")
        assert await count(session, Goal) == 1


class TestGoalCycles:
    """contributes_to must stay acyclic: a change that would close a loop is refused with
    the loop named, and nothing changes."""

    async def edges(self, session) -> int:
        return await count(session, GoalContribution)

    async def test_a_goal_cannot_be_patched_to_contribute_to_itself(
        self, client, keys, session, swift
    ):
        response = await client.patch(
            "/v1/goals/swift", json={"contributes_to": ["swift"]}, headers=await keys.writer()
        )
        body = assert_problem(response, 422, "goal_cycle")
        assert body["cycle"] == ["swift", "swift"]
        assert "swift → swift" in body["detail"]
        assert body["errors"][0]["loc"] == ["body", "contributes_to"]
        assert await self.edges(session) == 0
        assert (await read_goal(client, keys, "swift"))["version"] == 1

    async def test_a_direct_cycle_is_refused(self, client, keys, session, world):
        await make_goal(session, key="b", owner="service", metric="rapport")
        await make_goal(
            session, key="a", owner="marketing", metric="handle-time", contributes_to=["b"]
        )
        response = await client.patch(
            "/v1/goals/b", json={"contributes_to": ["a"]}, headers=await keys.writer()
        )
        body = assert_problem(response, 422, "goal_cycle")
        assert body["cycle"] == ["b", "a", "b"]
        assert "b → a → b" in body["detail"]
        assert body["errors"][0]["loc"] == ["body", "contributes_to"]
        assert await self.edges(session) == 1
        b = await read_goal(client, keys, "b")
        assert (b["contributes_to"], b["version"]) == ([], 1)
        assert (await read_goal(client, keys, "a"))["contributes_to"] == ["b"]

    async def test_a_cycle_through_three_goals_is_refused(self, client, keys, session, world):
        await make_goal(session, key="c", owner="service", metric="rapport")
        await make_goal(session, key="b", owner="service", metric="rapport", contributes_to=["c"])
        await make_goal(
            session, key="a", owner="marketing", metric="handle-time", contributes_to=["b"]
        )
        response = await client.patch(
            "/v1/goals/c",
            json={"title": "Renamed", "contributes_to": ["a"]},
            headers=await keys.writer(),
        )
        body = assert_problem(response, 422, "goal_cycle")
        assert body["cycle"] == ["c", "a", "b", "c"]
        assert "c → a → b → c" in body["detail"]
        assert await self.edges(session) == 2
        c = await read_goal(client, keys, "c")
        assert (c["title"], c["contributes_to"], c["version"]) == ("A goal", [], 1)

    async def test_a_cycle_among_several_targets_is_found(self, client, keys, session, world):
        await make_goal(session, key="x", owner="service", metric="rapport")
        await make_goal(session, key="b", owner="service", metric="rapport")
        await make_goal(session, key="a", owner="marketing", metric="rapport", contributes_to=["b"])
        response = await client.patch(
            "/v1/goals/b", json={"contributes_to": ["x", "a"]}, headers=await keys.writer()
        )
        body = assert_problem(response, 422, "goal_cycle")
        assert body["cycle"] == ["b", "a", "b"]
        assert await self.edges(session) == 1

    async def test_a_diamond_is_not_a_cycle(self, client, keys, session, world):
        await make_goal(session, key="d", owner="service", metric="rapport")
        await make_goal(session, key="b", owner="service", metric="rapport", contributes_to=["d"])
        await make_goal(session, key="c", owner="service", metric="rapport", contributes_to=["d"])
        await make_goal(session, key="a", owner="marketing", metric="rapport")
        response = await client.patch(
            "/v1/goals/a", json={"contributes_to": ["b", "c"]}, headers=await keys.writer()
        )
        assert response.status_code == 200, response.text
        assert response.json()["contributes_to"] == ["b", "c"]
        assert await self.edges(session) == 4

    async def test_a_loop_elsewhere_does_not_block_an_unrelated_change(
        self, client, keys, session, world
    ):
        await make_goal(session, key="c", owner="service", metric="rapport")
        await make_goal(session, key="b", owner="service", metric="rapport", contributes_to=["c"])
        await make_goal(session, key="a", owner="marketing", metric="rapport")
        response = await client.patch(
            "/v1/goals/a", json={"contributes_to": ["b"]}, headers=await keys.writer()
        )
        assert response.status_code == 200, response.text
        again = await client.patch(
            "/v1/goals/a", json={"contributes_to": ["b", "c"]}, headers=await keys.writer()
        )
        assert again.status_code == 200, again.text
        assert await self.edges(session) == 3


class TestGetGoal:
    async def test_returns_the_goal_with_its_etag(self, client, keys, swift):
        response = await client.get("/v1/goals/swift", headers=await keys.reader())
        assert response.status_code == 200
        assert response.json()["id"] == str(swift.id)
        assert response.json()["touchpoints"] == ["call", "chat"]
        assert response.headers["etag"] == '"1"'

    async def test_an_unknown_key_is_404(self, client, keys):
        response = await client.get("/v1/goals/nowhere", headers=await keys.reader())
        body = assert_problem(response, 404, "not_found")
        assert body["resource"] == "goal"

    async def test_a_partner_reads_the_joint_goals_of_its_agreements(self, client, keys, joint):
        response = await client.get(
            "/v1/goals/courier-on-time", headers=await keys.partner("courier")
        )
        assert response.status_code == 200
        assert response.json()["agreement"] == "courier-sla"

    @pytest.mark.parametrize("key", ["rival-speed", "swift"])
    async def test_any_other_goal_is_404_to_a_partner_as_if_absent(
        self, client, keys, joint, swift, key
    ):
        headers = await keys.partner("courier")
        hidden = await client.get(f"/v1/goals/{key}", headers=headers)
        absent = await client.get("/v1/goals/never-existed", headers=headers)
        assert_problem(hidden, 404, "not_found")
        assert_problem(absent, 404, "not_found")
        assert hidden.json()["detail"].replace(key, "K") == absent.json()["detail"].replace(
            "never-existed", "K"
        )


# Update ------------------------------------------------------------------------------------


class TestUpdateGoal:
    async def test_merge_patch_changes_only_what_is_sent(self, client, keys, swift):
        response = await client.patch(
            "/v1/goals/swift",
            json={"title": "Quicker calls", "target": 150},
            headers=await keys.writer(),
        )
        assert response.status_code == 200, response.text
        body = response.json()
        assert (body["title"], body["target"]) == ("Quicker calls", 150)
        assert (body["baseline"], body["incentive_weight"]) == (240.0, 0.2)
        assert (body["period_start"], body["period_end"]) == ("2026-01-01", "2026-12-31")
        assert body["touchpoints"] == ["call", "chat"]
        assert body["version"] == 2
        assert response.headers["etag"] == '"2"'
        assert instant(body["updated_at"]) > instant(body["created_at"])
        assert await read_goal(client, keys, "swift") == body

    async def test_every_field_may_change(self, client, keys, session, swift):
        await make_goal(session, key="loyal", owner="service", metric="rapport")
        patch = {
            "title": "Warm calls",
            "owner": "service",
            "metric": "rapport",
            "direction": "maintain",
            "target": 4.5,
            "baseline": 4.0,
            "kind": "ends",
            "incentive_weight": 0,
            "period_start": "2027-01-01",
            "period_end": "2027-03-31",
            "touchpoints": ["chat"],
            "contributes_to": ["loyal"],
            "agreement": "courier-sla",
            "status": "retired",
        }
        response = await client.patch("/v1/goals/swift", json=patch, headers=await keys.writer())
        assert response.status_code == 200, response.text
        body = response.json()
        assert {k: body[k] for k in patch} == patch
        assert await read_goal(client, keys, "swift") == body

    async def test_touchpoints_are_replaced_whole(self, client, keys, session, swift):
        writer = await keys.writer()
        response = await client.patch(
            "/v1/goals/swift", json={"touchpoints": ["chat"]}, headers=writer
        )
        assert response.json()["touchpoints"] == ["chat"]
        assert await count(session, GoalTouchpoint) == 1
        response = await client.patch("/v1/goals/swift", json={"touchpoints": []}, headers=writer)
        assert response.json()["touchpoints"] == []
        assert await count(session, GoalTouchpoint) == 0

    async def test_contributes_to_is_replaced_whole(self, client, keys, session, swift):
        await make_goal(session, key="loyal", owner="service", metric="rapport")
        await make_goal(session, key="revenue", owner="service", metric="rapport")
        writer = await keys.writer()
        response = await client.patch(
            "/v1/goals/swift", json={"contributes_to": ["loyal", "revenue"]}, headers=writer
        )
        assert response.json()["contributes_to"] == ["loyal", "revenue"]
        response = await client.patch(
            "/v1/goals/swift", json={"contributes_to": ["revenue"]}, headers=writer
        )
        assert response.json()["contributes_to"] == ["revenue"]
        response = await client.patch(
            "/v1/goals/swift", json={"contributes_to": []}, headers=writer
        )
        assert response.json()["contributes_to"] == []
        assert await count(session, GoalContribution) == 0

    async def test_lists_left_out_of_the_patch_are_kept(self, client, keys, session, swift):
        response = await client.patch(
            "/v1/goals/swift", json={"title": "Still swift"}, headers=await keys.writer()
        )
        assert response.json()["touchpoints"] == ["call", "chat"]
        assert await count(session, GoalTouchpoint) == 2

    @pytest.mark.parametrize("field", ["target", "baseline", "period_start", "period_end"])
    async def test_null_clears_a_nullable_field(self, client, keys, swift, field):
        response = await client.patch(
            "/v1/goals/swift", json={field: None}, headers=await keys.writer()
        )
        assert response.status_code == 200, response.text
        assert response.json()[field] is None
        assert (await read_goal(client, keys, "swift"))[field] is None

    async def test_null_takes_a_goal_off_its_agreement(self, client, keys, session, world):
        await make_goal(
            session, key="shared", owner="service", metric="rapport", agreement="courier-sla"
        )
        response = await client.patch(
            "/v1/goals/shared", json={"agreement": None}, headers=await keys.writer()
        )
        assert response.status_code == 200, response.text
        assert response.json()["agreement"] is None

    @pytest.mark.parametrize(
        "field", ["title", "owner", "metric", "direction", "kind", "incentive_weight", "status"]
    )
    async def test_null_for_a_required_field_is_422(self, client, keys, swift, field):
        response = await client.patch(
            "/v1/goals/swift", json={field: None}, headers=await keys.writer()
        )
        body = assert_problem(response, 422, "invalid")
        assert body["errors"][0]["loc"] == ["body", field]
        assert (await read_goal(client, keys, "swift"))["version"] == 1

    async def test_an_end_before_the_start_is_422(self, client, keys, swift):
        response = await client.patch(
            "/v1/goals/swift", json={"period_end": "2025-12-31"}, headers=await keys.writer()
        )
        body = assert_problem(response, 422, "invalid")
        assert body["errors"][0]["loc"] == ["body"]
        assert (await read_goal(client, keys, "swift"))["period_end"] == "2026-12-31"

    async def test_a_negative_incentive_weight_is_422(self, client, keys, swift):
        response = await client.patch(
            "/v1/goals/swift", json={"incentive_weight": -0.5}, headers=await keys.writer()
        )
        body = assert_problem(response, 422, "validation_failed")
        assert body["errors"][0]["loc"] == ["body", "incentive_weight"]
        assert (await read_goal(client, keys, "swift"))["incentive_weight"] == 0.2

    async def test_repeated_touchpoints_are_422(self, client, keys, session, swift):
        response = await client.patch(
            "/v1/goals/swift", json={"touchpoints": ["chat", "chat"]}, headers=await keys.writer()
        )
        body = assert_problem(response, 422, "invalid")
        assert body["errors"][0]["loc"] == ["body", "touchpoints"]
        assert await count(session, GoalTouchpoint) == 2

    @pytest.mark.parametrize(
        ("field", "value"),
        [
            ("owner", "nowhere"),
            ("metric", "nowhere"),
            ("touchpoints", ["nowhere"]),
            ("contributes_to", ["nowhere"]),
            ("agreement", "nowhere"),
        ],
    )
    async def test_an_unknown_reference_is_422_naming_the_field(
        self, client, keys, session, swift, field, value
    ):
        response = await client.patch(
            "/v1/goals/swift", json={field: value}, headers=await keys.writer()
        )
        body = assert_problem(response, 422, "unknown_reference")
        assert body["errors"][0]["loc"] == ["body", field]
        current = await read_goal(client, keys, "swift")
        assert (current["version"], current["touchpoints"]) == (1, ["call", "chat"])
        assert await count(session, GoalTouchpoint) == 2

    async def test_an_agreement_the_owner_is_no_party_to_is_422(self, client, keys, swift):
        response = await client.patch(
            "/v1/goals/swift", json={"agreement": "courier-sla"}, headers=await keys.writer()
        )
        body = assert_problem(response, 422, "invalid")
        assert body["errors"][0]["loc"] == ["body", "owner"]
        assert (await read_goal(client, keys, "swift"))["agreement"] is None

    async def test_an_owner_outside_the_agreement_is_422(self, client, keys, session, world):
        await make_goal(
            session, key="shared", owner="courier", metric="rapport", agreement="courier-sla"
        )
        response = await client.patch(
            "/v1/goals/shared", json={"owner": "rival"}, headers=await keys.writer()
        )
        body = assert_problem(response, 422, "invalid")
        assert body["errors"][0]["loc"] == ["body", "owner"]
        assert (await read_goal(client, keys, "shared"))["owner"] == "courier"

    async def test_retires_through_status(self, client, keys, swift):
        response = await client.patch(
            "/v1/goals/swift", json={"status": "retired"}, headers=await keys.writer()
        )
        assert response.status_code == 200
        assert response.json()["status"] == "retired"
        assert response.json()["accepted_at"] is None
        listed = await client.get("/v1/goals?status=retired", headers=await keys.reader())
        assert [g["key"] for g in listed.json()["items"]] == ["swift"]

    async def test_activating_a_proposed_goal_sets_accepted_at(self, client, keys, session, world):
        await make_goal(session, key="idea", owner="marketing", metric="rapport", status="proposed")
        before = datetime.now(UTC)
        response = await client.patch(
            "/v1/goals/idea", json={"status": "active"}, headers=await keys.writer()
        )
        assert response.status_code == 200
        body = response.json()
        assert body["status"] == "active"
        assert before <= instant(body["accepted_at"]) <= datetime.now(UTC)

    async def test_other_changes_leave_a_proposal_unaccepted(self, client, keys, session, world):
        await make_goal(session, key="idea", owner="marketing", metric="rapport", status="proposed")
        response = await client.patch(
            "/v1/goals/idea", json={"title": "Better idea"}, headers=await keys.writer()
        )
        assert (response.json()["status"], response.json()["accepted_at"]) == ("proposed", None)

    async def test_current_if_match_is_accepted(self, client, keys, swift):
        headers = {**await keys.writer(), "If-Match": '"1"'}
        response = await client.patch("/v1/goals/swift", json={"target": 170}, headers=headers)
        assert response.status_code == 200
        assert response.headers["etag"] == '"2"'

    async def test_stale_if_match_is_412_and_changes_nothing(self, client, keys, session, swift):
        writer = await keys.writer()
        await client.patch("/v1/goals/swift", json={"title": "First"}, headers=writer)
        response = await client.patch(
            "/v1/goals/swift",
            json={"title": "Second", "touchpoints": []},
            headers={**writer, "If-Match": '"1"'},
        )
        body = assert_problem(response, 412, "version_mismatch")
        assert body["current_etag"] == '"2"'
        current = await read_goal(client, keys, "swift")
        assert (current["title"], current["version"]) == ("First", 2)
        assert await count(session, GoalTouchpoint) == 2

    @pytest.mark.parametrize(
        "patch",
        [
            {"key": "renamed"},
            {"id": "x"},
            {"version": 9},
            {"proposed_by": "partner"},
            {"accepted_at": "2026-01-01T00:00:00Z"},
        ],
    )
    async def test_key_and_server_fields_cannot_be_patched(self, client, keys, swift, patch):
        response = await client.patch("/v1/goals/swift", json=patch, headers=await keys.writer())
        body = assert_problem(response, 422, "validation_failed")
        assert body["errors"][0]["loc"] == ["body", next(iter(patch))]
        assert (await read_goal(client, keys, "swift"))["version"] == 1

    async def test_an_unknown_key_is_404(self, client, keys, world):
        response = await client.patch(
            "/v1/goals/nowhere", json={"title": "x"}, headers=await keys.writer()
        )
        assert_problem(response, 404, "not_found")

    async def test_a_reader_may_not_update(self, client, keys, swift):
        response = await client.patch(
            "/v1/goals/swift", json={"title": "x"}, headers=await keys.reader()
        )
        assert_problem(response, 403, "forbidden")
        assert (await read_goal(client, keys, "swift"))["title"] == "Swift calls"

    async def test_a_partner_may_not_update_its_joint_goal(self, client, keys, joint):
        response = await client.patch(
            "/v1/goals/courier-on-time",
            json={"status": "active"},
            headers=await keys.partner("courier"),
        )
        assert_problem(response, 403, "forbidden")
        current = await read_goal(client, keys, "courier-on-time")
        assert (current["status"], current["version"]) == ("proposed", 1)


# Delete ------------------------------------------------------------------------------------


class TestDeleteGoal:
    async def test_deletes_the_goal_with_its_links_and_check_ins(
        self, client, keys, session, swift
    ):
        writer = await keys.writer()
        await client.post("/v1/goals/swift/check-ins", json={"value": 200}, headers=writer)
        response = await client.delete("/v1/goals/swift", headers=writer)
        assert response.status_code == 204
        assert response.content == b""
        assert await count(session, Goal) == 0
        assert await count(session, GoalTouchpoint) == 0
        assert await count(session, GoalCheckIn) == 0
        gone = await client.get("/v1/goals/swift", headers=await keys.reader())
        assert_problem(gone, 404, "not_found")

    async def test_a_goal_others_contribute_to_is_409(self, client, keys, session, swift):
        await make_goal(
            session, key="lever", owner="service", metric="rapport", contributes_to=["swift"]
        )
        response = await client.delete("/v1/goals/swift", headers=await keys.writer())
        body = assert_problem(response, 409, "still_referenced")
        assert body["referenced_by"] == {"goal_contributions": 1}
        assert await count(session, Goal, key="swift") == 1
        assert await count(session, GoalTouchpoint) == 2

    async def test_a_goal_that_contributes_to_another_may_go(self, client, keys, session, swift):
        await make_goal(
            session, key="lever", owner="service", metric="rapport", contributes_to=["swift"]
        )
        response = await client.delete("/v1/goals/lever", headers=await keys.writer())
        assert response.status_code == 204
        assert await count(session, GoalContribution) == 0
        freed = await client.delete("/v1/goals/swift", headers=await keys.writer())
        assert freed.status_code == 204

    async def test_an_unknown_key_is_404(self, client, keys):
        response = await client.delete("/v1/goals/nowhere", headers=await keys.writer())
        assert_problem(response, 404, "not_found")

    async def test_a_reader_may_not_delete(self, client, keys, session, swift):
        response = await client.delete("/v1/goals/swift", headers=await keys.reader())
        assert_problem(response, 403, "forbidden")
        assert await count(session, Goal) == 1

    async def test_a_partner_may_not_delete_its_joint_goal(self, client, keys, session, joint):
        response = await client.delete(
            "/v1/goals/courier-on-time", headers=await keys.partner("courier")
        )
        assert_problem(response, 403, "forbidden")
        assert await count(session, Goal, key="courier-on-time") == 1


# Check-ins ---------------------------------------------------------------------------------


class TestCreateCheckIn:
    async def test_records_where_the_metric_stands(self, client, keys, session, swift):
        response = await client.post(
            "/v1/goals/swift/check-ins",
            json={"at": "2026-03-01T10:00:00+02:00", "value": 205.5, "note": "Better"},
            headers=await keys.writer(),
        )
        assert response.status_code == 201, response.text
        body = response.json()
        assert body["goal"] == "swift"
        assert instant(body["at"]) == datetime(2026, 3, 1, 8, tzinfo=UTC)
        assert (body["value"], body["note"]) == (205.5, "Better")
        assert body["id"]
        assert await count(session, GoalCheckIn, goal_id=swift.id) == 1

    async def test_at_defaults_to_now(self, client, keys, swift):
        before = datetime.now(UTC)
        response = await client.post(
            "/v1/goals/swift/check-ins", json={"value": 3}, headers=await keys.writer()
        )
        assert response.status_code == 201
        assert before <= instant(response.json()["at"]) <= datetime.now(UTC)
        assert response.json()["note"] is None

    async def test_an_explicit_null_at_means_now(self, client, keys, swift):
        before = datetime.now(UTC)
        response = await client.post(
            "/v1/goals/swift/check-ins", json={"at": None, "value": 3}, headers=await keys.writer()
        )
        assert response.status_code == 201
        assert before <= instant(response.json()["at"]) <= datetime.now(UTC)

    @pytest.mark.parametrize(
        ("payload", "loc"),
        [
            ({"at": "2026-03-01T10:00:00", "value": 1}, ["body", "at"]),
            ({"at": "2026-03-01", "value": 1}, ["body", "at"]),
            ({"at": "soon", "value": 1}, ["body", "at"]),
            ({"at": "2026-03-01T10:00:00Z"}, ["body", "value"]),
            ({"value": "lots"}, ["body", "value"]),
            ({"value": 1, "note": "n" * 4001}, ["body", "note"]),
            ({"value": 1, "goal": "other"}, ["body", "goal"]),
        ],
    )
    async def test_an_invalid_body_is_422_naming_the_field(
        self, client, keys, session, swift, payload, loc
    ):
        response = await client.post(
            "/v1/goals/swift/check-ins", json=payload, headers=await keys.writer()
        )
        body = assert_problem(response, 422, "validation_failed")
        assert [e["loc"] for e in body["errors"]] == [loc]
        assert await count(session, GoalCheckIn) == 0

    async def test_an_unknown_goal_is_404(self, client, keys, session, world):
        response = await client.post(
            "/v1/goals/nowhere/check-ins", json={"value": 1}, headers=await keys.writer()
        )
        body = assert_problem(response, 404, "not_found")
        assert body["resource"] == "goal"
        assert await count(session, GoalCheckIn) == 0

    async def test_a_reader_may_not_check_in(self, client, keys, session, swift):
        response = await client.post(
            "/v1/goals/swift/check-ins", json={"value": 1}, headers=await keys.reader()
        )
        assert_problem(response, 403, "forbidden")
        assert await count(session, GoalCheckIn) == 0

    async def test_a_partner_may_not_check_in_on_its_joint_goal(self, client, keys, session, joint):
        response = await client.post(
            "/v1/goals/courier-on-time/check-ins",
            json={"value": 1},
            headers=await keys.partner("courier"),
        )
        assert_problem(response, 403, "forbidden")
        assert await count(session, GoalCheckIn) == 0

    async def test_idempotency_key_replays_the_first_response(self, client, keys, session, swift):
        headers = {**await keys.writer(), "Idempotency-Key": "check-in-1"}
        payload = {"at": "2026-03-01T10:00:00Z", "value": 7}
        first = await client.post("/v1/goals/swift/check-ins", json=payload, headers=headers)
        second = await client.post("/v1/goals/swift/check-ins", json=payload, headers=headers)
        assert first.status_code == second.status_code == 201
        assert second.json() == first.json()
        assert second.headers["idempotent-replayed"] == "true"
        assert await count(session, GoalCheckIn) == 1


class TestListCheckIns:
    async def check_in(self, client, keys, goal: str, at: str, value: float) -> None:
        response = await client.post(
            f"/v1/goals/{goal}/check-ins",
            json={"at": at, "value": value},
            headers=await keys.writer(),
        )
        assert response.status_code == 201, response.text

    async def test_lists_by_time_not_by_arrival(self, client, keys, swift):
        for at, value in (("2026-03-01", 3), ("2026-01-01", 1), ("2026-02-01", 2)):
            await self.check_in(client, keys, "swift", f"{at}T09:00:00Z", value)
        response = await client.get("/v1/goals/swift/check-ins", headers=await keys.reader())
        assert response.status_code == 200
        assert [c["value"] for c in response.json()["items"]] == [1, 2, 3]
        assert {c["goal"] for c in response.json()["items"]} == {"swift"}
        assert response.json()["next_cursor"] is None

    async def test_pages_with_a_cursor(self, client, keys, swift):
        for day in range(1, 6):
            await self.check_in(client, keys, "swift", f"2026-01-0{day}T09:00:00+01:00", day)
        headers = await keys.reader()
        values, cursor, pages = [], None, 0
        while True:
            query = "limit=2" + (f"&cursor={cursor}" if cursor else "")
            response = await client.get(f"/v1/goals/swift/check-ins?{query}", headers=headers)
            assert response.status_code == 200, response.text
            values += [c["value"] for c in response.json()["items"]]
            cursor, pages = response.json()["next_cursor"], pages + 1
            if cursor is None:
                break
        assert values == [1, 2, 3, 4, 5]
        assert pages == 3

    async def test_check_ins_at_the_same_moment_page_without_loss(self, client, keys, swift):
        for value in range(4):
            await self.check_in(client, keys, "swift", "2026-01-01T09:00:00Z", value)
        headers = await keys.reader()
        first = await client.get("/v1/goals/swift/check-ins?limit=3", headers=headers)
        second = await client.get(
            f"/v1/goals/swift/check-ins?limit=3&cursor={first.json()['next_cursor']}",
            headers=headers,
        )
        items = first.json()["items"] + second.json()["items"]
        assert sorted(c["value"] for c in items) == [0, 1, 2, 3]
        assert len({c["id"] for c in items}) == 4
        assert second.json()["next_cursor"] is None

    async def test_lists_only_this_goals_check_ins(self, client, keys, session, swift):
        await make_goal(session, key="other", owner="service", metric="rapport")
        await self.check_in(client, keys, "swift", "2026-01-01T09:00:00Z", 1)
        await self.check_in(client, keys, "other", "2026-01-01T09:00:00Z", 2)
        response = await client.get("/v1/goals/other/check-ins", headers=await keys.reader())
        assert [c["value"] for c in response.json()["items"]] == [2]

    async def test_an_unknown_goal_is_404(self, client, keys):
        response = await client.get("/v1/goals/nowhere/check-ins", headers=await keys.reader())
        assert_problem(response, 404, "not_found")

    async def test_a_partner_reads_its_joint_goals_check_ins(self, client, keys, joint):
        await self.check_in(client, keys, "courier-on-time", "2026-01-01T09:00:00Z", 95)
        response = await client.get(
            "/v1/goals/courier-on-time/check-ins", headers=await keys.partner("courier")
        )
        assert response.status_code == 200
        assert [c["value"] for c in response.json()["items"]] == [95]

    async def test_another_partners_check_ins_are_404(self, client, keys, joint):
        await self.check_in(client, keys, "rival-speed", "2026-01-01T09:00:00Z", 95)
        response = await client.get(
            "/v1/goals/rival-speed/check-ins", headers=await keys.partner("courier")
        )
        assert_problem(response, 404, "not_found")


# List --------------------------------------------------------------------------------------


class TestListGoals:
    @pytest.fixture
    async def goals(self, session, world):
        await make_goal(
            session, key="g-aht", owner="marketing", metric="handle-time", touchpoints=["call"]
        )
        await make_goal(
            session,
            key="g-rapport",
            owner="service",
            metric="rapport",
            touchpoints=["call", "chat"],
        )
        await make_goal(
            session, key="g-retired", owner="service", metric="handle-time", status="retired"
        )
        await make_goal(
            session, key="g-joint", owner="courier", metric="rapport", agreement="courier-sla"
        )
        await make_joint_goal(session, "courier-sla", key="g-proposal", metric="handle-time")
        await make_joint_goal(session, "rival-sla", key="g-rival", metric="handle-time")

    @pytest.mark.parametrize(
        ("query", "expected"),
        [
            ("", ["g-aht", "g-joint", "g-proposal", "g-rapport", "g-retired", "g-rival"]),
            ("owner=service", ["g-rapport", "g-retired"]),
            ("owner=courier", ["g-joint", "g-proposal"]),
            ("metric=rapport", ["g-joint", "g-rapport"]),
            ("status=active", ["g-aht", "g-joint", "g-rapport"]),
            ("status=proposed", ["g-proposal", "g-rival"]),
            ("status=retired", ["g-retired"]),
            ("agreement=courier-sla", ["g-joint", "g-proposal"]),
            ("agreement=rival-sla", ["g-rival"]),
            ("touchpoint=call", ["g-aht", "g-rapport"]),
            ("touchpoint=chat", ["g-rapport"]),
            ("owner=service&metric=handle-time", ["g-retired"]),
            ("agreement=courier-sla&status=proposed", ["g-proposal"]),
            ("touchpoint=call&owner=marketing", ["g-aht"]),
        ],
    )
    async def test_filters(self, client, keys, goals, query, expected):
        response = await client.get(f"/v1/goals?{query}", headers=await keys.reader())
        assert response.status_code == 200, response.text
        assert [g["key"] for g in response.json()["items"]] == expected

    @pytest.mark.parametrize(
        "query", ["owner=nowhere", "metric=nowhere", "agreement=nowhere", "touchpoint=nowhere"]
    )
    async def test_filtering_by_an_unknown_key_matches_nothing(self, client, keys, goals, query):
        response = await client.get(f"/v1/goals?{query}", headers=await keys.reader())
        assert response.status_code == 200
        assert response.json() == {"items": [], "next_cursor": None}

    @pytest.mark.parametrize(
        ("query", "loc"), [("status=paused", "status"), ("owner=Bad%20Key", "owner")]
    )
    async def test_a_malformed_filter_is_422(self, client, keys, query, loc):
        response = await client.get(f"/v1/goals?{query}", headers=await keys.reader())
        body = assert_problem(response, 422, "validation_failed")
        assert body["errors"][0]["loc"] == ["query", loc]

    async def test_pages_by_key_with_a_cursor(self, client, keys, goals):
        headers = await keys.reader()
        keys_seen, cursor = [], None
        while True:
            query = "limit=4" + (f"&cursor={cursor}" if cursor else "")
            response = await client.get(f"/v1/goals?{query}", headers=headers)
            keys_seen.append([g["key"] for g in response.json()["items"]])
            cursor = response.json()["next_cursor"]
            if cursor is None:
                break
        assert keys_seen == [
            ["g-aht", "g-joint", "g-proposal", "g-rapport"],
            ["g-retired", "g-rival"],
        ]

    async def test_filters_and_cursor_combine(self, client, keys, goals):
        headers = await keys.reader()
        first = await client.get("/v1/goals?owner=service&limit=1", headers=headers)
        second = await client.get(
            f"/v1/goals?owner=service&limit=1&cursor={first.json()['next_cursor']}",
            headers=headers,
        )
        assert [g["key"] for g in first.json()["items"] + second.json()["items"]] == [
            "g-rapport",
            "g-retired",
        ]
        assert second.json()["next_cursor"] is None

    async def test_a_partner_lists_only_its_agreements_joint_goals(self, client, keys, goals):
        response = await client.get("/v1/goals", headers=await keys.partner("courier"))
        assert response.status_code == 200
        assert [g["key"] for g in response.json()["items"]] == ["g-joint", "g-proposal"]

    @pytest.mark.parametrize(
        "query",
        [
            "owner=rival",
            "owner=service",
            "agreement=rival-sla",
            "metric=handle-time",
            "status=active",
            "touchpoint=call",
            "limit=1",
        ],
    )
    async def test_no_filter_widens_a_partners_scope(self, client, keys, goals, query):
        response = await client.get(f"/v1/goals?{query}", headers=await keys.partner("courier"))
        assert response.status_code == 200
        assert {g["key"] for g in response.json()["items"]} <= {"g-joint", "g-proposal"}

    async def test_a_partner_pages_only_through_its_own(self, client, keys, goals):
        headers = await keys.partner("courier")
        first = await client.get("/v1/goals?limit=1", headers=headers)
        second = await client.get(
            f"/v1/goals?limit=1&cursor={first.json()['next_cursor']}", headers=headers
        )
        assert [g["key"] for g in first.json()["items"] + second.json()["items"]] == [
            "g-joint",
            "g-proposal",
        ]
        assert second.json()["next_cursor"] is None

    async def test_a_partner_without_agreements_lists_nothing(self, client, keys, session, goals):
        await make_unit(session, key="loner", kind="channel")
        response = await client.get("/v1/goals", headers=await keys.partner("loner"))
        assert response.json() == {"items": [], "next_cursor": None}


# Conflicts ---------------------------------------------------------------------------------


class TestGoalsRedetectConflicts:
    """marketing wants handle time down; service wants it up: the two duel while both are
    active and their periods overlap."""

    async def conflicts(self, client, keys) -> list[list[str]]:
        response = await client.get("/v1/conflicts", headers=await keys.reader())
        assert response.status_code == 200
        return [sorted(g["key"] for g in c["goals"]) for c in response.json()["items"]]

    @pytest.fixture
    async def duel(self, client, keys, world):
        writer = await keys.writer()
        first = await client.post(
            "/v1/goals",
            json=goal_body(period_start="2026-01-01", period_end="2026-06-30"),
            headers=writer,
        )
        second = await client.post(
            "/v1/goals",
            json=goal_body(
                key="thorough",
                owner="service",
                direction="increase",
                period_start="2026-03-01",
                period_end="2026-12-31",
            ),
            headers=writer,
        )
        assert first.status_code == second.status_code == 201

    async def test_creating_dueling_goals_opens_a_conflict(self, client, keys, session, duel):
        assert await self.conflicts(client, keys) == [["swift", "thorough"]]
        assert await count(session, Conflict) == 1

    async def test_goals_pulling_the_same_way_do_not_conflict(self, client, keys, world):
        writer = await keys.writer()
        await client.post("/v1/goals", json=goal_body(), headers=writer)
        await client.post("/v1/goals", json=goal_body(key="also", owner="service"), headers=writer)
        assert await self.conflicts(client, keys) == []

    async def test_retiring_one_closes_it(self, client, keys, session, duel):
        response = await client.patch(
            "/v1/goals/thorough", json={"status": "retired"}, headers=await keys.writer()
        )
        assert response.status_code == 200
        assert await self.conflicts(client, keys) == []
        assert await count(session, Conflict) == 0

    async def test_reactivating_it_opens_it_again(self, client, keys, duel):
        writer = await keys.writer()
        await client.patch("/v1/goals/thorough", json={"status": "retired"}, headers=writer)
        await client.patch("/v1/goals/thorough", json={"status": "active"}, headers=writer)
        assert await self.conflicts(client, keys) == [["swift", "thorough"]]

    async def test_periods_that_no_longer_overlap_close_it(self, client, keys, duel):
        response = await client.patch(
            "/v1/goals/thorough", json={"period_start": "2026-07-01"}, headers=await keys.writer()
        )
        assert response.status_code == 200
        assert await self.conflicts(client, keys) == []

    async def test_opening_a_period_up_brings_it_back(self, client, keys, duel):
        writer = await keys.writer()
        await client.patch(
            "/v1/goals/thorough", json={"period_start": "2026-07-01"}, headers=writer
        )
        await client.patch("/v1/goals/thorough", json={"period_start": None}, headers=writer)
        assert await self.conflicts(client, keys) == [["swift", "thorough"]]

    async def test_deleting_one_closes_it(self, client, keys, session, duel):
        response = await client.delete("/v1/goals/thorough", headers=await keys.writer())
        assert response.status_code == 204
        assert await self.conflicts(client, keys) == []
        assert await count(session, Conflict) == 0

    async def test_a_refused_change_leaves_it_open(self, client, keys, duel):
        response = await client.patch(
            "/v1/goals/thorough",
            json={"status": "retired", "owner": "nowhere"},
            headers=await keys.writer(),
        )
        assert_problem(response, 422, "unknown_reference")
        assert await self.conflicts(client, keys) == [["swift", "thorough"]]

    async def test_the_same_owner_is_no_duel(self, client, keys, duel):
        response = await client.patch(
            "/v1/goals/thorough", json={"owner": "marketing"}, headers=await keys.writer()
        )
        assert response.status_code == 200
        assert await self.conflicts(client, keys) == []
