"""The events about handoffs and their occurrences.

``handoff_event.delivered_late``: a write (one event, or a bulk batch) that stores an
occurrence delivered after its due time announces it in the writer's transaction, once per
occurrence: its message id derives from (handoff, external id), so re-sending the event, or
changing it again while it stays late, queues nothing new. A batch costs one look at the
subscriptions (cached for the transaction) and, only when some row is late and someone
listens, one query for the handoffs and one multi-row insert of the outbox.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from service.core.fields import format_duration
from service.core.sql import in_ids
from service.handoffs.models import Handoff
from service.org_units.models import Unit
from service.webhooks import service as webhooks
from service.webhooks.constants import EventType


@dataclass(frozen=True)
class _HandoffFacts:
    key: str
    from_unit_id: UUID
    to_unit_id: UUID
    from_unit: str
    to_unit: str

    @property
    def concerns(self) -> frozenset[UUID]:
        """A partner's subscription hears of a handoff it provides or receives."""
        return frozenset((self.from_unit_id, self.to_unit_id))

    def subject(self) -> dict[str, str]:
        return {"handoff": self.key, "from_unit": self.from_unit, "to_unit": self.to_unit}


async def _handoffs(session: AsyncSession, ids: Iterable[UUID]) -> dict[UUID, _HandoffFacts]:
    ids = list(set(ids))
    if not ids:
        return {}
    provider, recipient = aliased(Unit), aliased(Unit)
    statement = (
        select(
            Handoff.id,
            Handoff.key,
            Handoff.from_unit_id,
            Handoff.to_unit_id,
            provider.key,
            recipient.key,
        )
        .join(provider, provider.id == Handoff.from_unit_id)
        .join(recipient, recipient.id == Handoff.to_unit_id)
        .where(in_ids(session, Handoff.id, ids))
    )
    return {row[0]: _HandoffFacts(*row[1:]) for row in (await session.execute(statement)).all()}


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat().replace("+00:00", "Z")


def _events_link(handoff_key: str) -> str:
    return f"/v1/handoffs/{handoff_key}/events"


# Delivered late ---------------------------------------------------------------------------------


def _late(row: Mapping[str, Any]) -> bool:
    return row["delivered_at"] is not None and row["delivered_at"] > row["due_at"]


async def events_written(session: AsyncSession, rows: Sequence[Mapping[str, Any]]) -> int:
    """Announce the rows (as written: ``handoff_id``, ``external_id``, ``started_at``,
    ``due_at``, ``delivered_at``, ``case_ref``) that were delivered after their due time;
    returns how many announcements were queued."""
    late = [row for row in rows if _late(row)]
    if not late:
        return 0
    if not await webhooks.subscribers(session, EventType.handoff_event_delivered_late):
        return 0
    handoffs = await _handoffs(session, (row["handoff_id"] for row in late))
    events = []
    for row in late:
        handoff = handoffs.get(row["handoff_id"])
        if handoff is None:
            continue
        lateness = row["delivered_at"] - row["due_at"]
        events.append(
            webhooks.Event(
                data={
                    **handoff.subject(),
                    "external_id": row["external_id"],
                    "started_at": _iso(row["started_at"]),
                    "due_at": _iso(row["due_at"]),
                    "delivered_at": _iso(row["delivered_at"]),
                    "late_by": format_duration(lateness),
                    "late_by_seconds": round(lateness.total_seconds(), 3),
                    "case_ref": row.get("case_ref"),
                },
                link=_events_link(handoff.key),
                concerns=handoff.concerns,
                once=f"{row['handoff_id']}:{row['external_id']}",
            )
        )
    return await webhooks.emit_many(session, EventType.handoff_event_delivered_late, events)
