"""Journeys, their touchpoints, and customer feedback at those touchpoints.

None of it is a partner's: a partner key may call the reads, and sees nothing.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, Iterable, Sequence
from datetime import datetime
from typing import Any
from uuid import UUID, uuid4

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from service.alignment import conflict_service, finding_service
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
from service.core.errors import (
    Invalid,
    KeyExists,
    NotFoundFor,
    StillReferenced,
    UnknownReference,
)
from service.core.pagination import PageRequest
from service.core.patching import check_version, merge
from service.core.permissions import Action, Principal
from service.core.telemetry import FEEDBACK_INGESTED
from service.core.types import utcnow
from service.journeys import repository
from service.journeys.constants import FeedbackScale
from service.journeys.errors import StageInUse, UnknownStage
from service.journeys.models import Feedback, Journey, Touchpoint
from service.journeys.schemas import (
    BulkFeedbackItem,
    FeedbackRead,
    FeedbackUpsert,
    JourneyCreate,
    JourneyRead,
    JourneyUpdate,
    TouchpointCreate,
    TouchpointRead,
    TouchpointUpdate,
)
from service.org_units import service as org_units_service

JOURNEY = "journey"
TOUCHPOINT = "touchpoint"

FEEDBACK_UPSERT = UpsertSpec(
    table=Feedback.__table__,  # type: ignore[arg-type]
    key_columns=("touchpoint_id", "external_id"),
    compare_columns=("at", "scale", "score", "loyalty", "case_ref", "comment"),
)


# Journeys ----------------------------------------------------------------------------------


async def get_journey(session: AsyncSession, principal: Principal, key: str) -> Journey:
    principal.require(Action.journeys_read)
    return await _visible_journey(session, principal, key)


async def get_many_journeys(
    session: AsyncSession, principal: Principal, ids: list[UUID]
) -> list[Journey | None]:
    principal.require(Action.journeys_read)
    return await repository.get_journeys(session, principal, ids)


async def list_journeys(
    session: AsyncSession, principal: Principal, page: PageRequest
) -> tuple[list[Journey], str | None]:
    principal.require(Action.journeys_read)
    return await repository.list_journeys(session, principal, page)


async def create_journey(
    session: AsyncSession, principal: Principal, data: JourneyCreate
) -> Journey:
    principal.require(Action.journeys_write)
    journey = Journey(key=data.key, name=data.name, segment=data.segment, stages=list(data.stages))
    session.add(journey)
    await _flush_new(session, JOURNEY, data.key)
    return journey


async def update_journey(
    session: AsyncSession,
    principal: Principal,
    key: str,
    patch: JourneyUpdate,
    *,
    expected_version: int | None = None,
) -> Journey:
    """Change a journey. Removing a stage that touchpoints sit in is refused (422)."""
    principal.require(Action.journeys_write)
    journey = await _visible_journey(session, principal, key, for_update=True)
    check_version(journey.version, expected_version)
    current = journey_to_read(journey)
    data = merge(current.model_dump(include=set(JourneyCreate.model_fields)), patch, JourneyCreate)
    removed = set(journey.stages) - set(data.stages)
    if removed:
        used = await repository.stages_in_use(session, journey.id)
        in_use = {
            stage: used[stage] for stage in journey.stages if stage in removed and stage in used
        }
        if in_use:
            raise StageInUse(key, in_use)
    journey.name, journey.segment = data.name, data.segment
    journey.stages = list(data.stages)  # a new list, so the JSON column is written
    journey.version += 1
    journey.updated_at = utcnow()
    await session.flush()
    await finding_service.refresh_around(session, journeys=[journey.id])  # names it
    return journey


async def delete_journey(session: AsyncSession, principal: Principal, key: str) -> None:
    principal.require(Action.journeys_write)
    journey = await _visible_journey(session, principal, key, for_update=True)
    references = await core_repository.blocking_references(
        session, Journey.__tablename__, journey.id
    )
    if references:
        raise StillReferenced(JOURNEY, key, references)
    await session.delete(journey)
    await session.flush()
    await finding_service.refresh_around(session, journeys=[journey.id])


def journey_to_read(journey: Journey) -> JourneyRead:
    return JourneyRead(
        id=journey.id,
        key=journey.key,
        name=journey.name,
        segment=journey.segment,
        stages=list(journey.stages),
        version=journey.version,
        created_at=journey.created_at,
        updated_at=journey.updated_at,
    )


def journeys_to_read(journeys: Iterable[Journey]) -> list[JourneyRead]:
    return [journey_to_read(journey) for journey in journeys]


# Touchpoints -------------------------------------------------------------------------------


async def get_touchpoint(session: AsyncSession, principal: Principal, key: str) -> Touchpoint:
    principal.require(Action.touchpoints_read)
    return await _visible_touchpoint(session, principal, key)


async def get_many_touchpoints(
    session: AsyncSession, principal: Principal, ids: list[UUID]
) -> list[Touchpoint | None]:
    principal.require(Action.touchpoints_read)
    return await repository.get_touchpoints(session, principal, ids)


async def list_touchpoints_by_journey_ids(
    session: AsyncSession, principal: Principal, journey_ids: list[UUID]
) -> list[list[Touchpoint]]:
    """Each journey's touchpoints, in the order of ``journey_ids`` (a DataLoader batch)."""
    principal.require(Action.touchpoints_read)
    return await repository.touchpoints_by_journey_ids(session, principal, journey_ids)


