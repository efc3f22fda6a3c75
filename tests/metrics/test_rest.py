"""REST: /v1/metrics and /v1/metric-relations."""

from __future__ import annotations

from datetime import datetime

import pytest
from sqlalchemy import func, select

from service.alignment.models import Conflict
from service.metrics.constants import MetricKind
from service.metrics.models import Metric, MetricRelation
from tests.factories import make_goal, make_metric, make_relation, make_unit
from tests.problems import assert_problem


def instant(value: str) -> datetime:
    return datetime.fromisoformat(value)


async def count(session, model, **where) -> int:
    statement = select(func.count()).select_from(model)
    for column, value in where.items():
        statement = statement.where(getattr(model, column) == value)
    return await session.scalar(statement)


def metric_body(**overrides) -> dict:
    return {
        "key": "handle-time",
        "name": "Average handle time",
        "unit": "seconds",
        "kind": "operational",
        **overrides,
    }


def relation_body(**overrides) -> dict:
    return {"from_metric": "handle-time", "to_metric": "rapport", "effect": -1, **overrides}


@pytest.fixture
async def handle_time(session) -> Metric:
    return await make_metric(
        session, key="handle-time", name="Average handle time", unit="seconds", kind="operational"
    )


@pytest.fixture
async def metrics(session):
    """Three metrics: handle-time (operational), rapport (survey score), nps (loyalty)."""
    await make_metric(session, key="handle-time", kind="operational")
    await make_metric(session, key="rapport", kind="survey_score")
    await make_metric(session, key="nps", kind="loyalty_program")


@pytest.fixture
async def partner(session, keys) -> dict[str, str]:
    """Auth headers of a partner key (bound to the partner unit ``courier``)."""
    await make_unit(session, key="courier", kind="partner")
    return await keys.partner("courier")


# Metrics -------------------------------------------------------------------------------------


class TestCreateMetric:
    async def test_creates_and_returns_the_metric(self, client, keys, session):
        response = await client.post("/v1/metrics", json=metric_body(), headers=await keys.writer())
        assert response.status_code == 201, response.text
        body = response.json()
        assert {k: body[k] for k in ("key", "name", "unit", "kind", "version")} == {
            "key": "handle-time",
            "name": "Average handle time",
            "unit": "seconds",
            "kind": "operational",
            "version": 1,
        }
        assert body["id"]
        assert response.headers["etag"] == '"1"'
        assert response.headers["location"] == "/v1/metrics/handle-time"
        assert await count(session, Metric, key="handle-time") == 1

    @pytest.mark.parametrize("kind", [k.value for k in MetricKind])
    async def test_every_kind_is_accepted(self, client, keys, kind):
        response = await client.post(
            "/v1/metrics", json=metric_body(kind=kind), headers=await keys.writer()
        )
        assert response.status_code == 201, response.text
        assert response.json()["kind"] == kind
        read = await client.get("/v1/metrics/handle-time", headers=await keys.reader())
        assert read.json()["kind"] == kind

    async def test_unit_defaults_to_null(self, client, keys):
        body = metric_body()
        del body["unit"]
        response = await client.post("/v1/metrics", json=body, headers=await keys.writer())
        assert response.status_code == 201
        assert response.json()["unit"] is None

    @pytest.mark.parametrize("kind", ["revenue", "Operational", "", None, 3])
    async def test_an_unknown_kind_is_422(self, client, keys, session, kind):
        response = await client.post(
            "/v1/metrics", json=metric_body(kind=kind), headers=await keys.writer()
        )
        body = assert_problem(response, 422, "validation_failed")
        assert [e["loc"] for e in body["errors"]] == [["body", "kind"]]
        assert await count(session, Metric) == 0

    @pytest.mark.parametrize(
        ("payload", "loc"),
        [
            (metric_body(key="Handle Time"), ["body", "key"]),
            (metric_body(name=""), ["body", "name"]),
            (metric_body(name="x" * 201), ["body", "name"]),
            (metric_body(unit="s" * 65), ["body", "unit"]),
            (metric_body(name="bad\x00name"), ["body", "name"]),
            ({"key": "handle-time", "name": "AHT"}, ["body", "kind"]),
            (metric_body(id="00000000-0000-0000-0000-000000000001"), ["body", "id"]),
            (metric_body(version=4), ["body", "version"]),
        ],
    )
    async def test_an_invalid_body_is_422_naming_the_field(
        self, client, keys, session, payload, loc
    ):
        response = await client.post("/v1/metrics", json=payload, headers=await keys.writer())
        body = assert_problem(response, 422, "validation_failed")
        assert [e["loc"] for e in body["errors"]] == [loc]
        assert await count(session, Metric) == 0

    async def test_a_duplicate_key_is_409(self, client, keys, session, handle_time):
        response = await client.post(
            "/v1/metrics",
            json=metric_body(name="Again", kind="financial"),
            headers=await keys.writer(),
        )
        body = assert_problem(response, 409, "key_exists")
        assert body["key"] == "handle-time"
        assert body["resource"] == "metric"
        assert await count(session, Metric) == 1
        kept = await client.get("/v1/metrics/handle-time", headers=await keys.reader())
        assert kept.json()["kind"] == "operational"

    async def test_a_reader_may_not_create(self, client, keys, session):
        response = await client.post("/v1/metrics", json=metric_body(), headers=await keys.reader())
        assert_problem(response, 403, "forbidden")
        assert await count(session, Metric) == 0

    async def test_a_partner_may_not_create(self, client, session, partner):
        response = await client.post("/v1/metrics", json=metric_body(), headers=partner)
        assert_problem(response, 403, "forbidden")
        assert await count(session, Metric) == 0

    async def test_idempotency_key_replays_the_first_response(self, client, keys, session):
        headers = {**await keys.writer(), "Idempotency-Key": "metric-1"}
        first = await client.post("/v1/metrics", json=metric_body(), headers=headers)
        second = await client.post("/v1/metrics", json=metric_body(), headers=headers)
        assert first.status_code == second.status_code == 201
        assert second.json() == first.json()
        assert second.headers["etag"] == first.headers["etag"]
        assert second.headers["location"] == first.headers["location"]
        assert second.headers["idempotent-replayed"] == "true"
        assert "idempotent-replayed" not in first.headers
        assert await count(session, Metric) == 1

    async def test_idempotency_key_with_another_body_is_422(self, client, keys, session):
        headers = {**await keys.writer(), "Idempotency-Key": "metric-2"}
        await client.post("/v1/metrics", json=metric_body(), headers=headers)
        response = await client.post("/v1/metrics", json=metric_body(key="other"), headers=headers)
        assert_problem(response, 422, "idempotency_key_reused")
        assert await count(session, Metric, key="other") == 0


