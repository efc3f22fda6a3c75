"""REST: /v1/journeys, /v1/touchpoints (with their feedback) and /v1/feedback/bulk."""

from __future__ import annotations

import orjson
import pytest
from sqlalchemy import func, select

from service.goals.models import Goal, GoalTouchpoint
from service.journeys.models import Feedback
from service.metrics.models import Metric
from tests.factories import (
    make_feedback,
    make_handoff,
    make_journey,
    make_touchpoint,
    make_unit,
    unique_key,
)
from tests.problems import assert_problem

NDJSON = {"content-type": "application/x-ndjson"}


def journey_body(**overrides):
    return {
        "key": "onboarding",
        "name": "Onboarding",
        "stages": ["apply", "verify", "use"],
        **overrides,
    }


def feedback_body(**overrides):
    return {"at": "2026-03-01T09:00:00+01:00", "scale": "csat", "score": 4, **overrides}


def bulk_item(touchpoint: str, external_id: str, **overrides):
    return {"touchpoint": touchpoint, "external_id": external_id, **feedback_body(**overrides)}


def ndjson(items) -> bytes:
    return b"\n".join(orjson.dumps(item) for item in items)


async def feedback_count(session) -> int:
    return await session.scalar(select(func.count()).select_from(Feedback))


async def partner_headers(keys, session):
    await make_unit(session, key="courier", kind="partner")
    return await keys.partner("courier")


async def rings(client, keys, *unit_keys):
    headers = await keys.reader()
    return [
        (await client.get(f"/v1/units/{key}", headers=headers)).json()["ring"] for key in unit_keys
    ]


# Journeys ----------------------------------------------------------------------------------


class TestCreateJourney:
    async def test_creates_and_returns_the_journey(self, client, keys):
        response = await client.post(
            "/v1/journeys", json=journey_body(segment="Retail"), headers=await keys.writer()
        )
        assert response.status_code == 201
        body = response.json()
        assert {k: body[k] for k in ("key", "name", "segment", "stages", "version")} == {
            "key": "onboarding",
            "name": "Onboarding",
            "segment": "Retail",
            "stages": ["apply", "verify", "use"],
            "version": 1,
        }
        assert response.headers["etag"] == '"1"'
        assert response.headers["location"] == "/v1/journeys/onboarding"

    async def test_segment_defaults_to_null(self, client, keys):
        response = await client.post(
            "/v1/journeys", json=journey_body(), headers=await keys.writer()
        )
        assert response.status_code == 201
        assert response.json()["segment"] is None

    async def test_duplicate_key_is_409(self, client, keys, session):
        await make_journey(session, key="onboarding")
        response = await client.post(
            "/v1/journeys", json=journey_body(), headers=await keys.writer()
        )
        assert_problem(response, 409, "key_exists")

    @pytest.mark.parametrize(
        ("payload", "loc"),
        [
            (journey_body(stages=["apply", "use", "apply"]), ["body", "stages"]),
            (journey_body(stages=[]), ["body", "stages"]),
            (journey_body(stages=["apply", ""]), ["body", "stages", 1]),
            (journey_body(key="Not A Key"), ["body", "key"]),
            (journey_body(name=""), ["body", "name"]),
            (journey_body(version=3), ["body", "version"]),
            ({"key": "onboarding", "name": "Onboarding"}, ["body", "stages"]),
        ],
    )
    async def test_invalid_body_is_422_naming_the_field(self, client, keys, payload, loc):
        response = await client.post("/v1/journeys", json=payload, headers=await keys.writer())
        body = assert_problem(response, 422, "validation_failed")
        assert [e["loc"] for e in body["errors"]] == [loc]

    async def test_reader_may_not_create(self, client, keys):
        response = await client.post(
            "/v1/journeys", json=journey_body(), headers=await keys.reader()
        )
        assert_problem(response, 403, "forbidden")
        missing = await client.get("/v1/journeys/onboarding", headers=await keys.writer())
        assert missing.status_code == 404

    async def test_partner_may_not_create(self, client, keys, session):
        response = await client.post(
            "/v1/journeys", json=journey_body(), headers=await partner_headers(keys, session)
        )
        assert_problem(response, 403, "forbidden")

    async def test_idempotency_key_replays_the_first_response(self, client, keys):
        headers = {**await keys.writer(), "Idempotency-Key": "journey-1"}
        first = await client.post("/v1/journeys", json=journey_body(), headers=headers)
        second = await client.post("/v1/journeys", json=journey_body(), headers=headers)
        assert first.status_code == second.status_code == 201
        assert first.json() == second.json()
        assert second.headers["idempotent-replayed"] == "true"
        assert second.headers["location"] == "/v1/journeys/onboarding"

    async def test_idempotency_key_with_another_body_is_422(self, client, keys):
        headers = {**await keys.writer(), "Idempotency-Key": "journey-2"}
        await client.post("/v1/journeys", json=journey_body(), headers=headers)
        response = await client.post(
            "/v1/journeys", json=journey_body(key="other"), headers=headers
        )
        assert_problem(response, 422, "idempotency_key_reused")
        missing = await client.get("/v1/journeys/other", headers=await keys.writer())
        assert missing.status_code == 404


class TestGetJourney:
    async def test_returns_the_journey_with_its_etag(self, client, keys, session):
        await make_journey(session, key="onboarding", stages=["a", "b"])
        response = await client.get("/v1/journeys/onboarding", headers=await keys.reader())
        assert response.status_code == 200
        assert response.json()["stages"] == ["a", "b"]
        assert response.headers["etag"] == '"1"'

    async def test_unknown_key_is_404(self, client, keys):
        response = await client.get("/v1/journeys/nowhere", headers=await keys.reader())
        body = assert_problem(response, 404, "not_found")
        assert body["resource"] == "journey"

    async def test_a_partner_key_gets_404_as_if_absent(self, client, keys, session):
        await make_journey(session, key="onboarding")
        response = await client.get(
            "/v1/journeys/onboarding", headers=await partner_headers(keys, session)
        )
        assert_problem(response, 404, "not_found")


