"""REST: /v1/api-keys, and authentication with the keys it issues."""

from __future__ import annotations

import hashlib
import uuid

import pytest
from sqlalchemy import func, select

from service.api_keys.models import ApiKey
from service.core.permissions import Role
from service.org_units.models import Unit
from tests.factories import make_unit
from tests.problems import assert_problem


async def _key_count(session) -> int:
    return await session.scalar(select(func.count()).select_from(ApiKey))


async def _issue(client, keys, **payload) -> dict:
    body = {"name": "CRM integration", "role": "writer", **payload}
    response = await client.post("/v1/api-keys", json=body, headers=await keys.admin())
    assert response.status_code == 201, response.text
    return response.json()


class TestCreateApiKey:
    async def test_returns_the_secret_once_and_not_for_caching(self, client, keys):
        response = await client.post(
            "/v1/api-keys",
            json={"name": "CRM integration", "role": "writer"},
            headers=await keys.admin(),
        )
        assert response.status_code == 201
        body = response.json()
        assert body["secret"].startswith("ss_")
        assert body["prefix"] == body["secret"][:10]
        assert body["role"] == "writer"
        assert body["partner"] is None
        assert body["revoked_at"] is None
        assert "secret_hash" not in body
        assert response.headers["cache-control"] == "no-store"
        assert response.headers["location"] == f"/v1/api-keys/{body['id']}"

    async def test_stores_only_the_sha256_of_the_secret(self, client, keys, session):
        body = await _issue(client, keys)
        stored = await session.scalar(select(ApiKey).where(ApiKey.id == uuid.UUID(body["id"])))
        assert stored.secret_hash != body["secret"]
        assert stored.secret_hash == hashlib.sha256(body["secret"].encode()).hexdigest()

    async def test_each_key_gets_a_different_secret(self, client, keys):
        first = await _issue(client, keys)
        second = await _issue(client, keys)
        assert first["secret"] != second["secret"]

    async def test_the_new_secret_authenticates_with_its_role(self, client, keys):
        secret = (await _issue(client, keys, role="reader"))["secret"]
        headers = {"Authorization": f"Bearer {secret}"}
        assert (await client.get("/v1/units", headers=headers)).status_code == 200
        response = await client.post(
            "/v1/units", json={"key": "ops", "name": "Ops", "kind": "team"}, headers=headers
        )
        assert_problem(response, 403, "forbidden")

    @pytest.mark.parametrize("kind", ["partner", "supplier", "channel", "alliance"])
    async def test_a_partner_key_binds_to_an_external_unit(self, client, keys, session, kind):
        await make_unit(session, key="courier", kind=kind)
        body = await _issue(client, keys, role="partner", partner="courier")
        assert body["partner"] == "courier"
        listed = await client.get(
            "/v1/units", headers={"Authorization": f"Bearer {body['secret']}"}
        )
        assert [unit["key"] for unit in listed.json()["items"]] == ["courier"]

    async def test_a_partner_key_bound_to_a_department_is_422(self, client, keys, session):
        await keys.admin()
        await make_unit(session, key="ops", kind="department")
        before = await _key_count(session)
        response = await client.post(
            "/v1/api-keys",
            json={"name": "x", "role": "partner", "partner": "ops"},
            headers=await keys.admin(),
        )
        body = assert_problem(response, 422, "invalid")
        assert body["errors"][0]["loc"] == ["body", "partner"]
        assert await _key_count(session) == before

    async def test_a_partner_key_without_a_partner_is_422(self, client, keys, session):
        headers = await keys.admin()
        before = await _key_count(session)
        response = await client.post(
            "/v1/api-keys", json={"name": "x", "role": "partner"}, headers=headers
        )
        body = assert_problem(response, 422, "invalid")
        assert body["errors"][0]["loc"] == ["body", "partner"]
        assert await _key_count(session) == before

    async def test_a_partner_on_another_role_is_422(self, client, keys, session):
        headers = await keys.admin()
        await make_unit(session, key="courier", kind="partner")
        before = await _key_count(session)
        response = await client.post(
            "/v1/api-keys",
            json={"name": "x", "role": "writer", "partner": "courier"},
            headers=headers,
        )
        body = assert_problem(response, 422, "invalid")
        assert body["errors"][0]["loc"] == ["body", "partner"]
        assert await _key_count(session) == before

    async def test_an_unknown_partner_unit_is_422_naming_the_field(self, client, keys, session):
        headers = await keys.admin()
        before = await _key_count(session)
        response = await client.post(
            "/v1/api-keys",
            json={"name": "x", "role": "partner", "partner": "nowhere"},
            headers=headers,
        )
        body = assert_problem(response, 422, "unknown_reference")
        assert body["errors"][0]["loc"] == ["body", "partner"]
        assert await _key_count(session) == before

    @pytest.mark.parametrize(
        "payload",
        [
            {"name": "x", "role": "owner"},
            {"name": "", "role": "writer"},
            {"name": "x", "role": "writer", "secret": "ss_chosen-by-the-client"},
            {"name": "x", "role": "writer", "secret_hash": "0" * 64},
        ],
    )
    async def test_invalid_body_is_422(self, client, keys, session, payload):
        headers = await keys.admin()
        before = await _key_count(session)
        response = await client.post("/v1/api-keys", json=payload, headers=headers)
        body = assert_problem(response, 422, "validation_failed")
        assert body["errors"][0]["loc"][0] == "body"
        assert await _key_count(session) == before

    @pytest.mark.parametrize("role", [Role.writer, Role.reader])
    async def test_other_staff_roles_may_not_create(self, client, keys, session, role):
        headers = await keys.headers(role)
        before = await _key_count(session)
        response = await client.post(
            "/v1/api-keys", json={"name": "x", "role": "admin"}, headers=headers
        )
        assert_problem(response, 403, "forbidden")
        assert await _key_count(session) == before

    async def test_a_partner_may_not_create(self, client, keys, session):
        await make_unit(session, key="courier", kind="partner")
        headers = await keys.partner("courier")
        before = await _key_count(session)
        response = await client.post(
            "/v1/api-keys", json={"name": "x", "role": "admin"}, headers=headers
        )
        assert_problem(response, 403, "forbidden")
        assert await _key_count(session) == before


