"""Events about handoffs, delivered to a real receiver and verified with ``standardwebhooks``:
``handoff_event.delivered_late`` from single and bulk writes, once per occurrence."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime, timedelta

from sqlalchemy import event, func, select, text

from service.core.db import transaction
from service.core.permissions import Role
from service.webhooks import dispatcher
from service.webhooks.models import WebhookMessage
from tests.factories import make_agreement, make_unit
from tests.webhooks.support import dispatch, drain, subscribe

LATE_TYPE = "handoff_event.delivered_late"
OVERDUE_TYPE = "handoff_event.overdue"
DROPPED_TYPE = "handoff.health_dropped"


async def timed_handoff(live, key: str = "kyc", **fields) -> None:
    """ops → branch, to be delivered within four hours."""
    for unit in ("ops", "branch"):
        response = await live.http.post(
            "/v1/units", json={"key": unit, "name": unit, "kind": "department"}, headers=live.admin
        )
        assert response.status_code in (201, 409), response.text
    body = {
        "key": key,
        "from_unit": "ops",
        "to_unit": "branch",
        "deliverable": "KYC",
        "expected_within": "PT4H",
        **fields,
    }
    response = await live.http.post("/v1/handoffs", json=body, headers=live.admin)
    assert response.status_code == 201, response.text


def occurrence(hours_to_deliver: float | None, **extra) -> dict:
    """Started 2026-03-02 09:00Z, due four hours later."""
    body = {"started_at": "2026-03-02T09:00:00Z", **extra}
    if hours_to_deliver is not None:
        minutes = int(hours_to_deliver * 60)
        body["delivered_at"] = f"2026-03-02T{9 + minutes // 60:02d}:{minutes % 60:02d}:00Z"
    return body


async def put_event(live, external_id: str, body: dict, key: str = "kyc", headers=None) -> int:
    response = await live.http.put(
        f"/v1/handoffs/{key}/events/{external_id}", json=body, headers=headers or live.admin
    )
    assert response.status_code in (200, 201), response.text
    return response.status_code


async def messages_of(live, event_type: str) -> int:
    async with live.database.read_sessions() as session:
        statement = select(func.count()).where(WebhookMessage.type == event_type)
        return await session.scalar(statement)


async def partner_handoffs(live) -> None:
    """ops → courier (to-courier) and ops → printer (to-printer), both under agreements."""
    async with transaction(live.database.write_sessions) as session:
        await make_unit(session, key="ops")
        for partner in ("courier", "printer"):
            await make_unit(session, key=partner, kind="partner")
            await make_agreement(
                session,
                key=f"a-{partner}",
                partner=partner,
                internal_owner="ops",
                status="active",
            )
    for partner in ("courier", "printer"):
        body = {
            "key": f"to-{partner}",
            "from_unit": "ops",
            "to_unit": partner,
            "deliverable": "Parcel",
            "expected_within": "PT4H",
        }
        response = await live.http.post("/v1/handoffs", json=body, headers=live.admin)
        assert response.status_code == 201, response.text


class TestDeliveredLate:
    async def test_a_late_event_is_announced_once(self, hooks, receiver):
        hook = await subscribe(hooks, receiver.url, event_types=[LATE_TYPE])
        await timed_handoff(hooks)

        await put_event(hooks, "on-time", occurrence(3))
        assert await put_event(hooks, "late", occurrence(6.5, case_ref="c-1")) == 201
        # Re-sent as is, then changed while still late: announced already.
        assert await put_event(hooks, "late", occurrence(6.5, case_ref="c-1")) == 200
        await put_event(hooks, "late", occurrence(7, case_ref="c-1", note="re-keyed"))
        assert await dispatch(hooks) == 1

        (event,) = receiver.bodies(hook["secret"])
        assert event["type"] == LATE_TYPE
        assert event["data"] == {
            "handoff": "kyc",
            "from_unit": "ops",
            "to_unit": "branch",
            "external_id": "late",
            "started_at": "2026-03-02T09:00:00Z",
            "due_at": "2026-03-02T13:00:00Z",
            "delivered_at": "2026-03-02T15:30:00Z",
            "late_by": "PT2H30M",
            "late_by_seconds": 9000.0,
            "case_ref": "c-1",
            "link": "/v1/handoffs/kyc/events",
        }

    async def test_an_event_delivered_later_than_due_is_announced_when_delivered(
        self, hooks, receiver
    ):
        hook = await subscribe(hooks, receiver.url, event_types=[LATE_TYPE])
        await timed_handoff(hooks)
        await put_event(hooks, "e1", occurrence(None))
        assert await dispatch(hooks) == 0

        await put_event(hooks, "e1", occurrence(5))
        assert await dispatch(hooks) == 1
        (event,) = receiver.bodies(hook["secret"])
        assert (event["data"]["external_id"], event["data"]["late_by"]) == ("e1", "PT1H")

    async def test_bulk_announces_each_late_event_once_in_one_insert(self, hooks, receiver):
        hook = await subscribe(hooks, receiver.url, event_types=[LATE_TYPE])
        await timed_handoff(hooks)
        items = [
            {"handoff": "kyc", "external_id": f"e{i}", **occurrence(5 if i % 3 == 0 else 2)}
            for i in range(300)
        ]
        inserts: list[str] = []

        def record(conn, cursor, statement, *args) -> None:
            if statement.lstrip().upper().startswith("INSERT INTO WEBHOOK_MESSAGES"):
                inserts.append(statement)

        engine = hooks.database.write_engine.sync_engine
        event.listen(engine, "before_cursor_execute", record)
        try:
            response = await hooks.http.post(
                "/v1/handoff-events/bulk", json=items, headers=hooks.admin
            )
        finally:
            event.remove(engine, "before_cursor_execute", record)
        assert response.status_code == 200, response.text
        assert len(inserts) == 1  # one batch of 300 items: one outbox insert
        # The same request again (a client retry): nothing new.
        again = await hooks.http.post("/v1/handoff-events/bulk", json=items, headers=hooks.admin)
        assert again.json()["unchanged"] == 300

        await drain(hooks)
        announced = sorted(e["data"]["external_id"] for e in receiver.bodies(hook["secret"]))
        assert announced == sorted(f"e{i}" for i in range(0, 300, 3))
        assert len({headers["webhook-id"] for headers, _ in receiver.received}) == 100

    async def test_without_subscribers_a_bulk_queues_nothing(self, hooks):
        await subscribe(hooks, "http://127.0.0.1:9/hooks", event_types=["conflict.opened"])
        await timed_handoff(hooks)
        items = [{"handoff": "kyc", "external_id": f"e{i}", **occurrence(9)} for i in range(50)]
        response = await hooks.http.post("/v1/handoff-events/bulk", json=items, headers=hooks.admin)
        assert response.json()["created"] == 50
        assert await messages_of(hooks, LATE_TYPE) == 0

    async def test_a_rejected_atomic_bulk_announces_nothing(self, hooks, receiver):
        await subscribe(hooks, receiver.url, event_types=[LATE_TYPE])
        await timed_handoff(hooks)
        items = [
            {"handoff": "kyc", "external_id": "late", **occurrence(9)},
            {"handoff": "nowhere", "external_id": "x", **occurrence(1)},
        ]
        response = await hooks.http.post("/v1/handoff-events/bulk", json=items, headers=hooks.admin)
        assert response.status_code == 422, response.text
        assert await messages_of(hooks, LATE_TYPE) == 0
        assert await dispatch(hooks) == 0

    async def test_a_partner_hears_only_of_its_own_handoffs(self, hooks, receiver):
        await partner_handoffs(hooks)
        courier = {"Authorization": f"Bearer {await hooks.secret(Role.partner, 'courier')}"}
        hook = await subscribe(hooks, receiver.url, headers=courier, event_types=[LATE_TYPE])

        await put_event(hooks, "p1", occurrence(8), key="to-printer")
        await put_event(hooks, "c1", occurrence(8), key="to-courier")
        await dispatch(hooks)

        (event,) = receiver.bodies(hook["secret"])
        assert (event["data"]["handoff"], event["data"]["external_id"]) == ("to-courier", "c1")


def at(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


class TestOverdue:
    async def test_an_occurrence_past_due_is_announced_once(self, hooks, receiver):
        hook = await subscribe(hooks, receiver.url, event_types=[OVERDUE_TYPE])
        await timed_handoff(hooks)
        now = datetime.now(UTC)
        await put_event(hooks, "overdue", {"started_at": at(now - timedelta(hours=5))})
        await put_event(hooks, "pending", {"started_at": at(now - timedelta(hours=1))})
        delivered = {"delivered_at": at(now - timedelta(hours=2))}
        await put_event(hooks, "done", {"started_at": at(now - timedelta(hours=9)), **delivered})

        assert await dispatcher.announce_overdue(hooks.database) == 1
        assert await dispatcher.announce_overdue(hooks.database) == 0
        # Re-sent unchanged, still overdue: announced already.
        await put_event(hooks, "overdue", {"started_at": at(now - timedelta(hours=5))})
        assert await dispatcher.announce_overdue(hooks.database) == 0
        assert await dispatch(hooks) == 1

        (event,) = receiver.bodies(hook["secret"])
        data = event["data"]
        assert (event["type"], data["handoff"], data["external_id"]) == (
            OVERDUE_TYPE,
            "kyc",
            "overdue",
        )
        assert data["due_at"] == at(now - timedelta(hours=1))
        assert 3600 <= data["overdue_by_seconds"] < 3600 + 60
        assert data["link"] == "/v1/handoffs/kyc/events?status=overdue"

    async def test_the_dispatcher_notices_without_any_request(self, hooks, receiver):
        """Due 1.5 s after it was written: the running dispatcher announces it, and the
        handoff's health (no event due before: none; now one overdue: 0) drops."""
        hook = await subscribe(hooks, receiver.url, event_types=[OVERDUE_TYPE, DROPPED_TYPE])
        await timed_handoff(hooks, expected_within=None)
        now = datetime.now(UTC)
        body = {
            "started_at": at(now - timedelta(hours=1)),
            "due_at": at(now + timedelta(seconds=1.5)),
        }
        await put_event(hooks, "soon", body)

        task = asyncio.create_task(dispatcher.run(hooks.database, hooks.settings, interval=0.1))
        try:
            for _ in range(100):
                if len(receiver.received) >= 2:
                    break
                await asyncio.sleep(0.1)
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

        events = {e["type"]: e["data"] for e in receiver.bodies(hook["secret"])}
        assert events.keys() == {OVERDUE_TYPE, DROPPED_TYPE}
        assert events[OVERDUE_TYPE]["external_id"] == "soon"
        assert (events[DROPPED_TYPE]["health"], events[DROPPED_TYPE]["previous"]) == (0, None)

    async def test_a_partner_hears_only_of_its_own_overdue_and_health(self, hooks, receiver):
        await partner_handoffs(hooks)
        courier = {"Authorization": f"Bearer {await hooks.secret(Role.partner, 'courier')}"}
        hook = await subscribe(hooks, receiver.url, headers=courier)  # every event type
        now = datetime.now(UTC)
        for key in ("to-printer", "to-courier"):
            await put_event(hooks, "x", {"started_at": at(now - timedelta(hours=5))}, key=key)

        assert await dispatcher.announce_overdue(hooks.database) == 2
        await drain(hooks)

        heard = sorted((e["type"], e["data"]["handoff"]) for e in receiver.bodies(hook["secret"]))
        # An overdue occurrence makes timeliness (and so health) 0 as soon as it is written.
        assert heard == [(DROPPED_TYPE, "to-courier"), (OVERDUE_TYPE, "to-courier")]

    async def test_the_scan_reads_the_partial_index(self, hooks):
        statement = (
            "SELECT id FROM handoff_events WHERE delivered_at IS NULL "
            "AND overdue_notified_at IS NULL AND due_at < :now ORDER BY due_at LIMIT 500"
        )
        async with hooks.database.write_engine.connect() as conn:
            if conn.dialect.name == "postgresql":
                await conn.execute(text("SET LOCAL enable_seqscan = off"))
                plan = await conn.execute(text("EXPLAIN " + statement), {"now": datetime.now(UTC)})
            else:
                plan = await conn.execute(
                    text("EXPLAIN QUERY PLAN " + statement), {"now": datetime.now(UTC)}
                )
            shown = " ".join(str(row[-1]) for row in plan.all())
        assert "ix_handoff_events_overdue" in shown, shown


