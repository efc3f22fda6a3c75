"""service.handoffs.service: the rules, called directly (no HTTP)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from service.api_keys import service as api_keys_service
from service.api_keys.schemas import ApiKeyCreate
from service.api_keys.service import SYSTEM
from service.core.bulk import BulkRejected, upsert_rows
from service.core.db import is_foreign_key_violation
from service.core.errors import (
    Forbidden,
    Invalid,
    KeyExists,
    NotFound,
    PayloadTooLarge,
    StillReferenced,
    UnknownReference,
    VersionMismatch,
)
from service.core.pagination import PageRequest
from service.core.permissions import Principal, Role
from service.handoffs import service as handoffs_service
from service.handoffs.constants import EventStatus, HandoffStatus
from service.handoffs.models import HandoffEvent, HandoffReview
from service.handoffs.schemas import (
    EventUpsert,
    HandoffCreate,
    HandoffUpdate,
    ReviewCreate,
    default_due,
    event_status,
)
from service.journeys.models import Journey, Touchpoint
from service.org_units import service as org_units_service
from service.org_units.models import Unit
from tests.factories import make_event, make_handoff, make_review, make_unit

PAGE = PageRequest(limit=50)
START = datetime(2026, 1, 5, 9, tzinfo=UTC)


async def principal(session, role: Role, unit: Unit | None = None) -> Principal:
    """The caller of a real API key of this role, as a request would authenticate it."""
    data = ApiKeyCreate(name=f"test {role}", role=role, partner=unit.key if unit else None)
    _, secret = await api_keys_service.create(session, SYSTEM, data)
    return await api_keys_service.authenticate(session, secret)


async def batches(*groups: Sequence[Any]) -> AsyncIterator[Sequence[Any]]:
    for group in groups:
        yield list(group)


def item(external_id: str, handoff: str = "kyc", **fields: Any) -> dict:
    return {
        "handoff": handoff,
        "external_id": external_id,
        "started_at": START.isoformat(),
        **fields,
    }


async def events(session) -> int:
    return await session.scalar(select(func.count()).select_from(HandoffEvent))


@pytest.fixture
async def courier(session, kyc) -> Unit:
    """A partner that provides ``parcel`` and receives ``returns``; ``kyc`` is not its own."""
    unit = await make_unit(session, key="courier", kind="partner")
    await make_handoff(session, key="parcel", from_unit="courier", to_unit="branch")
    await make_handoff(session, key="returns", from_unit="branch", to_unit="courier")
    return unit


class TestCreate:
    async def test_stores_resolved_references(self, session):
        ops = await make_unit(session, key="ops")
        branch = await make_unit(session, key="branch")
        data = HandoffCreate(
            key="kyc", from_unit="ops", to_unit="branch", deliverable="KYC", expected_within="PT4H"
        )
        handoff = await handoffs_service.create(session, SYSTEM, data)
        assert (handoff.from_unit_id, handoff.to_unit_id) == (ops.id, branch.id)
        assert handoff.expected_within == timedelta(hours=4)
        assert handoff.status == HandoffStatus.active
        assert handoff.version == 1

    async def test_recomputes_rings(self, session):
        await make_unit(session, key="ops")
        branch = await make_unit(session, key="branch")
        journey = Journey(key="j", name="J", stages=["s"])
        session.add(journey)
        await session.flush()
        session.add(
            Touchpoint(key="t", journey_id=journey.id, stage="s", name="T", owner_id=branch.id)
        )
        await org_units_service.recompute_rings(session)
        await make_handoff(session, from_unit="ops", to_unit="branch")
        rings = dict((await session.execute(select(Unit.key, Unit.ring))).all())
        assert (rings["branch"], rings["ops"]) == (1, 2)

    async def test_a_duplicate_key_raises_key_exists(self, session, kyc):
        with pytest.raises(KeyExists):
            await make_handoff(session, key="kyc", from_unit="ops", to_unit="branch")

    async def test_an_unknown_unit_raises_unknown_reference(self, session):
        await make_unit(session, key="ops")
        with pytest.raises(UnknownReference) as raised:
            await make_handoff(session, from_unit="ops", to_unit="nowhere")
        assert raised.value.extensions["errors"][0]["loc"] == ["body", "to_unit"]

    @pytest.mark.parametrize("role", [Role.reader, Role.partner])
    async def test_roles_that_may_not_write_are_forbidden(self, session, role):
        courier = await make_unit(session, key="courier", kind="partner")
        await make_unit(session, key="branch")
        caller = await principal(session, role, courier if role is Role.partner else None)
        data = HandoffCreate(key="kyc", from_unit="courier", to_unit="branch", deliverable="KYC")
        with pytest.raises(Forbidden):
            await handoffs_service.create(session, caller, data)


class TestUpdate:
    async def test_bumps_version_and_keeps_unsent_fields(self, session, kyc):
        handoff = await handoffs_service.update(
            session, SYSTEM, "kyc", HandoffUpdate(quality_threshold=3), expected_version=1
        )
        assert handoff.version == 2
        assert handoff.quality_threshold == 3
        assert handoff.expected_within == timedelta(hours=4)

    async def test_a_stale_version_raises_and_changes_nothing(self, session, kyc):
        with pytest.raises(VersionMismatch):
            await handoffs_service.update(
                session, SYSTEM, "kyc", HandoffUpdate(deliverable="x"), expected_version=5
            )
        assert (await handoffs_service.get(session, SYSTEM, "kyc")).version == 1

    async def test_a_patch_obeys_the_create_rules(self, session, kyc):
        with pytest.raises(Invalid):
            await handoffs_service.update(session, SYSTEM, "kyc", HandoffUpdate(to_unit="ops"))


class TestDelete:
    async def test_refuses_while_events_exist(self, session, kyc):
        await make_event(session, "kyc")
        with pytest.raises(StillReferenced) as raised:
            await handoffs_service.delete(session, SYSTEM, "kyc")
        assert raised.value.extra["referenced_by"] == {"handoff_events": 1}

    async def test_an_unknown_key_raises_not_found(self, session):
        with pytest.raises(NotFound):
            await handoffs_service.delete(session, SYSTEM, "nowhere")


class TestListPage:
    async def test_a_partner_sees_only_its_own_handoffs(self, session, courier):
        rows, _ = await handoffs_service.list_page(
            session, await principal(session, Role.partner, courier), PAGE
        )
        assert [h.key for h in rows] == ["parcel", "returns"]

    async def test_a_partners_filter_cannot_reach_other_handoffs(self, session, courier):
        rows, _ = await handoffs_service.list_page(
            session, await principal(session, Role.partner, courier), PAGE, from_unit="ops"
        )
        assert rows == []

    async def test_an_unknown_filter_key_matches_nothing(self, session, kyc):
        assert await handoffs_service.list_page(session, SYSTEM, PAGE, to_unit="nowhere") == (
            [],
            None,
        )


class TestGet:
    async def test_another_partners_handoff_is_not_found(self, session, courier):
        with pytest.raises(NotFound):
            await handoffs_service.get(
                session, await principal(session, Role.partner, courier), "kyc"
            )


class TestUpsertEvent:
    async def test_reports_created_then_not_created_with_one_id(self, session, kyc):
        data = EventUpsert(started_at=START)
        first, created = await handoffs_service.upsert_event(session, SYSTEM, "kyc", "e1", data)
        again, created_again = await handoffs_service.upsert_event(
            session, SYSTEM, "kyc", "e1", data
        )
        assert (created, created_again) == (True, False)
        assert again.id == first.id
        assert first.due_at == START + timedelta(hours=4)
        assert await events(session) == 1

    async def test_an_update_rewrites_the_row(self, session, kyc):
        await handoffs_service.upsert_event(
            session, SYSTEM, "kyc", "e1", EventUpsert(started_at=START)
        )
        updated, created = await handoffs_service.upsert_event(
            session, SYSTEM, "kyc", "e1", EventUpsert(started_at=START, quality=5, rework=True)
        )
        await session.refresh(updated)
        assert created is False
        assert (updated.quality, updated.rework) == (5, True)

    async def test_without_expected_within_an_event_has_no_due_time(self, session, kyc):
        await make_handoff(
            session, key="adhoc", from_unit="ops", to_unit="branch", expected_within=None
        )
        event, created = await handoffs_service.upsert_event(
            session, SYSTEM, "adhoc", "e1", EventUpsert(started_at=START)
        )
        assert created is True
        assert event.due_at is None
        assert event.placed_at == START  # a window finds it by its start
        (read,) = await handoffs_service.events_to_read(session, SYSTEM, [event])
        assert (read.due_at, read.status) == (None, EventStatus.pending)  # never overdue

    async def test_a_due_time_given_later_moves_the_event(self, session, kyc):
        await make_handoff(
            session, key="adhoc", from_unit="ops", to_unit="branch", expected_within=None
        )
        await handoffs_service.upsert_event(
            session, SYSTEM, "adhoc", "e1", EventUpsert(started_at=START)
        )
        due = START + timedelta(days=2)
        event, created = await handoffs_service.upsert_event(
            session, SYSTEM, "adhoc", "e1", EventUpsert(started_at=START, due_at=due)
        )
        await session.refresh(event)
        assert created is False
        assert (event.due_at, event.placed_at) == (due, due)

    async def test_a_reader_is_forbidden(self, session, kyc):
        with pytest.raises(Forbidden):
            await handoffs_service.upsert_event(
                session,
                await principal(session, Role.reader),
                "kyc",
                "e1",
                EventUpsert(started_at=START),
            )

    async def test_a_partner_on_another_handoff_is_not_found(self, session, courier):
        with pytest.raises(NotFound):
            await handoffs_service.upsert_event(
                session,
                await principal(session, Role.partner, courier),
                "kyc",
                "e1",
                EventUpsert(started_at=START),
            )
        assert await events(session) == 0


class TestListEvents:
    async def test_filters_by_status_relative_to_now(self, session, kyc):
        await make_event(session, "kyc", external_id="late", started_at="2020-01-01T00:00:00+00:00")
        await make_event(
            session, "kyc", external_id="later", started_at="2099-01-01T00:00:00+00:00"
        )
        _, rows, _ = await handoffs_service.list_events(
            session, SYSTEM, "kyc", PAGE, status=EventStatus.overdue
        )
        assert [e.external_id for e in rows] == ["late"]

    async def test_an_event_with_no_due_time_is_pending_until_delivered(self, session, kyc):
        await make_handoff(
            session, key="adhoc", from_unit="ops", to_unit="branch", expected_within=None
        )
        old = "2020-01-01T00:00:00+00:00"
        await make_event(session, "adhoc", external_id="open", started_at=old)
        await make_event(
            session, "adhoc", external_id="done", started_at=old, delivered_at=START.isoformat()
        )
        listed = {}
        for status in EventStatus:
            _, rows, _ = await handoffs_service.list_events(
                session, SYSTEM, "adhoc", PAGE, status=status
            )
            listed[status] = [e.external_id for e in rows]
        assert listed == {
            EventStatus.pending: ["open"],
            EventStatus.overdue: [],
            EventStatus.delivered: ["done"],
        }

    async def test_events_come_by_due_time_or_by_start_without_one(self, session, kyc):
        await make_handoff(
            session, key="adhoc", from_unit="ops", to_unit="branch", expected_within=None
        )
        day = timedelta(days=1)
        await make_event(session, "adhoc", external_id="started-day-2", started_at=START + 2 * day)
        await make_event(
            session, "adhoc", external_id="due-day-3", started_at=START, due_at=START + 3 * day
        )
        await make_event(session, "adhoc", external_id="started-day-1", started_at=START + day)
        pages, cursor = [], None
        while True:  # a page of one at a time: the cursor carries the placement
            _, rows, cursor = await handoffs_service.list_events(
                session, SYSTEM, "adhoc", PageRequest(limit=1, cursor=cursor)
            )
            pages += [e.external_id for e in rows]
            if cursor is None:
                break
        assert pages == ["started-day-1", "started-day-2", "due-day-3"]


class TestIngestEvents:
    async def test_counts_each_outcome(self, session, kyc):
        await make_event(session, "kyc", external_id="same", started_at=START.isoformat())
        await make_event(session, "kyc", external_id="changed", started_at=START.isoformat())
        result = await handoffs_service.ingest_events(
            session, SYSTEM, batches([item("same"), item("changed", quality=3), item("new")])
        )
        assert (result.created, result.updated, result.unchanged, result.rejected) == (1, 1, 1, 0)

    async def test_validates_ndjson_lines_as_raw_bytes(self, session, kyc):
        lines = [orjson.dumps(item("a")), b"{not json", orjson.dumps(item("b"))]
        result = await handoffs_service.ingest_events(session, SYSTEM, batches(lines), atomic=False)
        assert (result.created, result.rejected) == (2, 1)
        assert [e.index for e in result.errors] == [1]

    async def test_indexes_run_on_across_batches(self, session, kyc):
        result = await handoffs_service.ingest_events(
            session,
            SYSTEM,
            batches([item("a"), item("b")], [item("c"), item("d", quality=9)]),
            atomic=False,
        )
        assert [(e.index, e.loc) for e in result.errors] == [(3, ["quality"])]
        assert result.created == 3

    async def test_atomic_stops_writing_after_the_first_bad_item(self, session, kyc):
        with pytest.raises(BulkRejected) as rejected:
            await handoffs_service.ingest_events(
                session, SYSTEM, batches([item("a", quality=0), item("b")], [item("c")])
            )
        assert rejected.value.extra["rejected"] == 1
        assert await events(session) == 0

    async def test_atomic_undoes_the_batches_written_before_a_bad_item(self, session, kyc):
        """All or nothing is the service's rule, not each door's: a caller that goes on and
        commits after the rejection still commits nothing of the request."""
        with pytest.raises(BulkRejected) as rejected:
            await handoffs_service.ingest_events(
                session, SYSTEM, batches([item("a"), item("b")], [item("c"), item("d", quality=9)])
            )
        assert [e["index"] for e in rejected.value.extra["errors"]] == [3]
        await session.flush()
        assert await events(session) == 0

    async def test_a_partner_may_ingest_only_on_its_own_handoffs(self, session, courier):
        result = await handoffs_service.ingest_events(
            session,
            await principal(session, Role.partner, courier),
            batches([item("p", handoff="parcel"), item("r", handoff="returns"), item("k")]),
            atomic=False,
        )
        assert (result.created, result.rejected) == (2, 1)
        assert [(e.index, e.msg) for e in result.errors] == [(2, "handoff 'kyc' does not exist")]

    async def test_the_item_limit_comes_from_the_given_settings(self, session, kyc, settings):
        small = settings.model_copy(update={"bulk_max_items": 2})
        with pytest.raises(PayloadTooLarge):
            await handoffs_service.ingest_events(
                session, SYSTEM, batches([item("a"), item("b"), item("c")]), settings=small
            )

    async def test_a_reader_is_forbidden(self, session, kyc):
        with pytest.raises(Forbidden):
            await handoffs_service.ingest_events(
                session, await principal(session, Role.reader), batches([item("a")])
            )


class TestAddReview:
    async def test_records_the_review_and_its_author(self, session, kyc):
        author = await principal(session, Role.writer)
        review = await handoffs_service.add_review(
            session, author, "kyc", ReviewCreate(timeliness=2, quality=5, period="2026-06")
        )
        assert (review.timeliness, review.quality, review.period) == (2, 5, "2026-06")
        assert review.submitted_by_key_id == author.key_id

    async def test_a_system_review_has_no_author_key(self, session, kyc):
        review = await make_review(session, "kyc")
        assert review.submitted_by_key_id is None

    async def test_at_defaults_to_now(self, session, kyc):
        before = datetime.now(UTC)
        review = await make_review(session, "kyc")
        assert before <= review.at <= datetime.now(UTC)

    async def test_the_receiving_partner_may_review(self, session, courier):
        review = await handoffs_service.add_review(
            session,
            await principal(session, Role.partner, courier),
            "returns",
            ReviewCreate(timeliness=4, quality=4),
        )
        assert review.id is not None

    async def test_the_providing_partner_is_forbidden(self, session, courier):
        with pytest.raises(Forbidden):
            await handoffs_service.add_review(
                session,
                await principal(session, Role.partner, courier),
                "parcel",
                ReviewCreate(timeliness=4, quality=4),
            )
        assert await session.scalar(select(func.count()).select_from(HandoffReview)) == 0

    async def test_an_unrelated_partner_is_not_found(self, session, courier):
        with pytest.raises(NotFound):
            await handoffs_service.add_review(
                session,
                await principal(session, Role.partner, courier),
                "kyc",
                ReviewCreate(timeliness=4, quality=4),
            )


class TestDefaultDue:
    def test_adds_the_expected_time(self):
        assert default_due(START, timedelta(hours=4)) == START + timedelta(hours=4)

    def test_is_none_without_an_expected_time(self):
        assert default_due(START, None) is None


class TestEventStatus:
    @pytest.mark.parametrize(
        ("due", "delivered", "expected"),
        [
            (START + timedelta(hours=1), None, EventStatus.pending),
            (START, None, EventStatus.overdue),  # due exactly now counts as overdue
            (START - timedelta(hours=1), None, EventStatus.overdue),
            (START - timedelta(hours=1), START, EventStatus.delivered),  # late, but delivered
            (None, None, EventStatus.pending),  # no due time: never overdue
            (None, START, EventStatus.delivered),
        ],
    )
    def test_derives_from_the_timestamps(self, due, delivered, expected):
        assert event_status(due, delivered, START) is expected


class TestUpsertRows:
    def row(self, handoff_id, external_id: str) -> dict:
        now = datetime.now(UTC)
        return {
            "id": uuid.uuid4(),
            "handoff_id": handoff_id,
            "external_id": external_id,
            "started_at": START,
            "due_at": START,
            "placed_at": START,
            "delivered_at": None,
            "quality": None,
            "rework": False,
            "customer_impact": False,
            "case_ref": None,
            "note": None,
            "written_by_unit_id": None,
            "case_private": False,
            "created_at": now,
            "updated_at": now,
        }

    async def test_database_errors_surface_as_sqlalchemy_errors(self, session):
        """On PostgreSQL a batch goes through the raw driver (COPY); its errors must still
        reach callers and the problem handlers as SQLAlchemy errors."""
        rows = [self.row(uuid.uuid4(), "a"), self.row(uuid.uuid4(), "b")]  # no such handoffs
        with pytest.raises(IntegrityError) as raised:
            await upsert_rows(session, handoffs_service.EVENT_UPSERT, rows)
        assert is_foreign_key_violation(raised.value)

    async def test_a_repeated_key_ends_with_its_last_values_whatever_the_key_order(
        self, session, kyc
    ):
        rows = [
            self.row(kyc.id, "b"),
            self.row(kyc.id, "a") | {"quality": 1},
            self.row(kyc.id, "a"),
        ]
        rows[2]["quality"] = 5
        assert await upsert_rows(session, handoffs_service.EVENT_UPSERT, rows) == (2, 1, 0)
        stored = await session.scalar(
            select(HandoffEvent.quality).where(HandoffEvent.external_id == "a")
        )
        assert stored == 5