async def list_touchpoints_by_owner_ids(
    session: AsyncSession, principal: Principal, owner_ids: list[UUID]
) -> list[list[Touchpoint]]:
    """Each unit's touchpoints, in the order of ``owner_ids`` (a DataLoader batch)."""
    principal.require(Action.touchpoints_read)
    return await repository.touchpoints_by_owner_ids(session, principal, owner_ids)


async def list_touchpoints(
    session: AsyncSession,
    principal: Principal,
    page: PageRequest,
    *,
    journey: str | None = None,
    owner: str | None = None,
    stage: str | None = None,
) -> tuple[list[Touchpoint], str | None]:
    principal.require(Action.touchpoints_read)
    filters: dict[str, UUID] = {}
    for name, model_key, lookup in (
        ("journey_id", journey, _journey_ids_for_keys),
        ("owner_id", owner, org_units_service.ids_for_keys),
    ):
        if model_key is None:
            continue
        found = (await lookup(session, [model_key])).get(model_key)
        if found is None:
            return [], None  # filtering by something that does not exist matches nothing
        filters[name] = found
    return await repository.list_touchpoints(session, principal, page, stage=stage, **filters)


async def create_touchpoint(
    session: AsyncSession, principal: Principal, data: TouchpointCreate
) -> Touchpoint:
    principal.require(Action.touchpoints_write)
    references = await _resolve(session, principal, data)
    touchpoint = Touchpoint(
        key=data.key,
        stage=data.stage,
        name=data.name,
        channel=data.channel,
        moment_of_truth=data.moment_of_truth,
        driver_weight=data.driver_weight,
        promise_within=data.promise_within,
        **references,
    )
    session.add(touchpoint)
    await _flush_new(session, TOUCHPOINT, data.key)
    await org_units_service.update_rings(session, owners_added=[touchpoint.owner_id])
    await finding_service.refresh_around(session, touchpoints=[touchpoint.id])
    return touchpoint


async def update_touchpoint(
    session: AsyncSession,
    principal: Principal,
    key: str,
    patch: TouchpointUpdate,
    *,
    expected_version: int | None = None,
) -> Touchpoint:
    principal.require(Action.touchpoints_write)
    touchpoint = await _visible_touchpoint(session, principal, key, for_update=True)
    check_version(touchpoint.version, expected_version)
    (current,) = await touchpoints_to_read(session, [touchpoint])
    data = merge(
        current.model_dump(include=set(TouchpointCreate.model_fields)), patch, TouchpointCreate
    )
    previous_owner = touchpoint.owner_id
    was_moment_of_truth = touchpoint.moment_of_truth
    references = await _resolve(session, principal, data)
    async with finding_service.watch(session, touchpoints=[touchpoint.id]):
        for field, value in references.items():
            setattr(touchpoint, field, value)
        touchpoint.stage = data.stage
        touchpoint.name = data.name
        touchpoint.channel = data.channel
        touchpoint.moment_of_truth = data.moment_of_truth
        touchpoint.driver_weight = data.driver_weight
        touchpoint.promise_within = data.promise_within
        touchpoint.version += 1
        touchpoint.updated_at = utcnow()
        await session.flush()
    if touchpoint.owner_id != previous_owner:
        await org_units_service.update_rings(
            session, owners_added=[touchpoint.owner_id], owners_removed=[previous_owner]
        )
    if touchpoint.moment_of_truth != was_moment_of_truth:
        # a moment of truth in a shared scope raises the severity of the goals duelling there
        await conflict_service.refresh_for_touchpoint(session, touchpoint.id)
    return touchpoint


async def delete_touchpoint(session: AsyncSession, principal: Principal, key: str) -> None:
    """Delete a touchpoint nothing refers to (handoffs, feedback and goals do: 409)."""
    principal.require(Action.touchpoints_write)
    touchpoint = await _visible_touchpoint(session, principal, key, for_update=True)
    references = await core_repository.blocking_references(
        session, Touchpoint.__tablename__, touchpoint.id
    )
    if references:
        raise StillReferenced(TOUCHPOINT, key, references)
    owner = touchpoint.owner_id
    async with finding_service.watch(session, touchpoints=[touchpoint.id]):
        await session.delete(touchpoint)
        await session.flush()
    await org_units_service.update_rings(session, owners_removed=[owner])


