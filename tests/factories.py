"""Factories: build rows through the domain services (so derived data such as rings stays
right), inside the test's transaction. Every factory takes overrides for any field."""

from __future__ import annotations

import itertools
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from service.api_keys.service import SYSTEM
from service.core.permissions import Principal
from service.goals import service as goals_service
from service.goals.models import Goal
from service.goals.schemas import GoalCreate, JointGoalCreate
from service.handoffs import service as handoffs_service
from service.handoffs.models import Handoff, HandoffEvent, HandoffReview
from service.handoffs.schemas import EventUpsert, HandoffCreate, ReviewCreate
from service.journeys import service as journeys_service
from service.journeys.models import Feedback, Journey, Touchpoint
from service.journeys.schemas import FeedbackUpsert, JourneyCreate, TouchpointCreate
from service.metrics import service as metrics_service
from service.metrics.models import Metric, MetricRelation
from service.metrics.schemas import MetricCreate, MetricRelationCreate
from service.org_units import service as units_service
from service.org_units.models import Unit
from service.org_units.schemas import UnitCreate
from service.partner_agreements import service as agreements_service
from service.partner_agreements.models import PartnerAgreement
from service.partner_agreements.schemas import AgreementCreate

_sequence = itertools.count(1)


def unique_key(prefix: str) -> str:
    return f"{prefix}-{next(_sequence)}"


async def make_unit(session: AsyncSession, **overrides: Any) -> Unit:
    data = {"key": unique_key("unit"), "name": "A unit", "kind": "department", **overrides}
    return await units_service.create(session, SYSTEM, UnitCreate(**data))


async def make_handoff(session: AsyncSession, **overrides: Any) -> Handoff:
    """A handoff between two new units unless ``from_unit``/``to_unit`` (keys) are given."""
    if "from_unit" not in overrides:
        overrides["from_unit"] = (await make_unit(session)).key
    if "to_unit" not in overrides:
        overrides["to_unit"] = (await make_unit(session)).key
    data = {
        "key": unique_key("handoff"),
        "deliverable": "A deliverable",
        "expected_within": "PT4H",
        **overrides,
    }
    return await handoffs_service.create(session, SYSTEM, HandoffCreate(**data))


# Journeys, touchpoints, feedback --------------------------------------------------------------


async def make_journey(session: AsyncSession, **overrides: Any) -> Journey:
    data = {
        "key": unique_key("journey"),
        "name": "A journey",
        "stages": ["discover", "buy", "use"],
        **overrides,
    }
    return await journeys_service.create_journey(session, SYSTEM, JourneyCreate(**data))


async def make_touchpoint(session: AsyncSession, **overrides: Any) -> Touchpoint:
    """A touchpoint in the first stage of a new journey, owned by a new unit, unless
    ``journey``/``stage``/``owner`` (keys) are given."""
    if "journey" not in overrides:
        journey = await make_journey(session)
        overrides["journey"] = journey.key
        overrides.setdefault("stage", journey.stages[0])
    if "owner" not in overrides:
        overrides["owner"] = (await make_unit(session)).key
    data = {
        "key": unique_key("touchpoint"),
        "name": "A touchpoint",
        "stage": "discover",
        **overrides,
    }
    return await journeys_service.create_touchpoint(session, SYSTEM, TouchpointCreate(**data))


async def make_feedback(session: AsyncSession, **overrides: Any) -> Feedback:
    """A CSAT rating at a new touchpoint unless ``touchpoint`` (a key) is given."""
    touchpoint = overrides.pop("touchpoint", None) or (await make_touchpoint(session)).key
    external_id = overrides.pop("external_id", None) or unique_key("feedback")
    data = {"at": "2026-03-01T12:00:00+00:00", "scale": "csat", "score": 4, **overrides}
    feedback, _ = await journeys_service.upsert_feedback(
        session, SYSTEM, touchpoint, external_id, FeedbackUpsert(**data)
    )
    return feedback