class TestListJourneys:
    async def test_pages_by_key_with_a_cursor(self, client, keys, session):
        for key in ("c", "a", "b"):
            await make_journey(session, key=key)
        headers = await keys.reader()
        first = await client.get("/v1/journeys?limit=2", headers=headers)
        assert first.status_code == 200
        assert [j["key"] for j in first.json()["items"]] == ["a", "b"]
        second = await client.get(
            f"/v1/journeys?limit=2&cursor={first.json()['next_cursor']}", headers=headers
        )
        assert [j["key"] for j in second.json()["items"]] == ["c"]
        assert second.json()["next_cursor"] is None

    async def test_a_partner_key_lists_nothing(self, client, keys, session):
        await make_journey(session, key="onboarding")
        response = await client.get("/v1/journeys", headers=await partner_headers(keys, session))
        assert response.status_code == 200
        assert response.json() == {"items": [], "next_cursor": None}


class TestUpdateJourney:
    async def test_merge_patch_changes_only_what_is_sent(self, client, keys, session):
        await make_journey(session, key="onboarding", segment="Retail", stages=["a", "b"])
        response = await client.patch(
            "/v1/journeys/onboarding",
            json={"name": "Opening an account"},
            headers=await keys.writer(),
        )
        assert response.status_code == 200
        body = response.json()
        assert body["name"] == "Opening an account"
        assert body["segment"] == "Retail"
        assert body["stages"] == ["a", "b"]
        assert body["version"] == 2
        assert response.headers["etag"] == '"2"'

    async def test_null_clears_the_segment(self, client, keys, session):
        await make_journey(session, key="onboarding", segment="Retail")
        response = await client.patch(
            "/v1/journeys/onboarding", json={"segment": None}, headers=await keys.writer()
        )
        assert response.status_code == 200
        assert response.json()["segment"] is None

    async def test_stages_can_be_added_and_reordered(self, client, keys, session):
        journey = await make_journey(session, key="onboarding", stages=["a", "b"])
        await make_touchpoint(session, journey="onboarding", stage="a")
        response = await client.patch(
            "/v1/journeys/onboarding", json={"stages": ["b", "c", "a"]}, headers=await keys.writer()
        )
        assert response.status_code == 200
        assert response.json()["stages"] == ["b", "c", "a"]
        got = await client.get(f"/v1/journeys/{journey.key}", headers=await keys.reader())
        assert got.json()["stages"] == ["b", "c", "a"]

    async def test_an_unused_stage_can_be_removed(self, client, keys, session):
        await make_journey(session, key="onboarding", stages=["a", "b"])
        await make_touchpoint(session, journey="onboarding", stage="a")
        response = await client.patch(
            "/v1/journeys/onboarding", json={"stages": ["a"]}, headers=await keys.writer()
        )
        assert response.status_code == 200
        assert response.json()["stages"] == ["a"]

    async def test_removing_a_stage_touchpoints_use_is_422_naming_it(self, client, keys, session):
        await make_journey(session, key="onboarding", stages=["a", "b", "c"])
        await make_touchpoint(session, journey="onboarding", stage="b")
        await make_touchpoint(session, journey="onboarding", stage="b")
        response = await client.patch(
            "/v1/journeys/onboarding", json={"stages": ["a", "c"]}, headers=await keys.writer()
        )
        body = assert_problem(response, 422, "stage_in_use")
        assert body["stages"] == ["b"]
        assert [e["loc"] for e in body["errors"]] == [["body", "stages"]]
        assert "'b'" in body["errors"][0]["msg"] and "2 touchpoint(s)" in body["errors"][0]["msg"]
        got = await client.get("/v1/journeys/onboarding", headers=await keys.reader())
        assert got.json()["stages"] == ["a", "b", "c"]
        assert got.json()["version"] == 1

    async def test_renaming_a_used_stage_is_refused(self, client, keys, session):
        await make_journey(session, key="onboarding", stages=["a", "b"])
        await make_touchpoint(session, journey="onboarding", stage="a")
        response = await client.patch(
            "/v1/journeys/onboarding", json={"stages": ["alpha", "b"]}, headers=await keys.writer()
        )
        body = assert_problem(response, 422, "stage_in_use")
        assert body["stages"] == ["a"]

    async def test_a_matching_if_match_is_accepted(self, client, keys, session):
        await make_journey(session, key="onboarding")
        headers = {**await keys.writer(), "If-Match": '"1"'}
        response = await client.patch(
            "/v1/journeys/onboarding", json={"name": "x"}, headers=headers
        )
        assert response.status_code == 200
        assert response.headers["etag"] == '"2"'

    async def test_stale_if_match_is_412(self, client, keys, session):
        await make_journey(session, key="onboarding", name="Onboarding")
        headers = {**await keys.writer(), "If-Match": '"7"'}
        response = await client.patch(
            "/v1/journeys/onboarding", json={"name": "x"}, headers=headers
        )
        body = assert_problem(response, 412, "version_mismatch")
        assert body["current_etag"] == '"1"'
        got = await client.get("/v1/journeys/onboarding", headers=await keys.reader())
        assert got.json()["name"] == "Onboarding"

    @pytest.mark.parametrize(
        ("patch", "loc"),
        [
            ({"name": None}, ["body", "name"]),
            ({"stages": None}, ["body", "stages"]),
            ({"stages": ["a", "a"]}, ["body", "stages"]),
        ],
    )
    async def test_a_patch_breaking_the_create_rules_is_422(
        self, client, keys, session, patch, loc
    ):
        await make_journey(session, key="onboarding")
        response = await client.patch(
            "/v1/journeys/onboarding", json=patch, headers=await keys.writer()
        )
        body = assert_problem(response, 422, "invalid")
        assert [e["loc"] for e in body["errors"]] == [loc]

    async def test_the_key_cannot_be_patched(self, client, keys, session):
        await make_journey(session, key="onboarding")
        response = await client.patch(
            "/v1/journeys/onboarding", json={"key": "other"}, headers=await keys.writer()
        )
        body = assert_problem(response, 422, "validation_failed")
        assert body["errors"][0]["loc"] == ["body", "key"]

    async def test_unknown_journey_is_404(self, client, keys):
        response = await client.patch(
            "/v1/journeys/nowhere", json={"name": "x"}, headers=await keys.writer()
        )
        assert_problem(response, 404, "not_found")

    async def test_reader_may_not_update(self, client, keys, session):
        await make_journey(session, key="onboarding")
        response = await client.patch(
            "/v1/journeys/onboarding", json={"name": "x"}, headers=await keys.reader()
        )
        assert_problem(response, 403, "forbidden")