class TestGetMetric:
    async def test_returns_the_metric_with_its_etag(self, client, keys, handle_time):
        response = await client.get("/v1/metrics/handle-time", headers=await keys.reader())
        assert response.status_code == 200
        assert response.json()["id"] == str(handle_time.id)
        assert response.json()["unit"] == "seconds"
        assert response.headers["etag"] == '"1"'

    async def test_an_unknown_key_is_404(self, client, keys):
        response = await client.get("/v1/metrics/nowhere", headers=await keys.reader())
        body = assert_problem(response, 404, "not_found")
        assert body["resource"] == "metric"

    async def test_a_malformed_key_is_422(self, client, keys):
        response = await client.get("/v1/metrics/Not%20A%20Key", headers=await keys.reader())
        body = assert_problem(response, 422, "validation_failed")
        assert body["errors"][0]["loc"] == ["path", "key"]

    async def test_a_partner_sees_no_metric_as_if_absent(self, client, partner, handle_time):
        existing = await client.get("/v1/metrics/handle-time", headers=partner)
        absent = await client.get("/v1/metrics/never-existed", headers=partner)
        assert_problem(existing, 404, "not_found")
        assert_problem(absent, 404, "not_found")
        assert existing.json()["detail"].replace("handle-time", "K") == absent.json()[
            "detail"
        ].replace("never-existed", "K")


class TestListMetrics:
    async def test_lists_by_key(self, client, keys, metrics):
        response = await client.get("/v1/metrics", headers=await keys.reader())
        assert response.status_code == 200
        assert [m["key"] for m in response.json()["items"]] == ["handle-time", "nps", "rapport"]
        assert response.json()["next_cursor"] is None

    @pytest.mark.parametrize(
        ("kind", "expected"),
        [
            ("operational", ["handle-time"]),
            ("survey_score", ["rapport"]),
            ("loyalty_program", ["nps"]),
            ("financial", []),
        ],
    )
    async def test_filters_by_kind(self, client, keys, metrics, kind, expected):
        response = await client.get(f"/v1/metrics?kind={kind}", headers=await keys.reader())
        assert response.status_code == 200
        assert [m["key"] for m in response.json()["items"]] == expected

    async def test_an_unknown_kind_filter_is_422(self, client, keys, metrics):
        response = await client.get("/v1/metrics?kind=revenue", headers=await keys.reader())
        body = assert_problem(response, 422, "validation_failed")
        assert body["errors"][0]["loc"] == ["query", "kind"]

    async def test_pages_by_key_with_a_cursor(self, client, keys, metrics):
        headers = await keys.reader()
        first = await client.get("/v1/metrics?limit=2", headers=headers)
        assert [m["key"] for m in first.json()["items"]] == ["handle-time", "nps"]
        cursor = first.json()["next_cursor"]
        assert cursor
        second = await client.get(f"/v1/metrics?limit=2&cursor={cursor}", headers=headers)
        assert [m["key"] for m in second.json()["items"]] == ["rapport"]
        assert second.json()["next_cursor"] is None

    async def test_a_malformed_cursor_is_422(self, client, keys, metrics):
        response = await client.get("/v1/metrics?cursor=not-a-cursor", headers=await keys.reader())
        body = assert_problem(response, 422, "invalid_cursor")
        assert body["errors"][0]["loc"] == ["query", "cursor"]

    @pytest.mark.parametrize("query", ["", "?kind=operational", "?limit=1"])
    async def test_a_partner_lists_no_metrics(self, client, partner, metrics, query):
        response = await client.get(f"/v1/metrics{query}", headers=partner)
        assert response.status_code == 200
        assert response.json() == {"items": [], "next_cursor": None}


