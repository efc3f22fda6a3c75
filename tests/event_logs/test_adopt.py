"""POST /v1/event-logs/{key}/handoffs/adopt: a discovered arc becomes a registered handoff."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from service.event_logs.adoption import case_ref_for, readable
from service.event_logs.keys import derive_key
from service.handoffs.models import Handoff, HandoffEvent
from tests.event_logs.logs import FD, LOG
from tests.factories import make_unit
from tests.problems import assert_problem

CSV = {"Content-Type": "text/csv"}
ADOPT = "/v1/event-logs/support/handoffs/adopt"


@pytest.fixture
async def support(client, keys) -> None:
    response = await client.post(
        "/v1/event-logs?key=support", content=LOG.encode(), headers={**CSV, **await keys.writer()}
    )
    assert response.status_code == 201, response.text


class TestHelpers:
    def test_waits_round_up_to_a_readable_duration(self):
        assert readable(timedelta(0)) == timedelta(minutes=1)
        assert readable(timedelta(minutes=31)) == timedelta(hours=1)
        assert readable(timedelta(hours=2)) == timedelta(hours=2)
        assert readable(timedelta(hours=25)) == timedelta(days=2)

    def test_case_refs_stay_distinct(self):
        assert case_ref_for("c1") == "c1"
        assert case_ref_for("case 1") != case_ref_for("case-1")
        assert case_ref_for("case 1").startswith("case-1~")


class TestAdopt:
    async def test_registers_units_handoff_and_one_event_per_transfer(
        self, client, keys, session, support
    ):
        await make_unit(session, key="billing")
        await session.commit()
        body = {"from": "Billing", "to": FD, "key": "billing-desk", "from_unit": "billing"}
        response = await client.post(ADOPT, json=body, headers=await keys.writer())
        assert response.status_code == 200, response.text
        desk = derive_key(FD)
        # Waits 0s (c4) and 2h (c2): p80 is rank ceil(1.6) = 2, 2h, already readable.
        assert response.json() == {
            "handoff": "billing-desk",
            "from_unit": "billing",
            "to_unit": desk,
            "created_units": [desk],
            "expected_within": "PT2H",
            "transfers": 2,
            "events_created": 2,
            "events_unchanged": 0,
        }
        handoff = (
            await session.scalars(select(Handoff).where(Handoff.key == "billing-desk"))
        ).one()
        events = (
            await session.scalars(
                select(HandoffEvent)
                .where(HandoffEvent.handoff_id == handoff.id)
                .order_by(HandoffEvent.external_id)
            )
        ).all()
        at = lambda h, m: datetime(2026, 11, 2, h, m, tzinfo=UTC)
        assert [(e.external_id, e.case_ref, e.started_at, e.delivered_at) for e in events] == [
            ("support:12", "c4", at(8, 0), at(8, 0)),  # the row at Billing is line 12
            ("support:8", "c2", at(9, 30), at(11, 30)),
        ]
        unit = (await client.get(f"/v1/units/{desk}", headers=await keys.reader())).json()
        assert unit["external_ref"] == "support"

        again = await client.post(ADOPT, json=body, headers=await keys.writer())
        assert again.status_code == 200, again.text
        assert (again.json()["events_created"], again.json()["events_unchanged"]) == (0, 2)
        assert again.json()["created_units"] == []

        conformance = await client.get(
            "/v1/event-logs/support/conformance", headers=await keys.reader()
        )
        assert conformance.json()["unregistered_total"] == 3

    async def test_an_arc_not_in_the_log_is_404(self, client, keys, support):
        body = {"from": FD, "to": "Nobody", "key": "x"}
        response = await client.post(ADOPT, json=body, headers=await keys.writer())
        assert_problem(response, 404, "not_found")

    async def test_a_key_taken_by_other_units_is_a_conflict(self, client, keys, session, support):
        first = {"from": "Billing", "to": FD, "key": "taken"}
        assert (
            await client.post(ADOPT, json=first, headers=await keys.writer())
        ).status_code == 200
        other = {"from": FD, "to": "Billing", "key": "taken"}
        response = await client.post(ADOPT, json=other, headers=await keys.writer())
        assert_problem(response, 409, "conflict")

    async def test_partners_and_readers_may_not(self, client, keys, session, support):
        await make_unit(session, key="courier", kind="partner")
        await session.commit()
        body = {"from": "Billing", "to": FD, "key": "p"}
        partner = await client.post(ADOPT, json=body, headers=await keys.partner("courier"))
        assert_problem(partner, 404, "not_found")
        reader = await client.post(ADOPT, json=body, headers=await keys.reader())
        assert_problem(reader, 403, "forbidden")
