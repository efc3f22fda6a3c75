"""The events about handoffs and their occurrences.

``handoff_event.delivered_late``: a write (one event, or a bulk batch) that stores an
occurrence delivered after its due time announces it in the writer's transaction, once per
occurrence: its message id derives from (handoff, external id), so re-sending the event, or
changing it again while it stays late, queues nothing new. A batch costs one look at the
subscriptions (cached for the transaction) and, only when some row is late and someone
listens, one query for the handoffs and one multi-row insert of the outbox.

``handoff_event.overdue``: no request marks the moment an occurrence passes its due time, so
the dispatcher scans for it (``announce_overdue``, every round of ``silospan serve``'s
dispatcher and of ``silospan worker``). It reads a bounded batch through a partial index
that holds only pending, unannounced occurrences (``ix_handoff_events_overdue``), marks
them announced (``overdue_notified_at``) and queues their events in the same transaction;
on PostgreSQL the rows are taken ``FOR UPDATE SKIP LOCKED`` so several dispatchers share
the work. An occurrence is announced once, whether or not anyone listens.

``handoff.health_dropped``: after writes that change a handoff's health (events, reviews,
an occurrence turning overdue), its health over the default window is judged again against
the last value judged (``webhook_handoff_health``, locked while judging so concurrent
writers take turns); a subscription hears of it when the health crosses below its
``health_below`` from at or above it (or from unknown), so once per crossing and again only
after a recovery. Nothing is read or written while nobody subscribes to it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from service.alignment import repository as scores_repository
from service.alignment.constants import DEFAULT_WINDOW
from service.alignment.repository import Window
from service.alignment.scoring import EventStats, ReviewStats, handoff_health
from service.core.fields import format_duration
from service.core.sql import in_ids
from service.core.types import utcnow
from service.handoffs.models import Handoff, HandoffEvent
from service.org_units.models import Unit
from service.webhooks import service as webhooks
from service.webhooks.constants import EventType
from service.webhooks.models import WebhookHandoffHealth


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
    # An event with no due time is never late.
    due, delivered = row["due_at"], row["delivered_at"]
    return due is not None and delivered is not None and delivered > due


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


# Overdue ----------------------------------------------------------------------------------------


def _overdue_unannounced(now: datetime) -> Any:
    e = HandoffEvent
    return (e.delivered_at.is_(None), e.overdue_notified_at.is_(None), e.due_at < now)


async def overdue_waiting(session: AsyncSession) -> bool:
    """Whether any occurrence waits to be announced overdue (one probe of the index)."""
    statement = select(HandoffEvent.id).where(*_overdue_unannounced(utcnow())).limit(1)
    return (await session.execute(statement)).first() is not None


async def announce_overdue(
    session: AsyncSession, *, batch: int, now: datetime | None = None
) -> int:
    """Announce up to ``batch`` occurrences that passed their due time undelivered and were
    not announced yet, earliest due first; returns how many it took (announced or not
    listened to). Their handoffs' health is judged again (``handoffs_changed``)."""
    now = now or utcnow()
    e = HandoffEvent
    statement = (
        select(e.id, e.handoff_id, e.external_id, e.started_at, e.due_at, e.case_ref)
        .where(*_overdue_unannounced(now))
        .order_by(e.due_at)
        .limit(batch)
        .with_for_update(skip_locked=True)
    )
    rows = (await session.execute(statement)).all()
    if not rows:
        return 0
    await session.execute(
        update(e)
        .where(in_ids(session, e.id, [row.id for row in rows]))
        .values(overdue_notified_at=now)
        .execution_options(synchronize_session=False)
    )
    if await webhooks.subscribers(session, EventType.handoff_event_overdue):
        handoffs = await _handoffs(session, (row.handoff_id for row in rows))
        events = []
        for row in rows:
            handoff = handoffs.get(row.handoff_id)
            if handoff is None:
                continue
            overdue = now - row.due_at
            events.append(
                webhooks.Event(
                    data={
                        **handoff.subject(),
                        "external_id": row.external_id,
                        "started_at": _iso(row.started_at),
                        "due_at": _iso(row.due_at),
                        "overdue_by": format_duration(overdue),
                        "overdue_by_seconds": round(overdue.total_seconds(), 3),
                        "case_ref": row.case_ref,
                    },
                    link=_events_link(handoff.key) + "?status=overdue",
                    concerns=handoff.concerns,
                    once=f"{row.handoff_id}:{row.external_id}",
                )
            )
        await webhooks.emit_many(session, EventType.handoff_event_overdue, events)
    await handoffs_changed(session, {row.handoff_id for row in rows})
    return len(rows)