class TestUpdateMetric:
    async def test_merge_patch_changes_only_what_is_sent(self, client, keys, handle_time):
        response = await client.patch(
            "/v1/metrics/handle-time", json={"name": "AHT"}, headers=await keys.writer()
        )
        assert response.status_code == 200
        body = response.json()
        assert (body["name"], body["unit"], body["kind"]) == ("AHT", "seconds", "operational")
        assert body["version"] == 2
        assert response.headers["etag"] == '"2"'
        assert instant(body["updated_at"]) > instant(body["created_at"])

    async def test_changes_the_kind(self, client, keys, handle_time):
        response = await client.patch(
            "/v1/metrics/handle-time", json={"kind": "customer_effort"}, headers=await keys.writer()
        )
        assert response.status_code == 200
        assert response.json()["kind"] == "customer_effort"

    async def test_null_clears_the_unit(self, client, keys, handle_time):
        response = await client.patch(
            "/v1/metrics/handle-time", json={"unit": None}, headers=await keys.writer()
        )
        assert response.status_code == 200
        assert response.json()["unit"] is None

    @pytest.mark.parametrize("field", ["name", "kind"])
    async def test_null_for_a_required_field_is_422(self, client, keys, handle_time, field):
        response = await client.patch(
            "/v1/metrics/handle-time", json={field: None}, headers=await keys.writer()
        )
        body = assert_problem(response, 422, "invalid")
        assert body["errors"][0]["loc"] == ["body", field]
        current = await client.get("/v1/metrics/handle-time", headers=await keys.reader())
        assert current.json()["version"] == 1

    async def test_an_unknown_kind_is_422(self, client, keys, handle_time):
        response = await client.patch(
            "/v1/metrics/handle-time", json={"kind": "revenue"}, headers=await keys.writer()
        )
        body = assert_problem(response, 422, "validation_failed")
        assert body["errors"][0]["loc"] == ["body", "kind"]
        current = await client.get("/v1/metrics/handle-time", headers=await keys.reader())
        assert current.json()["kind"] == "operational"

    async def test_current_if_match_is_accepted(self, client, keys, handle_time):
        headers = {**await keys.writer(), "If-Match": '"1"'}
        response = await client.patch(
            "/v1/metrics/handle-time", json={"name": "AHT"}, headers=headers
        )
        assert response.status_code == 200
        assert response.headers["etag"] == '"2"'

    async def test_stale_if_match_is_412_and_changes_nothing(self, client, keys, handle_time):
        writer = await keys.writer()
        await client.patch("/v1/metrics/handle-time", json={"name": "First"}, headers=writer)
        response = await client.patch(
            "/v1/metrics/handle-time",
            json={"name": "Second"},
            headers={**writer, "If-Match": '"1"'},
        )
        body = assert_problem(response, 412, "version_mismatch")
        assert body["current_etag"] == '"2"'
        current = await client.get("/v1/metrics/handle-time", headers=writer)
        assert current.json()["name"] == "First"
        assert current.json()["version"] == 2

    @pytest.mark.parametrize("patch", [{"key": "renamed"}, {"version": 7}, {"id": "x"}])
    async def test_key_and_server_fields_cannot_be_patched(self, client, keys, handle_time, patch):
        response = await client.patch(
            "/v1/metrics/handle-time", json=patch, headers=await keys.writer()
        )
        body = assert_problem(response, 422, "validation_failed")
        assert body["errors"][0]["loc"] == ["body", next(iter(patch))]
        current = await client.get("/v1/metrics/handle-time", headers=await keys.reader())
        assert current.json()["version"] == 1

    async def test_an_unknown_key_is_404(self, client, keys):
        response = await client.patch(
            "/v1/metrics/nowhere", json={"name": "x"}, headers=await keys.writer()
        )
        assert_problem(response, 404, "not_found")

    async def test_a_reader_may_not_update(self, client, keys, handle_time):
        response = await client.patch(
            "/v1/metrics/handle-time", json={"name": "x"}, headers=await keys.reader()
        )
        assert_problem(response, 403, "forbidden")
        current = await client.get("/v1/metrics/handle-time", headers=await keys.reader())
        assert current.json()["name"] == "Average handle time"

    async def test_a_partner_may_not_update(self, client, keys, partner, handle_time):
        response = await client.patch(
            "/v1/metrics/handle-time", json={"name": "x"}, headers=partner
        )
        assert_problem(response, 403, "forbidden")
        current = await client.get("/v1/metrics/handle-time", headers=await keys.reader())
        assert current.json()["version"] == 1


