"""Org units: departments, teams and outside partners, and their rings."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from uuid import UUID

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from service.alignment import finding_service
from service.core import repository as core_repository
from service.core.db import is_unique_violation
from service.core.errors import Invalid, KeyExists, NotFoundFor, StillReferenced, UnknownReference
from service.core.pagination import PageRequest
from service.core.patching import check_version, merge
from service.core.permissions import Action, Principal
from service.core.types import utcnow
from service.org_units import repository
from service.org_units.constants import EXTERNAL_KINDS, UnitKind
from service.org_units.models import Unit
from service.org_units.rings import compute_rings
from service.org_units.schemas import UnitCreate, UnitRead, UnitUpdate

RESOURCE = "unit"


async def get(session: AsyncSession, principal: Principal, key: str) -> Unit:
    principal.require(Action.units_read)
    unit = await repository.get_by_key(session, principal, key)
    if unit is None:
        raise NotFoundFor(RESOURCE, key)
    return unit


async def list_page(
    session: AsyncSession,
    principal: Principal,
    page: PageRequest,
    *,
    kind: UnitKind | None = None,
    parent: str | None = None,
    ring: int | None = None,
) -> tuple[list[Unit], str | None]:
    principal.require(Action.units_read)
    parent_id = None
    if parent is not None:
        parent_id = (await core_repository.ids_by_key(session, Unit, [parent])).get(parent)
        if parent_id is None:
            return [], None
    return await repository.list_page(
        session, principal, page, kind=kind.value if kind else None, parent_id=parent_id, ring=ring
    )


async def get_many(session: AsyncSession, principal: Principal, ids: list[UUID]) -> list[Unit | None]:
    principal.require(Action.units_read)
    return await repository.get_many(session, principal, ids)


async def create(session: AsyncSession, principal: Principal, data: UnitCreate) -> Unit:
    principal.require(Action.units_write)
    parent_id = await _resolve_parent(session, data.parent)
    unit = Unit(
        key=data.key,
        name=data.name,
        kind=data.kind.value,
        parent_id=parent_id,
        external_ref=data.external_ref,
    )
    session.add(unit)
    await _flush_new(session, data.key)
    await finding_service.refresh_around(session, units=[unit.id])
    return unit


async def update(
    session: AsyncSession,
    principal: Principal,
    key: str,
    patch: UnitUpdate,
    *,
    expected_version: int | None = None,
) -> Unit:
    principal.require(Action.units_write)
    unit = await repository.get_by_key(session, principal, key, for_update=True)
    if unit is None:
        raise NotFoundFor(RESOURCE, key)
    check_version(unit.version, expected_version)
    (current,) = await to_read(session, [unit])
    data = merge(current.model_dump(include=set(UnitCreate.model_fields)), patch, UnitCreate)
    parent_id = await _resolve_parent(session, data.parent)
    if parent_id is not None and (
        parent_id == unit.id or unit.id in await repository.ancestors(session, parent_id)
    ):
        raise Invalid(f"unit {key!r} cannot be its own ancestor", loc=("body", "parent"))
    leaves_external = UnitKind(unit.kind) in EXTERNAL_KINDS and data.kind not in EXTERNAL_KINDS
    if data.kind.value != unit.kind and leaves_external:
        await _ensure_not_partner_bound(session, unit)
    unit.name, unit.kind, unit.parent_id = data.name, data.kind.value, parent_id
    unit.external_ref = data.external_ref
    unit.version += 1
    unit.updated_at = utcnow()
    await session.flush()
    await finding_service.refresh_around(session, units=[unit.id])  # findings name it
    return unit


async def delete(session: AsyncSession, principal: Principal, key: str) -> None:
    principal.require(Action.units_write)
    unit = await repository.get_by_key(session, principal, key, for_update=True)
    if unit is None:
        raise NotFoundFor(RESOURCE, key)
    references = await core_repository.blocking_references(session, Unit.__tablename__, unit.id)
    if references:
        raise StillReferenced(RESOURCE, key, references)
    await session.delete(unit)
    await session.flush()
    await finding_service.refresh_around(session, units=[unit.id])


# Used by other domains -------------------------------------------------------------------


async def resolve_keys(
    session: AsyncSession, keys: dict[str, str | None], *, loc_prefix: tuple = ("body",)
) -> dict[str, UUID | None]:
    """Map each field's unit key to its id; an unknown key is 422 naming the field."""
    found = await core_repository.ids_by_key(session, Unit, [k for k in keys.values() if k])
    resolved: dict[str, UUID | None] = {}
    for field, unit_key in keys.items():
        if unit_key is None:
            resolved[field] = None
        elif unit_key not in found:
            raise UnknownReference(field, RESOURCE, unit_key, loc_prefix=loc_prefix)
        else:
            resolved[field] = found[unit_key]
    return resolved