class TestDeleteJourney:
    async def test_deletes_a_journey_without_touchpoints(self, client, keys, session):
        await make_journey(session, key="onboarding")
        response = await client.delete("/v1/journeys/onboarding", headers=await keys.writer())
        assert response.status_code == 204
        got = await client.get("/v1/journeys/onboarding", headers=await keys.reader())
        assert got.status_code == 404

    async def test_a_journey_with_touchpoints_is_409_naming_them(self, client, keys, session):
        await make_journey(session, key="onboarding")
        await make_touchpoint(session, journey="onboarding")
        response = await client.delete("/v1/journeys/onboarding", headers=await keys.writer())
        body = assert_problem(response, 409, "still_referenced")
        assert body["referenced_by"] == {"touchpoints": 1}
        got = await client.get("/v1/journeys/onboarding", headers=await keys.reader())
        assert got.status_code == 200

    async def test_unknown_journey_is_404(self, client, keys):
        response = await client.delete("/v1/journeys/nowhere", headers=await keys.writer())
        assert_problem(response, 404, "not_found")

    async def test_reader_may_not_delete(self, client, keys, session):
        await make_journey(session, key="onboarding")
        response = await client.delete("/v1/journeys/onboarding", headers=await keys.reader())
        assert_problem(response, 403, "forbidden")


# Touchpoints -------------------------------------------------------------------------------


def touchpoint_body(**overrides):
    return {
        "key": "branch-visit",
        "journey": "onboarding",
        "stage": "verify",
        "name": "Identity check at the branch",
        "owner": "branch",
        **overrides,
    }


@pytest.fixture
async def onboarding(session):
    """A journey with stages apply, verify, use, and a unit 'branch' to own touchpoints."""
    await make_unit(session, key="branch")
    return await make_journey(session, key="onboarding", stages=["apply", "verify", "use"])


class TestCreateTouchpoint:
    async def test_creates_and_returns_the_touchpoint(self, client, keys, onboarding):
        response = await client.post(
            "/v1/touchpoints",
            json=touchpoint_body(
                channel="branch", moment_of_truth=True, driver_weight=0.4, promise_within="P2D"
            ),
            headers=await keys.writer(),
        )
        assert response.status_code == 201
        body = response.json()
        assert {k: v for k, v in body.items() if k not in ("id", "created_at", "updated_at")} == {
            "key": "branch-visit",
            "journey": "onboarding",
            "stage": "verify",
            "name": "Identity check at the branch",
            "channel": "branch",
            "owner": "branch",
            "moment_of_truth": True,
            "driver_weight": 0.4,
            "promise_within": "P2D",
            "version": 1,
        }
        assert response.headers["etag"] == '"1"'
        assert response.headers["location"] == "/v1/touchpoints/branch-visit"

    async def test_defaults(self, client, keys, onboarding):
        response = await client.post(
            "/v1/touchpoints", json=touchpoint_body(), headers=await keys.writer()
        )
        assert response.status_code == 201
        body = response.json()
        assert body["channel"] is None
        assert body["moment_of_truth"] is False
        assert body["driver_weight"] == 0
        assert body["promise_within"] is None

    async def test_a_stage_the_journey_lacks_is_422_naming_stage(self, client, keys, onboarding):
        response = await client.post(
            "/v1/touchpoints", json=touchpoint_body(stage="checkout"), headers=await keys.writer()
        )
        body = assert_problem(response, 422, "unknown_stage")
        assert [e["loc"] for e in body["errors"]] == [["body", "stage"]]
        assert "checkout" in body["detail"]
        missing = await client.get("/v1/touchpoints/branch-visit", headers=await keys.reader())
        assert missing.status_code == 404

    @pytest.mark.parametrize("field", ["journey", "owner"])
    async def test_an_unknown_reference_is_422_naming_the_field(
        self, client, keys, onboarding, field
    ):
        response = await client.post(
            "/v1/touchpoints",
            json=touchpoint_body(**{field: "nowhere"}),
            headers=await keys.writer(),
        )
        body = assert_problem(response, 422, "unknown_reference")
        assert [e["loc"] for e in body["errors"]] == [["body", field]]
        missing = await client.get("/v1/touchpoints/branch-visit", headers=await keys.reader())
        assert missing.status_code == 404

    @pytest.mark.parametrize(
        ("overrides", "loc"),
        [
            ({"driver_weight": 1.5}, ["body", "driver_weight"]),
            ({"driver_weight": -0.1}, ["body", "driver_weight"]),
            ({"promise_within": "P1M"}, ["body", "promise_within"]),
            ({"promise_within": "PT0S"}, ["body", "promise_within"]),
            ({"promise_within": "P3651D"}, ["body", "promise_within"]),
            ({"promise_within": "PT9999999999999999999H"}, ["body", "promise_within"]),
            ({"promise_within": "P99999999999D"}, ["body", "promise_within"]),
            ({"moment_of_truth": "perhaps"}, ["body", "moment_of_truth"]),
            ({"channel": "x" * 65}, ["body", "channel"]),
            ({"ring": 1}, ["body", "ring"]),
        ],
    )
    async def test_invalid_body_is_422(self, client, keys, onboarding, overrides, loc):
        response = await client.post(
            "/v1/touchpoints", json=touchpoint_body(**overrides), headers=await keys.writer()
        )
        body = assert_problem(response, 422, "validation_failed")
        assert [e["loc"] for e in body["errors"]] == [loc]

    async def test_duplicate_key_is_409(self, client, keys, onboarding, session):
        await make_touchpoint(session, key="branch-visit")
        response = await client.post(
            "/v1/touchpoints", json=touchpoint_body(), headers=await keys.writer()
        )
        assert_problem(response, 409, "key_exists")

    async def test_reader_may_not_create(self, client, keys, onboarding):
        response = await client.post(
            "/v1/touchpoints", json=touchpoint_body(), headers=await keys.reader()
        )
        assert_problem(response, 403, "forbidden")
        missing = await client.get("/v1/touchpoints/branch-visit", headers=await keys.reader())
        assert missing.status_code == 404

    async def test_idempotency_key_replays_the_first_response(self, client, keys, onboarding):
        headers = {**await keys.writer(), "Idempotency-Key": "touchpoint-1"}
        first = await client.post("/v1/touchpoints", json=touchpoint_body(), headers=headers)
        second = await client.post("/v1/touchpoints", json=touchpoint_body(), headers=headers)
        assert first.status_code == second.status_code == 201
        assert first.json() == second.json()
        assert second.headers["idempotent-replayed"] == "true"