class TestDeleteMetric:
    async def test_deletes_an_unused_metric(self, client, keys, session, handle_time):
        response = await client.delete("/v1/metrics/handle-time", headers=await keys.writer())
        assert response.status_code == 204
        assert response.content == b""
        assert await count(session, Metric) == 0
        gone = await client.get("/v1/metrics/handle-time", headers=await keys.reader())
        assert_problem(gone, 404, "not_found")

    async def test_a_metric_with_goals_is_409_naming_them(self, client, keys, session, handle_time):
        await make_goal(session, metric="handle-time")
        await make_goal(session, metric="handle-time")
        response = await client.delete("/v1/metrics/handle-time", headers=await keys.writer())
        body = assert_problem(response, 409, "still_referenced")
        assert body["referenced_by"] == {"goals": 2}
        assert await count(session, Metric, key="handle-time") == 1

    @pytest.mark.parametrize("end", ["from_metric", "to_metric"])
    async def test_a_metric_in_a_relation_is_409_naming_it(
        self, client, keys, session, handle_time, end
    ):
        await make_relation(session, **{end: "handle-time"})
        response = await client.delete("/v1/metrics/handle-time", headers=await keys.writer())
        body = assert_problem(response, 409, "still_referenced")
        assert body["referenced_by"] == {"metric_relations": 1}
        assert await count(session, Metric, key="handle-time") == 1

    async def test_every_kind_of_use_is_counted(self, client, keys, session, handle_time):
        await make_goal(session, metric="handle-time")
        await make_relation(session, from_metric="handle-time")
        await make_relation(session, to_metric="handle-time")
        response = await client.delete("/v1/metrics/handle-time", headers=await keys.writer())
        body = assert_problem(response, 409, "still_referenced")
        assert body["referenced_by"] == {"goals": 1, "metric_relations": 2}
        assert "goals" in body["detail"] and "metric_relations" in body["detail"]

    async def test_an_unknown_key_is_404(self, client, keys):
        response = await client.delete("/v1/metrics/nowhere", headers=await keys.writer())
        assert_problem(response, 404, "not_found")

    async def test_a_reader_may_not_delete(self, client, keys, session, handle_time):
        response = await client.delete("/v1/metrics/handle-time", headers=await keys.reader())
        assert_problem(response, 403, "forbidden")
        assert await count(session, Metric) == 1

    async def test_a_partner_may_not_delete(self, client, session, partner, handle_time):
        response = await client.delete("/v1/metrics/handle-time", headers=partner)
        assert_problem(response, 403, "forbidden")
        assert await count(session, Metric) == 1


# Metric relations ----------------------------------------------------------------------------


