"""REST: /v1/conflicts, dueling silos, against docs/method.md §8 (dueling silos).

Two active goals g1, g2 of different owners conflict when their periods overlap, their
scopes overlap and d(g1) × effect × d(g2) < 0, with d = +1 for `increase`, −1 for
`decrease` and effect = +1 for the same metric, otherwise a direct declared relation (in
either direction). Severity = 1, +1 for a moment of truth in the shared scope, +1 when
exactly one goal carries an incentive. Every expected value below is that arithmetic.

Re-detection on goal and relation changes is tested in tests/goals/test_rest.py and
tests/metrics/test_rest.py; this file covers the rule itself, severity, the resolve
lifecycle and who may see and resolve what.
"""

from __future__ import annotations

import uuid
from datetime import datetime

import pytest

from tests.factories import make_goal, make_metric, make_relation, make_touchpoint, make_unit
from tests.problems import assert_problem

# Owners and metrics every test can use (the `org` fixture makes them).
UNITS = ("marketing", "service", "sales")
METRICS = ("handle-time", "rapport", "cost")


@pytest.fixture(autouse=True)
async def org(session):
    for key in UNITS:
        await make_unit(session, key=key)
    for key in METRICS:
        await make_metric(session, key=key)


# Helpers -----------------------------------------------------------------------------------


async def goal(session, key: str, owner: str, metric: str, direction: str, **fields):
    return await make_goal(
        session, key=key, owner=owner, metric=metric, direction=direction, **fields
    )


async def swift(session, **fields):
    """marketing wants handle time down (d = −1)."""
    return await goal(session, "swift", "marketing", "handle-time", "decrease", **fields)


async def thorough(session, **fields):
    """service wants handle time up (d = +1): against `swift` through the same metric."""
    return await goal(session, "thorough", "service", "handle-time", "increase", **fields)


async def touchpoint(session, key: str, *, moment_of_truth: bool = False):
    return await make_touchpoint(session, key=key, moment_of_truth=moment_of_truth)