class TestGetTouchpoint:
    async def test_returns_the_touchpoint_with_its_etag(self, client, keys, session):
        touchpoint = await make_touchpoint(session, key="branch-visit")
        response = await client.get("/v1/touchpoints/branch-visit", headers=await keys.reader())
        assert response.status_code == 200
        assert response.json()["id"] == str(touchpoint.id)
        assert response.headers["etag"] == '"1"'

    async def test_unknown_key_is_404(self, client, keys):
        response = await client.get("/v1/touchpoints/nowhere", headers=await keys.reader())
        body = assert_problem(response, 404, "not_found")
        assert body["resource"] == "touchpoint"

    async def test_a_partner_key_gets_404_as_if_absent(self, client, keys, session):
        await make_touchpoint(session, key="branch-visit")
        response = await client.get(
            "/v1/touchpoints/branch-visit", headers=await partner_headers(keys, session)
        )
        assert_problem(response, 404, "not_found")


class TestListTouchpoints:
    @pytest.fixture
    async def spread(self, session):
        await make_unit(session, key="branch")
        await make_unit(session, key="web-team")
        await make_journey(session, key="onboarding", stages=["apply", "use"])
        await make_journey(session, key="claims", stages=["report", "settle"])
        await make_touchpoint(
            session, key="t-apply", journey="onboarding", stage="apply", owner="branch"
        )
        await make_touchpoint(
            session, key="t-use", journey="onboarding", stage="use", owner="web-team"
        )
        await make_touchpoint(
            session, key="t-report", journey="claims", stage="report", owner="branch"
        )

    @pytest.mark.parametrize(
        ("query", "expected"),
        [
            ("", ["t-apply", "t-report", "t-use"]),
            ("?journey=onboarding", ["t-apply", "t-use"]),
            ("?owner=branch", ["t-apply", "t-report"]),
            ("?stage=use", ["t-use"]),
            ("?journey=onboarding&owner=branch", ["t-apply"]),
            ("?journey=nowhere", []),
            ("?owner=nowhere", []),
        ],
    )
    async def test_filters(self, client, keys, spread, query, expected):
        response = await client.get(f"/v1/touchpoints{query}", headers=await keys.reader())
        assert response.status_code == 200
        assert [t["key"] for t in response.json()["items"]] == expected

    @pytest.mark.parametrize(
        ("query", "loc"),
        [
            ("?owner=a%00b", ["query", "owner"]),
            ("?journey=Not%20a%20key", ["query", "journey"]),
            ("?stage=a%00b", ["query", "stage"]),
        ],
    )
    async def test_a_malformed_filter_is_422(self, client, keys, query, loc):
        response = await client.get(f"/v1/touchpoints{query}", headers=await keys.reader())
        body = assert_problem(response, 422, "validation_failed")
        assert [e["loc"] for e in body["errors"]] == [loc]

    async def test_pages_by_key_with_a_cursor(self, client, keys, spread):
        headers = await keys.reader()
        first = await client.get("/v1/touchpoints?limit=2", headers=headers)
        assert [t["key"] for t in first.json()["items"]] == ["t-apply", "t-report"]
        second = await client.get(
            f"/v1/touchpoints?limit=2&cursor={first.json()['next_cursor']}", headers=headers
        )
        assert [t["key"] for t in second.json()["items"]] == ["t-use"]
        assert second.json()["next_cursor"] is None

    async def test_a_partner_key_lists_nothing_whatever_the_filter(
        self, client, keys, session, spread
    ):
        headers = await partner_headers(keys, session)
        for query in ("", "?journey=onboarding", "?owner=branch"):
            response = await client.get(f"/v1/touchpoints{query}", headers=headers)
            assert response.status_code == 200
            assert response.json() == {"items": [], "next_cursor": None}