async def get_external(session: AsyncSession, key: str, *, field: str) -> Unit:
    """A partner, supplier, channel or alliance unit, for binding keys and agreements."""
    unit = await repository.get_by_key_unscoped(session, key)
    if unit is None:
        raise UnknownReference(field, RESOURCE, key)
    if UnitKind(unit.kind) not in EXTERNAL_KINDS:
        raise Invalid(
            f"{field}: unit {key!r} is a {unit.kind}, not a partner, supplier, channel or alliance",
            loc=("body", field),
        )
    return unit


async def ids_for_keys(session: AsyncSession, keys: Iterable[str]) -> dict[str, UUID]:
    return await core_repository.ids_by_key(session, Unit, keys)


async def keys_for_ids(session: AsyncSession, ids: Iterable[UUID | None]) -> dict[UUID, str]:
    return await core_repository.keys_by_id(session, Unit, ids)


async def recompute_rings(session: AsyncSession) -> None:
    """Re-derive every unit's ring; call after touchpoints or handoffs change."""
    await session.flush()
    owners, edges = await repository.ring_inputs(session)
    rings = compute_rings(owners, edges)
    current = await repository.current_rings(session)
    changes = {
        unit_id: rings.get(unit_id) for unit_id, ring in current.items() if rings.get(unit_id) != ring
    }
    if changes:
        await repository.set_rings(session, changes)


Edge = tuple[UUID, UUID]  # (provider, recipient) of an active handoff


async def update_rings(
    session: AsyncSession,
    *,
    edges_added: Sequence[Edge] = (),
    edges_removed: Sequence[Edge] = (),
    owners_added: Sequence[UUID] = (),
    owners_removed: Sequence[UUID] = (),
) -> None:
    """Bring the rings in line after a change to their inputs (active handoffs, touchpoint
    owners), re-deriving them only when the change can move a ring: most writes touch
    units whose rings it cannot change, and then cost two small reads, not a pass over
    the whole organisation."""
    await session.flush()
    involved = {u for edge in (*edges_added, *edges_removed) for u in edge}
    involved |= {*owners_added, *owners_removed}
    if not involved:
        return
    ring = await repository.rings_of(session, list(involved))
    still_owning = await repository.touchpoint_owners_among(session, list(owners_removed))
    moves = (
        any(ring[u] != 1 for u in owners_added)
        or any(u not in still_owning and ring[u] == 1 for u in owners_removed)
        # A new handoff moves its provider closer only when it is a shorter way in.
        or any(
            ring[r] is not None and (ring[p] is None or ring[p] > ring[r] + 1)
            for p, r in edges_added
        )
        # A handoff gone moves its provider only when it may have been its shortest way in.
        or any(ring[r] is not None and ring[p] == ring[r] + 1 for p, r in edges_removed)
    )
    if moves:
        await recompute_rings(session)


async def to_read(session: AsyncSession, units: list[Unit]) -> list[UnitRead]:
    parents = await keys_for_ids(session, [u.parent_id for u in units])
    return [
        UnitRead(
            id=u.id,
            key=u.key,
            name=u.name,
            kind=UnitKind(u.kind),
            parent=parents.get(u.parent_id) if u.parent_id else None,
            external_ref=u.external_ref,
            ring=u.ring,
            version=u.version,
            created_at=u.created_at,
            updated_at=u.updated_at,
        )
        for u in units
    ]


# Internals -------------------------------------------------------------------------------


async def _resolve_parent(session: AsyncSession, parent: str | None) -> UUID | None:
    return (await resolve_keys(session, {"parent": parent}))["parent"]


async def _flush_new(session: AsyncSession, key: str) -> None:
    try:
        await session.flush()
    except IntegrityError as exc:
        if is_unique_violation(exc):
            raise KeyExists(RESOURCE, key) from exc
        raise


async def _ensure_not_partner_bound(session: AsyncSession, unit: Unit) -> None:
    references = await core_repository.blocking_references(session, Unit.__tablename__, unit.id)
    bound = {t: n for t, n in references.items() if t in {"api_keys", "partner_agreements"}}
    if bound:
        raise StillReferenced(RESOURCE, unit.key, bound)