# Handoff events and reviews -------------------------------------------------------------------


async def make_event(session: AsyncSession, handoff: str, **overrides: Any) -> HandoffEvent:
    """An occurrence of the handoff with this key (started 2026-01-05 09:00 UTC)."""
    external_id = overrides.pop("external_id", None) or unique_key("event")
    data = {"started_at": "2026-01-05T09:00:00+00:00", **overrides}
    event, _ = await handoffs_service.upsert_event(
        session, SYSTEM, handoff, external_id, EventUpsert(**data)
    )
    return event


async def make_review(session: AsyncSession, handoff: str, **overrides: Any) -> HandoffReview:
    data = {"timeliness": 3, "quality": 4, **overrides}
    return await handoffs_service.add_review(session, SYSTEM, handoff, ReviewCreate(**data))


# Metrics, goals, partner agreements -----------------------------------------------------------


async def make_metric(session: AsyncSession, **overrides: Any) -> Metric:
    data = {"key": unique_key("metric"), "name": "A metric", "kind": "operational", **overrides}
    return await metrics_service.create(session, SYSTEM, MetricCreate(**data))


async def make_relation(session: AsyncSession, **overrides: Any) -> MetricRelation:
    """Raising one new metric raises another new one, unless ``from_metric``/``to_metric``
    (keys) or ``effect`` are given. The key defaults to ``<from>--<to>``."""
    if "from_metric" not in overrides:
        overrides["from_metric"] = (await make_metric(session)).key
    if "to_metric" not in overrides:
        overrides["to_metric"] = (await make_metric(session)).key
    data = {"effect": 1, **overrides}
    return await metrics_service.create_relation(session, SYSTEM, MetricRelationCreate(**data))


def _goal_fields(overrides: dict[str, Any]) -> dict[str, Any]:
    return {
        "key": unique_key("goal"),
        "title": "A goal",
        "direction": "increase",
        "kind": "ends",
        **overrides,
    }


async def make_goal(session: AsyncSession, **overrides: Any) -> Goal:
    """An active internal goal of a new unit on a new metric, unless ``owner``/``metric``
    (keys) are given."""
    if "owner" not in overrides:
        overrides["owner"] = (await make_unit(session)).key
    if "metric" not in overrides:
        overrides["metric"] = (await make_metric(session)).key
    return await goals_service.create(session, SYSTEM, GoalCreate(**_goal_fields(overrides)))


async def make_agreement(session: AsyncSession, **overrides: Any) -> PartnerAgreement:
    """An agreement between a new partner unit and a new department, unless ``partner`` /
    ``internal_owner`` (keys) are given."""
    if "partner" not in overrides:
        overrides["partner"] = (await make_unit(session, kind="partner")).key
    if "internal_owner" not in overrides:
        overrides["internal_owner"] = (await make_unit(session)).key
    data = {
        "key": unique_key("agreement"),
        "title": "An agreement",
        "starts_on": "2026-01-01",
        **overrides,
    }
    return await agreements_service.create(session, SYSTEM, AgreementCreate(**data))


async def make_joint_goal(
    session: AsyncSession, agreement: str, *, principal: Principal = SYSTEM, **overrides: Any
) -> Goal:
    """A goal proposed on the agreement with this key (by ``principal``: the system, or a
    partner's), owned by the agreement's partner on a new metric unless ``owner``/``metric``
    (keys) are given. It stays ``proposed`` until accepted."""
    if "owner" not in overrides:
        (read,) = await agreements_service.to_read(
            session, [await agreements_service.get(session, SYSTEM, agreement)]
        )
        overrides["owner"] = read.partner
    if "metric" not in overrides:
        overrides["metric"] = (await make_metric(session)).key
    return await goals_service.propose_joint_goal(
        session, principal, agreement, JointGoalCreate(**_goal_fields(overrides))
    )