class TestUpdateTouchpoint:
    async def test_merge_patch_changes_only_what_is_sent(self, client, keys, session, onboarding):
        await make_touchpoint(
            session,
            key="branch-visit",
            journey="onboarding",
            stage="verify",
            owner="branch",
            channel="branch",
            promise_within="PT4H",
        )
        response = await client.patch(
            "/v1/touchpoints/branch-visit",
            json={"stage": "use", "moment_of_truth": True},
            headers=await keys.writer(),
        )
        assert response.status_code == 200
        body = response.json()
        assert body["stage"] == "use"
        assert body["moment_of_truth"] is True
        assert body["channel"] == "branch"
        assert body["promise_within"] == "PT4H"
        assert body["version"] == 2
        assert response.headers["etag"] == '"2"'

    async def test_null_clears_a_nullable_field(self, client, keys, session):
        await make_touchpoint(session, key="branch-visit", promise_within="PT4H")
        response = await client.patch(
            "/v1/touchpoints/branch-visit",
            json={"promise_within": None},
            headers=await keys.writer(),
        )
        assert response.status_code == 200
        assert response.json()["promise_within"] is None

    async def test_moving_to_a_journey_without_the_stage_is_422(
        self, client, keys, session, onboarding
    ):
        await make_journey(session, key="claims", stages=["report", "settle"])
        await make_touchpoint(session, key="branch-visit", journey="onboarding", stage="verify")
        response = await client.patch(
            "/v1/touchpoints/branch-visit", json={"journey": "claims"}, headers=await keys.writer()
        )
        body = assert_problem(response, 422, "unknown_stage")
        assert [e["loc"] for e in body["errors"]] == [["body", "stage"]]
        got = await client.get("/v1/touchpoints/branch-visit", headers=await keys.reader())
        assert got.json()["journey"] == "onboarding"

    async def test_moving_to_another_journey_and_stage(self, client, keys, session, onboarding):
        await make_journey(session, key="claims", stages=["report", "settle"])
        await make_touchpoint(session, key="branch-visit", journey="onboarding", stage="verify")
        response = await client.patch(
            "/v1/touchpoints/branch-visit",
            json={"journey": "claims", "stage": "settle"},
            headers=await keys.writer(),
        )
        assert response.status_code == 200
        assert (response.json()["journey"], response.json()["stage"]) == ("claims", "settle")

    @pytest.mark.parametrize("field", ["journey", "owner"])
    async def test_an_unknown_reference_is_422_naming_the_field(self, client, keys, session, field):
        await make_touchpoint(session, key="branch-visit")
        response = await client.patch(
            "/v1/touchpoints/branch-visit", json={field: "nowhere"}, headers=await keys.writer()
        )
        body = assert_problem(response, 422, "unknown_reference")
        assert [e["loc"] for e in body["errors"]] == [["body", field]]

    async def test_stale_if_match_is_412(self, client, keys, session):
        await make_touchpoint(session, key="branch-visit", name="Before")
        headers = {**await keys.writer(), "If-Match": '"2"'}
        response = await client.patch(
            "/v1/touchpoints/branch-visit", json={"name": "After"}, headers=headers
        )
        assert_problem(response, 412, "version_mismatch")
        got = await client.get("/v1/touchpoints/branch-visit", headers=await keys.reader())
        assert got.json()["name"] == "Before"

    async def test_driver_weight_out_of_range_is_422(self, client, keys, session):
        await make_touchpoint(session, key="branch-visit")
        response = await client.patch(
            "/v1/touchpoints/branch-visit", json={"driver_weight": 2}, headers=await keys.writer()
        )
        body = assert_problem(response, 422, "validation_failed")
        assert body["errors"][0]["loc"] == ["body", "driver_weight"]

    async def test_unknown_touchpoint_is_404(self, client, keys):
        response = await client.patch(
            "/v1/touchpoints/nowhere", json={"name": "x"}, headers=await keys.writer()
        )
        assert_problem(response, 404, "not_found")

    async def test_reader_may_not_update(self, client, keys, session):
        await make_touchpoint(session, key="branch-visit")
        response = await client.patch(
            "/v1/touchpoints/branch-visit", json={"name": "x"}, headers=await keys.reader()
        )
        assert_problem(response, 403, "forbidden")


class TestDeleteTouchpoint:
    async def test_deletes_an_unreferenced_touchpoint(self, client, keys, session):
        await make_touchpoint(session, key="branch-visit")
        response = await client.delete("/v1/touchpoints/branch-visit", headers=await keys.writer())
        assert response.status_code == 204
        got = await client.get("/v1/touchpoints/branch-visit", headers=await keys.reader())
        assert got.status_code == 404

    async def test_a_touchpoint_served_by_a_handoff_is_409(self, client, keys, session):
        await make_touchpoint(session, key="branch-visit")
        await make_handoff(session, touchpoint="branch-visit")
        response = await client.delete("/v1/touchpoints/branch-visit", headers=await keys.writer())
        body = assert_problem(response, 409, "still_referenced")
        assert body["referenced_by"] == {"handoffs": 1}

    async def test_a_touchpoint_with_feedback_is_409(self, client, keys, session):
        await make_touchpoint(session, key="branch-visit")
        await make_feedback(session, touchpoint="branch-visit")
        await make_feedback(session, touchpoint="branch-visit")
        response = await client.delete("/v1/touchpoints/branch-visit", headers=await keys.writer())
        body = assert_problem(response, 409, "still_referenced")
        assert body["referenced_by"] == {"feedback": 2}
        got = await client.get("/v1/touchpoints/branch-visit", headers=await keys.reader())
        assert got.status_code == 200

    async def test_a_touchpoint_a_goal_targets_is_409(self, client, keys, session):
        touchpoint = await make_touchpoint(session, key="branch-visit")
        # No goals service yet: the goal is written as rows, as its service would.
        metric = Metric(key=unique_key("metric"), name="CSAT", kind="survey_score")
        session.add(metric)
        await session.flush()
        goal = Goal(
            key=unique_key("goal"),
            title="Happier branch visits",
            owner_id=touchpoint.owner_id,
            metric_id=metric.id,
            direction="increase",
            kind="ends",
        )
        session.add(goal)
        await session.flush()
        session.add(GoalTouchpoint(goal_id=goal.id, touchpoint_id=touchpoint.id))
        await session.flush()
        response = await client.delete("/v1/touchpoints/branch-visit", headers=await keys.writer())
        body = assert_problem(response, 409, "still_referenced")
        assert body["referenced_by"] == {"goal_touchpoints": 1}

    async def test_unknown_touchpoint_is_404(self, client, keys):
        response = await client.delete("/v1/touchpoints/nowhere", headers=await keys.writer())
        assert_problem(response, 404, "not_found")

    async def test_a_partner_key_may_not_delete(self, client, keys, session):
        await make_touchpoint(session, key="branch-visit")
        response = await client.delete(
            "/v1/touchpoints/branch-visit", headers=await partner_headers(keys, session)
        )
        assert_problem(response, 403, "forbidden")
        got = await client.get("/v1/touchpoints/branch-visit", headers=await keys.reader())
        assert got.status_code == 200


