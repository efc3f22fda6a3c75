"""Events about handoffs, delivered to a real receiver and verified with ``standardwebhooks``:
``handoff_event.delivered_late`` from single and bulk writes, once per occurrence."""

from __future__ import annotations

from sqlalchemy import event, func, select

from service.core.db import transaction
from service.core.permissions import Role
from service.webhooks.models import WebhookMessage
from tests.factories import make_agreement, make_unit
from tests.webhooks.support import dispatch, drain, subscribe

LATE_TYPE = "handoff_event.delivered_late"


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
        async with transaction(hooks.database.write_sessions) as session:
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
            response = await hooks.http.post("/v1/handoffs", json=body, headers=hooks.admin)
            assert response.status_code == 201, response.text
        courier = {"Authorization": f"Bearer {await hooks.secret(Role.partner, 'courier')}"}
        hook = await subscribe(hooks, receiver.url, headers=courier, event_types=[LATE_TYPE])

        await put_event(hooks, "p1", occurrence(8), key="to-printer")
        await put_event(hooks, "c1", occurrence(8), key="to-courier")
        await dispatch(hooks)

        (event,) = receiver.bodies(hook["secret"])
        assert (event["data"]["handoff"], event["data"]["external_id"]) == ("to-courier", "c1")
