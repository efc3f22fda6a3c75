"""REST: /v1/handoffs, their events (single upsert and listing) and reviews."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import func, select

from service.handoffs.models import Handoff, HandoffEvent, HandoffReview
from service.journeys.models import Journey, Touchpoint
from service.org_units import service as org_units_service
from service.partner_agreements.models import PartnerAgreement
from tests.factories import make_event, make_handoff, make_review, make_unit, unique_key
from tests.problems import assert_problem

PAST = "2020-01-01T09:00:00+00:00"  # due long ago: undelivered events are overdue
FUTURE = "2099-01-01T09:00:00+00:00"  # not due for decades: undelivered events are pending


def instant(value: str) -> datetime:
    return datetime.fromisoformat(value)


async def count(session, model, **where) -> int:
    statement = select(func.count()).select_from(model)
    for column, value in where.items():
        statement = statement.where(getattr(model, column) == value)
    return await session.scalar(statement)


async def make_touchpoint_row(session, owner_key: str, *, key: str | None = None) -> Touchpoint:
    """A journey and touchpoint owned by ``owner_key``, written as rows (no REST needed)."""
    owner = (await org_units_service.ids_for_keys(session, [owner_key]))[owner_key]
    journey = Journey(key=unique_key("journey"), name="Onboarding", stages=["apply"])
    session.add(journey)
    await session.flush()
    touchpoint = Touchpoint(
        key=key or unique_key("touchpoint"),
        journey_id=journey.id,
        stage="apply",
        name="Branch desk",
        owner_id=owner,
    )
    session.add(touchpoint)
    await session.flush()
    await org_units_service.recompute_rings(session)
    return touchpoint


async def make_agreement_row(session, partner_key: str, owner_key: str, key: str) -> None:
    ids = await org_units_service.ids_for_keys(session, [partner_key, owner_key])
    session.add(
        PartnerAgreement(
            key=key,
            title="Courier SLA",
            partner_id=ids[partner_key],
            internal_owner_id=ids[owner_key],
            starts_on=date(2026, 1, 1),
        )
    )
    await session.flush()


def handoff_body(**overrides) -> dict:
    return {
        "key": "kyc",
        "from_unit": "ops",
        "to_unit": "branch",
        "deliverable": "KYC check",
        "expected_within": "PT4H",
        **overrides,
    }


@pytest.fixture
async def units(session):
    """Two internal units, ``ops`` (provider) and ``branch`` (recipient)."""
    await make_unit(session, key="ops")
    await make_unit(session, key="branch")


@pytest.fixture
async def kyc(session, units) -> Handoff:
    """ops → branch, due 4 hours after the start."""
    return await make_handoff(session, key="kyc", from_unit="ops", to_unit="branch")


@pytest.fixture
async def partners(session):
    """courier → branch (``parcel``), branch → courier (``returns``), and an unrelated
    partner ``rival`` with its own handoff ``rival-run`` into ops."""
    await make_unit(session, key="ops")
    await make_unit(session, key="branch")
    await make_unit(session, key="courier", kind="partner")
    await make_unit(session, key="rival", kind="supplier")
    await make_handoff(session, key="parcel", from_unit="courier", to_unit="branch")
    await make_handoff(session, key="returns", from_unit="branch", to_unit="courier")
    await make_handoff(session, key="rival-run", from_unit="rival", to_unit="ops")


# Handoffs ----------------------------------------------------------------------------------


class TestCreateHandoff:
    async def test_creates_and_returns_the_handoff(self, client, keys, units):
        response = await client.post(
            "/v1/handoffs", json=handoff_body(), headers=await keys.writer()
        )
        assert response.status_code == 201
        body = response.json()
        assert body["key"] == "kyc"
        assert body["from_unit"] == "ops"
        assert body["to_unit"] == "branch"
        assert body["expected_within"] == "PT4H"
        assert body["status"] == "active"
        assert body["touchpoint"] is None
        assert body["agreement"] is None
        assert body["quality_threshold"] is None
        assert body["version"] == 1
        assert response.headers["etag"] == '"1"'
        assert response.headers["location"] == "/v1/handoffs/kyc"

    @pytest.mark.parametrize(
        ("sent", "returned"),
        [("PT240M", "PT4H"), ("P1DT12H", "P1DT12H"), ("P2W", "P14D"), ("PT90S", "PT1M30S")],
    )
    async def test_durations_come_back_in_iso_8601(self, client, keys, units, sent, returned):
        response = await client.post(
            "/v1/handoffs", json=handoff_body(expected_within=sent), headers=await keys.writer()
        )
        assert response.status_code == 201, response.text
        assert response.json()["expected_within"] == returned

    async def test_resolves_touchpoint_and_agreement_keys(self, client, keys, session, units):
        await make_unit(session, key="courier", kind="partner")
        await make_touchpoint_row(session, "branch", key="desk")
        await make_agreement_row(session, "courier", "ops", key="courier-sla")
        response = await client.post(
            "/v1/handoffs",
            json=handoff_body(
                from_unit="courier", touchpoint="desk", agreement="courier-sla", quality_threshold=4
            ),
            headers=await keys.writer(),
        )
        assert response.status_code == 201, response.text
        body = response.json()
        assert body["touchpoint"] == "desk"
        assert body["agreement"] == "courier-sla"
        assert body["quality_threshold"] == 4

    async def test_the_same_unit_on_both_sides_is_422(self, client, keys, session, units):
        response = await client.post(
            "/v1/handoffs", json=handoff_body(to_unit="ops"), headers=await keys.writer()
        )
        body = assert_problem(response, 422, "validation_failed")
        assert body["errors"][0]["loc"] == ["body"]
        assert "different" in body["errors"][0]["msg"]
        assert await count(session, Handoff) == 0

    @pytest.mark.parametrize("field", ["from_unit", "to_unit", "touchpoint", "agreement"])
    async def test_an_unknown_reference_is_422_naming_the_field(
        self, client, keys, session, units, field
    ):
        response = await client.post(
            "/v1/handoffs", json=handoff_body(**{field: "nowhere"}), headers=await keys.writer()
        )
        body = assert_problem(response, 422, "unknown_reference")
        assert body["errors"][0]["loc"] == ["body", field]
        assert await count(session, Handoff) == 0

    async def test_an_agreement_with_another_partner_is_422(self, client, keys, session, units):
        await make_unit(session, key="courier", kind="partner")
        await make_agreement_row(session, "courier", "ops", key="courier-sla")
        response = await client.post(
            "/v1/handoffs", json=handoff_body(agreement="courier-sla"), headers=await keys.writer()
        )
        body = assert_problem(response, 422, "invalid")
        assert body["errors"][0]["loc"] == ["body", "agreement"]
        assert await count(session, Handoff) == 0

    @pytest.mark.parametrize(
        "duration",
        ["P1M", "P1Y", "P1Y2M", "PT0S", "P0D", "-PT1H", "PT-1H", "4 hours", "P", 4, "P3651D"],
    )
    async def test_an_ambiguous_or_non_positive_duration_is_422(
        self, client, keys, session, units, duration
    ):
        response = await client.post(
            "/v1/handoffs", json=handoff_body(expected_within=duration), headers=await keys.writer()
        )
        body = assert_problem(response, 422, "validation_failed")
        assert body["errors"][0]["loc"] == ["body", "expected_within"]
        assert await count(session, Handoff) == 0

    @pytest.mark.parametrize(
        "duration",
        [
            "P3650DT0.000001S",
            "PT87601H",
            "P99999999999D",
            "PT9999999999999999999H",
            "P9999999999999999W",
            "PT99999999999999999999999999.5S",
            "P" + "9" * 400 + "D",
        ],
    )
    async def test_a_duration_over_ten_years_is_422(self, client, keys, session, units, duration):
        response = await client.post(
            "/v1/handoffs", json=handoff_body(expected_within=duration), headers=await keys.writer()
        )
        body = assert_problem(response, 422, "validation_failed")
        assert body["errors"][0]["loc"] == ["body", "expected_within"]
        assert "10 years" in body["errors"][0]["msg"]
        assert await count(session, Handoff) == 0

    @pytest.mark.parametrize("duration", ["P3650D", "PT87600H", "P521WT72H"])
    async def test_ten_years_is_the_longest_duration(self, client, keys, units, duration):
        response = await client.post(
            "/v1/handoffs", json=handoff_body(expected_within=duration), headers=await keys.writer()
        )
        assert response.status_code == 201, response.text
        assert response.json()["expected_within"] == "P3650D"

    @pytest.mark.parametrize("threshold", [0, 6, 3.5])
    async def test_a_quality_threshold_outside_1_to_5_is_422(
        self, client, keys, session, units, threshold
    ):
        response = await client.post(
            "/v1/handoffs",
            json=handoff_body(quality_threshold=threshold),
            headers=await keys.writer(),
        )
        body = assert_problem(response, 422, "validation_failed")
        assert body["errors"][0]["loc"] == ["body", "quality_threshold"]
        assert await count(session, Handoff) == 0

    @pytest.mark.parametrize(
        "extra", [{"id": "00000000-0000-0000-0000-000000000001"}, {"version": 9}, {"ring": 1}]
    )
    async def test_server_owned_fields_are_refused(self, client, keys, session, units, extra):
        response = await client.post(
            "/v1/handoffs", json=handoff_body(**extra), headers=await keys.writer()
        )
        body = assert_problem(response, 422, "validation_failed")
        assert body["errors"][0]["loc"] == ["body", next(iter(extra))]
        assert await count(session, Handoff) == 0

    async def test_a_duplicate_key_is_409(self, client, keys, session, kyc):
        response = await client.post(
            "/v1/handoffs", json=handoff_body(deliverable="Again"), headers=await keys.writer()
        )
        body = assert_problem(response, 409, "key_exists")
        assert body["key"] == "kyc"
        assert await count(session, Handoff) == 1

    async def test_a_reader_may_not_create(self, client, keys, session, units):
        response = await client.post(
            "/v1/handoffs", json=handoff_body(), headers=await keys.reader()
        )
        assert_problem(response, 403, "forbidden")
        assert await count(session, Handoff) == 0

    async def test_a_partner_may_not_create_even_its_own(self, client, keys, session, units):
        await make_unit(session, key="courier", kind="partner")
        response = await client.post(
            "/v1/handoffs",
            json=handoff_body(from_unit="courier"),
            headers=await keys.partner("courier"),
        )
        assert_problem(response, 403, "forbidden")
        assert await count(session, Handoff) == 0

    async def test_idempotency_key_replays_the_first_response(self, client, keys, session, units):
        headers = {**await keys.writer(), "Idempotency-Key": "handoff-kyc-1"}
        first = await client.post("/v1/handoffs", json=handoff_body(), headers=headers)
        second = await client.post("/v1/handoffs", json=handoff_body(), headers=headers)
        assert first.status_code == second.status_code == 201
        assert second.json() == first.json()
        assert second.headers["etag"] == first.headers["etag"]
        assert second.headers["location"] == first.headers["location"]
        assert second.headers["idempotent-replayed"] == "true"
        assert "idempotent-replayed" not in first.headers
        assert await count(session, Handoff) == 1


class TestGetHandoff:
    async def test_returns_the_handoff_with_its_etag(self, client, keys, kyc):
        response = await client.get("/v1/handoffs/kyc", headers=await keys.reader())
        assert response.status_code == 200
        assert response.json()["id"] == str(kyc.id)
        assert response.json()["expected_within"] == "PT4H"
        assert response.headers["etag"] == '"1"'

    async def test_an_unknown_key_is_404(self, client, keys):
        response = await client.get("/v1/handoffs/nowhere", headers=await keys.reader())
        body = assert_problem(response, 404, "not_found")
        assert body["resource"] == "handoff"

    async def test_a_malformed_key_is_422(self, client, keys):
        response = await client.get("/v1/handoffs/Not%20A%20Key", headers=await keys.reader())
        body = assert_problem(response, 422, "validation_failed")
        assert body["errors"][0]["loc"] == ["path", "key"]

    @pytest.mark.parametrize("key", ["parcel", "returns"])
    async def test_a_partner_reads_handoffs_it_provides_or_receives(
        self, client, keys, partners, key
    ):
        response = await client.get(f"/v1/handoffs/{key}", headers=await keys.partner("courier"))
        assert response.status_code == 200
        assert response.json()["key"] == key

    async def test_another_partners_handoff_is_404_as_if_absent(self, client, keys, partners):
        headers = await keys.partner("courier")
        other = await client.get("/v1/handoffs/rival-run", headers=headers)
        absent = await client.get("/v1/handoffs/never-existed", headers=headers)
        assert_problem(other, 404, "not_found")
        assert_problem(absent, 404, "not_found")
        assert other.json()["detail"].replace("rival-run", "K") == absent.json()["detail"].replace(
            "never-existed", "K"
        )


class TestUpdateHandoff:
    async def test_merge_patch_changes_only_what_is_sent(self, client, keys, kyc):
        response = await client.patch(
            "/v1/handoffs/kyc", json={"deliverable": "KYC file"}, headers=await keys.writer()
        )
        assert response.status_code == 200
        body = response.json()
        assert body["deliverable"] == "KYC file"
        assert body["expected_within"] == "PT4H"
        assert body["from_unit"] == "ops"
        assert body["version"] == 2
        assert response.headers["etag"] == '"2"'
        assert instant(body["updated_at"]) > instant(body["created_at"])

    async def test_null_clears_a_nullable_field(self, client, keys, kyc):
        response = await client.patch(
            "/v1/handoffs/kyc", json={"expected_within": None}, headers=await keys.writer()
        )
        assert response.status_code == 200
        assert response.json()["expected_within"] is None

    async def test_null_for_a_required_field_is_422(self, client, keys, kyc):
        response = await client.patch(
            "/v1/handoffs/kyc", json={"deliverable": None}, headers=await keys.writer()
        )
        body = assert_problem(response, 422, "invalid")
        assert body["errors"][0]["loc"] == ["body", "deliverable"]
        unchanged = await client.get("/v1/handoffs/kyc", headers=await keys.reader())
        assert unchanged.json()["version"] == 1

    async def test_current_if_match_is_accepted(self, client, keys, kyc):
        headers = {**await keys.writer(), "If-Match": '"1"'}
        response = await client.patch(
            "/v1/handoffs/kyc", json={"quality_threshold": 3}, headers=headers
        )
        assert response.status_code == 200
        assert response.json()["quality_threshold"] == 3

    async def test_stale_if_match_is_412_and_changes_nothing(self, client, keys, kyc):
        writer = await keys.writer()
        await client.patch("/v1/handoffs/kyc", json={"deliverable": "First"}, headers=writer)
        response = await client.patch(
            "/v1/handoffs/kyc",
            json={"deliverable": "Second"},
            headers={**writer, "If-Match": '"1"'},
        )
        body = assert_problem(response, 412, "version_mismatch")
        assert body["current_etag"] == '"2"'
        current = await client.get("/v1/handoffs/kyc", headers=writer)
        assert current.json()["deliverable"] == "First"
        assert current.json()["version"] == 2

    async def test_a_malformed_if_match_is_412(self, client, keys, kyc):
        headers = {**await keys.writer(), "If-Match": "yesterday"}
        response = await client.patch(
            "/v1/handoffs/kyc", json={"deliverable": "x"}, headers=headers
        )
        assert_problem(response, 412, "version_mismatch")

    async def test_retires_through_status(self, client, keys, kyc):
        response = await client.patch(
            "/v1/handoffs/kyc", json={"status": "retired"}, headers=await keys.writer()
        )
        assert response.status_code == 200
        assert response.json()["status"] == "retired"
        listed = await client.get("/v1/handoffs?status=retired", headers=await keys.reader())
        assert [h["key"] for h in listed.json()["items"]] == ["kyc"]

    async def test_the_same_unit_on_both_sides_is_422(self, client, keys, kyc):
        response = await client.patch(
            "/v1/handoffs/kyc", json={"to_unit": "ops"}, headers=await keys.writer()
        )
        assert_problem(response, 422, "invalid")
        current = await client.get("/v1/handoffs/kyc", headers=await keys.reader())
        assert current.json()["to_unit"] == "branch"

    async def test_an_unknown_unit_is_422_naming_the_field(self, client, keys, kyc):
        response = await client.patch(
            "/v1/handoffs/kyc", json={"to_unit": "nowhere"}, headers=await keys.writer()
        )
        body = assert_problem(response, 422, "unknown_reference")
        assert body["errors"][0]["loc"] == ["body", "to_unit"]
        current = await client.get("/v1/handoffs/kyc", headers=await keys.reader())
        assert current.json()["version"] == 1

    @pytest.mark.parametrize("patch", [{"key": "renamed"}, {"version": 7}, {"id": "x"}])
    async def test_key_and_server_fields_cannot_be_patched(self, client, keys, kyc, patch):
        response = await client.patch("/v1/handoffs/kyc", json=patch, headers=await keys.writer())
        body = assert_problem(response, 422, "validation_failed")
        assert body["errors"][0]["loc"] == ["body", next(iter(patch))]

    async def test_an_unknown_key_is_404(self, client, keys):
        response = await client.patch(
            "/v1/handoffs/nowhere", json={"deliverable": "x"}, headers=await keys.writer()
        )
        assert_problem(response, 404, "not_found")

    async def test_a_reader_may_not_update(self, client, keys, kyc):
        response = await client.patch(
            "/v1/handoffs/kyc", json={"deliverable": "x"}, headers=await keys.reader()
        )
        assert_problem(response, 403, "forbidden")
        current = await client.get("/v1/handoffs/kyc", headers=await keys.reader())
        assert current.json()["deliverable"] == "A deliverable"

    async def test_a_partner_may_not_update_its_own(self, client, keys, partners):
        response = await client.patch(
            "/v1/handoffs/parcel", json={"deliverable": "x"}, headers=await keys.partner("courier")
        )
        assert_problem(response, 403, "forbidden")
        current = await client.get("/v1/handoffs/parcel", headers=await keys.reader())
        assert current.json()["version"] == 1


class TestDeleteHandoff:
    async def test_deletes_a_handoff_without_occurrences(self, client, keys, session, kyc):
        response = await client.delete("/v1/handoffs/kyc", headers=await keys.writer())
        assert response.status_code == 204
        assert response.content == b""
        gone = await client.get("/v1/handoffs/kyc", headers=await keys.reader())
        assert_problem(gone, 404, "not_found")

    async def test_a_handoff_with_events_is_409_naming_them(self, client, keys, session, kyc):
        await make_event(session, "kyc")
        response = await client.delete("/v1/handoffs/kyc", headers=await keys.writer())
        body = assert_problem(response, 409, "still_referenced")
        assert body["referenced_by"] == {"handoff_events": 1}
        assert await count(session, Handoff, key="kyc") == 1

    async def test_a_handoff_with_reviews_is_409_naming_them(self, client, keys, session, kyc):
        await make_review(session, "kyc")
        response = await client.delete("/v1/handoffs/kyc", headers=await keys.writer())
        body = assert_problem(response, 409, "still_referenced")
        assert body["referenced_by"] == {"handoff_reviews": 1}
        assert await count(session, Handoff, key="kyc") == 1

    async def test_an_unknown_key_is_404(self, client, keys):
        response = await client.delete("/v1/handoffs/nowhere", headers=await keys.writer())
        assert_problem(response, 404, "not_found")

    async def test_a_reader_may_not_delete(self, client, keys, session, kyc):
        response = await client.delete("/v1/handoffs/kyc", headers=await keys.reader())
        assert_problem(response, 403, "forbidden")
        assert await count(session, Handoff, key="kyc") == 1

    async def test_a_partner_may_not_delete_its_own(self, client, keys, session, partners):
        response = await client.delete("/v1/handoffs/parcel", headers=await keys.partner("courier"))
        assert_problem(response, 403, "forbidden")
        assert await count(session, Handoff, key="parcel") == 1


class TestListHandoffs:
    @pytest.fixture
    async def network(self, session):
        for key in ("a", "b", "c"):
            await make_unit(session, key=key)
        await make_handoff(session, key="a-to-b", from_unit="a", to_unit="b")
        await make_handoff(session, key="a-to-c", from_unit="a", to_unit="c")
        await make_handoff(session, key="b-to-c", from_unit="b", to_unit="c", status="retired")

    @pytest.mark.parametrize(
        ("query", "expected"),
        [
            ("", ["a-to-b", "a-to-c", "b-to-c"]),
            ("from_unit=a", ["a-to-b", "a-to-c"]),
            ("to_unit=c", ["a-to-c", "b-to-c"]),
            ("from_unit=a&to_unit=c", ["a-to-c"]),
            ("status=active", ["a-to-b", "a-to-c"]),
            ("status=retired", ["b-to-c"]),
            ("to_unit=c&status=retired", ["b-to-c"]),
        ],
    )
    async def test_filters(self, client, keys, network, query, expected):
        response = await client.get(f"/v1/handoffs?{query}", headers=await keys.reader())
        assert response.status_code == 200
        assert [h["key"] for h in response.json()["items"]] == expected

    @pytest.mark.parametrize(
        "query", ["from_unit=nowhere", "to_unit=nowhere", "touchpoint=nowhere", "agreement=nowhere"]
    )
    async def test_filtering_by_an_unknown_key_matches_nothing(self, client, keys, network, query):
        response = await client.get(f"/v1/handoffs?{query}", headers=await keys.reader())
        assert response.status_code == 200
        assert response.json() == {"items": [], "next_cursor": None}

    async def test_filters_by_touchpoint(self, client, keys, session, network):
        await make_touchpoint_row(session, "c", key="desk")
        await make_handoff(
            session, key="a-to-c-desk", from_unit="a", to_unit="c", touchpoint="desk"
        )
        response = await client.get("/v1/handoffs?touchpoint=desk", headers=await keys.reader())
        assert [h["key"] for h in response.json()["items"]] == ["a-to-c-desk"]

    async def test_an_unknown_status_is_422(self, client, keys):
        response = await client.get("/v1/handoffs?status=paused", headers=await keys.reader())
        body = assert_problem(response, 422, "validation_failed")
        assert body["errors"][0]["loc"] == ["query", "status"]

    async def test_pages_by_key_with_a_cursor(self, client, keys, network):
        headers = await keys.reader()
        first = await client.get("/v1/handoffs?limit=2", headers=headers)
        assert [h["key"] for h in first.json()["items"]] == ["a-to-b", "a-to-c"]
        cursor = first.json()["next_cursor"]
        second = await client.get(f"/v1/handoffs?limit=2&cursor={cursor}", headers=headers)
        assert [h["key"] for h in second.json()["items"]] == ["b-to-c"]
        assert second.json()["next_cursor"] is None

    async def test_a_partner_lists_only_what_it_provides_or_receives(self, client, keys, partners):
        response = await client.get("/v1/handoffs", headers=await keys.partner("courier"))
        assert [h["key"] for h in response.json()["items"]] == ["parcel", "returns"]

    @pytest.mark.parametrize(
        "query", ["from_unit=rival", "to_unit=ops", "status=active", "limit=1&from_unit=rival"]
    )
    async def test_no_filter_widens_a_partners_scope(self, client, keys, partners, query):
        response = await client.get(f"/v1/handoffs?{query}", headers=await keys.partner("courier"))
        assert response.status_code == 200
        assert "rival-run" not in [h["key"] for h in response.json()["items"]]

    async def test_a_partner_pages_only_through_its_own(self, client, keys, partners):
        headers = await keys.partner("courier")
        first = await client.get("/v1/handoffs?limit=1", headers=headers)
        second = await client.get(
            f"/v1/handoffs?limit=1&cursor={first.json()['next_cursor']}", headers=headers
        )
        assert [h["key"] for h in first.json()["items"] + second.json()["items"]] == [
            "parcel",
            "returns",
        ]
        assert second.json()["next_cursor"] is None


class TestHandoffRings:
    """Creating, retiring and deleting handoffs re-derives the units' rings."""

    async def ring(self, client, keys, unit: str) -> int | None:
        response = await client.get(f"/v1/units/{unit}", headers=await keys.reader())
        return response.json()["ring"]

    async def test_a_handoff_into_a_touchpoint_owner_puts_its_provider_in_ring_2(
        self, client, keys, session, units
    ):
        await make_touchpoint_row(session, "branch")
        response = await client.post(
            "/v1/handoffs", json=handoff_body(), headers=await keys.writer()
        )
        assert response.status_code == 201
        assert await self.ring(client, keys, "branch") == 1
        assert await self.ring(client, keys, "ops") == 2

    async def test_a_chain_of_handoffs_counts_the_shortest_distance(
        self, client, keys, session, units
    ):
        await make_unit(session, key="back-office")
        await make_touchpoint_row(session, "branch")
        writer = await keys.writer()
        await client.post("/v1/handoffs", json=handoff_body(), headers=writer)
        await client.post(
            "/v1/handoffs",
            json=handoff_body(key="files", from_unit="back-office", to_unit="ops"),
            headers=writer,
        )
        assert await self.ring(client, keys, "back-office") == 3
        await client.post(
            "/v1/handoffs",
            json=handoff_body(key="shortcut", from_unit="back-office", to_unit="branch"),
            headers=writer,
        )
        assert await self.ring(client, keys, "back-office") == 2

    async def test_a_provider_with_no_path_to_a_touchpoint_has_no_ring(
        self, client, keys, session, units
    ):
        response = await client.post(
            "/v1/handoffs", json=handoff_body(), headers=await keys.writer()
        )
        assert response.status_code == 201
        assert await self.ring(client, keys, "ops") is None

    async def test_retiring_the_handoff_drops_the_ring(self, client, keys, session, units):
        await make_touchpoint_row(session, "branch")
        await make_handoff(session, key="kyc", from_unit="ops", to_unit="branch")
        assert await self.ring(client, keys, "ops") == 2
        await client.patch(
            "/v1/handoffs/kyc", json={"status": "retired"}, headers=await keys.writer()
        )
        assert await self.ring(client, keys, "ops") is None
        await client.patch(
            "/v1/handoffs/kyc", json={"status": "active"}, headers=await keys.writer()
        )
        assert await self.ring(client, keys, "ops") == 2

    async def test_deleting_the_handoff_drops_the_ring(self, client, keys, session, units):
        await make_touchpoint_row(session, "branch")
        await make_handoff(session, key="kyc", from_unit="ops", to_unit="branch")
        await client.delete("/v1/handoffs/kyc", headers=await keys.writer())
        assert await self.ring(client, keys, "ops") is None
        assert await self.ring(client, keys, "branch") == 1