class TestRings:
    """ring 1 owns a touchpoint; ring n+1 hands work to ring n; unconnected is null."""

    @pytest.fixture
    async def chain(self, session):
        # supplier → back-office → front (owns the touchpoint); loner is connected to nothing.
        for key in ("front", "back-office", "supplier", "loner"):
            await make_unit(session, key=key)
        await make_journey(session, key="onboarding", stages=["apply"])
        await make_handoff(session, from_unit="back-office", to_unit="front")
        await make_handoff(session, from_unit="supplier", to_unit="back-office")

    async def test_rings_follow_handoffs_from_the_touchpoint_owner(self, client, keys, chain):
        before = await rings(client, keys, "front", "back-office", "supplier", "loner")
        assert before == [None, None, None, None]
        response = await client.post(
            "/v1/touchpoints",
            json={
                "key": "tp",
                "journey": "onboarding",
                "stage": "apply",
                "name": "Apply",
                "owner": "front",
            },
            headers=await keys.writer(),
        )
        assert response.status_code == 201
        after = await rings(client, keys, "front", "back-office", "supplier", "loner")
        assert after == [1, 2, 3, None]

    async def test_deleting_the_touchpoint_clears_the_rings(self, client, keys, session, chain):
        await make_touchpoint(session, key="tp", journey="onboarding", stage="apply", owner="front")
        assert await rings(client, keys, "front", "back-office", "supplier") == [1, 2, 3]
        response = await client.delete("/v1/touchpoints/tp", headers=await keys.writer())
        assert response.status_code == 204
        assert await rings(client, keys, "front", "back-office", "supplier") == [None, None, None]

    async def test_a_new_owner_moves_the_rings(self, client, keys, session, chain):
        await make_touchpoint(session, key="tp", journey="onboarding", stage="apply", owner="front")
        response = await client.patch(
            "/v1/touchpoints/tp", json={"owner": "back-office"}, headers=await keys.writer()
        )
        assert response.status_code == 200
        assert await rings(client, keys, "front", "back-office", "supplier") == [None, 1, 2]

    async def test_a_second_touchpoint_owner_is_ring_1_too(self, client, keys, session, chain):
        await make_touchpoint(session, key="tp", journey="onboarding", stage="apply", owner="front")
        await make_touchpoint(session, journey="onboarding", stage="apply", owner="back-office")
        assert await rings(client, keys, "front", "back-office", "supplier") == [1, 1, 2]


# Feedback ----------------------------------------------------------------------------------


class TestUpsertFeedback:
    async def test_creates_the_record_with_201(self, client, keys, session):
        await make_touchpoint(session, key="branch-visit")
        response = await client.put(
            "/v1/touchpoints/branch-visit/feedback/survey-1",
            json=feedback_body(loyalty=9, case_ref="CASE-7", comment="Quick and friendly"),
            headers=await keys.writer(),
        )
        assert response.status_code == 201
        body = response.json()
        assert {k: v for k, v in body.items() if k not in ("id", "created_at", "updated_at")} == {
            "touchpoint": "branch-visit",
            "external_id": "survey-1",
            "at": "2026-03-01T08:00:00Z",
            "scale": "csat",
            "score": 4,
            "loyalty": 9,
            "case_ref": "CASE-7",
            "comment": "Quick and friendly",
        }

    async def test_sending_it_again_is_200_unchanged_with_the_same_id(self, client, keys, session):
        await make_touchpoint(session, key="branch-visit")
        headers = await keys.writer()
        url = "/v1/touchpoints/branch-visit/feedback/survey-1"
        first = await client.put(url, json=feedback_body(), headers=headers)
        second = await client.put(url, json=feedback_body(), headers=headers)
        assert (first.status_code, second.status_code) == (201, 200)
        assert second.json() == first.json()
        assert await feedback_count(session) == 1

    async def test_a_changed_record_is_200_updated(self, client, keys, session):
        await make_touchpoint(session, key="branch-visit")
        headers = await keys.writer()
        url = "/v1/touchpoints/branch-visit/feedback/survey-1"
        first = await client.put(url, json=feedback_body(), headers=headers)
        second = await client.put(url, json=feedback_body(score=2, comment="Slow"), headers=headers)
        assert second.status_code == 200
        assert second.json()["id"] == first.json()["id"]
        assert (second.json()["score"], second.json()["comment"]) == (2, "Slow")
        assert second.json()["updated_at"] >= first.json()["updated_at"]
        assert await feedback_count(session) == 1

    async def test_the_same_external_id_at_another_touchpoint_is_another_record(
        self, client, keys, session
    ):
        await make_touchpoint(session, key="tp-a")
        await make_touchpoint(session, key="tp-b")
        headers = await keys.writer()
        a = await client.put(
            "/v1/touchpoints/tp-a/feedback/s1", json=feedback_body(), headers=headers
        )
        b = await client.put(
            "/v1/touchpoints/tp-b/feedback/s1", json=feedback_body(), headers=headers
        )
        assert a.status_code == b.status_code == 201
        assert a.json()["id"] != b.json()["id"]

    @pytest.mark.parametrize(
        ("scale", "score"),
        [("csat", 1), ("csat", 5), ("ces", 1), ("ces", 7), ("nps", 0), ("nps", 10), ("csat", 4.5)],
    )
    async def test_scores_within_the_scale_are_accepted(self, client, keys, session, scale, score):
        await make_touchpoint(session, key="branch-visit")
        response = await client.put(
            "/v1/touchpoints/branch-visit/feedback/s1",
            json=feedback_body(scale=scale, score=score),
            headers=await keys.writer(),
        )
        assert response.status_code == 201, response.text
        assert response.json()["score"] == score

    @pytest.mark.parametrize(
        ("scale", "score"),
        [("csat", 0), ("csat", 6), ("ces", 0), ("ces", 8), ("nps", -1), ("nps", 11)],
    )
    async def test_a_score_outside_the_scale_is_422_naming_score(
        self, client, keys, session, scale, score
    ):
        await make_touchpoint(session, key="branch-visit")
        response = await client.put(
            "/v1/touchpoints/branch-visit/feedback/s1",
            json=feedback_body(scale=scale, score=score),
            headers=await keys.writer(),
        )
        body = assert_problem(response, 422, "validation_failed")
        assert [e["loc"] for e in body["errors"]] == [["body", "score"]]
        assert await feedback_count(session) == 0

    @pytest.mark.parametrize(
        ("overrides", "loc"),
        [
            ({"loyalty": 11}, ["body", "loyalty"]),
            ({"loyalty": -1}, ["body", "loyalty"]),
            ({"at": "2026-03-01T09:00:00"}, ["body", "at"]),
            ({"scale": "stars"}, ["body", "scale"]),
            ({"case_ref": "has spaces"}, ["body", "case_ref"]),
            ({"touchpoint": "branch-visit"}, ["body", "touchpoint"]),
        ],
    )
    async def test_invalid_body_is_422(self, client, keys, session, overrides, loc):
        await make_touchpoint(session, key="branch-visit")
        response = await client.put(
            "/v1/touchpoints/branch-visit/feedback/s1",
            json=feedback_body(**overrides),
            headers=await keys.writer(),
        )
        body = assert_problem(response, 422, "validation_failed")
        assert [e["loc"] for e in body["errors"]] == [loc]
        assert await feedback_count(session) == 0

    async def test_a_bad_external_id_is_422(self, client, keys, session):
        await make_touchpoint(session, key="branch-visit")
        response = await client.put(
            "/v1/touchpoints/branch-visit/feedback/-bad",
            json=feedback_body(),
            headers=await keys.writer(),
        )
        body = assert_problem(response, 422, "validation_failed")
        assert body["errors"][0]["loc"] == ["path", "external_id"]

    async def test_unknown_touchpoint_is_404(self, client, keys):
        response = await client.put(
            "/v1/touchpoints/nowhere/feedback/s1", json=feedback_body(), headers=await keys.writer()
        )
        assert_problem(response, 404, "not_found")

    @pytest.mark.parametrize("role", ["reader", "partner"])
    async def test_readers_and_partners_may_not_write(self, client, keys, session, role):
        await make_touchpoint(session, key="branch-visit")
        headers = await (keys.reader() if role == "reader" else partner_headers(keys, session))
        response = await client.put(
            "/v1/touchpoints/branch-visit/feedback/s1", json=feedback_body(), headers=headers
        )
        assert_problem(response, 403, "forbidden")
        assert await feedback_count(session) == 0