class TestListApiKeys:
    async def test_lists_keys_without_secrets_or_hashes(self, client, keys):
        issued = await _issue(client, keys)
        response = await client.get("/v1/api-keys", headers=await keys.admin())
        assert response.status_code == 200
        items = response.json()["items"]
        assert issued["id"] in [item["id"] for item in items]
        for item in items:
            assert "secret" not in item
            assert "secret_hash" not in item
        assert issued["secret"] not in response.text
        assert issued["secret"][10:] not in response.text

    async def test_pages_with_a_cursor(self, client, keys):
        ids = {(await _issue(client, keys))["id"] for _ in range(3)}
        headers = await keys.admin()  # the admin's own key is listed too
        first = await client.get("/v1/api-keys?limit=2", headers=headers)
        assert len(first.json()["items"]) == 2
        cursor = first.json()["next_cursor"]
        second = await client.get(f"/v1/api-keys?limit=2&cursor={cursor}", headers=headers)
        assert len(second.json()["items"]) == 2
        assert second.json()["next_cursor"] is None
        seen = [item["id"] for item in first.json()["items"] + second.json()["items"]]
        assert len(set(seen)) == 4
        assert ids <= set(seen)

    @pytest.mark.parametrize("role", [Role.writer, Role.reader])
    async def test_other_staff_roles_may_not_list(self, client, keys, role):
        response = await client.get("/v1/api-keys", headers=await keys.headers(role))
        assert_problem(response, 403, "forbidden")

    async def test_a_partner_may_not_list(self, client, keys, session):
        await make_unit(session, key="courier", kind="partner")
        response = await client.get("/v1/api-keys", headers=await keys.partner("courier"))
        assert_problem(response, 403, "forbidden")


class TestGetApiKey:
    async def test_returns_the_key_without_its_secret(self, client, keys, session):
        await make_unit(session, key="courier", kind="supplier")
        issued = await _issue(client, keys, role="partner", partner="courier")
        response = await client.get(f"/v1/api-keys/{issued['id']}", headers=await keys.admin())
        assert response.status_code == 200
        body = response.json()
        assert body["id"] == issued["id"]
        assert body["partner"] == "courier"
        assert body["prefix"] == issued["prefix"]
        assert "secret" not in body
        assert "secret_hash" not in body

    async def test_an_unknown_id_is_404(self, client, keys):
        response = await client.get(f"/v1/api-keys/{uuid.uuid4()}", headers=await keys.admin())
        assert_problem(response, 404, "not_found")

    async def test_a_malformed_id_is_422(self, client, keys):
        response = await client.get("/v1/api-keys/not-a-uuid", headers=await keys.admin())
        body = assert_problem(response, 422, "validation_failed")
        assert body["errors"][0]["loc"] == ["path", "key_id"]

    @pytest.mark.parametrize("role", [Role.writer, Role.reader])
    async def test_other_staff_roles_may_not_read(self, client, keys, role):
        issued = await _issue(client, keys)
        response = await client.get(
            f"/v1/api-keys/{issued['id']}", headers=await keys.headers(role)
        )
        assert_problem(response, 403, "forbidden")

    async def test_a_partner_may_not_read_even_its_own_key(self, client, keys, session):
        await make_unit(session, key="courier", kind="partner")
        issued = await _issue(client, keys, role="partner", partner="courier")
        response = await client.get(
            f"/v1/api-keys/{issued['id']}",
            headers={"Authorization": f"Bearer {issued['secret']}"},
        )
        assert_problem(response, 403, "forbidden")


