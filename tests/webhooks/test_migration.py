"""Migration 0009: occurrences already overdue when it runs count as announced, so an upgrade
does not send subscribers the backlog of the past; those due later are announced as usual."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from alembic import command
from sqlalchemy import select

from service.core.migrations import alembic_config
from service.handoffs.models import HandoffEvent
from service.webhooks import dispatcher
from tests.webhooks.support import dispatch, subscribe
from tests.webhooks.test_handoff_alerts import OVERDUE_TYPE, at, put_event, timed_handoff

pytestmark = pytest.mark.concurrency


async def test_the_upgrade_counts_the_overdue_backlog_as_announced(hooks, receiver):
    await timed_handoff(hooks)
    now = datetime.now(UTC)
    await put_event(hooks, "backlog", {"started_at": at(now - timedelta(hours=30))})
    soon = now + timedelta(seconds=5)  # due after the migrations (about a second)
    await put_event(hooks, "soon", {"started_at": at(soon - timedelta(hours=4))})
    await put_event(hooks, "later", {"started_at": at(now)})
    await hooks.database.dispose()  # no pooled connection across the schema change
    config = alembic_config(hooks.url)
    await asyncio.to_thread(command.downgrade, config, "0008")
    await asyncio.to_thread(command.upgrade, config, "head")

    async with hooks.database.read_sessions() as session:
        rows = await session.execute(
            select(HandoffEvent.external_id, HandoffEvent.overdue_notified_at)
        )
        announced = {external_id: at is not None for external_id, at in rows.all()}
    assert announced == {"backlog": True, "soon": False, "later": False}

    hook = await subscribe(hooks, receiver.url, event_types=[OVERDUE_TYPE])
    assert datetime.now(UTC) < soon, "the migrations took longer than the margin"
    await asyncio.sleep((soon - datetime.now(UTC)).total_seconds() + 0.2)
    assert await dispatcher.announce_overdue(hooks.database) == 1
    await dispatch(hooks)
    assert [e["data"]["external_id"] for e in receiver.bodies(hook["secret"])] == ["soon"]
