"""Partner agreements with partners, suppliers, channels and alliances.

Joint goals on an agreement are goals: proposing and accepting them lives in
``service.goals.service`` (propose_joint_goal, accept_joint_goal).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from uuid import UUID

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from service import visibility
from service.alignment import finding_service
from service.core import repository as core_repository
from service.core.db import is_unique_violation
from service.core.errors import KeyExists, NotFoundFor, StillReferenced, UnknownReference
from service.core.pagination import PageRequest
from service.core.patching import check_version, merge
from service.core.permissions import Action, Principal
from service.core.types import utcnow
from service.org_units import service as org_units_service
from service.partner_agreements import repository
from service.partner_agreements.constants import AgreementStatus
from service.partner_agreements.models import PartnerAgreement
from service.partner_agreements.schemas import AgreementCreate, AgreementRead, AgreementUpdate

RESOURCE = "partner agreement"


async def get(session: AsyncSession, principal: Principal, key: str) -> PartnerAgreement:
    principal.require(Action.agreements_read)
    return await visible(session, principal, key)


async def visible(
    session: AsyncSession, principal: Principal, key: str, *, for_update: bool = False
) -> PartnerAgreement:
    """The agreement if the principal may see it (a partner: its own), else NotFound."""
    agreement = await repository.get_by_key(session, principal, key, for_update=for_update)
    if agreement is None:
        raise NotFoundFor(RESOURCE, key)
    return agreement


async def get_many(
    session: AsyncSession, principal: Principal, ids: list[UUID]
) -> list[PartnerAgreement | None]:
    principal.require(Action.agreements_read)
    return await repository.get_many(session, principal, ids)


async def list_by_partner_ids(
    session: AsyncSession, principal: Principal, partner_ids: list[UUID]
) -> list[PartnerAgreement]:
    principal.require(Action.agreements_read)
    return await repository.list_by_partner_ids(session, principal, partner_ids)


async def list_page(
    session: AsyncSession,
    principal: Principal,
    page: PageRequest,
    *,
    partner: str | None = None,
    internal_owner: str | None = None,
    status: AgreementStatus | None = None,
) -> tuple[list[PartnerAgreement], str | None]:
    principal.require(Action.agreements_read)
    filters: dict[str, UUID] = {}
    for name, unit_key in (("partner_id", partner), ("internal_owner_id", internal_owner)):
        if unit_key is None:
            continue
        found = (await org_units_service.ids_for_keys(session, [unit_key])).get(unit_key)
        if found is None:
            return [], None
        filters[name] = found
    return await repository.list_page(
        session, principal, page, status=status.value if status else None, **filters
    )


async def create(session: AsyncSession, principal: Principal, data: AgreementCreate) -> PartnerAgreement:
    principal.require(Action.agreements_write)
    agreement = PartnerAgreement(
        key=data.key,
        title=data.title,
        status=data.status.value,
        starts_on=data.starts_on,
        ends_on=data.ends_on,
        terms=data.terms,
        **await _resolve(session, data),
    )
    session.add(agreement)
    try:
        await session.flush()
    except IntegrityError as exc:
        if is_unique_violation(exc):
            raise KeyExists(RESOURCE, data.key) from exc
        raise
    await finding_service.refresh_around(session, agreements=[agreement.id])
    return agreement


async def update(
    session: AsyncSession,
    principal: Principal,
    key: str,
    patch: AgreementUpdate,
    *,
    expected_version: int | None = None,
) -> PartnerAgreement:
    principal.require(Action.agreements_write)
    agreement = await visible(session, principal, key, for_update=True)
    check_version(agreement.version, expected_version)
    (current,) = await to_read(session, [agreement])
    data = merge(current.model_dump(include=set(AgreementCreate.model_fields)), patch, AgreementCreate)
    for field, value in (await _resolve(session, data)).items():
        setattr(agreement, field, value)
    agreement.title, agreement.status = data.title, data.status.value
    agreement.starts_on, agreement.ends_on, agreement.terms = data.starts_on, data.ends_on, data.terms
    agreement.version += 1
    agreement.updated_at = utcnow()
    await session.flush()
    await finding_service.refresh_around(session, agreements=[agreement.id])
    return agreement


async def delete(session: AsyncSession, principal: Principal, key: str) -> None:
    principal.require(Action.agreements_write)
    agreement = await visible(session, principal, key, for_update=True)
    references = await core_repository.blocking_references(
        session, PartnerAgreement.__tablename__, agreement.id
    )
    if references:
        raise StillReferenced(RESOURCE, key, references)
    await session.delete(agreement)
    await session.flush()
    await finding_service.refresh_around(session, agreements=[agreement.id])


async def to_read(
    session: AsyncSession, agreements: Sequence[PartnerAgreement], principal: Principal | None = None
) -> list[AgreementRead]:
    """Agreements as ``principal`` may see them (``service.visibility``): a partner reads its
    own agreements, with the internal owner null (a unit it may not read), as GraphQL."""
    units = await org_units_service.keys_for_ids(
        session, [a.partner_id for a in agreements] + [a.internal_owner_id for a in agreements]
    )
    shown = await visibility.visible(session, principal, units=[a.internal_owner_id for a in agreements])
    return [
        AgreementRead(
            id=a.id,
            key=a.key,
            title=a.title,
            partner=units[a.partner_id],
            internal_owner=shown.key(a.internal_owner_id, units),
            status=AgreementStatus(a.status),
            starts_on=a.starts_on,
            ends_on=a.ends_on,
            terms=a.terms,
            version=a.version,
            created_at=a.created_at,
            updated_at=a.updated_at,
        )
        for a in agreements
    ]


# Used by other domains -------------------------------------------------------------------------


async def resolve_agreement(
    session: AsyncSession, key: str | None, *, field: str = "agreement"
) -> PartnerAgreement | None:
    if key is None:
        return None
    agreement = await repository.get_by_key_unscoped(session, key)
    if agreement is None:
        raise UnknownReference(field, RESOURCE, key)
    return agreement


def readable_ids(principal: Principal):
    """Ids of the agreements ``principal`` may see, for scoping goals in SQL."""
    return repository.readable_ids(principal)


async def agreement_keys_for_ids(
    session: AsyncSession, ids: Iterable[UUID | None]
) -> dict[UUID, str]:
    return await core_repository.keys_by_id(session, PartnerAgreement, ids)


async def agreement_ids_for_keys(session: AsyncSession, keys: Iterable[str]) -> dict[str, UUID]:
    return await core_repository.ids_by_key(session, PartnerAgreement, keys)


async def _resolve(session: AsyncSession, data: AgreementCreate) -> dict[str, UUID]:
    partner = await org_units_service.get_external(session, data.partner, field="partner")
    owner = await org_units_service.resolve_keys(session, {"internal_owner": data.internal_owner})
    return {"partner_id": partner.id, "internal_owner_id": owner["internal_owner"]}  # type: ignore[dict-item]