class TestCreateMetricRelation:
    async def test_the_key_defaults_to_from_and_to(self, client, keys, session, metrics):
        response = await client.post(
            "/v1/metric-relations",
            json=relation_body(note="Rushed calls"),
            headers=await keys.writer(),
        )
        assert response.status_code == 201, response.text
        body = response.json()
        assert {k: body[k] for k in ("key", "from_metric", "to_metric", "effect", "note")} == {
            "key": "handle-time--rapport",
            "from_metric": "handle-time",
            "to_metric": "rapport",
            "effect": -1,
            "note": "Rushed calls",
        }
        assert body["version"] == 1
        assert response.headers["etag"] == '"1"'
        assert response.headers["location"] == "/v1/metric-relations/handle-time--rapport"
        assert await count(session, MetricRelation) == 1

    async def test_an_explicit_key_is_kept(self, client, keys, metrics):
        response = await client.post(
            "/v1/metric-relations",
            json=relation_body(key="aht-hurts-rapport"),
            headers=await keys.writer(),
        )
        assert response.status_code == 201, response.text
        assert response.json()["key"] == "aht-hurts-rapport"
        assert response.headers["location"] == "/v1/metric-relations/aht-hurts-rapport"
        read = await client.get(
            "/v1/metric-relations/aht-hurts-rapport", headers=await keys.reader()
        )
        assert read.json()["from_metric"] == "handle-time"

    @pytest.mark.parametrize("effect", [1, -1])
    async def test_effect_is_plus_or_minus_one(self, client, keys, metrics, effect):
        response = await client.post(
            "/v1/metric-relations", json=relation_body(effect=effect), headers=await keys.writer()
        )
        assert response.status_code == 201, response.text
        assert response.json()["effect"] == effect
        assert response.json()["note"] is None

    @pytest.mark.parametrize("effect", [0, 2, -2, 0.5, "up", None])
    async def test_any_other_effect_is_422(self, client, keys, session, metrics, effect):
        response = await client.post(
            "/v1/metric-relations", json=relation_body(effect=effect), headers=await keys.writer()
        )
        body = assert_problem(response, 422, "validation_failed")
        assert {tuple(e["loc"]) for e in body["errors"]} == {("body", "effect")}
        assert await count(session, MetricRelation) == 0

    async def test_effect_is_required(self, client, keys, session, metrics):
        payload = relation_body()
        del payload["effect"]
        response = await client.post(
            "/v1/metric-relations", json=payload, headers=await keys.writer()
        )
        body = assert_problem(response, 422, "validation_failed")
        assert [e["loc"] for e in body["errors"]] == [["body", "effect"]]
        assert await count(session, MetricRelation) == 0

    async def test_a_metric_related_to_itself_is_422(self, client, keys, session, metrics):
        response = await client.post(
            "/v1/metric-relations",
            json=relation_body(to_metric="handle-time"),
            headers=await keys.writer(),
        )
        body = assert_problem(response, 422, "invalid")
        assert body["errors"][0]["loc"] == ["body", "to_metric"]
        assert await count(session, MetricRelation) == 0

    async def test_a_declared_pair_is_409(self, client, keys, session, metrics):
        await make_relation(session, from_metric="handle-time", to_metric="rapport", effect=1)
        response = await client.post(
            "/v1/metric-relations",
            json=relation_body(key="second-try"),
            headers=await keys.writer(),
        )
        body = assert_problem(response, 409, "relation_exists")
        assert body["key"] == "handle-time--rapport"
        assert "handle-time--rapport" in body["detail"]
        assert await count(session, MetricRelation) == 1
        kept = await client.get(
            "/v1/metric-relations/handle-time--rapport", headers=await keys.reader()
        )
        assert kept.json()["effect"] == 1

    async def test_the_reverse_pair_is_allowed(self, client, keys, session, metrics):
        await make_relation(session, from_metric="handle-time", to_metric="rapport")
        response = await client.post(
            "/v1/metric-relations",
            json=relation_body(from_metric="rapport", to_metric="handle-time", effect=1),
            headers=await keys.writer(),
        )
        assert response.status_code == 201, response.text
        assert response.json()["key"] == "rapport--handle-time"
        assert await count(session, MetricRelation) == 2

    async def test_a_taken_key_is_409(self, client, keys, session, metrics):
        await make_relation(session, key="link", from_metric="handle-time", to_metric="rapport")
        response = await client.post(
            "/v1/metric-relations",
            json=relation_body(key="link", to_metric="nps"),
            headers=await keys.writer(),
        )
        body = assert_problem(response, 409, "key_exists")
        assert body["key"] == "link"
        assert await count(session, MetricRelation) == 1

    @pytest.mark.parametrize("field", ["from_metric", "to_metric"])
    async def test_an_unknown_metric_is_422_naming_the_field(
        self, client, keys, session, metrics, field
    ):
        response = await client.post(
            "/v1/metric-relations",
            json=relation_body(**{field: "nowhere"}),
            headers=await keys.writer(),
        )
        body = assert_problem(response, 422, "unknown_reference")
        assert body["errors"][0]["loc"] == ["body", field]
        assert body["field"] == field
        assert await count(session, MetricRelation) == 0

    async def test_a_derived_key_too_long_for_a_key_is_422(self, client, keys, session):
        long_a, long_b = "a" * 40, "b" * 40
        await make_metric(session, key=long_a)
        await make_metric(session, key=long_b)
        response = await client.post(
            "/v1/metric-relations",
            json=relation_body(from_metric=long_a, to_metric=long_b),
            headers=await keys.writer(),
        )
        body = assert_problem(response, 422, "invalid")
        assert body["errors"][0]["loc"] == ["body", "key"]
        assert await count(session, MetricRelation) == 0

    @pytest.mark.parametrize(
        ("payload", "loc"),
        [
            (relation_body(key="Bad Key"), ["body", "key"]),
            (relation_body(from_metric="Not A Key"), ["body", "from_metric"]),
            (relation_body(note="n" * 4001), ["body", "note"]),
            (relation_body(id="00000000-0000-0000-0000-000000000001"), ["body", "id"]),
        ],
    )
    async def test_an_invalid_body_is_422_naming_the_field(
        self, client, keys, session, metrics, payload, loc
    ):
        response = await client.post(
            "/v1/metric-relations", json=payload, headers=await keys.writer()
        )
        body = assert_problem(response, 422, "validation_failed")
        assert [e["loc"] for e in body["errors"]] == [loc]
        assert await count(session, MetricRelation) == 0

    async def test_a_reader_may_not_create(self, client, keys, session, metrics):
        response = await client.post(
            "/v1/metric-relations", json=relation_body(), headers=await keys.reader()
        )
        assert_problem(response, 403, "forbidden")
        assert await count(session, MetricRelation) == 0

    async def test_a_partner_may_not_create(self, client, session, partner, metrics):
        response = await client.post("/v1/metric-relations", json=relation_body(), headers=partner)
        assert_problem(response, 403, "forbidden")
        assert await count(session, MetricRelation) == 0

    async def test_idempotency_key_replays_the_first_response(self, client, keys, session, metrics):
        headers = {**await keys.writer(), "Idempotency-Key": "relation-1"}
        first = await client.post("/v1/metric-relations", json=relation_body(), headers=headers)
        second = await client.post("/v1/metric-relations", json=relation_body(), headers=headers)
        assert first.status_code == second.status_code == 201
        assert second.json() == first.json()
        assert second.headers["idempotent-replayed"] == "true"
        assert await count(session, MetricRelation) == 1