class TestListFeedback:
    @pytest.fixture
    async def history(self, session):
        await make_touchpoint(session, key="branch-visit")
        for external_id, at, scale, case_ref in [
            ("s3", "2026-03-03T10:00:00Z", "nps", None),
            ("s1", "2026-03-01T10:00:00Z", "csat", "CASE-1"),
            ("s2", "2026-03-02T10:00:00Z", "csat", "CASE-2"),
            ("s4", "2026-03-04T10:00:00Z", "ces", "CASE-1"),
        ]:
            await make_feedback(
                session,
                touchpoint="branch-visit",
                external_id=external_id,
                at=at,
                scale=scale,
                score=3,
                case_ref=case_ref,
            )

    async def test_pages_by_time_with_a_cursor(self, client, keys, history):
        headers = await keys.reader()
        first = await client.get("/v1/touchpoints/branch-visit/feedback?limit=3", headers=headers)
        assert first.status_code == 200
        assert [f["external_id"] for f in first.json()["items"]] == ["s1", "s2", "s3"]
        second = await client.get(
            f"/v1/touchpoints/branch-visit/feedback?limit=3&cursor={first.json()['next_cursor']}",
            headers=headers,
        )
        assert [f["external_id"] for f in second.json()["items"]] == ["s4"]
        assert second.json()["next_cursor"] is None

    async def test_records_at_the_same_time_are_ordered_by_id(self, client, keys, session):
        await make_touchpoint(session, key="branch-visit")
        made = [
            await make_feedback(session, touchpoint="branch-visit", at="2026-03-01T10:00:00Z")
            for _ in range(3)
        ]
        headers = await keys.reader()
        seen = []
        cursor = ""
        while cursor is not None:
            page = await client.get(
                f"/v1/touchpoints/branch-visit/feedback?limit=1{cursor}", headers=headers
            )
            seen += [f["id"] for f in page.json()["items"]]
            next_cursor = page.json()["next_cursor"]
            cursor = f"&cursor={next_cursor}" if next_cursor else None
        assert seen == sorted(str(f.id) for f in made)

    @pytest.mark.parametrize(
        ("query", "expected"),
        [
            ("scale=csat", ["s1", "s2"]),
            ("case_ref=CASE-1", ["s1", "s4"]),
            ("from=2026-03-02T10:00:00Z", ["s2", "s3", "s4"]),
            ("to=2026-03-03T10:00:00Z", ["s1", "s2"]),
            ("from=2026-03-02T11:00:00%2B01:00&to=2026-03-04T00:00:00Z", ["s2", "s3"]),
            ("scale=csat&case_ref=CASE-1", ["s1"]),
        ],
    )
    async def test_filters(self, client, keys, history, query, expected):
        response = await client.get(
            f"/v1/touchpoints/branch-visit/feedback?{query}", headers=await keys.reader()
        )
        assert response.status_code == 200, response.text
        assert [f["external_id"] for f in response.json()["items"]] == expected

    @pytest.mark.parametrize(
        ("query", "loc"),
        [
            ("from=2026-03-02T10:00:00", ["query", "from"]),
            ("to=2026-03-02", ["query", "to"]),
            ("scale=stars", ["query", "scale"]),
            ("case_ref=has%20space", ["query", "case_ref"]),
        ],
    )
    async def test_invalid_query_is_422(self, client, keys, history, query, loc):
        response = await client.get(
            f"/v1/touchpoints/branch-visit/feedback?{query}", headers=await keys.reader()
        )
        body = assert_problem(response, 422, "validation_failed")
        assert [e["loc"] for e in body["errors"]] == [loc]

    async def test_to_not_after_from_is_422(self, client, keys, history):
        response = await client.get(
            "/v1/touchpoints/branch-visit/feedback?from=2026-03-02T00:00:00Z&to=2026-03-01T00:00:00Z",
            headers=await keys.reader(),
        )
        body = assert_problem(response, 422, "invalid")
        assert body["errors"][0]["loc"] == ["query", "to"]

    async def test_unknown_touchpoint_is_404(self, client, keys):
        response = await client.get("/v1/touchpoints/nowhere/feedback", headers=await keys.reader())
        assert_problem(response, 404, "not_found")

    async def test_a_partner_key_gets_404(self, client, keys, session, history):
        response = await client.get(
            "/v1/touchpoints/branch-visit/feedback", headers=await partner_headers(keys, session)
        )
        assert_problem(response, 404, "not_found")