async def touchpoints_to_read(
    session: AsyncSession, touchpoints: Sequence[Touchpoint]
) -> list[TouchpointRead]:
    journeys = await core_repository.keys_by_id(
        session, Journey, [t.journey_id for t in touchpoints]
    )
    owners = await org_units_service.keys_for_ids(session, [t.owner_id for t in touchpoints])
    return [
        TouchpointRead(
            id=t.id,
            key=t.key,
            journey=journeys[t.journey_id],
            stage=t.stage,
            name=t.name,
            channel=t.channel,
            owner=owners[t.owner_id],
            moment_of_truth=t.moment_of_truth,
            driver_weight=t.driver_weight,
            promise_within=t.promise_within,
            version=t.version,
            created_at=t.created_at,
            updated_at=t.updated_at,
        )
        for t in touchpoints
    ]


# Feedback ----------------------------------------------------------------------------------


async def upsert_feedback(
    session: AsyncSession,
    principal: Principal,
    touchpoint_key: str,
    external_id: str,
    data: FeedbackUpsert,
) -> tuple[Feedback, bool]:
    """Record one customer rating; returns it and whether it was created (else updated or
    unchanged).

    The write is a single ``INSERT … ON CONFLICT`` on (touchpoint, external_id): retries
    and concurrent senders of the same record end with one row and the same id.
    """
    principal.require(Action.feedback_write)
    touchpoint = await _visible_touchpoint(session, principal, touchpoint_key)
    row = _feedback_row(touchpoint.id, external_id, data)
    created, updated, unchanged = await upsert_rows(session, FEEDBACK_UPSERT, [row])
    record_outcomes(FEEDBACK_INGESTED, created, updated, unchanged)
    feedback = await repository.get_feedback(session, touchpoint.id, external_id)
    assert feedback is not None  # written just above, in this transaction
    return feedback, bool(created)


async def list_feedback(
    session: AsyncSession,
    principal: Principal,
    touchpoint_key: str,
    page: PageRequest,
    *,
    scale: FeedbackScale | None = None,
    case_ref: str | None = None,
    at_from: datetime | None = None,
    at_to: datetime | None = None,
) -> tuple[Touchpoint, list[Feedback], str | None]:
    """A touchpoint's feedback by time; ``at_from`` is inclusive, ``at_to`` exclusive."""
    principal.require(Action.feedback_read)
    if at_from is not None and at_to is not None and at_to <= at_from:
        raise Invalid("to must be later than from", loc=("query", "to"))
    touchpoint = await _visible_touchpoint(session, principal, touchpoint_key)
    rows, cursor = await repository.list_feedback(
        session,
        touchpoint.id,
        page,
        scale=scale.value if scale else None,
        case_ref=case_ref,
        at_from=at_from,
        at_to=at_to,
    )
    return touchpoint, rows, cursor


async def first_feedback(
    session: AsyncSession, principal: Principal, touchpoint_ids: list[UUID], *, limit: int
) -> dict[UUID, list[Feedback]]:
    """The first ``limit`` ratings (by time) at each visible touchpoint, in one statement."""
    principal.require(Action.feedback_read)
    touchpoints = await repository.get_touchpoints(session, principal, touchpoint_ids)
    f = Feedback
    visible = [t.id for t in touchpoints if t]
    return await core_repository.first_per_parent(session, f, f.touchpoint_id, visible, [f.at, f.id], limit)


async def get_many_feedback(
    session: AsyncSession, principal: Principal, ids: list[UUID]
) -> list[Feedback | None]:
    principal.require(Action.feedback_read)
    return await repository.get_feedback_many(session, principal, ids)


async def ingest_feedback(
    session: AsyncSession,
    principal: Principal,
    batches: AsyncIterable[Sequence[Any]],
    *,
    atomic: bool = True,
    settings: Settings | None = None,
) -> BulkResult:
    """Upsert many ratings, each naming its ``touchpoint`` and ``external_id``.

    In atomic mode any bad item raises ``BulkRejected`` and nothing is written.
    """
    principal.require(Action.feedback_write)
    settings = settings or get_settings()
    touchpoints: dict[str, UUID | None] = {}
    now = utcnow()

    async def prepare(items: list[tuple[int, BulkFeedbackItem]]) -> Prepared:
        missing = {item.touchpoint for _, item in items} - touchpoints.keys()
        if missing:
            found = await repository.touchpoint_ids_by_key(session, principal, missing)
            touchpoints.update({key: found.get(key) for key in missing})
        prepared = Prepared(rows=[], indexes=[], errors=[])
        for index, item in items:
            touchpoint_id = touchpoints[item.touchpoint]
            if touchpoint_id is None:
                prepared.errors.append(
                    ItemError(
                        index, ["touchpoint"], f"touchpoint {item.touchpoint!r} does not exist"
                    )
                )
                continue
            prepared.rows.append(_feedback_row(touchpoint_id, item.external_id, item, now=now))
            prepared.indexes.append(index)
        return prepared

    return await run_ingest(
        session,
        batches,
        item_schema=BulkFeedbackItem,
        prepare=prepare,
        spec=FEEDBACK_UPSERT,
        atomic=atomic,
        settings=settings,
        counter=FEEDBACK_INGESTED,
    )