class TestGetMetricRelation:
    async def test_returns_the_relation_with_its_etag(self, client, keys, session, metrics):
        relation = await make_relation(session, from_metric="handle-time", to_metric="rapport")
        response = await client.get(
            "/v1/metric-relations/handle-time--rapport", headers=await keys.reader()
        )
        assert response.status_code == 200
        assert response.json()["id"] == str(relation.id)
        assert response.json()["effect"] == 1
        assert response.headers["etag"] == '"1"'

    async def test_an_unknown_key_is_404(self, client, keys):
        response = await client.get("/v1/metric-relations/nowhere", headers=await keys.reader())
        body = assert_problem(response, 404, "not_found")
        assert body["resource"] == "metric relation"

    async def test_a_partner_sees_no_relation(self, client, session, partner, metrics):
        await make_relation(session, from_metric="handle-time", to_metric="rapport")
        response = await client.get("/v1/metric-relations/handle-time--rapport", headers=partner)
        assert_problem(response, 404, "not_found")


class TestListMetricRelations:
    @pytest.fixture
    async def relations(self, session, metrics):
        await make_relation(session, from_metric="handle-time", to_metric="rapport", effect=-1)
        await make_relation(session, from_metric="rapport", to_metric="nps", effect=1)
        await make_relation(session, key="aht-nps", from_metric="handle-time", to_metric="nps")

    @pytest.mark.parametrize(
        ("query", "expected"),
        [
            ("", ["aht-nps", "handle-time--rapport", "rapport--nps"]),
            ("metric=handle-time", ["aht-nps", "handle-time--rapport"]),
            ("metric=rapport", ["handle-time--rapport", "rapport--nps"]),
            ("metric=nps", ["aht-nps", "rapport--nps"]),
            ("metric=nowhere", []),
        ],
    )
    async def test_lists_by_key_filtered_by_either_end(
        self, client, keys, relations, query, expected
    ):
        response = await client.get(f"/v1/metric-relations?{query}", headers=await keys.reader())
        assert response.status_code == 200
        assert [r["key"] for r in response.json()["items"]] == expected

    async def test_a_metric_in_no_relation_matches_nothing(self, client, keys, session, relations):
        await make_metric(session, key="lonely")
        response = await client.get(
            "/v1/metric-relations?metric=lonely", headers=await keys.reader()
        )
        assert response.json() == {"items": [], "next_cursor": None}

    async def test_a_malformed_metric_filter_is_422(self, client, keys, relations):
        response = await client.get(
            "/v1/metric-relations?metric=Bad%20Key", headers=await keys.reader()
        )
        body = assert_problem(response, 422, "validation_failed")
        assert body["errors"][0]["loc"] == ["query", "metric"]

    async def test_pages_by_key_with_a_cursor(self, client, keys, relations):
        headers = await keys.reader()
        first = await client.get("/v1/metric-relations?limit=2", headers=headers)
        assert [r["key"] for r in first.json()["items"]] == ["aht-nps", "handle-time--rapport"]
        second = await client.get(
            f"/v1/metric-relations?limit=2&cursor={first.json()['next_cursor']}", headers=headers
        )
        assert [r["key"] for r in second.json()["items"]] == ["rapport--nps"]
        assert second.json()["next_cursor"] is None

    @pytest.mark.parametrize("query", ["", "?metric=handle-time"])
    async def test_a_partner_lists_no_relations(self, client, partner, relations, query):
        response = await client.get(f"/v1/metric-relations{query}", headers=partner)
        assert response.status_code == 200
        assert response.json() == {"items": [], "next_cursor": None}