async def listed(client, headers, **params) -> list[dict]:
    response = await client.get("/v1/conflicts", params=params, headers=headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["next_cursor"] is None
    return body["items"]


async def the_conflict(client, keys) -> dict:
    (conflict,) = await listed(client, await keys.reader())
    return conflict


async def pairs(client, keys, **params) -> list[list[str]]:
    items = await listed(client, await keys.reader(), **params)
    return [sorted(g["key"] for g in c["goals"]) for c in items]


async def resolve(client, keys, conflict_id: str, note: str = "agreed a joint target") -> dict:
    response = await client.post(
        f"/v1/conflicts/{conflict_id}/resolve", json={"note": note}, headers=await keys.writer()
    )
    assert response.status_code == 200, response.text
    return response.json()


async def patch_goal(client, keys, key: str, **changes) -> dict:
    response = await client.patch(f"/v1/goals/{key}", json=changes, headers=await keys.writer())
    assert response.status_code == 200, response.text
    return response.json()


def side(key: str, owner: str, metric: str, direction: str, incentive: float = 0.0) -> dict:
    """One goal of a conflict as reported, with the incentive weight riding on it."""
    return {
        "key": key,
        "owner": owner,
        "metric": metric,
        "direction": direction,
        "incentive_weight": incentive,
    }


SWIFT = side("swift", "marketing", "handle-time", "decrease")
THOROUGH = side("thorough", "service", "handle-time", "increase")


def summary(conflict: dict) -> dict:
    """What the rule decides, without ids and timestamps (goals ordered by key)."""
    return {
        "goals": sorted(conflict["goals"], key=lambda g: g["key"]),
        "metric_path": conflict["metric_path"],
        "effect": conflict["effect"],
        "severity": conflict["severity"],
        "reasons": conflict["reasons"],
        "shared_touchpoints": conflict["shared_touchpoints"],
        "status": conflict["status"],
    }


def expected(goals, metric_path, effect, severity, reasons, shared=()) -> dict:
    return {
        "goals": sorted(goals, key=lambda g: g["key"]),
        "metric_path": list(metric_path),
        "effect": effect,
        "severity": severity,
        "reasons": list(reasons),
        "shared_touchpoints": list(shared),
        "status": "open",
    }


# The reasons the service gives, one per severity point (goals named in key order).
def works_against(first: dict, second: dict) -> str:
    return (
        f"{first['direction']} {first['metric']} works against "
        f"{second['direction']} {second['metric']}"
    )


def moment_of_truth(*touchpoints: str) -> str:
    return f"the shared scope holds a moment of truth: {', '.join(touchpoints)}"


def only_funded(key: str) -> str:
    return f"only {key} carries an incentive: the funded goal wins on the floor"


SWIFT_VS_THOROUGH = works_against(SWIFT, THOROUGH)


def instant(value: str) -> datetime:
    return datetime.fromisoformat(value)


# d(g1) × effect × d(g2) < 0 ----------------------------------------------------------------


class TestTheProductRule:
    async def test_same_metric_opposite_directions(self, client, keys, session):
        await swift(session)
        await thorough(session)
        conflict = await the_conflict(client, keys)
        # (−1) × (+1, the same metric) × (+1) = −1 < 0.
        assert summary(conflict) == expected(
            [SWIFT, THOROUGH], ["handle-time"], 1, 1, [SWIFT_VS_THOROUGH]
        )
        assert conflict["resolution_note"] is None
        assert conflict["resolved_at"] is None
        assert conflict["updated_at"] >= conflict["detected_at"]

    async def test_same_metric_both_decreasing_is_no_duel(self, client, keys, session):
        await swift(session)
        # (−1) × (+1) × (−1) = +1.
        await goal(session, "lean", "service", "handle-time", "decrease")
        assert await pairs(client, keys) == []

    async def test_positive_relation_opposite_directions(self, client, keys, session):
        await make_relation(session, from_metric="handle-time", to_metric="rapport", effect=1)
        await goal(session, "pace", "marketing", "handle-time", "decrease")
        await goal(session, "warmth", "service", "rapport", "increase")
        # (−1) × (+1) × (+1) = −1 < 0.
        pace = side("pace", "marketing", "handle-time", "decrease")
        warmth = side("warmth", "service", "rapport", "increase")
        assert summary(await the_conflict(client, keys)) == expected(
            [pace, warmth], ["handle-time", "rapport"], 1, 1, [works_against(pace, warmth)]
        )

    async def test_positive_relation_both_decreasing_is_no_duel(self, client, keys, session):
        await make_relation(session, from_metric="handle-time", to_metric="rapport", effect=1)
        await goal(session, "pace", "marketing", "handle-time", "decrease")
        await goal(session, "calm", "service", "rapport", "decrease")
        # (−1) × (+1) × (−1) = +1.
        assert await pairs(client, keys) == []

    async def test_negative_relation_both_decreasing(self, client, keys, session):
        await make_relation(session, from_metric="handle-time", to_metric="cost", effect=-1)
        await goal(session, "pace", "marketing", "handle-time", "decrease")
        await goal(session, "thrift", "service", "cost", "decrease")
        # (−1) × (−1) × (−1) = −1 < 0: shorter calls push cost up.
        pace = side("pace", "marketing", "handle-time", "decrease")
        thrift = side("thrift", "service", "cost", "decrease")
        assert summary(await the_conflict(client, keys)) == expected(
            [pace, thrift], ["handle-time", "cost"], -1, 1, [works_against(pace, thrift)]
        )

    async def test_negative_relation_opposite_directions_is_no_duel(self, client, keys, session):
        await make_relation(session, from_metric="handle-time", to_metric="cost", effect=-1)
        await goal(session, "linger", "marketing", "handle-time", "increase")
        await goal(session, "thrift", "service", "cost", "decrease")
        # (+1) × (−1) × (−1) = +1.
        assert await pairs(client, keys) == []

    async def test_relation_declared_in_reverse_counts(self, client, keys, session):
        # Declared rapport → handle time, while the goals sort as (handle time, rapport).
        await make_relation(session, from_metric="rapport", to_metric="handle-time", effect=1)
        await goal(session, "alpha", "marketing", "handle-time", "decrease")
        await goal(session, "beta", "service", "rapport", "increase")
        # (−1) × (+1) × (+1) = −1 < 0; the path is the relation as declared.
        alpha = side("alpha", "marketing", "handle-time", "decrease")
        beta = side("beta", "service", "rapport", "increase")
        assert summary(await the_conflict(client, keys)) == expected(
            [alpha, beta], ["rapport", "handle-time"], 1, 1, [works_against(alpha, beta)]
        )

    async def test_relations_both_ways_agreeing_they_help(self, client, keys, session):
        await make_relation(session, from_metric="handle-time", to_metric="rapport", effect=1)
        await make_relation(session, from_metric="rapport", to_metric="handle-time", effect=1)
        await goal(session, "alpha", "marketing", "handle-time", "increase")
        await goal(session, "beta", "service", "rapport", "increase")
        # (+1) × (+1) × (+1) = +1 both ways.
        assert await pairs(client, keys) == []

    async def test_relations_disagreeing_the_reverse_one_hurts(self, client, keys, session):
        await make_relation(session, from_metric="handle-time", to_metric="rapport", effect=1)
        await make_relation(session, from_metric="rapport", to_metric="handle-time", effect=-1)
        await goal(session, "alpha", "marketing", "handle-time", "increase")
        await goal(session, "beta", "service", "rapport", "increase")
        # handle time → rapport: +1 (no); rapport → handle time: (+1) × (−1) × (+1) < 0.
        alpha = side("alpha", "marketing", "handle-time", "increase")
        beta = side("beta", "service", "rapport", "increase")
        assert summary(await the_conflict(client, keys)) == expected(
            [alpha, beta], ["rapport", "handle-time"], -1, 1, [works_against(alpha, beta)]
        )

    async def test_relations_disagreeing_the_forward_one_hurts(self, client, keys, session):
        await make_relation(session, from_metric="handle-time", to_metric="rapport", effect=-1)
        await make_relation(session, from_metric="rapport", to_metric="handle-time", effect=1)
        await goal(session, "alpha", "marketing", "handle-time", "increase")
        await goal(session, "beta", "service", "rapport", "increase")
        alpha = side("alpha", "marketing", "handle-time", "increase")
        beta = side("beta", "service", "rapport", "increase")
        assert summary(await the_conflict(client, keys)) == expected(
            [alpha, beta], ["handle-time", "rapport"], -1, 1, [works_against(alpha, beta)]
        )

    async def test_only_direct_relations_count(self, client, keys, session):
        # handle time −1→ rapport +1→ cost: the chain handle time ⇒ cost would be −1.
        await make_relation(session, from_metric="handle-time", to_metric="rapport", effect=-1)
        await make_relation(session, from_metric="rapport", to_metric="cost", effect=1)
        await goal(session, "alpha", "marketing", "handle-time", "increase")
        await goal(session, "beta", "service", "cost", "increase")
        await goal(session, "gamma", "sales", "rapport", "increase")
        # alpha–gamma: (+1)(−1)(+1) < 0; beta–gamma: (+1)(+1)(+1) > 0; alpha–beta: no
        # direct relation, so no duel in method v1.
        assert await pairs(client, keys) == [["alpha", "gamma"]]


# When goals do not duel --------------------------------------------------------------------


class TestNoDuel:
    async def test_maintain_goals_never_conflict_on_either_side(self, client, keys, session):
        # "aplomb" sorts before and "zen" after both duelling goals.
        await goal(session, "aplomb", "sales", "handle-time", "maintain")
        await goal(session, "zen", "sales", "handle-time", "maintain")
        await swift(session)
        await thorough(session)
        assert await pairs(client, keys) == [["swift", "thorough"]]

    async def test_maintain_through_a_relation_is_no_duel(self, client, keys, session):
        await make_relation(session, from_metric="handle-time", to_metric="rapport", effect=-1)
        await goal(session, "steady", "marketing", "handle-time", "maintain")
        await goal(session, "warmth", "service", "rapport", "increase")
        assert await pairs(client, keys) == []

    async def test_the_same_owner_through_a_relation_is_no_duel(self, client, keys, session):
        await make_relation(session, from_metric="handle-time", to_metric="rapport", effect=1)
        await goal(session, "pace", "marketing", "handle-time", "decrease")
        await goal(session, "warmth", "marketing", "rapport", "increase")
        assert await pairs(client, keys) == []

    async def test_an_open_start_does_not_reach_past_its_end(self, client, keys, session):
        await swift(session, period_end="2026-02-28")
        await thorough(session, period_start="2026-03-01")
        assert await pairs(client, keys) == []

    async def test_disjoint_touchpoint_scopes(self, client, keys, session):
        await touchpoint(session, "ivr")
        await touchpoint(session, "desk")
        await swift(session, touchpoints=["ivr"])
        await thorough(session, touchpoints=["desk"])
        assert await pairs(client, keys) == []

    async def test_a_proposed_goal_does_not_duel_until_active(self, client, keys, session):
        await swift(session)
        await thorough(session, status="proposed")
        assert await pairs(client, keys) == []
        await patch_goal(client, keys, "thorough", status="active")
        assert await pairs(client, keys) == [["swift", "thorough"]]

    async def test_a_retired_goal_never_duels(self, client, keys, session):
        await swift(session, status="retired")
        await thorough(session)
        assert await pairs(client, keys) == []


class TestOverlap:
    async def test_periods_sharing_one_day_overlap(self, client, keys, session):
        # Periods are whole days: both goals run on 2026-06-30.
        await swift(session, period_start="2026-01-01", period_end="2026-06-30")
        await thorough(session, period_start="2026-06-30", period_end="2026-12-31")
        assert await pairs(client, keys) == [["swift", "thorough"]]

    async def test_a_goal_without_period_overlaps_any_period(self, client, keys, session):
        await swift(session)
        await thorough(session, period_start="2030-01-01", period_end="2030-12-31")
        assert await pairs(client, keys) == [["swift", "thorough"]]

    async def test_open_ends_facing_each_other_overlap(self, client, keys, session):
        await swift(session, period_end="2026-12-31")
        await thorough(session, period_start="2026-01-01")
        assert await pairs(client, keys) == [["swift", "thorough"]]

    async def test_a_shared_touchpoint_is_the_shared_scope(self, client, keys, session):
        for key in ("ivr", "desk", "chat"):
            await touchpoint(session, key)
        await swift(session, touchpoints=["ivr", "desk"])
        await thorough(session, touchpoints=["desk", "chat"])
        assert summary(await the_conflict(client, keys)) == expected(
            [SWIFT, THOROUGH], ["handle-time"], 1, 1, [SWIFT_VS_THOROUGH], shared=["desk"]
        )

    async def test_a_goal_naming_no_touchpoint_overlaps_any_scope(self, client, keys, session):
        await touchpoint(session, "desk")
        await touchpoint(session, "chat")
        await swift(session)
        await thorough(session, touchpoints=["desk", "chat"])
        # swift acts everywhere, so it shares all of thorough's touchpoints.
        assert summary(await the_conflict(client, keys)) == expected(
            [SWIFT, THOROUGH], ["handle-time"], 1, 1, [SWIFT_VS_THOROUGH], shared=["chat", "desk"]
        )


# Severity ----------------------------------------------------------------------------------


class TestSeverity:
    async def test_a_moment_of_truth_in_the_shared_scope_adds_one(self, client, keys, session):
        await touchpoint(session, "call", moment_of_truth=True)
        await swift(session, touchpoints=["call"])
        await thorough(session, touchpoints=["call"])
        # 1 + 1 (call is a moment of truth) + 0 (no incentive on either side) = 2.
        assert summary(await the_conflict(client, keys)) == expected(
            [SWIFT, THOROUGH],
            ["handle-time"],
            1,
            2,
            [SWIFT_VS_THOROUGH, moment_of_truth("call")],
            shared=["call"],
        )

    async def test_a_moment_of_truth_outside_the_shared_part(self, client, keys, session):
        await touchpoint(session, "call", moment_of_truth=True)
        await touchpoint(session, "desk")
        await swift(session, touchpoints=["call", "desk"])
        await thorough(session, touchpoints=["desk"])
        # They meet only at the desk: the call is swift's alone.
        assert summary(await the_conflict(client, keys)) == expected(
            [SWIFT, THOROUGH], ["handle-time"], 1, 1, [SWIFT_VS_THOROUGH], shared=["desk"]
        )

    async def test_a_goal_everywhere_meets_the_other_at_its_moment_of_truth(
        self, client, keys, session
    ):
        await touchpoint(session, "call", moment_of_truth=True)
        await touchpoint(session, "desk")
        await swift(session)
        await thorough(session, touchpoints=["call", "desk"])
        assert summary(await the_conflict(client, keys)) == expected(
            [SWIFT, THOROUGH],
            ["handle-time"],
            1,
            2,
            [SWIFT_VS_THOROUGH, moment_of_truth("call")],
            shared=["call", "desk"],
        )

    async def test_every_moment_of_truth_shared_is_named(self, client, keys, session):
        await touchpoint(session, "call", moment_of_truth=True)
        await touchpoint(session, "branch", moment_of_truth=True)
        await swift(session, touchpoints=["call", "branch"])
        await thorough(session, touchpoints=["branch", "call"])
        conflict = await the_conflict(client, keys)
        # Still one point, however many moments of truth they share.
        assert conflict["severity"] == 2
        assert conflict["reasons"] == [SWIFT_VS_THOROUGH, moment_of_truth("branch", "call")]
        assert conflict["shared_touchpoints"] == ["branch", "call"]

    async def test_exactly_one_incentive_adds_one(self, client, keys, session):
        await swift(session)
        await thorough(session, incentive_weight=0.2)
        # 1 + 0 + 1 (only thorough pays out) = 2.
        assert summary(await the_conflict(client, keys)) == expected(
            [SWIFT, {**THOROUGH, "incentive_weight": 0.2}],
            ["handle-time"],
            1,
            2,
            [SWIFT_VS_THOROUGH, only_funded("thorough")],
        )

    async def test_both_incentivised_adds_nothing(self, client, keys, session):
        await swift(session, incentive_weight=0.3)
        await thorough(session, incentive_weight=0.1)
        assert summary(await the_conflict(client, keys)) == expected(
            [{**SWIFT, "incentive_weight": 0.3}, {**THOROUGH, "incentive_weight": 0.1}],
            ["handle-time"],
            1,
            1,
            [SWIFT_VS_THOROUGH],
        )

    async def test_severity_follows_incentive_changes(self, client, keys, session):
        await swift(session)
        await thorough(session)
        assert (await the_conflict(client, keys))["severity"] == 1
        await patch_goal(client, keys, "swift", incentive_weight=0.25)
        funded = await the_conflict(client, keys)
        assert funded["severity"] == 2
        assert funded["reasons"] == [SWIFT_VS_THOROUGH, only_funded("swift")]
        assert sorted(funded["goals"], key=lambda g: g["key"]) == [
            {**SWIFT, "incentive_weight": 0.25},
            THOROUGH,
        ]
        # Now both are paid: the extra point goes again.
        await patch_goal(client, keys, "thorough", incentive_weight=0.1)
        assert (await the_conflict(client, keys))["severity"] == 1

    async def test_the_scoring_example_is_severity_three(self, client, keys, session):
        """docs/method.md §8: marketing pays reps to lower call.handle_time, service wants to raise
        call.rapport, and raising handle time raises rapport: (−1) × (+1) × (+1) < 0, on a
        call that is a moment of truth, with only marketing's goal paying out."""
        await make_metric(session, key="call.handle_time")
        await make_metric(session, key="call.rapport")
        await make_relation(
            session, from_metric="call.handle_time", to_metric="call.rapport", effect=1
        )
        await touchpoint(session, "call", moment_of_truth=True)
        await goal(
            session,
            "short-calls",
            "marketing",
            "call.handle_time",
            "decrease",
            incentive_weight=0.15,
            touchpoints=["call"],
        )
        await goal(
            session, "warm-calls", "service", "call.rapport", "increase", touchpoints=["call"]
        )
        short = side("short-calls", "marketing", "call.handle_time", "decrease", 0.15)
        warm = side("warm-calls", "service", "call.rapport", "increase", 0.0)
        assert summary(await the_conflict(client, keys)) == expected(
            [short, warm],
            ["call.handle_time", "call.rapport"],
            1,
            3,
            [works_against(short, warm), moment_of_truth("call"), only_funded("short-calls")],
            shared=["call"],
        )

    async def test_a_new_moment_of_truth_raises_the_severity(self, client, keys, session):
        await touchpoint(session, "call")
        await swift(session, touchpoints=["call"])
        await thorough(session, touchpoints=["call"])
        before = await the_conflict(client, keys)
        assert before["severity"] == 1
        writer = await keys.writer()
        response = await client.patch(
            "/v1/touchpoints/call", json={"moment_of_truth": True}, headers=writer
        )
        assert response.status_code == 200, response.text
        after = await the_conflict(client, keys)
        assert after["id"] == before["id"]
        assert after["severity"] == 2
        assert after["reasons"] == [SWIFT_VS_THOROUGH, moment_of_truth("call")]
        # and back again
        response = await client.patch(
            "/v1/touchpoints/call", json={"moment_of_truth": False}, headers=writer
        )
        assert response.status_code == 200, response.text
        assert (await the_conflict(client, keys))["severity"] == 1

    async def test_detect_on_demand_gives_the_same_answer(self, client, keys, session):
        await touchpoint(session, "call", moment_of_truth=True)
        await swift(session, touchpoints=["call"])
        await thorough(session, touchpoints=["call"])
        before = await the_conflict(client, keys)
        response = await client.post("/v1/conflicts/detect", headers=await keys.writer())
        assert response.status_code == 200, response.text
        (detected,) = response.json()["items"]
        assert detected["id"] == before["id"]
        assert detected["severity"] == before["severity"] == 2


# Listing and reading -----------------------------------------------------------------------


class TestListAndGet:
    @pytest.fixture
    async def three(self, session):
        """Three independent duels of severity 1, 3 and 2, made in that order."""
        await touchpoint(session, "call", moment_of_truth=True)
        await make_unit(session, key="billing")
        for key in ("wait", "refunds", "upsell"):
            await make_metric(session, key=key)
        await goal(session, "a-plain", "marketing", "wait", "decrease")
        await goal(session, "b-plain", "service", "wait", "increase")
        await goal(
            session,
            "c-hot",
            "sales",
            "refunds",
            "decrease",
            incentive_weight=1.0,
            touchpoints=["call"],
        )
        await goal(session, "d-hot", "billing", "refunds", "increase", touchpoints=["call"])
        await goal(session, "e-paid", "sales", "upsell", "increase", incentive_weight=0.5)
        await goal(session, "f-paid", "billing", "upsell", "decrease")

    async def test_most_severe_first(self, client, keys, three):
        items = await listed(client, await keys.reader())
        assert [(sorted(g["key"] for g in c["goals"]), c["severity"]) for c in items] == [
            (["c-hot", "d-hot"], 3),
            (["e-paid", "f-paid"], 2),
            (["a-plain", "b-plain"], 1),
        ]

    async def test_a_page_at_a_time(self, client, keys, three):
        reader = await keys.reader()
        first = await client.get("/v1/conflicts", params={"limit": 2}, headers=reader)
        assert first.status_code == 200
        assert [c["severity"] for c in first.json()["items"]] == [3, 2]
        cursor = first.json()["next_cursor"]
        assert cursor
        rest = await client.get(
            "/v1/conflicts", params={"limit": 2, "cursor": cursor}, headers=reader
        )
        assert [c["severity"] for c in rest.json()["items"]] == [1]
        assert rest.json()["next_cursor"] is None

    async def test_pages_walk_every_conflict_in_order(self, client, keys, session, count_statements):
        """Nine duels over three severities, paged four at a time: every page is cut by the
        database (each statement reading conflicts carries a LIMIT), and the pages joined
        are the whole listing, most severe first, then oldest first."""
        await touchpoint(session, "desk", moment_of_truth=True)
        for n in range(9):
            await make_metric(session, key=f"m{n}")
            fields = {"touchpoints": ["desk"]} if n % 3 == 2 else {}
            paid = {"incentive_weight": 1.0} if n % 3 >= 1 else {}
            await goal(session, f"up-{n}", "marketing", f"m{n}", "increase", **fields, **paid)
            await goal(session, f"down-{n}", "service", f"m{n}", "decrease", **fields)
        reader = await keys.reader()
        walked, cursor = [], None
        with count_statements() as statements:
            while True:
                params = {"limit": 4} | ({"cursor": cursor} if cursor else {})
                response = await client.get("/v1/conflicts", params=params, headers=reader)
                assert response.status_code == 200, response.text
                walked += response.json()["items"]
                cursor = response.json()["next_cursor"]
                if cursor is None:
                    break
        reading = [s for s in statements if "FROM conflicts" in s]
        assert len(reading) == 3 and all("LIMIT" in s for s in reading)
        assert [c["severity"] for c in walked] == [3, 3, 3, 2, 2, 2, 1, 1, 1]
        assert len({c["id"] for c in walked}) == 9
        ranked = sorted(walked, key=lambda c: (-c["severity"], c["detected_at"], c["id"]))
        assert walked == ranked
        whole = (await client.get("/v1/conflicts", params={"limit": 50}, headers=reader)).json()
        assert whole["items"] == walked

    async def test_one_conflict_by_id(self, client, keys, session):
        await swift(session)
        await thorough(session)
        listed_one = await the_conflict(client, keys)
        response = await client.get(
            f"/v1/conflicts/{listed_one['id']}", headers=await keys.reader()
        )
        assert response.status_code == 200
        assert response.json() == listed_one

    async def test_unknown_id_is_404(self, client, keys):
        missing = uuid.uuid4()
        response = await client.get(f"/v1/conflicts/{missing}", headers=await keys.reader())
        body = assert_problem(response, 404, "not_found")
        assert body["key"] == str(missing)

    async def test_resolving_an_unknown_id_is_404(self, client, keys):
        response = await client.post(
            f"/v1/conflicts/{uuid.uuid4()}/resolve", json={"note": "n"}, headers=await keys.writer()
        )
        assert_problem(response, 404, "not_found")

    async def test_an_id_that_is_not_a_uuid_is_404(self, client, keys):
        # The path only takes UUIDs (openapi: format uuid): anything else matches no route.
        reader = await keys.reader()
        response = await client.get("/v1/conflicts/not-a-uuid", headers=reader)
        assert_problem(response, 404, "not_found")
        response = await client.post(
            "/v1/conflicts/not-a-uuid/resolve", json={"note": "n"}, headers=await keys.writer()
        )
        assert_problem(response, 404, "not_found")

    async def test_filter_by_status(self, client, keys, three):
        items = await listed(client, await keys.reader())
        hot = next(c for c in items if c["severity"] == 3)
        await resolve(client, keys, hot["id"])
        assert await pairs(client, keys, status="resolved") == [["c-hot", "d-hot"]]
        assert await pairs(client, keys, status="open") == [
            ["e-paid", "f-paid"],
            ["a-plain", "b-plain"],
        ]
        assert len(await pairs(client, keys)) == 3

    async def test_an_unknown_status_is_422(self, client, keys):
        response = await client.get(
            "/v1/conflicts", params={"status": "closed"}, headers=await keys.reader()
        )
        body = assert_problem(response, 422, "validation_failed")
        assert body["errors"][0]["loc"] == ["query", "status"]


# Resolving and the life of a conflict -------------------------------------------------------


class TestResolve:
    @pytest.fixture
    async def duel(self, client, keys, session) -> dict:
        await swift(session)
        await thorough(session)
        return await the_conflict(client, keys)

    async def test_resolving_with_a_note(self, client, keys, duel):
        resolved = await resolve(client, keys, duel["id"], "marketing caps the push at 6 min")
        assert resolved["id"] == duel["id"]
        assert resolved["status"] == "resolved"
        assert resolved["resolution_note"] == "marketing caps the push at 6 min"
        assert instant(resolved["resolved_at"]) >= instant(duel["detected_at"])
        # The rest of the finding is unchanged.
        assert {**summary(resolved), "status": "open"} == summary(duel)
        fetched = await client.get(f"/v1/conflicts/{duel['id']}", headers=await keys.reader())
        assert fetched.json() == resolved

    async def test_resolving_twice_is_409(self, client, keys, duel):
        await resolve(client, keys, duel["id"], "first")
        response = await client.post(
            f"/v1/conflicts/{duel['id']}/resolve",
            json={"note": "again"},
            headers=await keys.writer(),
        )
        assert_problem(response, 409, "conflict")
        # The first resolution stands.
        assert (await the_conflict(client, keys))["resolution_note"] == "first"

    @pytest.mark.parametrize(
        "body",
        [{}, {"note": ""}, {"note": "   "}, {"note": None}],
        ids=["missing", "empty", "blank", "null"],
    )
    async def test_a_note_is_required(self, client, keys, duel, body):
        response = await client.post(
            f"/v1/conflicts/{duel['id']}/resolve", json=body, headers=await keys.writer()
        )
        problem = assert_problem(response, 422, "validation_failed")
        assert problem["errors"][0]["loc"] == ["body", "note"]
        assert (await the_conflict(client, keys))["status"] == "open"

    async def test_no_body_is_422(self, client, keys, duel):
        response = await client.post(
            f"/v1/conflicts/{duel['id']}/resolve", headers=await keys.writer()
        )
        assert_problem(response, 422, "validation_failed")
        assert (await the_conflict(client, keys))["status"] == "open"

    async def test_the_id_is_stable_across_re_detection(self, client, keys, session, duel):
        assert (await the_conflict(client, keys))["id"] == duel["id"]
        # An unrelated goal changes: everything is re-detected, the pair keeps its id.
        await goal(session, "other", "sales", "rapport", "increase")
        await patch_goal(client, keys, "other", title="Warmer calls")
        again = await the_conflict(client, keys)
        assert again["id"] == duel["id"]
        assert again["detected_at"] == duel["detected_at"]
        response = await client.post("/v1/conflicts/detect", headers=await keys.writer())
        assert [c["id"] for c in response.json()["items"]] == [duel["id"]]

    async def test_a_change_to_its_goal_keeps_the_id(self, client, keys, duel):
        await patch_goal(client, keys, "swift", target=240)
        assert (await the_conflict(client, keys))["id"] == duel["id"]

    async def test_a_resolved_pair_stays_resolved_when_others_change(
        self, client, keys, session, duel
    ):
        await resolve(client, keys, duel["id"], "agreed")
        await goal(session, "other", "sales", "rapport", "increase")
        await patch_goal(client, keys, "other", target=4.5)
        await make_relation(session, from_metric="rapport", to_metric="cost", effect=1)
        await client.post("/v1/conflicts/detect", headers=await keys.writer())
        conflict = await the_conflict(client, keys)
        assert (conflict["id"], conflict["status"], conflict["resolution_note"]) == (
            duel["id"],
            "resolved",
            "agreed",
        )

    async def test_a_new_title_on_one_goal_reopens_it(self, client, keys, duel):
        await resolve(client, keys, duel["id"], "agreed")
        await patch_goal(client, keys, "swift", title="Swift, but not curt")
        conflict = await the_conflict(client, keys)
        assert conflict["id"] == duel["id"]
        assert conflict["status"] == "open"
        assert conflict["resolution_note"] is None
        assert conflict["resolved_at"] is None

    async def test_a_new_target_on_the_other_goal_reopens_it(self, client, keys, duel):
        await resolve(client, keys, duel["id"], "agreed")
        await patch_goal(client, keys, "thorough", target=420)
        conflict = await the_conflict(client, keys)
        assert (conflict["id"], conflict["status"], conflict["resolution_note"]) == (
            duel["id"],
            "open",
            None,
        )

    async def test_a_reopened_conflict_can_be_resolved_again(self, client, keys, duel):
        await resolve(client, keys, duel["id"], "first try")
        await patch_goal(client, keys, "thorough", target=420)
        again = await resolve(client, keys, duel["id"], "second try")
        assert (again["status"], again["resolution_note"]) == ("resolved", "second try")

    async def test_resolving_one_pair_does_not_hide_a_new_one(self, client, keys, session, duel):
        await resolve(client, keys, duel["id"], "agreed")
        # sales also wants handle time up: it duels swift (not thorough, same direction).
        await goal(session, "patient", "sales", "handle-time", "increase")
        assert await pairs(client, keys, status="open") == [["patient", "swift"]]
        assert await pairs(client, keys, status="resolved") == [["swift", "thorough"]]

    async def test_retiring_a_goal_ends_a_resolved_conflict(self, client, keys, duel):
        await resolve(client, keys, duel["id"], "agreed")
        await patch_goal(client, keys, "thorough", status="retired")
        assert await pairs(client, keys) == []
        response = await client.get(f"/v1/conflicts/{duel['id']}", headers=await keys.reader())
        assert_problem(response, 404, "not_found")
        # Back in force, the goals duel anew: a new, open conflict.
        await patch_goal(client, keys, "thorough", status="active")
        fresh = await the_conflict(client, keys)
        assert fresh["id"] != duel["id"]
        assert (fresh["status"], fresh["resolution_note"]) == ("open", None)


# Who may see and resolve -------------------------------------------------------------------


class TestAccess:
    @pytest.fixture
    async def duel(self, client, keys, session) -> dict:
        await make_unit(session, key="haulier", kind="partner")
        await swift(session)
        await thorough(session)
        return await the_conflict(client, keys)

    async def test_a_reader_may_read_but_not_resolve(self, client, keys, duel):
        reader = await keys.reader()
        response = await client.get(f"/v1/conflicts/{duel['id']}", headers=reader)
        assert response.status_code == 200
        response = await client.post(
            f"/v1/conflicts/{duel['id']}/resolve", json={"note": "mine"}, headers=reader
        )
        assert_problem(response, 403, "forbidden")
        assert (await the_conflict(client, keys))["status"] == "open"

    async def test_a_reader_may_not_trigger_detection(self, client, keys, duel):
        response = await client.post("/v1/conflicts/detect", headers=await keys.reader())
        assert_problem(response, 403, "forbidden")

    async def test_an_admin_may_resolve(self, client, keys, duel):
        response = await client.post(
            f"/v1/conflicts/{duel['id']}/resolve", json={"note": "ok"}, headers=await keys.admin()
        )
        assert response.status_code == 200
        assert response.json()["status"] == "resolved"

    async def test_a_partner_sees_no_conflicts(self, client, keys, duel):
        partner = await keys.partner("haulier")
        assert await listed(client, partner) == []
        assert await listed(client, partner, status="open") == []
        response = await client.get(f"/v1/conflicts/{duel['id']}", headers=partner)
        assert_problem(response, 404, "not_found")

    async def test_a_partner_may_not_resolve(self, client, keys, duel):
        response = await client.post(
            f"/v1/conflicts/{duel['id']}/resolve",
            json={"note": "ours"},
            headers=await keys.partner("haulier"),
        )
        assert_problem(response, 403, "forbidden")
        assert (await the_conflict(client, keys))["status"] == "open"

    @pytest.mark.parametrize(
        "headers", [{}, {"Authorization": "Bearer wrong"}], ids=["none", "bad"]
    )
    async def test_without_a_valid_key_is_401(self, client, keys, duel, headers):
        for response in (
            await client.get("/v1/conflicts", headers=headers),
            await client.get(f"/v1/conflicts/{duel['id']}", headers=headers),
            await client.post(
                f"/v1/conflicts/{duel['id']}/resolve", json={"note": "n"}, headers=headers
            ),
        ):
            assert_problem(response, 401, "unauthenticated")
        assert (await the_conflict(client, keys))["status"] == "open"