class TestRevokeApiKey:
    async def test_the_key_stops_working_at_once(self, client, keys):
        issued = await _issue(client, keys)
        own = {"Authorization": f"Bearer {issued['secret']}"}
        assert (await client.get("/v1/units", headers=own)).status_code == 200
        response = await client.post(
            f"/v1/api-keys/{issued['id']}/revoke", headers=await keys.admin()
        )
        assert response.status_code == 200
        assert response.json()["revoked_at"] is not None
        rejected = await client.get("/v1/units", headers=own)
        assert_problem(rejected, 401, "unauthenticated")

    async def test_revoking_twice_keeps_the_first_revocation(self, client, keys):
        issued = await _issue(client, keys)
        headers = await keys.admin()
        first = await client.post(f"/v1/api-keys/{issued['id']}/revoke", headers=headers)
        second = await client.post(f"/v1/api-keys/{issued['id']}/revoke", headers=headers)
        assert first.status_code == second.status_code == 200
        assert second.json()["revoked_at"] == first.json()["revoked_at"]

    async def test_delete_revokes_and_keeps_the_record(self, client, keys):
        issued = await _issue(client, keys)
        headers = await keys.admin()
        response = await client.delete(f"/v1/api-keys/{issued['id']}", headers=headers)
        assert response.status_code == 204
        kept = await client.get(f"/v1/api-keys/{issued['id']}", headers=headers)
        assert kept.json()["revoked_at"] is not None
        rejected = await client.get(
            "/v1/units", headers={"Authorization": f"Bearer {issued['secret']}"}
        )
        assert_problem(rejected, 401, "unauthenticated")

    async def test_an_unknown_id_is_404(self, client, keys):
        response = await client.post(
            f"/v1/api-keys/{uuid.uuid4()}/revoke", headers=await keys.admin()
        )
        assert_problem(response, 404, "not_found")

    @pytest.mark.parametrize("role", [Role.writer, Role.reader])
    async def test_other_staff_roles_may_not_revoke(self, client, keys, role):
        issued = await _issue(client, keys)
        response = await client.post(
            f"/v1/api-keys/{issued['id']}/revoke", headers=await keys.headers(role)
        )
        assert_problem(response, 403, "forbidden")
        still = await client.get(
            "/v1/units", headers={"Authorization": f"Bearer {issued['secret']}"}
        )
        assert still.status_code == 200

    async def test_a_partner_may_not_revoke(self, client, keys, session):
        await make_unit(session, key="courier", kind="partner")
        issued = await _issue(client, keys)
        response = await client.post(
            f"/v1/api-keys/{issued['id']}/revoke", headers=await keys.partner("courier")
        )
        assert_problem(response, 403, "forbidden")
        kept = await client.get(f"/v1/api-keys/{issued['id']}", headers=await keys.admin())
        assert kept.json()["revoked_at"] is None


class TestAuthentication:
    def _assert_unauthenticated(self, response) -> None:
        assert_problem(response, 401, "unauthenticated")
        assert response.headers["www-authenticate"].startswith("Bearer")

    async def test_a_missing_header_is_401(self, client):
        self._assert_unauthenticated(await client.get("/v1/units"))

    async def test_another_scheme_is_401(self, client, keys):
        secret = await keys.secret(Role.writer)
        response = await client.get("/v1/units", headers={"Authorization": f"Basic {secret}"})
        self._assert_unauthenticated(response)

    async def test_a_bearer_without_a_secret_is_401(self, client):
        response = await client.get("/v1/units", headers={"Authorization": "Bearer"})
        self._assert_unauthenticated(response)

    @pytest.mark.parametrize("secret", ["ss_" + "x" * 43, "not-a-silospan-key", "ss_" + "x" * 200])
    async def test_an_unknown_key_is_401(self, client, secret):
        response = await client.get("/v1/units", headers={"Authorization": f"Bearer {secret}"})
        self._assert_unauthenticated(response)

    async def test_a_revoked_key_is_401(self, client, keys):
        issued = await _issue(client, keys)
        await client.post(f"/v1/api-keys/{issued['id']}/revoke", headers=await keys.admin())
        response = await client.get(
            "/v1/units", headers={"Authorization": f"Bearer {issued['secret']}"}
        )
        self._assert_unauthenticated(response)

    @pytest.mark.parametrize("parameter", ["api_key", "access_token", "key", "token"])
    async def test_a_secret_in_the_query_string_is_never_accepted(self, client, keys, parameter):
        secret = await keys.secret(Role.admin)
        response = await client.get("/v1/units", params={parameter: secret})
        self._assert_unauthenticated(response)

    async def test_a_write_with_a_bad_key_writes_nothing(self, client, session):
        response = await client.post(
            "/v1/units",
            json={"key": "ops", "name": "Ops", "kind": "team"},
            headers={"Authorization": "Bearer ss_" + "x" * 43},
        )
        self._assert_unauthenticated(response)
        count = await session.scalar(select(func.count()).select_from(Unit))
        assert count == 0
