"""Migration 0010: logs made ready before it get their transfers and their units' keys (the
key adopt chose for a name, else the derived one), so their arcs become finding subjects."""

from __future__ import annotations

import asyncio

import pytest
from alembic import command
from sqlalchemy import select

from service.core.migrations import alembic_config
from service.core.permissions import Role
from service.event_logs.keys import derive_key
from service.event_logs.models import EventLog, EventLogArc, EventLogUnit
from tests.event_logs.logs import FD, LOG, V5

pytestmark = pytest.mark.concurrency


async def mapped_units(live) -> dict[str, str]:
    async with live.database.read_sessions() as session:
        rows = await session.execute(select(EventLogUnit.name, EventLogUnit.unit_key))
        return dict(rows.all())


async def import_support_log(http, writer: dict[str, str]) -> None:
    response = await http.post(
        "/v1/event-logs?key=support",
        content=LOG.encode(),
        headers={"Content-Type": "text/csv", **writer},
    )
    assert response.status_code == 201, response.text


async def test_the_upgrade_maps_the_units_of_logs_already_ready(live_app):
    async with live_app.client() as http:
        writer = {"Authorization": f"Bearer {await live_app.secret(Role.writer)}"}
        admin = {"Authorization": f"Bearer {await live_app.secret(Role.admin)}"}
        await import_support_log(http, writer)
        adopted = {"from": "Billing", "to": FD, "key": "billing-desk", "from_unit": "billing-team"}
        response = await http.post(
            "/v1/event-logs/support/handoffs/adopt", json=adopted, headers=writer
        )
        assert response.status_code == 200, response.text
        expected = {"Billing": "billing-team", FD: derive_key(FD), V5: derive_key(V5)}
        assert await mapped_units(live_app) == expected

        await live_app.database.dispose()  # no pooled connection across the schema change
        config = alembic_config(live_app.url)
        await asyncio.to_thread(command.downgrade, config, "0009")
        await asyncio.to_thread(command.upgrade, config, "head")

        assert await mapped_units(live_app) == expected
        async with live_app.database.read_sessions() as session:
            assert (await session.scalars(select(EventLog.transfers))).all() == [6]
        response = await http.post("/v1/findings/refresh", headers=admin)
        assert response.status_code in (200, 202, 204), response.text
        response = await http.get(
            "/v1/findings", params={"rule": "unregistered-handoff"}, headers=writer
        )
        keys = {f["subject"]["key"] for f in response.json()["items"]}
        # Adopted Billing -> Front Desk is registered; the other three arcs are not.
        assert keys == {
            f"support/{FD} -> {V5}",
            f"support/{V5} -> {FD}",
            f"support/{FD} -> Billing",
        }


async def listing(http, headers, limit: int) -> list[dict]:
    seen, cursor = [], None
    while True:
        params = {"limit": limit, **({"cursor": cursor} if cursor else {})}
        page = await http.get("/v1/event-logs/support/handoffs", params=params, headers=headers)
        assert page.status_code == 200, page.text
        seen.extend(page.json()["items"])
        cursor = page.json()["next_cursor"]
        if cursor is None:
            return seen


async def test_the_upgrade_ranks_the_arcs_of_logs_already_ready(live_app):
    """Migration 0012 gives arcs stored before it their place in the listing."""
    async with live_app.client() as http:
        writer = {"Authorization": f"Bearer {await live_app.secret(Role.writer)}"}
        await import_support_log(http, writer)
        before = await listing(http, writer, 100)
        assert len(before) == 4

        await live_app.database.dispose()
        config = alembic_config(live_app.url)
        await asyncio.to_thread(command.downgrade, config, "0011")
        await asyncio.to_thread(command.upgrade, config, "head")

        async with live_app.database.read_sessions() as session:
            ranks = await session.scalars(select(EventLogArc.listing_rank))
            assert sorted(ranks.all()) == [1, 2, 3, 4]
        assert await listing(http, writer, 1) == before
