"""Handoffs (internal service-level agreements), their occurrences and the recipients' reviews."""

from __future__ import annotations

from collections.abc import AsyncIterable, Sequence
from typing import Any
from uuid import UUID, uuid4

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from service.alignment import finding_service
from service.core import repository as core_repository
from service.core.bulk import (
    BulkResult,
    ItemError,
    Prepared,
    UpsertSpec,
    record_outcomes,
    run_ingest,
    upsert_rows,
)
from service.core.config import Settings, get_settings
from service.core.db import is_unique_violation
from service.core.errors import Forbidden, Invalid, KeyExists, NotFoundFor, StillReferenced
from service.core.pagination import PageRequest
from service.core.patching import check_version, merge
from service.core.permissions import Action, Principal
from service.core.telemetry import EVENTS_INGESTED
from service.core.types import utcnow
from service.handoffs import repository
from service.handoffs.constants import EventStatus, HandoffStatus
from service.handoffs.models import Handoff, HandoffEvent, HandoffReview, placement
from service.handoffs.schemas import (
    FAST_BULK_EVENT,
    HIDDEN_SOURCE,
    INTERNAL_SOURCE,
    BulkEventItem,
    EventRead,
    EventUpsert,
    HandoffCreate,
    HandoffRead,
    HandoffUpdate,
    ReviewCreate,
    ReviewRead,
    default_due,
    event_status,
)
from service.journeys import service as journeys_service
from service.org_units import service as org_units_service
from service.partner_agreements import service as agreements_service
from service.webhooks import handoff_alerts as webhook_alerts

RESOURCE = "handoff"

EVENT_UPSERT = UpsertSpec(
    table=HandoffEvent.__table__,  # type: ignore[arg-type]
    key_columns=("handoff_id", "external_id"),
    compare_columns=(
        "started_at",
        "due_at",
        "placed_at",  # follows started_at and due_at (handoffs.models.placement)
        "delivered_at",
        "quality",
        "rework",
        "customer_impact",
        "case_ref",
        "note",
        "case_private",
    ),
    server_owned=("overdue_notified_at",),  # the webhooks' overdue scan sets it
)


# Handoffs ----------------------------------------------------------------------------------


async def get(session: AsyncSession, principal: Principal, key: str) -> Handoff:
    principal.require(Action.handoffs_read)
    return await _visible(session, principal, key)


async def get_many(
    session: AsyncSession, principal: Principal, ids: list[UUID]
) -> list[Handoff | None]:
    principal.require(Action.handoffs_read)
    return await repository.get_many(session, principal, ids)


async def list_by_unit_ids(
    session: AsyncSession, principal: Principal, unit_ids: list[UUID], *, side: str
) -> list[Handoff]:
    """Visible handoffs that the units provide (``side="from"``) or receive (``"to"``)."""
    principal.require(Action.handoffs_read)
    column = Handoff.from_unit_id if side == "from" else Handoff.to_unit_id
    return await repository.list_by(session, principal, column, unit_ids)


async def list_by_touchpoint_ids(
    session: AsyncSession, principal: Principal, touchpoint_ids: list[UUID]
) -> list[Handoff]:
    principal.require(Action.handoffs_read)
    return await repository.list_by(session, principal, Handoff.touchpoint_id, touchpoint_ids)


async def first_events(
    session: AsyncSession,
    principal: Principal,
    handoff_ids: list[UUID],
    *,
    limit: int,
    status: EventStatus | None = None,
) -> dict[UUID, list[HandoffEvent]]:
    """The first ``limit`` events (by due date) of each visible handoff, in one statement."""
    principal.require(Action.events_read)
    visible = [h.id for h in await repository.get_many(session, principal, handoff_ids) if h]
    events: dict[UUID, list[HandoffEvent]] = {handoff_id: [] for handoff_id in visible}
    for event in await repository.first_events(
        session, visible, limit=limit, status=status, now=utcnow()
    ):
        events[event.handoff_id].append(event)
    return events


async def list_page(
    session: AsyncSession,
    principal: Principal,
    page: PageRequest,
    *,
    from_unit: str | None = None,
    to_unit: str | None = None,
    touchpoint: str | None = None,
    agreement: str | None = None,
    status: HandoffStatus | None = None,
) -> tuple[list[Handoff], str | None]:
    principal.require(Action.handoffs_read)
    filters: dict[str, UUID | None] = {}
    for name, model_key, lookup in (
        ("from_unit_id", from_unit, org_units_service.ids_for_keys),
        ("to_unit_id", to_unit, org_units_service.ids_for_keys),
        ("touchpoint_id", touchpoint, journeys_service.touchpoint_ids_for_keys),
        ("agreement_id", agreement, agreements_service.agreement_ids_for_keys),
    ):
        if model_key is None:
            continue
        found = (await lookup(session, [model_key])).get(model_key)
        if found is None:
            return [], None  # filtering by something that does not exist matches nothing
        filters[name] = found
    return await repository.list_page(
        session, principal, page, status=status.value if status else None, **filters
    )