# Events ------------------------------------------------------------------------------------


class TestUpsertHandoffEvent:
    async def test_creates_with_due_at_from_the_expected_time(self, client, keys, session, kyc):
        response = await client.put(
            "/v1/handoffs/kyc/events/case-1.kyc",
            json={"started_at": "2026-01-01T10:00:00+01:00", "case_ref": "CASE-1"},
            headers=await keys.writer(),
        )
        assert response.status_code == 201
        body = response.json()
        assert body["handoff"] == "kyc"
        assert body["external_id"] == "case-1.kyc"
        assert instant(body["started_at"]) == datetime(2026, 1, 1, 9, tzinfo=UTC)
        assert instant(body["due_at"]) == datetime(2026, 1, 1, 13, tzinfo=UTC)
        assert body["delivered_at"] is None
        assert body["case_ref"] == "CASE-1"
        assert body["rework"] is False
        assert body["customer_impact"] is False
        assert body["status"] == "overdue"
        assert await count(session, HandoffEvent) == 1

    async def test_sending_the_same_body_again_is_200_unchanged(self, client, keys, session, kyc):
        writer = await keys.writer()
        payload = {"started_at": "2026-01-01T10:00:00+00:00", "quality": 4, "note": "ok"}
        first = await client.put("/v1/handoffs/kyc/events/e1", json=payload, headers=writer)
        second = await client.put("/v1/handoffs/kyc/events/e1", json=payload, headers=writer)
        assert first.status_code == 201
        assert second.status_code == 200
        assert second.json() == first.json()
        assert await count(session, HandoffEvent) == 1

    async def test_a_changed_body_updates_the_same_event(self, client, keys, session, kyc):
        writer = await keys.writer()
        first = await client.put(
            "/v1/handoffs/kyc/events/e1",
            json={"started_at": "2026-01-01T10:00:00Z"},
            headers=writer,
        )
        second = await client.put(
            "/v1/handoffs/kyc/events/e1",
            json={
                "started_at": "2026-01-01T10:00:00Z",
                "delivered_at": "2026-01-01T12:30:00Z",
                "quality": 2,
                "rework": True,
                "customer_impact": True,
                "case_ref": "CASE-9",
                "note": "sent back once",
            },
            headers=writer,
        )
        assert second.status_code == 200
        body = second.json()
        assert body["id"] == first.json()["id"]
        assert instant(body["delivered_at"]) == datetime(2026, 1, 1, 12, 30, tzinfo=UTC)
        assert (body["quality"], body["rework"], body["customer_impact"]) == (2, True, True)
        assert (body["case_ref"], body["note"]) == ("CASE-9", "sent back once")
        assert body["status"] == "delivered"
        assert body["created_at"] == first.json()["created_at"]
        assert instant(body["updated_at"]) > instant(first.json()["updated_at"])
        assert await count(session, HandoffEvent) == 1

    async def test_a_later_upsert_replaces_every_field(self, client, keys, kyc):
        writer = await keys.writer()
        await client.put(
            "/v1/handoffs/kyc/events/e1",
            json={"started_at": "2026-01-01T10:00:00Z", "quality": 2, "note": "x"},
            headers=writer,
        )
        response = await client.put(
            "/v1/handoffs/kyc/events/e1",
            json={"started_at": "2026-01-01T10:00:00Z"},
            headers=writer,
        )
        assert response.status_code == 200
        assert response.json()["quality"] is None
        assert response.json()["note"] is None

    async def test_a_new_start_moves_the_default_due_date(self, client, keys, kyc):
        writer = await keys.writer()
        await client.put(
            "/v1/handoffs/kyc/events/e1",
            json={"started_at": "2026-01-01T10:00:00Z"},
            headers=writer,
        )
        response = await client.put(
            "/v1/handoffs/kyc/events/e1",
            json={"started_at": "2026-01-02T10:00:00Z"},
            headers=writer,
        )
        assert instant(response.json()["due_at"]) == datetime(2026, 1, 2, 14, tzinfo=UTC)

    async def test_an_explicit_due_at_wins(self, client, keys, kyc):
        response = await client.put(
            "/v1/handoffs/kyc/events/e1",
            json={"started_at": "2026-01-01T10:00:00Z", "due_at": "2026-01-03T10:00:00-05:00"},
            headers=await keys.writer(),
        )
        assert response.status_code == 201
        assert instant(response.json()["due_at"]) == datetime(2026, 1, 3, 15, tzinfo=UTC)

    async def test_without_expected_within_an_event_may_have_no_due_time(
        self, client, keys, session, units
    ):
        await make_handoff(
            session, key="adhoc", from_unit="ops", to_unit="branch", expected_within=None
        )
        response = await client.put(
            "/v1/handoffs/adhoc/events/e1",
            json={"started_at": "2026-01-01T10:00:00Z"},
            headers=await keys.writer(),
        )
        assert response.status_code == 201, response.text
        body = response.json()
        assert (body["due_at"], body["status"]) == (None, "pending")
        assert await count(session, HandoffEvent) == 1
        with_due = await client.put(
            "/v1/handoffs/adhoc/events/e1",
            json={"started_at": "2026-01-01T10:00:00Z", "due_at": "2026-01-01T11:00:00Z"},
            headers=await keys.writer(),
        )
        assert with_due.status_code == 200
        assert with_due.json()["due_at"] == "2026-01-01T11:00:00Z"

    @pytest.mark.parametrize("field", ["delivered_at", "due_at"])
    async def test_a_time_before_the_start_is_422(self, client, keys, session, kyc, field):
        response = await client.put(
            "/v1/handoffs/kyc/events/e1",
            json={"started_at": "2026-01-01T10:00:00Z", field: "2026-01-01T09:59:59Z"},
            headers=await keys.writer(),
        )
        body = assert_problem(response, 422, "validation_failed")
        assert body["errors"][0]["loc"] == ["body"]
        assert field in body["errors"][0]["msg"]
        assert await count(session, HandoffEvent) == 0

    @pytest.mark.parametrize("field", ["started_at", "due_at", "delivered_at"])
    async def test_a_timestamp_without_an_offset_is_422(self, client, keys, session, kyc, field):
        payload = {"started_at": "2026-01-01T10:00:00Z", field: "2026-01-01T11:00:00"}
        response = await client.put(
            "/v1/handoffs/kyc/events/e1", json=payload, headers=await keys.writer()
        )
        body = assert_problem(response, 422, "validation_failed")
        assert body["errors"][0]["loc"] == ["body", field]
        assert await count(session, HandoffEvent) == 0

    @pytest.mark.parametrize(
        ("field", "value"),
        [
            ("started_at", "9999-12-31T22:00:00Z"),  # + PT4H would leave the calendar
            ("started_at", "0001-01-01T00:00:00Z"),
            ("started_at", "1899-12-31T23:59:59Z"),
            ("due_at", "9000-01-01T00:00:01Z"),
            ("delivered_at", "9999-12-31T23:59:59Z"),
        ],
    )
    async def test_a_timestamp_outside_the_supported_years_is_422(
        self, client, keys, session, kyc, field, value
    ):
        payload = {"started_at": "2026-01-01T10:00:00Z", field: value}
        response = await client.put(
            "/v1/handoffs/kyc/events/e1", json=payload, headers=await keys.writer()
        )
        body = assert_problem(response, 422, "validation_failed")
        assert body["errors"][0]["loc"] == ["body", field]
        assert "9000-01-01T00:00:00Z" in body["errors"][0]["msg"]
        assert await count(session, HandoffEvent) == 0

    async def test_the_last_supported_start_takes_its_due_date_past_it(self, client, keys, kyc):
        response = await client.put(
            "/v1/handoffs/kyc/events/e1",
            json={"started_at": "9000-01-01T00:00:00Z"},
            headers=await keys.writer(),
        )
        assert response.status_code == 201, response.text
        assert instant(response.json()["due_at"]) == instant("9000-01-01T04:00:00+00:00")

    async def test_started_at_is_required(self, client, keys, session, kyc):
        response = await client.put(
            "/v1/handoffs/kyc/events/e1", json={"quality": 3}, headers=await keys.writer()
        )
        body = assert_problem(response, 422, "validation_failed")
        assert body["errors"][0]["loc"] == ["body", "started_at"]
        assert await count(session, HandoffEvent) == 0

    @pytest.mark.parametrize("quality", [0, 6, -1, 4.5, "good"])
    async def test_a_quality_outside_1_to_5_is_422(self, client, keys, session, kyc, quality):
        response = await client.put(
            "/v1/handoffs/kyc/events/e1",
            json={"started_at": "2026-01-01T10:00:00Z", "quality": quality},
            headers=await keys.writer(),
        )
        body = assert_problem(response, 422, "validation_failed")
        assert body["errors"][0]["loc"] == ["body", "quality"]
        assert await count(session, HandoffEvent) == 0

    @pytest.mark.parametrize(
        "field", [{"case_ref": "has space"}, {"note": "bell\x07"}, {"id": "x"}, {"handoff": "kyc"}]
    )
    async def test_a_bad_or_unknown_field_is_422(self, client, keys, session, kyc, field):
        response = await client.put(
            "/v1/handoffs/kyc/events/e1",
            json={"started_at": "2026-01-01T10:00:00Z", **field},
            headers=await keys.writer(),
        )
        body = assert_problem(response, 422, "validation_failed")
        assert body["errors"][0]["loc"] == ["body", next(iter(field))]
        assert await count(session, HandoffEvent) == 0

    @pytest.mark.parametrize("external_id", ["a%20b", ".starts-with-dot", "x" * 129, "a%23b"])
    async def test_a_bad_external_id_is_422(self, client, keys, session, kyc, external_id):
        response = await client.put(
            f"/v1/handoffs/kyc/events/{external_id}",
            json={"started_at": "2026-01-01T10:00:00Z"},
            headers=await keys.writer(),
        )
        body = assert_problem(response, 422, "validation_failed")
        assert body["errors"][0]["loc"] == ["path", "external_id"]
        assert await count(session, HandoffEvent) == 0

    async def test_external_ids_may_use_every_allowed_character(self, client, keys, kyc):
        external_id = "Zd-1.2_3:4~5"
        response = await client.put(
            f"/v1/handoffs/kyc/events/{external_id}",
            json={"started_at": "2026-01-01T10:00:00Z"},
            headers=await keys.writer(),
        )
        assert response.status_code == 201
        assert response.json()["external_id"] == external_id

    async def test_the_same_external_id_on_two_handoffs_is_two_events(
        self, client, keys, session, kyc
    ):
        await make_handoff(session, key="kyc-2", from_unit="branch", to_unit="ops")
        writer = await keys.writer()
        payload = {"started_at": "2026-01-01T10:00:00Z"}
        first = await client.put("/v1/handoffs/kyc/events/e1", json=payload, headers=writer)
        second = await client.put("/v1/handoffs/kyc-2/events/e1", json=payload, headers=writer)
        assert first.status_code == second.status_code == 201
        assert first.json()["id"] != second.json()["id"]

    async def test_an_unknown_handoff_is_404(self, client, keys, session):
        response = await client.put(
            "/v1/handoffs/nowhere/events/e1",
            json={"started_at": "2026-01-01T10:00:00Z"},
            headers=await keys.writer(),
        )
        body = assert_problem(response, 404, "not_found")
        assert body["resource"] == "handoff"
        assert await count(session, HandoffEvent) == 0

    async def test_a_reader_may_not_register(self, client, keys, session, kyc):
        response = await client.put(
            "/v1/handoffs/kyc/events/e1",
            json={"started_at": "2026-01-01T10:00:00Z"},
            headers=await keys.reader(),
        )
        assert_problem(response, 403, "forbidden")
        assert await count(session, HandoffEvent) == 0

    @pytest.mark.parametrize("key", ["parcel", "returns"])
    async def test_a_partner_registers_on_its_own_handoffs(
        self, client, keys, session, partners, key
    ):
        response = await client.put(
            f"/v1/handoffs/{key}/events/e1",
            json={"started_at": "2026-01-01T10:00:00Z"},
            headers=await keys.partner("courier"),
        )
        assert response.status_code == 201
        assert await count(session, HandoffEvent) == 1

    async def test_a_partner_on_another_partners_handoff_is_404_and_writes_nothing(
        self, client, keys, session, partners
    ):
        response = await client.put(
            "/v1/handoffs/rival-run/events/e1",
            json={"started_at": "2026-01-01T10:00:00Z"},
            headers=await keys.partner("courier"),
        )
        assert_problem(response, 404, "not_found")
        assert await count(session, HandoffEvent) == 0


