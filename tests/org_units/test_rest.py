"""REST: /v1/units."""

from __future__ import annotations

import pytest

from tests.factories import make_handoff, make_unit
from tests.problems import assert_problem


class TestCreateUnit:
    async def test_creates_and_returns_the_unit(self, client, keys):
        response = await client.post(
            "/v1/units",
            json={"key": "service", "name": "Customer service", "kind": "department"},
            headers=await keys.writer(),
        )
        assert response.status_code == 201
        body = response.json()
        assert body["key"] == "service"
        assert body["kind"] == "department"
        assert body["ring"] is None
        assert body["parent"] is None
        assert response.headers["etag"] == '"1"'
        assert response.headers["location"] == "/v1/units/service"

    async def test_duplicate_key_is_409(self, client, keys, session):
        await make_unit(session, key="service")
        response = await client.post(
            "/v1/units",
            json={"key": "service", "name": "Again", "kind": "department"},
            headers=await keys.writer(),
        )
        assert_problem(response, 409, "key_exists")

    async def test_unknown_parent_is_422_naming_the_field(self, client, keys):
        response = await client.post(
            "/v1/units",
            json={"key": "team-a", "name": "Team A", "kind": "team", "parent": "nowhere"},
            headers=await keys.writer(),
        )
        body = assert_problem(response, 422, "unknown_reference")
        assert body["errors"][0]["loc"] == ["body", "parent"]

    @pytest.mark.parametrize(
        "payload",
        [
            {"key": "Bad Key", "name": "x", "kind": "team"},
            {"key": "ok", "name": "x", "kind": "galaxy"},
            {"key": "ok", "name": "", "kind": "team"},
            {"key": "ok", "name": "x", "kind": "team", "ring": 1},
        ],
    )
    async def test_invalid_body_is_422(self, client, keys, payload):
        response = await client.post("/v1/units", json=payload, headers=await keys.writer())
        body = assert_problem(response, 422, "validation_failed")
        assert body["errors"]

    async def test_reader_may_not_create(self, client, keys):
        response = await client.post(
            "/v1/units",
            json={"key": "x", "name": "x", "kind": "team"},
            headers=await keys.reader(),
        )
        assert_problem(response, 403, "forbidden")

    async def test_idempotency_key_replays_the_first_response(self, client, keys):
        headers = {**await keys.writer(), "Idempotency-Key": "create-ops-1"}
        payload = {"key": "ops", "name": "Operations", "kind": "department"}
        first = await client.post("/v1/units", json=payload, headers=headers)
        second = await client.post("/v1/units", json=payload, headers=headers)
        assert first.status_code == second.status_code == 201
        assert first.json() == second.json()
        assert second.headers["idempotent-replayed"] == "true"

    async def test_idempotency_key_with_another_body_is_422(self, client, keys):
        headers = {**await keys.writer(), "Idempotency-Key": "create-ops-2"}
        await client.post(
            "/v1/units", json={"key": "ops", "name": "Ops", "kind": "team"}, headers=headers
        )
        response = await client.post(
            "/v1/units", json={"key": "ops2", "name": "Ops", "kind": "team"}, headers=headers
        )
        assert_problem(response, 422, "idempotency_key_reused")


class TestUpdateUnit:
    async def test_merge_patch_changes_only_what_is_sent(self, client, keys, session):
        await make_unit(session, key="ops", name="Ops", external_ref="HR-1")
        response = await client.patch(
            "/v1/units/ops", json={"name": "Operations"}, headers=await keys.writer()
        )
        assert response.status_code == 200
        assert response.json()["name"] == "Operations"
        assert response.json()["external_ref"] == "HR-1"
        assert response.headers["etag"] == '"2"'

    async def test_stale_if_match_is_412(self, client, keys, session):
        await make_unit(session, key="ops")
        headers = {**await keys.writer(), "If-Match": '"7"'}
        response = await client.patch("/v1/units/ops", json={"name": "x"}, headers=headers)
        assert_problem(response, 412, "version_mismatch")

    async def test_null_for_a_required_field_is_422(self, client, keys, session):
        await make_unit(session, key="ops")
        response = await client.patch(
            "/v1/units/ops", json={"name": None}, headers=await keys.writer()
        )
        assert_problem(response, 422, "invalid")

    async def test_a_unit_cannot_become_its_own_ancestor(self, client, keys, session):
        await make_unit(session, key="parent")
        await make_unit(session, key="child", parent="parent")
        response = await client.patch(
            "/v1/units/parent", json={"parent": "child"}, headers=await keys.writer()
        )
        assert_problem(response, 422, "invalid")


class TestDeleteUnit:
    async def test_deletes_an_unreferenced_unit(self, client, keys, session):
        await make_unit(session, key="ops")
        response = await client.delete("/v1/units/ops", headers=await keys.writer())
        assert response.status_code == 204
        assert (await client.get("/v1/units/ops", headers=await keys.writer())).status_code == 404

    async def test_a_unit_with_handoffs_is_409_naming_them(self, client, keys, session):
        await make_unit(session, key="ops")
        await make_handoff(session, from_unit="ops")
        response = await client.delete("/v1/units/ops", headers=await keys.writer())
        body = assert_problem(response, 409, "still_referenced")
        assert body["referenced_by"] == {"handoffs": 1}


class TestListUnits:
    async def test_pages_by_key_with_a_cursor(self, client, keys, session):
        for key in ("a", "b", "c"):
            await make_unit(session, key=key)
        headers = await keys.reader()
        first = await client.get("/v1/units?limit=2", headers=headers)
        assert [u["key"] for u in first.json()["items"]] == ["a", "b"]
        cursor = first.json()["next_cursor"]
        second = await client.get(f"/v1/units?limit=2&cursor={cursor}", headers=headers)
        assert [u["key"] for u in second.json()["items"]] == ["c"]
        assert second.json()["next_cursor"] is None

    async def test_a_malformed_cursor_is_422(self, client, keys):
        response = await client.get("/v1/units?cursor=!!!", headers=await keys.reader())
        assert_problem(response, 422, "invalid_cursor")

    async def test_a_partner_key_lists_only_its_own_unit(self, client, keys, session):
        await make_unit(session, key="ops")
        await make_unit(session, key="courier", kind="partner")
        response = await client.get("/v1/units", headers=await keys.partner("courier"))
        assert [u["key"] for u in response.json()["items"]] == ["courier"]