async def create(session: AsyncSession, principal: Principal, data: HandoffCreate) -> Handoff:
    principal.require(Action.handoffs_write)
    references = await _resolve(session, data)
    handoff = Handoff(
        key=data.key,
        deliverable=data.deliverable,
        expected_within=data.expected_within,
        quality_threshold=data.quality_threshold,
        status=data.status.value,
        **references,
    )
    session.add(handoff)
    try:
        await session.flush()
    except IntegrityError as exc:
        if is_unique_violation(exc):
            raise KeyExists(RESOURCE, data.key) from exc
        raise
    await org_units_service.update_rings(session, edges_added=_edges(handoff))
    await finding_service.refresh_around(session, handoffs=[handoff.id])
    return handoff


async def update(
    session: AsyncSession,
    principal: Principal,
    key: str,
    patch: HandoffUpdate,
    *,
    expected_version: int | None = None,
) -> Handoff:
    principal.require(Action.handoffs_write)
    handoff = await _visible(session, principal, key, for_update=True)
    check_version(handoff.version, expected_version)
    (current,) = await to_read(session, [handoff])
    data = merge(current.model_dump(include=set(HandoffCreate.model_fields)), patch, HandoffCreate)
    edges_before = _edges(handoff)
    references = await _resolve(session, data)
    async with finding_service.watch(session, handoffs=[handoff.id]):
        for field, value in references.items():
            setattr(handoff, field, value)
        handoff.deliverable = data.deliverable
        handoff.expected_within = data.expected_within
        handoff.quality_threshold = data.quality_threshold
        handoff.status = data.status.value
        handoff.version += 1
        handoff.updated_at = utcnow()
        await session.flush()
        if _edges(handoff) != edges_before:
            await org_units_service.update_rings(
                session, edges_added=_edges(handoff), edges_removed=edges_before
            )
    return handoff


async def delete(session: AsyncSession, principal: Principal, key: str) -> None:
    principal.require(Action.handoffs_write)
    handoff = await _visible(session, principal, key, for_update=True)
    references = await core_repository.blocking_references(
        session, Handoff.__tablename__, handoff.id
    )
    if references:
        raise StillReferenced(RESOURCE, key, references)
    edges = _edges(handoff)
    async with finding_service.watch(session, handoffs=[handoff.id]):
        await session.delete(handoff)
        await session.flush()
        await org_units_service.update_rings(session, edges_removed=edges)


def _edges(handoff: Handoff) -> list[tuple[UUID, UUID]]:
    """What the handoff adds to the rings: its provider → recipient edge while active."""
    if handoff.status != HandoffStatus.active.value:
        return []
    return [(handoff.from_unit_id, handoff.to_unit_id)]


async def to_read(session: AsyncSession, handoffs: Sequence[Handoff]) -> list[HandoffRead]:
    units = await org_units_service.keys_for_ids(
        session, [h.from_unit_id for h in handoffs] + [h.to_unit_id for h in handoffs]
    )
    touchpoints = await journeys_service.touchpoint_keys_for_ids(
        session, [h.touchpoint_id for h in handoffs]
    )
    agreements = await agreements_service.agreement_keys_for_ids(
        session, [h.agreement_id for h in handoffs]
    )
    return [
        HandoffRead(
            id=h.id,
            key=h.key,
            from_unit=units[h.from_unit_id],
            to_unit=units[h.to_unit_id],
            deliverable=h.deliverable,
            touchpoint=touchpoints.get(h.touchpoint_id) if h.touchpoint_id else None,
            expected_within=h.expected_within,
            quality_threshold=h.quality_threshold,
            agreement=agreements.get(h.agreement_id) if h.agreement_id else None,
            status=HandoffStatus(h.status),
            version=h.version,
            created_at=h.created_at,
            updated_at=h.updated_at,
        )
        for h in handoffs
    ]


# Events ------------------------------------------------------------------------------------