class TestBulkFeedback:
    @pytest.fixture
    async def touchpoints(self, session):
        await make_touchpoint(session, key="tp-a")
        await make_touchpoint(session, key="tp-b")

    async def listed(self, client, keys, touchpoint):
        response = await client.get(
            f"/v1/touchpoints/{touchpoint}/feedback?limit=500", headers=await keys.reader()
        )
        return sorted((f["external_id"], f["score"]) for f in response.json()["items"])

    async def test_a_json_array_is_upserted_and_counted(self, client, keys, touchpoints):
        items = [bulk_item("tp-a", "s1"), bulk_item("tp-a", "s2", score=2), bulk_item("tp-b", "s1")]
        response = await client.post("/v1/feedback/bulk", json=items, headers=await keys.writer())
        assert response.status_code == 200, response.text
        assert response.json() == {
            "created": 3,
            "updated": 0,
            "unchanged": 0,
            "rejected": 0,
            "errors": [],
            "errors_truncated": False,
        }
        assert await self.listed(client, keys, "tp-a") == [("s1", 4), ("s2", 2)]
        assert await self.listed(client, keys, "tp-b") == [("s1", 4)]

    async def test_sending_again_counts_updated_and_unchanged(self, client, keys, touchpoints):
        headers = await keys.writer()
        items = [bulk_item("tp-a", "s1"), bulk_item("tp-a", "s2")]
        await client.post("/v1/feedback/bulk", json=items, headers=headers)
        items[1] = bulk_item("tp-a", "s2", score=1)
        items.append(bulk_item("tp-b", "s3"))
        response = await client.post("/v1/feedback/bulk", json=items, headers=headers)
        assert response.status_code == 200
        counts = {k: response.json()[k] for k in ("created", "updated", "unchanged", "rejected")}
        assert counts == {"created": 1, "updated": 1, "unchanged": 1, "rejected": 0}
        assert await self.listed(client, keys, "tp-a") == [("s1", 4), ("s2", 1)]

    async def test_ndjson_is_accepted(self, client, keys, touchpoints):
        body = ndjson(bulk_item("tp-a", f"n{i}") for i in range(5)) + b"\n"
        response = await client.post(
            "/v1/feedback/bulk", content=body, headers={**await keys.writer(), **NDJSON}
        )
        assert response.status_code == 200, response.text
        assert response.json()["created"] == 5
        assert len(await self.listed(client, keys, "tp-a")) == 5

    async def test_one_bad_item_rejects_the_request_and_writes_nothing(
        self, client, keys, session, touchpoints
    ):
        items = [
            bulk_item("tp-a", "s1"),
            bulk_item("tp-a", "s2", scale="ces", score=9),
            bulk_item("nowhere", "s3"),
            bulk_item("tp-b", "s4", at="2026-03-01T09:00:00"),
            bulk_item("tp-b", "s5"),
        ]
        response = await client.post("/v1/feedback/bulk", json=items, headers=await keys.writer())
        body = assert_problem(response, 422, "bulk_rejected")
        assert body["rejected"] == 3
        # In item order, though the unknown touchpoint is found after the others are read.
        assert [(e["index"], e["loc"]) for e in body["errors"]] == [
            (1, [1, "score"]),
            (2, [2, "touchpoint"]),
            (3, [3, "at"]),
        ]
        assert await self.listed(client, keys, "tp-a") == []
        assert await self.listed(client, keys, "tp-b") == []
        assert await feedback_count(session) == 0

    async def test_a_bad_item_after_a_written_batch_still_writes_nothing(
        self, client, keys, session, touchpoints
    ):
        # More than one batch (2,000 items): the first is written before the bad item is read.
        good = [bulk_item("tp-a", f"s{i}") for i in range(2100)]
        body = ndjson([*good, {"touchpoint": "tp-a"}])
        response = await client.post(
            "/v1/feedback/bulk", content=body, headers={**await keys.writer(), **NDJSON}
        )
        problem = assert_problem(response, 422, "bulk_rejected")
        assert {e["index"] for e in problem["errors"]} == {2100}
        assert await feedback_count(session) == 0

    async def test_non_atomic_writes_the_valid_items_and_reports_the_rest(
        self, client, keys, touchpoints
    ):
        items = [
            bulk_item("tp-a", "s1"),
            bulk_item("tp-a", "s2", loyalty=12),
            bulk_item("nowhere", "s3"),
            bulk_item("tp-b", "s4"),
        ]
        response = await client.post(
            "/v1/feedback/bulk?atomic=false", json=items, headers=await keys.writer()
        )
        assert response.status_code == 200
        report = response.json()
        assert {k: report[k] for k in ("created", "updated", "unchanged", "rejected")} == {
            "created": 2,
            "updated": 0,
            "unchanged": 0,
            "rejected": 2,
        }
        assert [(e["index"], e["loc"]) for e in report["errors"]] == [
            (1, [1, "loyalty"]),
            (2, [2, "touchpoint"]),
        ]
        assert await self.listed(client, keys, "tp-a") == [("s1", 4)]
        assert await self.listed(client, keys, "tp-b") == [("s4", 4)]

    async def test_a_malformed_ndjson_line_is_reported_by_index(self, client, keys, touchpoints):
        body = (
            ndjson([bulk_item("tp-a", "s1")]) + b"\n{not json\n" + ndjson([bulk_item("tp-a", "s2")])
        )
        response = await client.post(
            "/v1/feedback/bulk", content=body, headers={**await keys.writer(), **NDJSON}
        )
        problem = assert_problem(response, 422, "bulk_rejected")
        assert [e["index"] for e in problem["errors"]] == [1]
        assert await self.listed(client, keys, "tp-a") == []

    async def test_a_body_that_is_not_an_array_is_422(self, client, keys, touchpoints):
        response = await client.post(
            "/v1/feedback/bulk", json=bulk_item("tp-a", "s1"), headers=await keys.writer()
        )
        body = assert_problem(response, 422, "invalid")
        assert body["errors"][0]["loc"] == ["body"]

    async def test_another_media_type_is_415(self, client, keys, touchpoints):
        response = await client.post(
            "/v1/feedback/bulk",
            content=b"touchpoint,external_id",
            headers={**await keys.writer(), "content-type": "text/csv"},
        )
        assert_problem(response, 415, "unsupported_media_type")

    @pytest.mark.parametrize("role", ["reader", "partner"])
    async def test_readers_and_partners_may_not_write(
        self, client, keys, session, touchpoints, role
    ):
        headers = await (keys.reader() if role == "reader" else partner_headers(keys, session))
        response = await client.post(
            "/v1/feedback/bulk", json=[bulk_item("tp-a", "s1")], headers=headers
        )
        assert_problem(response, 403, "forbidden")
        assert await feedback_count(session) == 0