# Health dropped ---------------------------------------------------------------------------------


async def handoffs_changed(session: AsyncSession, handoff_ids: Iterable[UUID]) -> int:
    """Judge the health of these handoffs again; announce each crossing below a
    subscription's threshold. Returns how many announcements were queued."""
    ids = sorted(set(handoff_ids))
    if not ids:
        return 0
    wanted = await webhooks.subscribers(session, EventType.handoff_health_dropped)
    if not wanted:
        return 0
    now = utcnow()
    h = WebhookHandoffHealth
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    # Every handoff gets its row, then the rows are locked in id order: two writers of one
    # handoff judge its crossing one after the other, each from the other's result.
    await session.execute(
        dialect.insert(h)
        .values([{"handoff_id": i, "value": None, "updated_at": now} for i in ids])
        .on_conflict_do_nothing(index_elements=["handoff_id"])
    )
    locked = (
        select(h.handoff_id, h.value)
        .where(in_ids(session, h.handoff_id, ids))
        .order_by(h.handoff_id)
        .with_for_update()
    )
    previous = {handoff_id: value for handoff_id, value in (await session.execute(locked)).all()}
    window = Window(start=now - DEFAULT_WINDOW, end=now, as_of=now)
    events = await scores_repository.event_stats(session, window, ids)
    reviews = await scores_repository.review_stats(session, window, ids)
    scores = {
        i: handoff_health(events.get((i, 0), EventStats()), reviews.get((i, 0), ReviewStats()))
        for i in ids
    }
    changed = [
        {"handoff_id": i, "value": score.value, "updated_at": now}
        for i, score in scores.items()
        if score.value != previous.get(i)
    ]
    if changed:
        await session.execute(update(h), changed)
    # A crossing, per threshold: from at or above it (or unknown) to below it.
    drops: dict[float, list[UUID]] = {}
    for threshold in sorted({s.health_below for s in wanted}):
        for i, score in scores.items():
            before = previous.get(i)
            if (
                score.value is not None
                and score.value < threshold
                and (before is None or before >= threshold)
            ):
                drops.setdefault(threshold, []).append(i)
    if not drops:
        return 0
    handoffs = await _handoffs(session, {i for crossed in drops.values() for i in crossed})
    announcements = []
    for threshold, crossed in drops.items():
        listeners = frozenset(s.id for s in wanted if s.health_below == threshold)
        for i in crossed:
            handoff = handoffs.get(i)
            if handoff is None:
                continue
            score = scores[i]
            announcements.append(
                webhooks.Event(
                    data={
                        **handoff.subject(),
                        "health": round(score.value, 2),  # type: ignore[arg-type]
                        "previous": None if previous.get(i) is None else round(previous[i], 2),
                        "threshold": threshold,
                        "window": {"start": _iso(window.start), "end": _iso(window.end)},
                        "components": {
                            name: None if c.value is None else round(c.value, 4)
                            for name, c in score.components.items()
                        },
                        "counts": score.details["counts"],
                    },
                    link=f"/v1/scores/handoffs/{handoff.key}",
                    concerns=handoff.concerns,
                    only=listeners,
                )
            )
    return await webhooks.emit_many(session, EventType.handoff_health_dropped, announcements)