async def upsert_event(
    session: AsyncSession,
    principal: Principal,
    handoff_key: str,
    external_id: str,
    data: EventUpsert,
) -> tuple[HandoffEvent, bool]:
    """Register one occurrence; returns it and whether it was created (else updated/unchanged).

    The write is a single ``INSERT … ON CONFLICT`` on (handoff, external_id): retries and
    concurrent senders of the same occurrence end with one row and the same id.

    A partner changes only the events it wrote (403 for another writer's: both parties of a
    handoff read its events, so hiding it would hide nothing); its ``case_ref`` joins a
    company case only if the partner takes part in it (see ``_private_cases``).
    """
    principal.require(Action.events_write)
    handoff = await _visible(session, principal, handoff_key)
    due_at = data.due_at or default_due(data.started_at, handoff.expected_within)
    key = (handoff.id, external_id)
    if key in await _others_events(session, principal, {key}):
        raise Forbidden(
            f"event {external_id!r} of handoff {handoff_key!r} was written by another party; "
            "a partner key changes only the events its unit wrote",
            action=Action.events_write.value,
        )
    private = await _private_cases(session, principal, {data.case_ref})
    row = _event_row(
        handoff.id,
        external_id,
        data,
        due_at,
        written_by=_writer(principal),
        case_private=data.case_ref in private,
    )
    created, updated, unchanged = await upsert_rows(session, EVENT_UPSERT, [row])
    record_outcomes(EVENTS_INGESTED, created, updated, unchanged)
    if created or updated:
        await webhook_alerts.events_written(session, [row])  # handoff_event.delivered_late
    await finding_service.refresh_handoffs(session, [handoff.id])  # buffering counts events
    if created or updated:
        await webhook_alerts.handoffs_changed(session, [handoff.id])  # handoff.health_dropped
    event = await repository.get_event(session, handoff.id, external_id)
    assert event is not None  # written just above, in this transaction
    return event, bool(created)


async def list_events(
    session: AsyncSession,
    principal: Principal,
    handoff_key: str,
    page: PageRequest,
    *,
    status: EventStatus | None = None,
    case_ref: str | None = None,
) -> tuple[Handoff, list[HandoffEvent], str | None]:
    principal.require(Action.events_read)
    handoff = await _visible(session, principal, handoff_key)
    events, cursor = await repository.list_events(
        session, handoff.id, page, status=status, case_ref=case_ref, now=utcnow()
    )
    return handoff, events, cursor


async def ingest_events(
    session: AsyncSession,
    principal: Principal,
    batches: AsyncIterable[Sequence[Any]],
    *,
    atomic: bool = True,
    settings: Settings | None = None,
) -> BulkResult:
    """Upsert many occurrences, each naming its ``handoff`` and ``external_id``.

    A partner key may only register events on handoffs it provides or receives; any other
    handoff is reported as not existing. An item that would change an event another party
    wrote is rejected, and case refs follow ``_private_cases``, per item exactly as for one
    event (``upsert_event``). In atomic mode any bad item raises ``BulkRejected``
    and nothing is written. ``settings`` gives the limits (the
    request's, so one request never mixes two configurations); by default the process's.
    """
    principal.require(Action.events_write)
    settings = settings or get_settings()
    handoffs: dict[str, tuple[UUID, Any] | None] = {}
    now = utcnow()
    writer = _writer(principal)

    async def prepare(items: list[tuple[int, BulkEventItem]]) -> Prepared:
        missing = {item.handoff for _, item in items} - handoffs.keys()
        if missing:
            found = await repository.ids_by_key(session, principal, missing)
            handoffs.update({key: found.get(key) for key in missing})
        prepared = Prepared(rows=[], indexes=[], errors=[])
        others: set[tuple[UUID, str]] = set()
        private: set[str] = set()
        if principal.is_partner:  # only a partner's events have these limits
            others = await _others_events(
                session,
                principal,
                {
                    (handoffs[item.handoff][0], item.external_id)  # type: ignore[index]
                    for _, item in items
                    if handoffs[item.handoff] is not None
                },
            )
            private = await _private_cases(session, principal, {item.case_ref for _, item in items})
        for index, item in items:
            resolved = handoffs[item.handoff]
            if resolved is None:
                prepared.errors.append(
                    ItemError(index, ["handoff"], f"handoff {item.handoff!r} does not exist")
                )
                continue
            handoff_id, expected_within = resolved
            if (handoff_id, item.external_id) in others:
                prepared.errors.append(
                    ItemError(
                        index,
                        ["external_id"],
                        f"event {item.external_id!r} of handoff {item.handoff!r} was written "
                        "by another party; a partner key changes only the events its unit wrote",
                    )
                )
                continue
            due_at = item.due_at or default_due(item.started_at, expected_within)
            prepared.rows.append(
                _event_row(
                    handoff_id,
                    item.external_id,
                    item,
                    due_at,
                    now=now,
                    written_by=writer,
                    case_private=item.case_ref in private,
                    new_id=False,  # the bulk engine makes the batch's ids at once
                )
            )
            prepared.indexes.append(index)
        # handoff_event.delivered_late: one outbox insert per batch, none without listeners
        await webhook_alerts.events_written(session, prepared.rows)
        return prepared

    result = await run_ingest(
        session,
        batches,
        item_schema=BulkEventItem,
        prepare=prepare,
        spec=EVENT_UPSERT,
        atomic=atomic,
        settings=settings,
        counter=EVENTS_INGESTED,
        fast=FAST_BULK_EVENT,
    )
    # Buffering counts events: re-judge every handoff the request named.
    named = [found[0] for found in handoffs.values() if found is not None]
    await finding_service.refresh_handoffs(session, named)
    await webhook_alerts.handoffs_changed(session, named)  # handoff.health_dropped
    return result