class TestListHandoffEvents:
    @pytest.fixture
    async def mixed(self, session, kyc):
        """One overdue, one pending and one delivered occurrence of ``kyc``."""
        await make_event(session, "kyc", external_id="overdue", started_at=PAST, case_ref="C-1")
        await make_event(session, "kyc", external_id="pending", started_at=FUTURE, case_ref="C-2")
        await make_event(
            session,
            "kyc",
            external_id="delivered",
            started_at=PAST,
            delivered_at="2020-01-01T10:00:00+00:00",
            case_ref="C-1",
        )

    @pytest.mark.parametrize(
        ("status", "expected"),
        [("pending", ["pending"]), ("delivered", ["delivered"]), ("overdue", ["overdue"])],
    )
    async def test_filters_by_status_as_of_now(self, client, keys, mixed, status, expected):
        response = await client.get(
            f"/v1/handoffs/kyc/events?status={status}", headers=await keys.reader()
        )
        assert response.status_code == 200
        items = response.json()["items"]
        assert [e["external_id"] for e in items] == expected
        assert [e["status"] for e in items] == [status]

    async def test_an_event_turns_overdue_when_its_due_date_passes(
        self, client, keys, session, kyc
    ):
        due = datetime.now(UTC) + timedelta(seconds=3)  # time for the first read under load
        await make_event(
            session,
            "kyc",
            external_id="soon",
            started_at=(due - timedelta(hours=1)).isoformat(),
            due_at=due.isoformat(),
        )
        headers = await keys.reader()
        before = await client.get("/v1/handoffs/kyc/events?status=pending", headers=headers)
        assert [e["external_id"] for e in before.json()["items"]] == ["soon"]
        while datetime.now(UTC) <= due:
            await asyncio.sleep(0.05)
        after = await client.get("/v1/handoffs/kyc/events?status=overdue", headers=headers)
        assert [e["external_id"] for e in after.json()["items"]] == ["soon"]

    async def test_filters_by_case_ref(self, client, keys, mixed):
        response = await client.get(
            "/v1/handoffs/kyc/events?case_ref=C-1", headers=await keys.reader()
        )
        assert sorted(e["external_id"] for e in response.json()["items"]) == [
            "delivered",
            "overdue",
        ]

    async def test_status_and_case_ref_combine(self, client, keys, mixed):
        response = await client.get(
            "/v1/handoffs/kyc/events?case_ref=C-1&status=overdue", headers=await keys.reader()
        )
        assert [e["external_id"] for e in response.json()["items"]] == ["overdue"]

    async def test_lists_only_this_handoffs_events(self, client, keys, session, mixed):
        await make_handoff(session, key="other", from_unit="branch", to_unit="ops")
        await make_event(session, "other", external_id="elsewhere")
        response = await client.get("/v1/handoffs/kyc/events", headers=await keys.reader())
        assert "elsewhere" not in [e["external_id"] for e in response.json()["items"]]
        assert len(response.json()["items"]) == 3

    async def test_pages_in_due_date_order(self, client, keys, session, kyc):
        for external_id, day in (("third", 3), ("first", 1), ("second", 2), ("fourth", 4)):
            await make_event(
                session,
                "kyc",
                external_id=external_id,
                started_at=f"2026-01-0{day}T08:00:00+00:00",
            )
        headers = await keys.reader()
        first = await client.get("/v1/handoffs/kyc/events?limit=3", headers=headers)
        assert [e["external_id"] for e in first.json()["items"]] == ["first", "second", "third"]
        cursor = first.json()["next_cursor"]
        second = await client.get(
            f"/v1/handoffs/kyc/events?limit=3&cursor={cursor}", headers=headers
        )
        assert [e["external_id"] for e in second.json()["items"]] == ["fourth"]
        assert second.json()["next_cursor"] is None

    async def test_pages_through_equal_due_dates_without_loss_or_repeats(
        self, client, keys, session, kyc
    ):
        for n in range(5):
            await make_event(session, "kyc", external_id=f"same-{n}", started_at=PAST)
        headers = await keys.reader()
        seen: list[str] = []
        cursor = None
        for _ in range(10):
            query = "limit=2" + (f"&cursor={cursor}" if cursor else "")
            page = (await client.get(f"/v1/handoffs/kyc/events?{query}", headers=headers)).json()
            seen += [e["external_id"] for e in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert sorted(seen) == [f"same-{n}" for n in range(5)]

    @pytest.mark.parametrize(
        "query", ["status=late", "case_ref=has%20space", "limit=0", "cursor=!!"]
    )
    async def test_a_bad_query_is_422(self, client, keys, kyc, query):
        response = await client.get(f"/v1/handoffs/kyc/events?{query}", headers=await keys.reader())
        assert response.status_code == 422
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["errors"][0]["loc"][0] == "query"

    async def test_an_unknown_handoff_is_404(self, client, keys):
        response = await client.get("/v1/handoffs/nowhere/events", headers=await keys.reader())
        assert_problem(response, 404, "not_found")

    async def test_a_partner_lists_events_of_its_own_handoffs(
        self, client, keys, session, partners
    ):
        await make_event(session, "parcel", external_id="p1")
        response = await client.get(
            "/v1/handoffs/parcel/events", headers=await keys.partner("courier")
        )
        assert [e["external_id"] for e in response.json()["items"]] == ["p1"]

    async def test_another_partners_events_are_404(self, client, keys, session, partners):
        await make_event(session, "rival-run", external_id="r1")
        response = await client.get(
            "/v1/handoffs/rival-run/events", headers=await keys.partner("courier")
        )
        assert_problem(response, 404, "not_found")


# Reviews -----------------------------------------------------------------------------------


class TestCreateHandoffReview:
    async def test_a_writer_reviews(self, client, keys, session, kyc):
        response = await client.post(
            "/v1/handoffs/kyc/reviews",
            json={
                "at": "2026-06-30T17:00:00+02:00",
                "period": "2026-06",
                "timeliness": 2,
                "quality": 4,
                "needs": "Send the ID scan with the file",
            },
            headers=await keys.writer(),
        )
        assert response.status_code == 201
        body = response.json()
        assert body["handoff"] == "kyc"
        assert instant(body["at"]) == datetime(2026, 6, 30, 15, tzinfo=UTC)
        assert (body["period"], body["timeliness"], body["quality"]) == ("2026-06", 2, 4)
        assert body["needs"] == "Send the ID scan with the file"
        assert await count(session, HandoffReview) == 1

    async def test_at_defaults_to_now(self, client, keys, kyc):
        before = datetime.now(UTC)
        response = await client.post(
            "/v1/handoffs/kyc/reviews",
            json={"timeliness": 3, "quality": 3},
            headers=await keys.writer(),
        )
        after = datetime.now(UTC)
        assert response.status_code == 201
        assert before <= instant(response.json()["at"]) <= after

    async def test_the_receiving_partner_reviews(self, client, keys, session, partners):
        response = await client.post(
            "/v1/handoffs/returns/reviews",
            json={"timeliness": 5, "quality": 4},
            headers=await keys.partner("courier"),
        )
        assert response.status_code == 201
        assert await count(session, HandoffReview) == 1

    async def test_the_providing_partner_is_403(self, client, keys, session, partners):
        response = await client.post(
            "/v1/handoffs/parcel/reviews",
            json={"timeliness": 5, "quality": 5},
            headers=await keys.partner("courier"),
        )
        assert_problem(response, 403, "forbidden")
        assert await count(session, HandoffReview) == 0

    async def test_an_unrelated_partner_is_404(self, client, keys, session, partners):
        response = await client.post(
            "/v1/handoffs/rival-run/reviews",
            json={"timeliness": 1, "quality": 1},
            headers=await keys.partner("courier"),
        )
        assert_problem(response, 404, "not_found")
        assert await count(session, HandoffReview) == 0

    async def test_a_reader_may_not_review(self, client, keys, session, kyc):
        response = await client.post(
            "/v1/handoffs/kyc/reviews",
            json={"timeliness": 3, "quality": 3},
            headers=await keys.reader(),
        )
        assert_problem(response, 403, "forbidden")
        assert await count(session, HandoffReview) == 0

    @pytest.mark.parametrize("field", ["timeliness", "quality"])
    @pytest.mark.parametrize("value", [0, 6, None])
    async def test_a_rating_outside_1_to_5_is_422(self, client, keys, session, kyc, field, value):
        payload = {"timeliness": 3, "quality": 3, field: value}
        response = await client.post(
            "/v1/handoffs/kyc/reviews", json=payload, headers=await keys.writer()
        )
        body = assert_problem(response, 422, "validation_failed")
        assert body["errors"][0]["loc"] == ["body", field]
        assert await count(session, HandoffReview) == 0

    @pytest.mark.parametrize(
        "field", [{"at": "2026-06-30T17:00:00"}, {"period": ""}, {"submitted_by": "me"}]
    )
    async def test_a_bad_field_is_422(self, client, keys, session, kyc, field):
        payload = {"timeliness": 3, "quality": 3, **field}
        response = await client.post(
            "/v1/handoffs/kyc/reviews", json=payload, headers=await keys.writer()
        )
        body = assert_problem(response, 422, "validation_failed")
        assert body["errors"][0]["loc"] == ["body", next(iter(field))]
        assert await count(session, HandoffReview) == 0

    async def test_an_unknown_handoff_is_404(self, client, keys, session):
        response = await client.post(
            "/v1/handoffs/nowhere/reviews",
            json={"timeliness": 3, "quality": 3},
            headers=await keys.writer(),
        )
        assert_problem(response, 404, "not_found")
        assert await count(session, HandoffReview) == 0

    async def test_idempotency_key_replays_the_first_review(self, client, keys, session, kyc):
        headers = {**await keys.writer(), "Idempotency-Key": "pulse-2026-06"}
        payload = {"period": "2026-06", "timeliness": 3, "quality": 3}
        first = await client.post("/v1/handoffs/kyc/reviews", json=payload, headers=headers)
        second = await client.post("/v1/handoffs/kyc/reviews", json=payload, headers=headers)
        assert first.status_code == second.status_code == 201
        assert second.json() == first.json()
        assert second.headers["idempotent-replayed"] == "true"
        assert await count(session, HandoffReview) == 1


class TestListHandoffReviews:
    async def test_pages_in_time_order(self, client, keys, session, kyc):
        for period in ("2026-03", "2026-01", "2026-02"):
            await make_review(session, "kyc", period=period, at=f"{period}-28T12:00:00+00:00")
        headers = await keys.reader()
        first = await client.get("/v1/handoffs/kyc/reviews?limit=2", headers=headers)
        assert first.status_code == 200
        assert [r["period"] for r in first.json()["items"]] == ["2026-01", "2026-02"]
        cursor = first.json()["next_cursor"]
        second = await client.get(
            f"/v1/handoffs/kyc/reviews?limit=2&cursor={cursor}", headers=headers
        )
        assert [r["period"] for r in second.json()["items"]] == ["2026-03"]
        assert second.json()["next_cursor"] is None

    async def test_lists_only_this_handoffs_reviews(self, client, keys, session, kyc):
        await make_handoff(session, key="other", from_unit="branch", to_unit="ops")
        await make_review(session, "other", period="elsewhere")
        await make_review(session, "kyc", period="here")
        response = await client.get("/v1/handoffs/kyc/reviews", headers=await keys.reader())
        assert [r["period"] for r in response.json()["items"]] == ["here"]

    @pytest.mark.parametrize("key", ["parcel", "returns"])
    async def test_a_partner_reads_reviews_of_its_own_handoffs(
        self, client, keys, session, partners, key
    ):
        await make_review(session, key, period="2026-06")
        response = await client.get(
            f"/v1/handoffs/{key}/reviews", headers=await keys.partner("courier")
        )
        assert [r["period"] for r in response.json()["items"]] == ["2026-06"]

    async def test_another_partners_reviews_are_404(self, client, keys, session, partners):
        await make_review(session, "rival-run")
        response = await client.get(
            "/v1/handoffs/rival-run/reviews", headers=await keys.partner("courier")
        )
        assert_problem(response, 404, "not_found")

    async def test_an_unknown_handoff_is_404(self, client, keys):
        response = await client.get("/v1/handoffs/nowhere/reviews", headers=await keys.reader())
        assert_problem(response, 404, "not_found")


class TestRoleMatrix:
    """Writes a reader's role may not make, on every handoff route that writes."""

    @pytest.mark.parametrize(
        ("method", "path", "payload"),
        [
            ("POST", "/v1/handoffs", handoff_body(key="new")),
            ("PATCH", "/v1/handoffs/kyc", {"deliverable": "x"}),
            ("DELETE", "/v1/handoffs/kyc", None),
            ("PUT", "/v1/handoffs/kyc/events/e1", {"started_at": "2026-01-01T10:00:00Z"}),
            ("POST", "/v1/handoffs/kyc/reviews", {"timeliness": 3, "quality": 3}),
            ("POST", "/v1/handoff-events/bulk", []),
        ],
    )
    async def test_a_reader_may_not_write(self, client, keys, session, kyc, method, path, payload):
        response = await client.request(method, path, json=payload, headers=await keys.reader())
        assert_problem(response, 403, "forbidden")
        assert await count(session, Handoff) == 1
        assert await count(session, HandoffEvent) == 0
        assert await count(session, HandoffReview) == 0
        current = await client.get("/v1/handoffs/kyc", headers=await keys.reader())
        assert current.json()["version"] == 1
