"""Service functions of the journeys domain, against the test database."""

from __future__ import annotations

import asyncio
from uuid import uuid4

import pytest
from prometheus_client import REGISTRY

from service.core.bulk import BulkRejected
from service.core.errors import Forbidden, NotFound
from service.core.pagination import PageRequest
from service.core.permissions import Principal, Role
from service.journeys import service as journeys_service
from service.journeys.schemas import (
    FeedbackUpsert,
    JourneyCreate,
    JourneyUpdate,
    TouchpointCreate,
    TouchpointUpdate,
)
from tests.factories import make_feedback, make_journey, make_touchpoint, make_unit

READER = Principal(key_id=uuid4(), name="reader", role=Role.reader)
WRITER = Principal(key_id=uuid4(), name="writer", role=Role.writer)


def partner(unit_id=None) -> Principal:
    return Principal(
        key_id=uuid4(), name="partner", role=Role.partner, partner_unit_id=unit_id or uuid4()
    )


def ingested(outcome: str) -> float:
    return (
        REGISTRY.get_sample_value("silospan_feedback_ingested_total", {"outcome": outcome}) or 0.0
    )


async def one_batch(items):
    yield items


class TestGetMany:
    async def test_journeys_in_id_order_with_none_for_missing(self, session):
        a, b = await make_journey(session), await make_journey(session)
        missing = uuid4()
        found = await journeys_service.get_many_journeys(session, READER, [b.id, missing, a.id])
        assert [j.key if j else None for j in found] == [b.key, None, a.key]

    async def test_touchpoints_in_id_order_with_none_for_missing(self, session):
        a, b = await make_touchpoint(session), await make_touchpoint(session)
        found = await journeys_service.get_many_touchpoints(
            session, READER, [a.id, uuid4(), b.id, a.id]
        )
        assert [t.key if t else None for t in found] == [a.key, None, b.key, a.key]

    async def test_feedback_in_id_order_with_none_for_missing(self, session):
        a, b = await make_feedback(session), await make_feedback(session)
        found = await journeys_service.get_many_feedback(session, READER, [b.id, a.id, uuid4()])
        assert [f.id if f else None for f in found] == [b.id, a.id, None]

    async def test_no_ids_is_no_query_and_no_rows(self, session):
        assert await journeys_service.get_many_journeys(session, READER, []) == []

    async def test_a_partner_sees_none_of_them(self, session):
        feedback = await make_feedback(session)
        touchpoint = (
            await journeys_service.get_many_touchpoints(session, READER, [feedback.touchpoint_id])
        )[0]
        assert touchpoint is not None
        who = partner()
        assert await journeys_service.get_many_journeys(session, who, [touchpoint.journey_id]) == [
            None
        ]
        assert await journeys_service.get_many_touchpoints(session, who, [touchpoint.id]) == [None]
        assert await journeys_service.get_many_feedback(session, who, [feedback.id]) == [None]


class TestListTouchpointsByJourneyIds:
    async def test_groups_in_the_order_asked_sorted_by_key(self, session):
        onboarding = await make_journey(session, stages=["a"])
        claims = await make_journey(session, stages=["a"])
        empty = await make_journey(session, stages=["a"])
        await make_touchpoint(session, key="tp-2", journey=onboarding.key, stage="a")
        await make_touchpoint(session, key="tp-1", journey=onboarding.key, stage="a")
        await make_touchpoint(session, key="tp-3", journey=claims.key, stage="a")
        groups = await journeys_service.list_touchpoints_by_journey_ids(
            session, READER, [claims.id, empty.id, onboarding.id]
        )
        assert [[t.key for t in group] for group in groups] == [["tp-3"], [], ["tp-1", "tp-2"]]

    async def test_a_partner_gets_empty_groups(self, session):
        touchpoint = await make_touchpoint(session)
        groups = await journeys_service.list_touchpoints_by_journey_ids(
            session, partner(), [touchpoint.journey_id]
        )
        assert groups == [[]]


class TestListTouchpointsByOwnerIds:
    async def test_groups_in_the_order_asked(self, session):
        front, back = await make_unit(session), await make_unit(session)
        await make_touchpoint(session, key="tp-b", owner=front.key)
        await make_touchpoint(session, key="tp-a", owner=front.key)
        groups = await journeys_service.list_touchpoints_by_owner_ids(
            session, READER, [back.id, front.id]
        )
        assert [[t.key for t in group] for group in groups] == [[], ["tp-a", "tp-b"]]