async def events_to_read(
    session: AsyncSession, principal: Principal, events: Sequence[HandoffEvent]
) -> list[EventRead]:
    keys = await core_repository.keys_by_id(session, Handoff, [e.handoff_id for e in events])
    writer_ids = list({e.written_by_unit_id for e in events if e.written_by_unit_id is not None})
    writers = {
        unit_id: unit
        for unit_id, unit in zip(
            writer_ids, await org_units_service.get_many(session, principal, writer_ids)
        )
        if unit is not None
    }
    now = utcnow()
    return [
        EventRead(
            id=e.id,
            handoff=keys[e.handoff_id],
            external_id=e.external_id,
            started_at=e.started_at,
            due_at=e.due_at,
            delivered_at=e.delivered_at,
            quality=e.quality,
            rework=e.rework,
            customer_impact=e.customer_impact,
            case_ref=e.case_ref,
            note=e.note,
            source=event_source(
                e.written_by_unit_id, writers.get(e.written_by_unit_id)  # type: ignore[arg-type]
            ),
            status=event_status(e.due_at, e.delivered_at, now),
            created_at=e.created_at,
            updated_at=e.updated_at,
        )
        for e in events
    ]


def event_source(written_by_unit_id: UUID | None, writer: Any | None) -> str:
    """Who wrote an event, as the reader may know it: ``internal`` (the company), the
    writing partner unit's key, or ``(another unit)`` when the reader may not see that unit
    (``writer`` is the unit as loaded through the reader's scope, None if hidden)."""
    if written_by_unit_id is None:
        return INTERNAL_SOURCE
    return writer.key if writer is not None else HIDDEN_SOURCE


async def case_events(
    session: AsyncSession, principal: Principal, case_ref: str
) -> list[tuple[HandoffEvent, Handoff]]:
    """The steps of a case as the principal knows it, in time order (see the repository):
    the company's case, or for a partner that takes no part in it, the partner's own."""
    principal.require(Action.cases_read)
    return await repository.case_events(session, principal, case_ref)


# Reviews -----------------------------------------------------------------------------------


async def add_review(
    session: AsyncSession, principal: Principal, handoff_key: str, data: ReviewCreate
) -> HandoffReview:
    """The recipient's pulse on a handoff. Only the receiving side may give it."""
    principal.require(Action.reviews_write)
    handoff = await _visible(session, principal, handoff_key)
    if principal.is_partner and handoff.to_unit_id != principal.partner_unit_id:
        raise Forbidden(
            "only the receiving unit reviews a handoff; this partner provides it",
            action=Action.reviews_write.value,
        )
    review = HandoffReview(
        handoff_id=handoff.id,
        at=data.at or utcnow(),
        period=data.period,
        timeliness=data.timeliness,
        quality=data.quality,
        needs=data.needs,
        submitted_by_key_id=principal.key_id if principal.key_id.int else None,
    )
    session.add(review)
    await session.flush()
    await webhook_alerts.handoffs_changed(session, [handoff.id])  # health counts reviews
    return review


async def list_reviews(
    session: AsyncSession, principal: Principal, handoff_key: str, page: PageRequest
) -> tuple[list[HandoffReview], str | None]:
    principal.require(Action.reviews_read)
    handoff = await _visible(session, principal, handoff_key)
    return await repository.list_reviews(session, handoff.id, page)


