"""REST: /v1/partner-agreements and the joint goals proposed and accepted on them."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select

from service.alignment.models import Conflict
from service.goals.models import Goal, GoalContribution
from service.partner_agreements.models import PartnerAgreement
from tests.factories import (
    make_agreement,
    make_goal,
    make_handoff,
    make_joint_goal,
    make_metric,
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


def agreement_body(**overrides) -> dict:
    return {
        "key": "courier-sla",
        "title": "Courier delivery",
        "partner": "courier",
        "internal_owner": "service",
        "starts_on": "2026-01-01",
        **overrides,
    }


def joint_body(**overrides) -> dict:
    return {
        "key": "on-time",
        "title": "Parcels on time",
        "owner": "courier",
        "metric": "on-time",
        "direction": "increase",
        "kind": "ends",
        **overrides,
    }


@pytest.fixture
async def units(session):
    """Internal ``service`` and ``marketing``; external ``courier`` (partner) and ``rival``
    (supplier); the metric ``on-time``."""
    await make_unit(session, key="service")
    await make_unit(session, key="marketing")
    await make_unit(session, key="courier", kind="partner")
    await make_unit(session, key="rival", kind="supplier")
    await make_metric(session, key="on-time")


@pytest.fixture
async def agreements(session, units):
    """``courier-sla`` (courier with service, active) and ``rival-sla`` (rival with
    marketing, draft)."""
    await make_agreement(
        session,
        key="courier-sla",
        title="Courier delivery",
        partner="courier",
        internal_owner="service",
        status="active",
        starts_on="2026-01-01",
        ends_on="2026-12-31",
        terms="Next-day delivery",
    )
    await make_agreement(
        session,
        key="rival-sla",
        partner="rival",
        internal_owner="marketing",
        starts_on="2026-02-01",
    )


async def agreed(session) -> None:
    """A goal the company proposed on courier-sla: the courier then sees, and may name, its
    metric on-time."""
    await make_joint_goal(session, "courier-sla", key="agreed", metric="on-time")


async def read_agreement(client, keys, key: str) -> dict:
    response = await client.get(f"/v1/partner-agreements/{key}", headers=await keys.reader())
    assert response.status_code == 200, response.text
    return response.json()


async def read_goal(client, keys, key: str) -> dict:
    response = await client.get(f"/v1/goals/{key}", headers=await keys.reader())
    assert response.status_code == 200, response.text
    return response.json()


# Agreements --------------------------------------------------------------------------------


class TestCreateAgreement:
    async def test_creates_and_returns_the_agreement(self, client, keys, session, units):
        payload = agreement_body(status="active", ends_on="2026-12-31", terms="Next-day delivery")
        response = await client.post(
            "/v1/partner-agreements", json=payload, headers=await keys.writer()
        )
        assert response.status_code == 201, response.text
        body = response.json()
        expected = {**payload, "version": 1}
        assert {k: body[k] for k in expected} == expected
        assert response.headers["etag"] == '"1"'
        assert response.headers["location"] == "/v1/partner-agreements/courier-sla"
        assert await read_agreement(client, keys, "courier-sla") == body
        assert await count(session, PartnerAgreement) == 1

    async def test_defaults(self, client, keys, units):
        response = await client.post(
            "/v1/partner-agreements", json=agreement_body(), headers=await keys.writer()
        )
        assert response.status_code == 201
        body = response.json()
        assert (body["status"], body["ends_on"], body["terms"]) == ("draft", None, None)

    @pytest.mark.parametrize("kind", ["partner", "supplier", "channel", "alliance"])
    async def test_any_external_unit_may_be_the_partner(self, client, keys, session, units, kind):
        await make_unit(session, key="outside", kind=kind)
        response = await client.post(
            "/v1/partner-agreements",
            json=agreement_body(partner="outside"),
            headers=await keys.writer(),
        )
        assert response.status_code == 201, response.text
        assert response.json()["partner"] == "outside"

    @pytest.mark.parametrize("partner", ["service", "team-x"])
    async def test_an_internal_unit_as_partner_is_422(self, client, keys, session, units, partner):
        await make_unit(session, key="team-x", kind="team")
        response = await client.post(
            "/v1/partner-agreements",
            json=agreement_body(partner=partner),
            headers=await keys.writer(),
        )
        body = assert_problem(response, 422, "invalid")
        assert body["errors"][0]["loc"] == ["body", "partner"]
        assert await count(session, PartnerAgreement) == 0

    @pytest.mark.parametrize("field", ["partner", "internal_owner"])
    async def test_an_unknown_unit_is_422_naming_the_field(
        self, client, keys, session, units, field
    ):
        response = await client.post(
            "/v1/partner-agreements",
            json=agreement_body(**{field: "nowhere"}),
            headers=await keys.writer(),
        )
        body = assert_problem(response, 422, "unknown_reference")
        assert body["errors"][0]["loc"] == ["body", field]
        assert await count(session, PartnerAgreement) == 0

    async def test_ending_before_it_starts_is_422(self, client, keys, session, units):
        response = await client.post(
            "/v1/partner-agreements",
            json=agreement_body(starts_on="2026-06-01", ends_on="2026-05-31"),
            headers=await keys.writer(),
        )
        body = assert_problem(response, 422, "validation_failed")
        assert body["errors"][0]["loc"] == ["body"]
        assert "ends_on" in body["errors"][0]["msg"]
        assert await count(session, PartnerAgreement) == 0

    async def test_a_one_day_term_is_allowed(self, client, keys, units):
        response = await client.post(
            "/v1/partner-agreements",
            json=agreement_body(starts_on="2026-06-01", ends_on="2026-06-01"),
            headers=await keys.writer(),
        )
        assert response.status_code == 201, response.text

    @pytest.mark.parametrize(
        ("payload", "loc"),
        [
            (agreement_body(status="signed"), ["body", "status"]),
            (agreement_body(starts_on=None), ["body", "starts_on"]),
            (agreement_body(starts_on="soon"), ["body", "starts_on"]),
            (agreement_body(title=""), ["body", "title"]),
            (agreement_body(key="Courier SLA"), ["body", "key"]),
            (agreement_body(terms="t" * 4001), ["body", "terms"]),
            (agreement_body(id="00000000-0000-0000-0000-000000000001"), ["body", "id"]),
            (agreement_body(version=2), ["body", "version"]),
        ],
    )
    async def test_an_invalid_body_is_422_naming_the_field(
        self, client, keys, session, units, payload, loc
    ):
        response = await client.post(
            "/v1/partner-agreements", json=payload, headers=await keys.writer()
        )
        body = assert_problem(response, 422, "validation_failed")
        assert [e["loc"] for e in body["errors"]] == [loc]
        assert await count(session, PartnerAgreement) == 0

    async def test_a_duplicate_key_is_409(self, client, keys, session, agreements):
        response = await client.post(
            "/v1/partner-agreements",
            json=agreement_body(title="Again"),
            headers=await keys.writer(),
        )
        body = assert_problem(response, 409, "key_exists")
        assert body["key"] == "courier-sla"
        assert await count(session, PartnerAgreement) == 2
        assert (await read_agreement(client, keys, "courier-sla"))["title"] == "Courier delivery"

    async def test_a_reader_may_not_create(self, client, keys, session, units):
        response = await client.post(
            "/v1/partner-agreements", json=agreement_body(), headers=await keys.reader()
        )
        assert_problem(response, 403, "forbidden")
        assert await count(session, PartnerAgreement) == 0

    async def test_a_partner_may_not_create_even_its_own(self, client, keys, session, units):
        response = await client.post(
            "/v1/partner-agreements", json=agreement_body(), headers=await keys.partner("courier")
        )
        assert_problem(response, 403, "forbidden")
        assert await count(session, PartnerAgreement) == 0

    async def test_idempotency_key_replays_the_first_response(self, client, keys, session, units):
        headers = {**await keys.writer(), "Idempotency-Key": "agreement-1"}
        first = await client.post("/v1/partner-agreements", json=agreement_body(), headers=headers)
        second = await client.post("/v1/partner-agreements", json=agreement_body(), headers=headers)
        assert first.status_code == second.status_code == 201
        assert second.json() == first.json()
        assert second.headers["location"] == first.headers["location"]
        assert second.headers["idempotent-replayed"] == "true"
        assert await count(session, PartnerAgreement) == 1


class TestGetAgreement:
    async def test_returns_the_agreement_with_its_etag(self, client, keys, agreements):
        response = await client.get(
            "/v1/partner-agreements/courier-sla", headers=await keys.reader()
        )
        assert response.status_code == 200
        assert response.json()["partner"] == "courier"
        assert response.json()["internal_owner"] == "service"
        assert response.headers["etag"] == '"1"'

    async def test_an_unknown_key_is_404(self, client, keys):
        response = await client.get("/v1/partner-agreements/nowhere", headers=await keys.reader())
        body = assert_problem(response, 404, "not_found")
        assert body["resource"] == "partner agreement"

    async def test_a_partner_reads_its_own(self, client, keys, agreements):
        response = await client.get(
            "/v1/partner-agreements/courier-sla", headers=await keys.partner("courier")
        )
        assert response.status_code == 200
        assert response.json()["key"] == "courier-sla"

    async def test_another_partners_agreement_is_404_as_if_absent(self, client, keys, agreements):
        headers = await keys.partner("courier")
        other = await client.get("/v1/partner-agreements/rival-sla", headers=headers)
        absent = await client.get("/v1/partner-agreements/never-existed", headers=headers)
        assert_problem(other, 404, "not_found")
        assert_problem(absent, 404, "not_found")
        assert other.json()["detail"].replace("rival-sla", "K") == absent.json()["detail"].replace(
            "never-existed", "K"
        )


class TestListAgreements:
    @pytest.fixture
    async def more(self, session, agreements):
        await make_agreement(
            session,
            key="courier-returns",
            partner="courier",
            internal_owner="marketing",
            status="expired",
        )

    @pytest.mark.parametrize(
        ("query", "expected"),
        [
            ("", ["courier-returns", "courier-sla", "rival-sla"]),
            ("partner=courier", ["courier-returns", "courier-sla"]),
            ("partner=rival", ["rival-sla"]),
            ("internal_owner=marketing", ["courier-returns", "rival-sla"]),
            ("status=active", ["courier-sla"]),
            ("status=draft", ["rival-sla"]),
            ("partner=courier&internal_owner=marketing", ["courier-returns"]),
            ("partner=nowhere", []),
            ("internal_owner=nowhere", []),
        ],
    )
    async def test_filters(self, client, keys, more, query, expected):
        response = await client.get(f"/v1/partner-agreements?{query}", headers=await keys.reader())
        assert response.status_code == 200
        assert [a["key"] for a in response.json()["items"]] == expected

    async def test_an_unknown_status_is_422(self, client, keys):
        response = await client.get(
            "/v1/partner-agreements?status=signed", headers=await keys.reader()
        )
        body = assert_problem(response, 422, "validation_failed")
        assert body["errors"][0]["loc"] == ["query", "status"]

    async def test_pages_by_key_with_a_cursor(self, client, keys, more):
        headers = await keys.reader()
        first = await client.get("/v1/partner-agreements?limit=2", headers=headers)
        assert [a["key"] for a in first.json()["items"]] == ["courier-returns", "courier-sla"]
        second = await client.get(
            f"/v1/partner-agreements?limit=2&cursor={first.json()['next_cursor']}", headers=headers
        )
        assert [a["key"] for a in second.json()["items"]] == ["rival-sla"]
        assert second.json()["next_cursor"] is None

    async def test_a_partner_lists_only_its_own(self, client, keys, more):
        response = await client.get("/v1/partner-agreements", headers=await keys.partner("courier"))
        assert [a["key"] for a in response.json()["items"]] == ["courier-returns", "courier-sla"]

    @pytest.mark.parametrize(
        "query", ["partner=rival", "internal_owner=marketing", "status=draft", "limit=1"]
    )
    async def test_no_filter_widens_a_partners_scope(self, client, keys, more, query):
        response = await client.get(
            f"/v1/partner-agreements?{query}", headers=await keys.partner("courier")
        )
        assert response.status_code == 200
        assert "rival-sla" not in [a["key"] for a in response.json()["items"]]

    async def test_a_partner_pages_only_through_its_own(self, client, keys, more):
        headers = await keys.partner("courier")
        first = await client.get("/v1/partner-agreements?limit=1", headers=headers)
        second = await client.get(
            f"/v1/partner-agreements?limit=1&cursor={first.json()['next_cursor']}", headers=headers
        )
        assert [a["key"] for a in first.json()["items"] + second.json()["items"]] == [
            "courier-returns",
            "courier-sla",
        ]
        assert second.json()["next_cursor"] is None


class TestUpdateAgreement:
    async def test_merge_patch_changes_only_what_is_sent(self, client, keys, agreements):
        response = await client.patch(
            "/v1/partner-agreements/courier-sla",
            json={"status": "expired"},
            headers=await keys.writer(),
        )
        assert response.status_code == 200
        body = response.json()
        assert (body["status"], body["title"], body["terms"]) == (
            "expired",
            "Courier delivery",
            "Next-day delivery",
        )
        assert (body["starts_on"], body["ends_on"]) == ("2026-01-01", "2026-12-31")
        assert body["version"] == 2
        assert response.headers["etag"] == '"2"'
        assert instant(body["updated_at"]) > instant(body["created_at"])

    @pytest.mark.parametrize("field", ["ends_on", "terms"])
    async def test_null_clears_a_nullable_field(self, client, keys, agreements, field):
        response = await client.patch(
            "/v1/partner-agreements/courier-sla", json={field: None}, headers=await keys.writer()
        )
        assert response.status_code == 200
        assert response.json()[field] is None

    @pytest.mark.parametrize("field", ["title", "partner", "internal_owner", "status", "starts_on"])
    async def test_null_for_a_required_field_is_422(self, client, keys, agreements, field):
        response = await client.patch(
            "/v1/partner-agreements/courier-sla", json={field: None}, headers=await keys.writer()
        )
        body = assert_problem(response, 422, "invalid")
        assert body["errors"][0]["loc"] == ["body", field]
        assert (await read_agreement(client, keys, "courier-sla"))["version"] == 1

    async def test_ending_before_it_starts_is_422(self, client, keys, agreements):
        response = await client.patch(
            "/v1/partner-agreements/courier-sla",
            json={"starts_on": "2027-01-01"},
            headers=await keys.writer(),
        )
        body = assert_problem(response, 422, "invalid")
        assert body["errors"][0]["loc"] == ["body"]
        assert (await read_agreement(client, keys, "courier-sla"))["starts_on"] == "2026-01-01"

    async def test_an_internal_unit_as_partner_is_422(self, client, keys, agreements):
        response = await client.patch(
            "/v1/partner-agreements/courier-sla",
            json={"partner": "marketing"},
            headers=await keys.writer(),
        )
        body = assert_problem(response, 422, "invalid")
        assert body["errors"][0]["loc"] == ["body", "partner"]
        assert (await read_agreement(client, keys, "courier-sla"))["partner"] == "courier"

    @pytest.mark.parametrize("field", ["partner", "internal_owner"])
    async def test_an_unknown_unit_is_422_naming_the_field(self, client, keys, agreements, field):
        response = await client.patch(
            "/v1/partner-agreements/courier-sla",
            json={field: "nowhere"},
            headers=await keys.writer(),
        )
        body = assert_problem(response, 422, "unknown_reference")
        assert body["errors"][0]["loc"] == ["body", field]
        assert (await read_agreement(client, keys, "courier-sla"))["version"] == 1

    async def test_stale_if_match_is_412_and_changes_nothing(self, client, keys, agreements):
        writer = await keys.writer()
        await client.patch(
            "/v1/partner-agreements/courier-sla", json={"title": "A"}, headers=writer
        )
        response = await client.patch(
            "/v1/partner-agreements/courier-sla",
            json={"title": "B"},
            headers={**writer, "If-Match": '"1"'},
        )
        body = assert_problem(response, 412, "version_mismatch")
        assert body["current_etag"] == '"2"'
        assert (await read_agreement(client, keys, "courier-sla"))["title"] == "A"

    @pytest.mark.parametrize("patch", [{"key": "renamed"}, {"id": "x"}, {"version": 5}])
    async def test_key_and_server_fields_cannot_be_patched(self, client, keys, agreements, patch):
        response = await client.patch(
            "/v1/partner-agreements/courier-sla", json=patch, headers=await keys.writer()
        )
        body = assert_problem(response, 422, "validation_failed")
        assert body["errors"][0]["loc"] == ["body", next(iter(patch))]

    async def test_an_unknown_key_is_404(self, client, keys):
        response = await client.patch(
            "/v1/partner-agreements/nowhere", json={"title": "x"}, headers=await keys.writer()
        )
        assert_problem(response, 404, "not_found")

    async def test_a_reader_may_not_update(self, client, keys, agreements):
        response = await client.patch(
            "/v1/partner-agreements/courier-sla", json={"title": "x"}, headers=await keys.reader()
        )
        assert_problem(response, 403, "forbidden")
        assert (await read_agreement(client, keys, "courier-sla"))["version"] == 1

    async def test_a_partner_may_not_update_its_own(self, client, keys, agreements):
        response = await client.patch(
            "/v1/partner-agreements/courier-sla",
            json={"terms": "Whenever"},
            headers=await keys.partner("courier"),
        )
        assert_problem(response, 403, "forbidden")
        assert (await read_agreement(client, keys, "courier-sla"))["terms"] == "Next-day delivery"


class TestDeleteAgreement:
    async def test_deletes_an_unused_agreement(self, client, keys, session, agreements):
        response = await client.delete(
            "/v1/partner-agreements/rival-sla", headers=await keys.writer()
        )
        assert response.status_code == 204
        assert response.content == b""
        assert await count(session, PartnerAgreement, key="rival-sla") == 0
        gone = await client.get("/v1/partner-agreements/rival-sla", headers=await keys.reader())
        assert_problem(gone, 404, "not_found")

    async def test_an_agreement_with_goals_is_409(self, client, keys, session, agreements):
        await make_joint_goal(session, "courier-sla", metric="on-time")
        await make_goal(session, owner="service", metric="on-time", agreement="courier-sla")
        response = await client.delete(
            "/v1/partner-agreements/courier-sla", headers=await keys.writer()
        )
        body = assert_problem(response, 409, "still_referenced")
        assert body["referenced_by"] == {"goals": 2}
        assert await count(session, PartnerAgreement, key="courier-sla") == 1

    async def test_an_agreement_with_handoffs_is_409(self, client, keys, session, agreements):
        await make_handoff(session, from_unit="courier", to_unit="service", agreement="courier-sla")
        response = await client.delete(
            "/v1/partner-agreements/courier-sla", headers=await keys.writer()
        )
        body = assert_problem(response, 409, "still_referenced")
        assert body["referenced_by"] == {"handoffs": 1}
        assert await count(session, PartnerAgreement, key="courier-sla") == 1

    async def test_an_unknown_key_is_404(self, client, keys):
        response = await client.delete(
            "/v1/partner-agreements/nowhere", headers=await keys.writer()
        )
        assert_problem(response, 404, "not_found")

    async def test_a_reader_may_not_delete(self, client, keys, session, agreements):
        response = await client.delete(
            "/v1/partner-agreements/rival-sla", headers=await keys.reader()
        )
        assert_problem(response, 403, "forbidden")
        assert await count(session, PartnerAgreement) == 2

    async def test_a_partner_may_not_delete_its_own(self, client, keys, session, agreements):
        response = await client.delete(
            "/v1/partner-agreements/courier-sla", headers=await keys.partner("courier")
        )
        assert_problem(response, 403, "forbidden")
        assert await count(session, PartnerAgreement) == 2


# Joint goals -------------------------------------------------------------------------------


class TestProposeJointGoal:
    async def test_a_writer_proposes_for_the_company(self, client, keys, session, agreements):
        response = await client.post(
            "/v1/partner-agreements/courier-sla/joint-goals",
            json=joint_body(target=98, incentive_weight=0.1, period_start="2026-01-01"),
            headers=await keys.writer(),
        )
        assert response.status_code == 201, response.text
        body = response.json()
        assert (body["key"], body["agreement"], body["owner"]) == (
            "on-time",
            "courier-sla",
            "courier",
        )
        assert (body["status"], body["proposed_by"], body["accepted_at"]) == (
            "proposed",
            "internal",
            None,
        )
        assert (body["target"], body["incentive_weight"], body["period_start"]) == (
            98,
            0.1,
            "2026-01-01",
        )
        assert response.headers["etag"] == '"1"'
        assert response.headers["location"] == "/v1/goals/on-time"
        assert await read_goal(client, keys, "on-time") == body

    async def test_the_partner_proposes_on_its_own_agreement(
        self, client, keys, session, agreements
    ):
        await agreed(session)
        response = await client.post(
            "/v1/partner-agreements/courier-sla/joint-goals",
            json=joint_body(),
            headers=await keys.partner("courier"),
        )
        assert response.status_code == 201, response.text
        body = response.json()
        assert (body["status"], body["proposed_by"], body["agreement"]) == (
            "proposed",
            "partner",
            "courier-sla",
        )
        assert body["accepted_at"] is None
        assert body["key"] == "courier.on-time"  # the partner's own key space
        assert response.headers["location"] == "/v1/goals/courier.on-time"
        mine = await client.get("/v1/goals/courier.on-time", headers=await keys.partner("courier"))
        assert mine.status_code == 200

    async def test_the_owner_may_be_the_internal_owner(self, client, keys, agreements):
        # (a partner names only its own unit: see tests/test_partner_visibility.py)
        response = await client.post(
            "/v1/partner-agreements/courier-sla/joint-goals",
            json=joint_body(owner="service"),
            headers=await keys.writer(),
        )
        assert response.status_code == 201, response.text
        assert response.json()["owner"] == "service"

    @pytest.mark.parametrize("agreement", ["rival-sla", "never-existed"])
    async def test_another_partners_agreement_is_404_and_writes_nothing(
        self, client, keys, session, agreements, agreement
    ):
        response = await client.post(
            f"/v1/partner-agreements/{agreement}/joint-goals",
            json=joint_body(owner="rival"),
            headers=await keys.partner("courier"),
        )
        body = assert_problem(response, 404, "not_found")
        assert body["resource"] == "partner agreement"
        assert await count(session, Goal) == 0

    async def test_an_unknown_agreement_is_404(self, client, keys, session, agreements):
        response = await client.post(
            "/v1/partner-agreements/nowhere/joint-goals",
            json=joint_body(),
            headers=await keys.writer(),
        )
        assert_problem(response, 404, "not_found")
        assert await count(session, Goal) == 0

    @pytest.mark.parametrize(
        "extra",
        [
            {"status": "active"},
            {"agreement": "rival-sla"},
            {"proposed_by": "internal"},
            {"id": "00000000-0000-0000-0000-000000000001"},
            {"accepted_at": "2026-01-01T00:00:00Z"},
            {"version": 2},
        ],
    )
    @pytest.mark.parametrize("role", ["writer", "partner"])
    async def test_server_owned_fields_are_refused(
        self, client, keys, session, agreements, extra, role
    ):
        headers = await (keys.writer() if role == "writer" else keys.partner("courier"))
        response = await client.post(
            "/v1/partner-agreements/courier-sla/joint-goals",
            json=joint_body(**extra),
            headers=headers,
        )
        body = assert_problem(response, 422, "validation_failed")
        assert [e["loc"] for e in body["errors"]] == [["body", next(iter(extra))]]
        assert await count(session, Goal) == 0

    @pytest.mark.parametrize("owner", ["marketing", "rival"])
    async def test_an_owner_who_is_no_party_is_422(self, client, keys, session, agreements, owner):
        response = await client.post(
            "/v1/partner-agreements/courier-sla/joint-goals",
            json=joint_body(owner=owner),
            headers=await keys.writer(),
        )
        body = assert_problem(response, 422, "invalid")
        assert body["errors"][0]["loc"] == ["body", "owner"]
        assert await count(session, Goal) == 0

    @pytest.mark.parametrize(("field", "value"), [("owner", "nowhere"), ("metric", "nowhere")])
    async def test_an_unknown_reference_is_422(
        self, client, keys, session, agreements, field, value
    ):
        response = await client.post(
            "/v1/partner-agreements/courier-sla/joint-goals",
            json=joint_body(**{field: value}),
            headers=await keys.writer(),
        )
        body = assert_problem(response, 422, "unknown_reference")
        assert body["errors"][0]["loc"] == ["body", field]
        assert await count(session, Goal) == 0

    async def test_the_same_rules_as_any_goal_apply(self, client, keys, session, agreements):
        response = await client.post(
            "/v1/partner-agreements/courier-sla/joint-goals",
            json=joint_body(period_start="2026-02-01", period_end="2026-01-01"),
            headers=await keys.partner("courier"),
        )
        body = assert_problem(response, 422, "validation_failed")
        assert body["errors"][0]["loc"] == ["body"]
        assert await count(session, Goal) == 0

    async def test_contributing_to_itself_is_a_cycle(self, client, keys, session, agreements):
        response = await client.post(
            "/v1/partner-agreements/courier-sla/joint-goals",
            json=joint_body(contributes_to=["on-time"]),
            headers=await keys.writer(),
        )
        body = assert_problem(response, 422, "goal_cycle")
        assert body["cycle"] == ["on-time", "on-time"]
        assert await count(session, Goal) == 0

    async def test_a_partner_may_build_on_its_own_joint_goals(
        self, client, keys, session, agreements
    ):
        await make_joint_goal(session, "courier-sla", key="delivered", metric="on-time")
        response = await client.post(
            "/v1/partner-agreements/courier-sla/joint-goals",
            json=joint_body(contributes_to=["delivered"]),
            headers=await keys.partner("courier"),
        )
        assert response.status_code == 201, response.text
        assert response.json()["contributes_to"] == ["delivered"]

    @pytest.mark.parametrize("hidden", ["internal", "rival-goal"])
    async def test_a_partner_cannot_tie_its_goal_to_goals_it_cannot_see(
        self, client, keys, session, agreements, hidden
    ):
        await make_goal(session, key="internal", owner="service", metric="on-time")
        await make_joint_goal(session, "rival-sla", key="rival-goal", metric="on-time")
        await agreed(session)
        headers = await keys.partner("courier")
        refused = await client.post(
            "/v1/partner-agreements/courier-sla/joint-goals",
            json=joint_body(contributes_to=[hidden]),
            headers=headers,
        )
        absent = await client.post(
            "/v1/partner-agreements/courier-sla/joint-goals",
            json=joint_body(contributes_to=["never-existed"]),
            headers=headers,
        )
        body = assert_problem(refused, 422, "unknown_reference")
        assert body["errors"][0]["loc"] == ["body", "contributes_to"]
        assert_problem(absent, 422, "unknown_reference")
        assert refused.json()["detail"].replace(hidden, "K") == absent.json()["detail"].replace(
            "never-existed", "K"
        )
        assert await count(session, Goal, key="on-time") == 0
        assert await count(session, GoalContribution) == 0

    async def test_a_writer_may_tie_a_joint_goal_to_internal_goals(
        self, client, keys, session, agreements
    ):
        await make_goal(session, key="internal", owner="service", metric="on-time")
        response = await client.post(
            "/v1/partner-agreements/courier-sla/joint-goals",
            json=joint_body(contributes_to=["internal"]),
            headers=await keys.writer(),
        )
        assert response.status_code == 201, response.text
        assert response.json()["contributes_to"] == ["internal"]

    async def test_a_duplicate_key_is_409(self, client, keys, session, agreements):
        await make_goal(session, key="on-time", owner="service", metric="on-time")
        response = await client.post(
            "/v1/partner-agreements/courier-sla/joint-goals",
            json=joint_body(),
            headers=await keys.writer(),
        )
        assert_problem(response, 409, "key_exists")
        assert await count(session, Goal) == 1
        assert (await read_goal(client, keys, "on-time"))["agreement"] is None

    async def test_a_reader_may_not_propose(self, client, keys, session, agreements):
        response = await client.post(
            "/v1/partner-agreements/courier-sla/joint-goals",
            json=joint_body(),
            headers=await keys.reader(),
        )
        assert_problem(response, 403, "forbidden")
        assert await count(session, Goal) == 0

    async def test_idempotency_key_replays_the_first_response(
        self, client, keys, session, agreements
    ):
        await agreed(session)
        headers = {**await keys.partner("courier"), "Idempotency-Key": "joint-1"}
        url = "/v1/partner-agreements/courier-sla/joint-goals"
        first = await client.post(url, json=joint_body(), headers=headers)
        second = await client.post(url, json=joint_body(), headers=headers)
        assert first.status_code == second.status_code == 201
        assert second.json() == first.json()
        assert second.headers["idempotent-replayed"] == "true"
        assert await count(session, Goal) == 2  # agreed, and the proposal once


class TestAcceptJointGoal:
    @pytest.fixture
    async def proposal(self, session, keys, agreements):
        """``on-time``, proposed by courier on courier-sla."""
        await make_joint_goal(session, "courier-sla", key="on-time", metric="on-time")

    def url(self, agreement: str = "courier-sla", goal: str = "on-time") -> str:
        return f"/v1/partner-agreements/{agreement}/joint-goals/{goal}/accept"

    async def test_a_writer_accepts_it(self, client, keys, proposal):
        before = datetime.now(UTC)
        response = await client.post(self.url(), headers=await keys.writer())
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["status"] == "active"
        assert before <= instant(body["accepted_at"]) <= datetime.now(UTC)
        assert body["version"] == 2
        assert response.headers["etag"] == '"2"'
        assert await read_goal(client, keys, "on-time") == body

    async def test_an_admin_accepts_it(self, client, keys, proposal):
        response = await client.post(self.url(), headers=await keys.admin())
        assert response.status_code == 200
        assert response.json()["status"] == "active"

    @pytest.mark.parametrize("role", ["reader", "partner"])
    async def test_readers_and_partners_may_not_accept(self, client, keys, proposal, role):
        headers = await (keys.reader() if role == "reader" else keys.partner("courier"))
        response = await client.post(self.url(), headers=headers)
        assert_problem(response, 403, "forbidden")
        current = await read_goal(client, keys, "on-time")
        assert (current["status"], current["accepted_at"], current["version"]) == (
            "proposed",
            None,
            1,
        )

    async def test_accepting_twice_is_409(self, client, keys, proposal):
        writer = await keys.writer()
        first = await client.post(self.url(), headers=writer)
        second = await client.post(self.url(), headers=writer)
        body = assert_problem(second, 409, "not_proposed")
        assert body["current_status"] == "active"
        assert "active, not proposed" in body["detail"]
        current = await read_goal(client, keys, "on-time")
        assert current["accepted_at"] == first.json()["accepted_at"]
        assert current["version"] == 2

    async def test_a_retired_goal_cannot_be_accepted(self, client, keys, session, agreements):
        await make_goal(
            session,
            key="old",
            owner="courier",
            metric="on-time",
            agreement="courier-sla",
            status="retired",
        )
        response = await client.post(self.url(goal="old"), headers=await keys.writer())
        body = assert_problem(response, 409, "not_proposed")
        assert body["current_status"] == "retired"
        assert (await read_goal(client, keys, "old"))["status"] == "retired"

    async def test_a_goal_of_another_agreement_is_404(self, client, keys, session, proposal):
        response = await client.post(self.url(agreement="rival-sla"), headers=await keys.writer())
        assert_problem(response, 404, "not_found")
        current = await read_goal(client, keys, "on-time")
        assert (current["status"], current["version"]) == ("proposed", 1)

    async def test_a_goal_on_no_agreement_is_404(self, client, keys, session, agreements):
        await make_goal(
            session, key="internal", owner="service", metric="on-time", status="proposed"
        )
        response = await client.post(self.url(goal="internal"), headers=await keys.writer())
        assert_problem(response, 404, "not_found")
        assert (await read_goal(client, keys, "internal"))["status"] == "proposed"

    @pytest.mark.parametrize(
        ("agreement", "goal"), [("nowhere", "on-time"), ("courier-sla", "nowhere")]
    )
    async def test_unknown_keys_are_404(self, client, keys, proposal, agreement, goal):
        response = await client.post(self.url(agreement, goal), headers=await keys.writer())
        assert_problem(response, 404, "not_found")

    async def test_acceptance_re_detects_conflicts(self, client, keys, session, agreements):
        await make_goal(
            session, key="cheap", owner="service", metric="on-time", direction="decrease"
        )
        await make_joint_goal(session, "courier-sla", key="on-time", metric="on-time")
        reader = await keys.reader()
        before = await client.get("/v1/conflicts", headers=reader)
        assert before.json()["items"] == []
        await client.post(self.url(), headers=await keys.writer())
        after = await client.get("/v1/conflicts", headers=reader)
        assert [sorted(g["key"] for g in c["goals"]) for c in after.json()["items"]] == [
            ["cheap", "on-time"]
        ]
        assert await count(session, Conflict) == 1


class TestListJointGoals:
    @pytest.fixture
    async def joint(self, session, agreements):
        await make_joint_goal(session, "courier-sla", key="b-proposal", metric="on-time")
        await make_goal(
            session, key="a-active", owner="courier", metric="on-time", agreement="courier-sla"
        )
        await make_joint_goal(session, "rival-sla", key="rival-goal", metric="on-time")
        await make_goal(session, key="internal", owner="service", metric="on-time")

    async def test_lists_the_agreements_goals(self, client, keys, joint):
        response = await client.get(
            "/v1/partner-agreements/courier-sla/joint-goals", headers=await keys.reader()
        )
        assert response.status_code == 200
        items = response.json()["items"]
        assert [(g["key"], g["status"]) for g in items] == [
            ("a-active", "active"),
            ("b-proposal", "proposed"),
        ]
        assert {g["agreement"] for g in items} == {"courier-sla"}

    async def test_an_agreement_without_goals_lists_nothing(self, client, keys, session, joint):
        await make_agreement(session, key="empty", partner="courier", internal_owner="service")
        response = await client.get(
            "/v1/partner-agreements/empty/joint-goals", headers=await keys.reader()
        )
        assert response.json() == {"items": [], "next_cursor": None}

    async def test_pages_with_a_cursor(self, client, keys, joint):
        headers = await keys.reader()
        url = "/v1/partner-agreements/courier-sla/joint-goals"
        first = await client.get(f"{url}?limit=1", headers=headers)
        second = await client.get(
            f"{url}?limit=1&cursor={first.json()['next_cursor']}", headers=headers
        )
        assert [g["key"] for g in first.json()["items"] + second.json()["items"]] == [
            "a-active",
            "b-proposal",
        ]
        assert second.json()["next_cursor"] is None

    async def test_an_unknown_agreement_is_404(self, client, keys):
        response = await client.get(
            "/v1/partner-agreements/nowhere/joint-goals", headers=await keys.reader()
        )
        assert_problem(response, 404, "not_found")

    async def test_a_partner_lists_its_own_agreements_goals(self, client, keys, joint):
        response = await client.get(
            "/v1/partner-agreements/courier-sla/joint-goals", headers=await keys.partner("courier")
        )
        assert response.status_code == 200
        assert [g["key"] for g in response.json()["items"]] == ["a-active", "b-proposal"]

    async def test_another_partners_agreement_is_404(self, client, keys, joint):
        response = await client.get(
            "/v1/partner-agreements/rival-sla/joint-goals", headers=await keys.partner("courier")
        )
        assert_problem(response, 404, "not_found")