class TestListsForPartners:
    async def test_every_list_is_empty_for_a_partner(self, session):
        courier = await make_unit(session, kind="partner")
        touchpoint = await make_touchpoint(session, owner=courier.key)
        who = partner(courier.id)  # even a partner that owns the touchpoint sees nothing
        page = PageRequest(limit=50)
        assert await journeys_service.list_journeys(session, who, page) == ([], None)
        assert await journeys_service.list_touchpoints(session, who, page) == ([], None)
        with pytest.raises(NotFound):
            await journeys_service.list_feedback(session, who, touchpoint.key, page)


class TestPermissions:
    @pytest.mark.parametrize(
        "call",
        [
            lambda s, p: journeys_service.create_journey(
                s, p, JourneyCreate(key="j", name="J", stages=["a"])
            ),
            lambda s, p: journeys_service.update_journey(s, p, "j", JourneyUpdate(name="x")),
            lambda s, p: journeys_service.delete_journey(s, p, "j"),
            lambda s, p: journeys_service.create_touchpoint(
                s, p, TouchpointCreate(key="t", journey="j", stage="a", name="T", owner="u")
            ),
            lambda s, p: journeys_service.update_touchpoint(s, p, "t", TouchpointUpdate(name="x")),
            lambda s, p: journeys_service.delete_touchpoint(s, p, "t"),
            lambda s, p: journeys_service.upsert_feedback(
                s, p, "t", "s1", FeedbackUpsert(at="2026-01-01T00:00:00Z", scale="nps", score=9)
            ),
            lambda s, p: journeys_service.ingest_feedback(s, p, one_batch([])),
        ],
    )
    @pytest.mark.parametrize("who", [READER, partner()], ids=["reader", "partner"])
    async def test_only_writers_and_admins_write(self, session, call, who):
        with pytest.raises(Forbidden):
            await call(session, who)


class TestIngestFeedback:
    async def test_counts_outcomes_in_telemetry(self, session):
        touchpoint = await make_touchpoint(session)
        item = {
            "touchpoint": touchpoint.key,
            "at": "2026-01-01T00:00:00Z",
            "scale": "nps",
            "score": 9,
        }
        before = {o: ingested(o) for o in ("created", "unchanged", "rejected")}
        await journeys_service.ingest_feedback(
            session, WRITER, one_batch([{**item, "external_id": "a"}, {**item, "external_id": "b"}])
        )
        await journeys_service.ingest_feedback(
            session,
            WRITER,
            one_batch([{**item, "external_id": "a"}, {**item, "external_id": "c", "score": 11}]),
            atomic=False,
        )
        after = {o: ingested(o) - before[o] for o in before}
        assert after == {"created": 2, "unchanged": 1, "rejected": 1}

    async def test_an_atomic_rejection_counts_only_the_rejected(self, session):
        touchpoint = await make_touchpoint(session)
        item = {
            "touchpoint": touchpoint.key,
            "at": "2026-01-01T00:00:00Z",
            "scale": "nps",
            "score": 9,
        }
        before = {o: ingested(o) for o in ("created", "rejected")}
        with pytest.raises(BulkRejected) as rejected:
            await journeys_service.ingest_feedback(
                session, WRITER, one_batch([{**item, "external_id": "a"}, {**item, "external_id": "-"}])
            )
        errors = rejected.value.extra["errors"]
        assert (rejected.value.extra["rejected"], [e["index"] for e in errors]) == (1, [1])
        assert {o: ingested(o) - before[o] for o in before} == {"created": 0, "rejected": 1}


@pytest.mark.concurrency
class TestConcurrentFeedbackUpserts:
    async def test_identical_puts_end_with_one_row_and_one_id(self, live_app):
        headers = {"Authorization": f"Bearer {await live_app.secret(Role.writer)}"}
        async with live_app.client() as client:
            for url, body in (
                ("/v1/units", {"key": "front", "name": "Front", "kind": "department"}),
                ("/v1/journeys", {"key": "j", "name": "J", "stages": ["a"]}),
                (
                    "/v1/touchpoints",
                    {"key": "t", "journey": "j", "stage": "a", "name": "T", "owner": "front"},
                ),
            ):
                assert (await client.post(url, json=body, headers=headers)).status_code == 201
            body = {"at": "2026-01-01T00:00:00Z", "scale": "nps", "score": 9}
            responses = await asyncio.gather(
                *(
                    client.put("/v1/touchpoints/t/feedback/s1", json=body, headers=headers)
                    for _ in range(16)
                )
            )
            statuses = sorted(r.status_code for r in responses)
            assert statuses == [200] * 15 + [201], [r.text for r in responses]
            assert len({r.json()["id"] for r in responses}) == 1
            listed = await client.get("/v1/touchpoints/t/feedback", headers=headers)
            assert [f["id"] for f in listed.json()["items"]] == [responses[0].json()["id"]]