async def first_reviews(
    session: AsyncSession, principal: Principal, handoff_ids: list[UUID], *, limit: int
) -> dict[UUID, list[HandoffReview]]:
    """The first ``limit`` reviews (by time) of each visible handoff, in one statement."""
    principal.require(Action.reviews_read)
    visible = [h.id for h in await repository.get_many(session, principal, handoff_ids) if h]
    r = HandoffReview
    return await core_repository.first_per_parent(
        session, r, r.handoff_id, visible, [r.at, r.id], limit
    )


async def reviews_to_read(
    session: AsyncSession, reviews: Sequence[HandoffReview]
) -> list[ReviewRead]:
    keys = await core_repository.keys_by_id(session, Handoff, [r.handoff_id for r in reviews])
    return [
        ReviewRead(
            id=r.id,
            handoff=keys[r.handoff_id],
            at=r.at,
            period=r.period,
            timeliness=r.timeliness,
            quality=r.quality,
            needs=r.needs,
            created_at=r.created_at,
        )
        for r in reviews
    ]


# Internals ---------------------------------------------------------------------------------


async def _visible(
    session: AsyncSession, principal: Principal, key: str, *, for_update: bool = False
) -> Handoff:
    handoff = await repository.get_by_key(session, principal, key, for_update=for_update)
    if handoff is None:
        raise NotFoundFor(RESOURCE, key)
    return handoff


async def _resolve(session: AsyncSession, data: HandoffCreate) -> dict[str, UUID | None]:
    units = await org_units_service.resolve_keys(
        session, {"from_unit": data.from_unit, "to_unit": data.to_unit}
    )
    agreement = await agreements_service.resolve_agreement(session, data.agreement)
    if agreement is not None and agreement.partner_id not in (units["from_unit"], units["to_unit"]):
        raise Invalid(
            f"agreement {data.agreement!r} is with another partner: a handoff it covers must "
            "be provided or received by that partner",
            loc=("body", "agreement"),
        )
    return {
        "from_unit_id": units["from_unit"],
        "to_unit_id": units["to_unit"],
        "touchpoint_id": await journeys_service.resolve_touchpoint(session, data.touchpoint),
        "agreement_id": agreement.id if agreement else None,
    }


def _writer(principal: Principal) -> UUID | None:
    """The source an event records: the partner unit of the key, or None (internal)."""
    return principal.partner_unit_id if principal.is_partner else None


async def _others_events(
    session: AsyncSession, principal: Principal, keys: set[tuple[UUID, str]]
) -> set[tuple[UUID, str]]:
    """Of these existing events, those the principal may not change: for a partner, those
    another party wrote (locked until the write, so the check holds for it). Internal
    writers change any."""
    if not principal.is_partner or not keys:
        return set()
    writers = await repository.writers(session, keys, for_update=True)
    return {key for key, unit in writers.items() if unit != principal.partner_unit_id}


async def _private_cases(
    session: AsyncSession, principal: Principal, case_refs: set[str | None]
) -> set[str]:
    """Of the case refs a partner's events name, those that stay the partner's own case.

    A partner joins a company case only if it already takes part in it (one of the case's
    steps is on a handoff it provides or receives), or starts a case under a ref nobody
    uses. A ref of a company case it has no part in is accepted exactly like a new ref,
    but its events form the partner's own case of that ref: the company's case and everyone
    else's view of it stay as they were, and nothing tells the partner that the ref exists.
    Internal writers' events always belong to the company's case.
    """
    refs = {ref for ref in case_refs if ref is not None}
    if not principal.is_partner or not refs:
        return set()
    assert principal.partner_unit_id is not None
    # Two partners starting the same new ref at once must not both join it.
    await repository.lock_case_joins(session)
    taken = await repository.case_participation(session, refs, principal.partner_unit_id)
    return {ref for ref, takes_part in taken.items() if not takes_part}


def _event_row(
    handoff_id: UUID,
    external_id: str,
    data: EventUpsert,
    due_at: Any,
    *,
    now: Any = None,
    written_by: UUID | None = None,
    case_private: bool = False,
    new_id: bool = True,
) -> dict[str, Any]:
    now = now or utcnow()
    row = {
        "handoff_id": handoff_id,
        "external_id": external_id,
        "started_at": data.started_at,
        "due_at": due_at,
        "placed_at": placement(data.started_at, due_at),
        "delivered_at": data.delivered_at,
        "quality": data.quality,
        "rework": data.rework,
        "customer_impact": data.customer_impact,
        "case_ref": data.case_ref,
        "note": data.note,
        "written_by_unit_id": written_by,
        "case_private": case_private,
        "created_at": now,
        "updated_at": now,
    }
    if new_id:
        row["id"] = uuid4()
    return row