class TestUpdateMetricRelation:
    @pytest.fixture
    async def relation(self, session, metrics) -> MetricRelation:
        return await make_relation(
            session, from_metric="handle-time", to_metric="rapport", effect=-1, note="Rushed"
        )

    async def test_merge_patch_changes_only_what_is_sent(self, client, keys, relation):
        response = await client.patch(
            "/v1/metric-relations/handle-time--rapport",
            json={"effect": 1},
            headers=await keys.writer(),
        )
        assert response.status_code == 200
        body = response.json()
        assert (body["from_metric"], body["to_metric"]) == ("handle-time", "rapport")
        assert (body["effect"], body["note"], body["version"]) == (1, "Rushed", 2)
        assert response.headers["etag"] == '"2"'

    async def test_null_clears_the_note(self, client, keys, relation):
        response = await client.patch(
            "/v1/metric-relations/handle-time--rapport",
            json={"note": None},
            headers=await keys.writer(),
        )
        assert response.status_code == 200
        assert response.json()["note"] is None

    async def test_moves_an_end_keeping_the_key(self, client, keys, relation):
        response = await client.patch(
            "/v1/metric-relations/handle-time--rapport",
            json={"to_metric": "nps"},
            headers=await keys.writer(),
        )
        assert response.status_code == 200
        assert response.json()["key"] == "handle-time--rapport"
        assert response.json()["to_metric"] == "nps"

    @pytest.mark.parametrize("effect", [0, 2])
    async def test_any_other_effect_is_422(self, client, keys, relation, effect):
        response = await client.patch(
            "/v1/metric-relations/handle-time--rapport",
            json={"effect": effect},
            headers=await keys.writer(),
        )
        body = assert_problem(response, 422, "validation_failed")
        assert {tuple(e["loc"]) for e in body["errors"]} == {("body", "effect")}
        current = await client.get(
            "/v1/metric-relations/handle-time--rapport", headers=await keys.reader()
        )
        assert current.json()["effect"] == -1

    @pytest.mark.parametrize("field", ["from_metric", "to_metric", "effect"])
    async def test_null_for_a_required_field_is_422(self, client, keys, relation, field):
        response = await client.patch(
            "/v1/metric-relations/handle-time--rapport",
            json={field: None},
            headers=await keys.writer(),
        )
        body = assert_problem(response, 422, "invalid")
        assert body["errors"][0]["loc"] == ["body", field]
        current = await client.get(
            "/v1/metric-relations/handle-time--rapport", headers=await keys.reader()
        )
        assert current.json()["version"] == 1

    async def test_relating_a_metric_to_itself_is_422(self, client, keys, relation):
        response = await client.patch(
            "/v1/metric-relations/handle-time--rapport",
            json={"from_metric": "rapport"},
            headers=await keys.writer(),
        )
        body = assert_problem(response, 422, "invalid")
        assert body["errors"][0]["loc"] == ["body", "to_metric"]
        current = await client.get(
            "/v1/metric-relations/handle-time--rapport", headers=await keys.reader()
        )
        assert current.json()["from_metric"] == "handle-time"

    async def test_moving_onto_a_declared_pair_is_409(self, client, keys, session, relation):
        await make_relation(session, from_metric="handle-time", to_metric="nps")
        response = await client.patch(
            "/v1/metric-relations/handle-time--rapport",
            json={"to_metric": "nps"},
            headers=await keys.writer(),
        )
        body = assert_problem(response, 409, "relation_exists")
        assert body["key"] == "handle-time--nps"
        current = await client.get(
            "/v1/metric-relations/handle-time--rapport", headers=await keys.reader()
        )
        assert current.json()["to_metric"] == "rapport"

    async def test_turning_it_around_is_allowed(self, client, keys, relation):
        response = await client.patch(
            "/v1/metric-relations/handle-time--rapport",
            json={"from_metric": "rapport", "to_metric": "handle-time"},
            headers=await keys.writer(),
        )
        assert response.status_code == 200, response.text
        assert (response.json()["from_metric"], response.json()["to_metric"]) == (
            "rapport",
            "handle-time",
        )

    @pytest.mark.parametrize("field", ["from_metric", "to_metric"])
    async def test_an_unknown_metric_is_422_naming_the_field(self, client, keys, relation, field):
        response = await client.patch(
            "/v1/metric-relations/handle-time--rapport",
            json={field: "nowhere"},
            headers=await keys.writer(),
        )
        body = assert_problem(response, 422, "unknown_reference")
        assert body["errors"][0]["loc"] == ["body", field]
        current = await client.get(
            "/v1/metric-relations/handle-time--rapport", headers=await keys.reader()
        )
        assert current.json()["version"] == 1

    async def test_stale_if_match_is_412_and_changes_nothing(self, client, keys, relation):
        writer = await keys.writer()
        await client.patch(
            "/v1/metric-relations/handle-time--rapport", json={"note": "a"}, headers=writer
        )
        response = await client.patch(
            "/v1/metric-relations/handle-time--rapport",
            json={"note": "b"},
            headers={**writer, "If-Match": '"1"'},
        )
        body = assert_problem(response, 412, "version_mismatch")
        assert body["current_etag"] == '"2"'
        current = await client.get("/v1/metric-relations/handle-time--rapport", headers=writer)
        assert current.json()["note"] == "a"

    async def test_the_key_cannot_be_patched(self, client, keys, relation):
        response = await client.patch(
            "/v1/metric-relations/handle-time--rapport",
            json={"key": "other"},
            headers=await keys.writer(),
        )
        body = assert_problem(response, 422, "validation_failed")
        assert body["errors"][0]["loc"] == ["body", "key"]

    async def test_an_unknown_key_is_404(self, client, keys):
        response = await client.patch(
            "/v1/metric-relations/nowhere", json={"effect": 1}, headers=await keys.writer()
        )
        assert_problem(response, 404, "not_found")

    async def test_a_reader_may_not_update(self, client, keys, relation):
        response = await client.patch(
            "/v1/metric-relations/handle-time--rapport",
            json={"effect": 1},
            headers=await keys.reader(),
        )
        assert_problem(response, 403, "forbidden")
        current = await client.get(
            "/v1/metric-relations/handle-time--rapport", headers=await keys.reader()
        )
        assert current.json()["effect"] == -1