def scored(index: int, good: bool, base: datetime) -> dict:
    """An occurrence of the last two days: on time with quality 5, or late, poor, reworked
    (so each counts fully for or against every component of the health)."""
    started = base + timedelta(minutes=index)
    return {
        "started_at": at(started),
        "delivered_at": at(started + timedelta(hours=1 if good else 6)),
        "quality": 5 if good else 1,
        "rework": not good,
    }


class TestHealthDropped:
    async def test_announced_once_per_crossing_of_each_threshold(self, hooks, receiver):
        default = await subscribe(hooks, receiver.url, event_types=[DROPPED_TYPE])
        assert default["health_below"] == 60
        low = await subscribe(hooks, receiver.url, event_types=[DROPPED_TYPE], health_below=45)
        await timed_handoff(hooks)
        base = datetime.now(UTC) - timedelta(days=2)
        n = 0

        async def write(*goods: bool) -> None:
            nonlocal n
            for good in goods:
                await put_event(hooks, f"e{n}", scored(n, good, base))
                n += 1

        await write(True, True)  # 100
        await write(False, False)  # 50: below 60
        await write(False)  # 40: below 45, still below 60
        await write(*[True] * 5)  # 70: recovered above both
        items = [
            {"handoff": "kyc", "external_id": f"e{n + i}", **scored(n + i, False, base)}
            for i in range(3)
        ]
        response = await hooks.http.post("/v1/handoff-events/bulk", json=items, headers=hooks.admin)
        assert response.status_code == 200, response.text  # 7 / 13: below 60 again
        await drain(hooks)

        by_secret = {
            name: sorted(
                (e["data"]["health"], e["data"]["previous"], e["data"]["threshold"])
                for e in receiver.signed_with(hook["secret"])
            )
            for name, hook in (("default", default), ("low", low))
        }
        # One event at a time: 100, 66.67, 50 (crossed), 40 (crossed 45); in one bulk: 70 to 53.85.
        assert by_secret == {"default": [(50, 66.67, 60), (53.85, 70, 60)], "low": [(40, 50, 45)]}

    async def test_a_threshold_is_changed_with_patch(self, hooks, receiver):
        hook = await subscribe(hooks, receiver.url, event_types=[DROPPED_TYPE])
        response = await hooks.http.patch(
            f"/v1/webhooks/{hook['id']}", json={"health_below": 80}, headers=hooks.admin
        )
        assert response.json()["health_below"] == 80
        bad = await hooks.http.patch(
            f"/v1/webhooks/{hook['id']}", json={"health_below": 101}, headers=hooks.admin
        )
        assert bad.status_code == 422
        await timed_handoff(hooks)
        base = datetime.now(UTC) - timedelta(days=2)
        for i, good in enumerate([True, True, True, False]):  # 75: below 80
            await put_event(hooks, f"e{i}", scored(i, good, base))
        await dispatch(hooks)
        (event,) = receiver.bodies(hook["secret"])
        assert (event["data"]["health"], event["data"]["threshold"]) == (75, 80)
        assert event["data"]["link"] == "/v1/scores/handoffs/kyc"


class TestEventLogReady:
    async def test_an_imported_log_is_announced_when_ready(self, hooks, receiver):
        hook = await subscribe(hooks, receiver.url, event_types=["event_log.ready"])
        log = b"case,unit,time\nc1,Front,2026-11-01T09:00:00Z\nc1,Back,2026-11-01T10:00:00Z\n"
        response = await hooks.http.post(
            "/v1/event-logs?key=tickets",
            content=log,
            headers={**hooks.admin, "Content-Type": "text/csv"},
        )
        assert response.status_code == 201, response.text
        assert await dispatch(hooks) == 1
        (event,) = receiver.bodies(hook["secret"])
        assert event["type"] == "event_log.ready"
        assert event["data"] == {
            "key": "tickets",
            "name": "tickets",
            "events": 2,
            "cases": 1,
            "units": 2,
            "rejected": 0,
            "link": "/v1/event-logs/tickets",
        }