async def feedback_to_read(session: AsyncSession, rows: Sequence[Feedback]) -> list[FeedbackRead]:
    keys = await touchpoint_keys_for_ids(session, [f.touchpoint_id for f in rows])
    return [
        FeedbackRead(
            id=f.id,
            touchpoint=keys[f.touchpoint_id],
            external_id=f.external_id,
            at=f.at,
            scale=FeedbackScale(f.scale),
            score=f.score,
            loyalty=f.loyalty,
            case_ref=f.case_ref,
            comment=f.comment,
            created_at=f.created_at,
            updated_at=f.updated_at,
        )
        for f in rows
    ]


# Used by other domains -------------------------------------------------------------------


async def resolve_touchpoint(
    session: AsyncSession,
    key: str | None,
    *,
    field: str = "touchpoint",
    loc_prefix: tuple = ("body",),
) -> UUID | None:
    if key is None:
        return None
    found = await core_repository.ids_by_key(session, Touchpoint, [key])
    if key not in found:
        raise UnknownReference(field, TOUCHPOINT, key, loc_prefix=loc_prefix)
    return found[key]


async def touchpoint_keys_for_ids(
    session: AsyncSession, ids: Iterable[UUID | None]
) -> dict[UUID, str]:
    return await core_repository.keys_by_id(session, Touchpoint, ids)


async def touchpoint_ids_for_keys(session: AsyncSession, keys: Iterable[str]) -> dict[str, UUID]:
    return await core_repository.ids_by_key(session, Touchpoint, keys)


# Internals ---------------------------------------------------------------------------------


async def _visible_journey(
    session: AsyncSession, principal: Principal, key: str, *, for_update: bool = False
) -> Journey:
    journey = await repository.get_journey_by_key(session, principal, key, for_update=for_update)
    if journey is None:
        raise NotFoundFor(JOURNEY, key)
    return journey


async def _visible_touchpoint(
    session: AsyncSession, principal: Principal, key: str, *, for_update: bool = False
) -> Touchpoint:
    touchpoint = await repository.get_touchpoint_by_key(
        session, principal, key, for_update=for_update
    )
    if touchpoint is None:
        raise NotFoundFor(TOUCHPOINT, key)
    return touchpoint


async def _journey_ids_for_keys(session: AsyncSession, keys: Iterable[str]) -> dict[str, UUID]:
    return await core_repository.ids_by_key(session, Journey, keys)


async def _resolve(
    session: AsyncSession, principal: Principal, data: TouchpointCreate
) -> dict[str, UUID]:
    """The journey and owner ids of a touchpoint, checking its stage is one of the journey's.

    The journey row is locked, so a concurrent change cannot remove the stage between this
    check and the commit (the journey update counts touchpoints under the same lock).
    """
    journey = await repository.get_journey_by_key(session, principal, data.journey, for_update=True)
    if journey is None:
        raise UnknownReference("journey", JOURNEY, data.journey)
    if data.stage not in journey.stages:
        raise UnknownStage(journey.key, data.stage, journey.stages)
    owner = (await org_units_service.resolve_keys(session, {"owner": data.owner}))["owner"]
    assert owner is not None  # owner is required by the schema
    return {"journey_id": journey.id, "owner_id": owner}


async def _flush_new(session: AsyncSession, resource: str, key: str) -> None:
    try:
        await session.flush()
    except IntegrityError as exc:
        if is_unique_violation(exc):
            raise KeyExists(resource, key) from exc
        raise


def _feedback_row(
    touchpoint_id: UUID, external_id: str, data: FeedbackUpsert, *, now: datetime | None = None
) -> dict[str, Any]:
    now = now or utcnow()
    return {
        "id": uuid4(),
        "touchpoint_id": touchpoint_id,
        "external_id": external_id,
        "at": data.at,
        "scale": data.scale.value,
        "score": data.score,
        "loyalty": data.loyalty,
        "case_ref": data.case_ref,
        "comment": data.comment,
        "created_at": now,
        "updated_at": now,
    }