class TestDeleteMetricRelation:
    async def test_deletes_the_relation(self, client, keys, session, metrics):
        await make_relation(session, from_metric="handle-time", to_metric="rapport")
        response = await client.delete(
            "/v1/metric-relations/handle-time--rapport", headers=await keys.writer()
        )
        assert response.status_code == 204
        assert response.content == b""
        assert await count(session, MetricRelation) == 0
        gone = await client.get(
            "/v1/metric-relations/handle-time--rapport", headers=await keys.reader()
        )
        assert_problem(gone, 404, "not_found")
        # The metrics it joined are free to go now.
        freed = await client.delete("/v1/metrics/handle-time", headers=await keys.writer())
        assert freed.status_code == 204

    async def test_an_unknown_key_is_404(self, client, keys):
        response = await client.delete("/v1/metric-relations/nowhere", headers=await keys.writer())
        assert_problem(response, 404, "not_found")

    async def test_a_reader_may_not_delete(self, client, keys, session, metrics):
        await make_relation(session, from_metric="handle-time", to_metric="rapport")
        response = await client.delete(
            "/v1/metric-relations/handle-time--rapport", headers=await keys.reader()
        )
        assert_problem(response, 403, "forbidden")
        assert await count(session, MetricRelation) == 1

    async def test_a_partner_may_not_delete(self, client, session, partner, metrics):
        await make_relation(session, from_metric="handle-time", to_metric="rapport")
        response = await client.delete("/v1/metric-relations/handle-time--rapport", headers=partner)
        assert_problem(response, 403, "forbidden")
        assert await count(session, MetricRelation) == 1


class TestRelationsRedetectConflicts:
    """Two goals of different units: one raises handle time, the other raises rapport. They
    duel only once handle time is declared to lower rapport."""

    @pytest.fixture
    async def goals(self, session, metrics):
        await make_unit(session, key="sales")
        await make_unit(session, key="care")
        await make_goal(
            session, key="upsell", owner="sales", metric="handle-time", direction="increase"
        )
        await make_goal(session, key="warmth", owner="care", metric="rapport", direction="increase")

    async def conflicts(self, client, keys) -> list[dict]:
        response = await client.get("/v1/conflicts", headers=await keys.reader())
        assert response.status_code == 200
        return response.json()["items"]

    async def test_no_relation_no_conflict(self, client, keys, goals):
        assert await self.conflicts(client, keys) == []

    async def test_creating_a_relation_opens_the_conflict(self, client, keys, session, goals):
        response = await client.post(
            "/v1/metric-relations", json=relation_body(effect=-1), headers=await keys.writer()
        )
        assert response.status_code == 201
        (conflict,) = await self.conflicts(client, keys)
        assert sorted(g["key"] for g in conflict["goals"]) == ["upsell", "warmth"]
        assert conflict["metric_path"] == ["handle-time", "rapport"]
        assert conflict["effect"] == -1
        assert conflict["status"] == "open"
        assert await count(session, Conflict) == 1

    async def test_a_relation_that_helps_opens_none(self, client, keys, goals):
        response = await client.post(
            "/v1/metric-relations", json=relation_body(effect=1), headers=await keys.writer()
        )
        assert response.status_code == 201
        assert await self.conflicts(client, keys) == []

    async def test_deleting_the_relation_closes_the_conflict(self, client, keys, session, goals):
        await client.post("/v1/metric-relations", json=relation_body(), headers=await keys.writer())
        assert len(await self.conflicts(client, keys)) == 1
        response = await client.delete(
            "/v1/metric-relations/handle-time--rapport", headers=await keys.writer()
        )
        assert response.status_code == 204
        assert await self.conflicts(client, keys) == []
        assert await count(session, Conflict) == 0

    async def test_flipping_the_effect_closes_the_conflict(self, client, keys, goals):
        await client.post("/v1/metric-relations", json=relation_body(), headers=await keys.writer())
        response = await client.patch(
            "/v1/metric-relations/handle-time--rapport",
            json={"effect": 1},
            headers=await keys.writer(),
        )
        assert response.status_code == 200
        assert await self.conflicts(client, keys) == []

    async def test_a_refused_relation_leaves_conflicts_alone(self, client, keys, session, goals):
        await client.post("/v1/metric-relations", json=relation_body(), headers=await keys.writer())
        response = await client.post(
            "/v1/metric-relations",
            json=relation_body(key="again", effect=1),
            headers=await keys.writer(),
        )
        assert_problem(response, 409, "relation_exists")
        assert len(await self.conflicts(client, keys)) == 1
