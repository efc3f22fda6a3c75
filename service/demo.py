"""The demo organisation: Harbor Bank, drawn from the stories SiloSpan was born from.

- A customer calls about two issues at once (a disputed card payment and a mortgage
  payment change). The fix one department makes for the first issue complicates the
  second, and the customer is passed between departments: transfers and a ping-pong.
- Card services sends dispute outcomes to the contact centre late and incomplete, so the
  front line buffers the misses in front of the customer.
- A card-printing supplier and a courier partner complete the chain to the customer.

Everything is created through the domain services, so the demo obeys every rule a client
would. Event times are relative to the moment the demo is loaded, so the default score
window (the last 90 days) always covers them.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from service.api_keys import service as api_keys_service
from service.api_keys.schemas import ApiKeyCreate
from service.api_keys.service import SYSTEM
from service.core.config import get_settings
from service.core.db import Database, transaction
from service.core.fields import parse_duration
from service.core.permissions import Role
from service.goals import service as goals_service
from service.goals.schemas import GoalCreate, JointGoalCreate
from service.handoffs import service as handoffs_service
from service.handoffs.schemas import HandoffCreate, ReviewCreate
from service.journeys import service as journeys_service
from service.journeys.schemas import JourneyCreate, TouchpointCreate
from service.metrics import service as metrics_service
from service.metrics.schemas import MetricCreate, MetricRelationCreate
from service.org_units import service as units_service
from service.org_units.models import Unit
from service.org_units.schemas import UnitCreate
from service.partner_agreements import service as agreements_service
from service.partner_agreements.schemas import AgreementCreate

DAYS = 42

UNITS = [
    ("contact-centre", "Contact centre", "department", None),
    ("card-services", "Card services", "department", None),
    ("disputes", "Disputes team", "team", "card-services"),
    ("mortgage-ops", "Mortgage operations", "department", None),
    ("compliance", "Compliance and fraud", "department", None),
    ("marketing", "Marketing", "department", None),
    ("plastix-cards", "Plastix Cards (card printing)", "supplier", None),
    ("swiftline", "Swiftline Logistics (courier)", "partner", None),
]


@dataclass(frozen=True)
class HandoffProfile:
    """How one handoff behaves in the generated history."""

    key: str
    from_unit: str
    to_unit: str
    deliverable: str
    touchpoint: str | None
    expected_within: str | None
    per_day: float
    on_time: float  # probability of delivering by the due date
    quality: tuple[int, ...]  # ratings drawn uniformly
    rework: float
    customer_impact: float
    review: tuple[int, int]  # (timeliness, quality) the recipient gives each month


HANDOFFS = [
    HandoffProfile(
        "dispute-intake", "contact-centre", "disputes", "Dispute intake with transaction details",
        "dispute-resolution", "PT2H", 6, 0.9, (4, 4, 5), 0.05, 0.0, (4, 4),
    ),
    HandoffProfile(
        "dispute-outcome", "disputes", "contact-centre", "Dispute decision the rep can explain",
        "dispute-resolution", "P1D", 6, 0.62, (2, 3, 3, 4), 0.22, 0.18, (2, 2),
    ),
    HandoffProfile(
        "fraud-check", "compliance", "disputes", "Fraud screening of the disputed payment",
        "dispute-resolution", "PT8H", 5, 0.85, (3, 4, 4, 5), 0.05, 0.0, (4, 3),
    ),
    HandoffProfile(
        "card-block", "card-services", "contact-centre", "Card blocked and replacement ordered",
        "service-call", "PT1H", 4, 0.8, (3, 4, 5), 0.08, 0.12, (3, 4),
    ),
    HandoffProfile(
        "payment-change", "mortgage-ops", "contact-centre", "Mortgage payment change confirmed",
        "payment-confirmation", "P2D", 3, 0.7, (3, 3, 4, 5), 0.1, 0.09, (3, 3),
    ),
    HandoffProfile(
        "kyc-refresh", "compliance", "mortgage-ops", "Identity re-check before account changes",
        "payment-confirmation", "P1D", 2, 0.75, (3, 4), 0.05, 0.0, (3, 4),
    ),
    HandoffProfile(
        "card-print", "plastix-cards", "card-services", "Printed replacement card",
        "card-delivery", "P2D", 3, 0.9, (4, 5), 0.03, 0.0, (4, 5),
    ),
    HandoffProfile(
        "card-dispatch", "card-services", "swiftline", "Card package ready for collection",
        "card-delivery", "PT12H", 3, 0.85, (4, 4, 5), 0.02, 0.0, (4, 4),
    ),
    HandoffProfile(
        "offer-scripts", "marketing", "contact-centre", "Cross-sell offers for service calls",
        "service-call", None, 1, 0.9, (2, 3), 0.0, 0.0, (2, 2),
    ),
]


JOURNEY = {
    "key": "multi-issue-enquiry",
    "name": "Resolve a multi-issue enquiry",
    "segment": "retail banking",
    "stages": ["contact", "diagnose", "resolve", "confirm"],
}

# key, stage, name, channel, owner, moment of truth, declared driver weight, promise
TOUCHPOINTS = [
    ("service-call", "contact", "Service call", "phone", "contact-centre", True, 0.5, None),
    ("dispute-resolution", "resolve", "Dispute resolved", "phone", "contact-centre", True, 0.4,
     "P1D"),
    ("payment-confirmation", "confirm", "Payment change confirmed", "email", "contact-centre",
     False, 0.2, "P3D"),
    ("card-delivery", "confirm", "Replacement card delivered", "mail", "swiftline", False, 0.3,
     "P5D"),
]


# key, name, measured in, kind
METRICS = [
    ("call.handle_time", "Average handle time of service calls", "seconds", "operational"),
    ("call.rapport", "Rapport rating after service calls", "1-5", "survey_score"),
    ("call.offers_accepted", "Cross-sell offers accepted per service call", "%", "financial"),
    ("nps", "Net promoter score", "-100..100", "survey_score"),
    ("dispute.csat", "Satisfaction with dispute outcomes", "1-5", "survey_score"),
    ("payment.csat", "Satisfaction with payment changes", "1-5", "survey_score"),
    ("dispute.days_to_decide", "Days from dispute intake to decision", "days", "operational"),
    ("delivery.on_time_rate", "Cards delivered by the promised date", "%", "operational"),
    ("rewards.enrolments", "Customers enrolled in the rewards programme", "count", "loyalty_program"),
    ("complaints.saved", "Complaints rescued before the customer leaves", "count", "recovery"),
    ("audit.findings", "Open audit findings", "count", "operational"),
]

# from, to, effect, note
RELATIONS = [
    ("call.handle_time", "call.rapport", 1, "raising handle time raises rapport"),
    ("call.offers_accepted", "call.rapport", -1, "rapid-fire offers at the end of a call cost rapport"),
]

# key, title, owner, metric, direction, kind, incentive, touchpoints, contributes_to
GOALS = [
    ("mkt.swift-calls", "Keep service calls short", "marketing", "call.handle_time", "decrease",
     "means", 0.10, ["service-call"], []),
    ("mkt.upsell-calls", "Sell on every service call", "marketing", "call.offers_accepted",
     "increase", "ends", 0.15, ["service-call"], []),
    ("mkt.rewards", "Enrol customers in rewards", "marketing", "rewards.enrolments", "increase",
     "ends", 0.05, [], []),
    ("cc.nps", "Customers who recommend us", "contact-centre", "nps", "increase", "ends", 0.0,
     ["service-call"], []),
    ("cc.rapport", "Build rapport on every call", "contact-centre", "call.rapport", "increase",
     "means", 0.0, ["service-call"], ["cc.nps"]),
    ("cc.saves", "Rescue unhappy customers", "contact-centre", "complaints.saved", "increase",
     "ends", 0.05, ["payment-confirmation"], []),
    ("disputes.csat", "Customers satisfied with dispute outcomes", "disputes", "dispute.csat",
     "increase", "ends", 0.0, ["dispute-resolution"], []),
    ("disputes.speed", "Decide disputes within a day", "disputes", "dispute.days_to_decide",
     "decrease", "means", 0.0, ["dispute-resolution"], []),
    ("mortgage.csat", "Customers satisfied with payment changes", "mortgage-ops", "payment.csat",
     "increase", "ends", 0.0, ["payment-confirmation"], []),
    ("compliance.audit", "No open audit findings", "compliance", "audit.findings", "decrease",
     "ends", 0.10, [], []),
]

AGREEMENT = {
    "key": "swiftline-cards-2026",
    "title": "Replacement card delivery",
    "partner": "swiftline",
    "internal_owner": "card-services",
    "status": "active",
    "terms": "Collection within 12 hours of dispatch; delivery within 3 working days.",
}
JOINT_GOAL = {
    "key": "swiftline.on-time",
    "title": "Deliver cards by the agreed date",
    "owner": "swiftline",
    "metric": "delivery.on_time_rate",
    "direction": "increase",
    "target": 0.97,
    "kind": "means",
}


async def load_demo() -> tuple[str, bool]:
    """Load the demo into the configured database if it is empty; return a reader key."""
    db = Database.from_settings(get_settings())
    try:
        async with transaction(db.write_sessions) as session:
            empty = not await session.scalar(select(func.count()).select_from(Unit))
            if empty:
                await build(session, now=datetime.now(UTC))
            _, secret = await api_keys_service.create(
                session, SYSTEM, ApiKeyCreate(name="demo reader", role=Role.reader)
            )
        return secret, empty
    finally:
        await db.dispose()


async def build(session: AsyncSession, *, now: datetime, seed: int = 7781) -> None:
    """Create the whole demo organisation in ``session`` (the caller commits)."""
    rng = random.Random(seed)
    now = now.replace(minute=0, second=0, microsecond=0)
    for key, name, kind, parent in UNITS:
        await units_service.create(
            session, SYSTEM, UnitCreate(key=key, name=name, kind=kind, parent=parent)
        )
    await journeys_service.create_journey(session, SYSTEM, JourneyCreate(**JOURNEY))
    for key, stage, name, channel, owner, moment, weight, promise in TOUCHPOINTS:
        await journeys_service.create_touchpoint(
            session,
            SYSTEM,
            TouchpointCreate(
                key=key,
                journey=JOURNEY["key"],
                stage=stage,
                name=name,
                channel=channel,
                owner=owner,
                moment_of_truth=moment,
                driver_weight=weight,
                promise_within=promise,
            ),
        )
    for profile in HANDOFFS:
        await handoffs_service.create(
            session,
            SYSTEM,
            HandoffCreate(
                key=profile.key,
                from_unit=profile.from_unit,
                to_unit=profile.to_unit,
                deliverable=profile.deliverable,
                touchpoint=profile.touchpoint,
                expected_within=profile.expected_within,
                quality_threshold=3,
            ),
        )
    events = [event for profile in HANDOFFS for event in _history(profile, rng, now)]
    events.extend(_multi_issue_case(now))
    result = await handoffs_service.ingest_events(session, SYSTEM, _batches(events))
    assert not result.errors, result.errors
    await _goals(session, now)
    feedback = _feedback(rng, now)
    result = await journeys_service.ingest_feedback(session, SYSTEM, _batches(feedback))
    assert not result.errors, result.errors
    for profile in HANDOFFS:
        for months_ago in (1, 0):
            at = now - timedelta(days=30 * months_ago + 2)
            await handoffs_service.add_review(
                session,
                SYSTEM,
                profile.key,
                ReviewCreate(
                    at=at,
                    period=at.strftime("%Y-%m"),
                    timeliness=profile.review[0],
                    quality=profile.review[1],
                    needs=_NEEDS.get(profile.key),
                ),
            )


async def _goals(session: AsyncSession, now: datetime) -> None:
    """The dueling phone-rep goals, the other silos' goals, and a partner judged on dates."""
    for key, name, unit, kind in METRICS:
        await metrics_service.create(
            session, SYSTEM, MetricCreate(key=key, name=name, unit=unit, kind=kind)
        )
    for from_metric, to_metric, effect, note in RELATIONS:
        await metrics_service.create_relation(
            session,
            SYSTEM,
            MetricRelationCreate(from_metric=from_metric, to_metric=to_metric, effect=effect, note=note),
        )
    year = date(now.year, 1, 1)
    for key, title, owner, metric, direction, kind, incentive, touchpoints, serves in GOALS:
        await goals_service.create(
            session,
            SYSTEM,
            GoalCreate(
                key=key,
                title=title,
                owner=owner,
                metric=metric,
                direction=direction,
                kind=kind,
                incentive_weight=incentive,
                period_start=year,
                period_end=date(now.year, 12, 31),
                touchpoints=touchpoints,
                contributes_to=serves,
            ),
        )
    await agreements_service.create(
        session, SYSTEM, AgreementCreate(**AGREEMENT, starts_on=year)
    )
    await goals_service.propose_joint_goal(
        session, SYSTEM, AGREEMENT["key"], JointGoalCreate(**JOINT_GOAL, period_start=year)
    )
    await goals_service.accept_joint_goal(session, SYSTEM, AGREEMENT["key"], JOINT_GOAL["key"])


_NEEDS = {
    "dispute-outcome": "The decision and the reason in words a customer understands, the same day.",
    "offer-scripts": "Offers that fit why the customer called, not a quota to read out.",
    "payment-change": "Confirmation before the customer's next statement is produced.",
}


def _history(profile: HandoffProfile, rng: random.Random, now: datetime) -> list[dict[str, Any]]:
    within = _duration(profile.expected_within) or timedelta(hours=8)
    events = []
    start = now - timedelta(days=DAYS)
    count = int(profile.per_day * DAYS)
    for n in range(count):
        started = start + timedelta(minutes=rng.randrange(DAYS * 24 * 60))
        due = started + within
        if due > now and rng.random() < 0.5:
            delivered = None  # still in progress
        elif rng.random() < profile.on_time:
            delivered = started + within * rng.uniform(0.2, 1.0)
        else:
            late = started + within * rng.uniform(1.05, 3.0)
            delivered = late if late <= now else None
        event: dict[str, Any] = {
            "handoff": profile.key,
            "external_id": f"{profile.key}-{n:05d}",
            "started_at": started.isoformat(),
            "due_at": due.isoformat() if profile.expected_within is None else None,
            "delivered_at": delivered.isoformat() if delivered else None,
            "rework": delivered is not None and rng.random() < profile.rework,
            "customer_impact": rng.random() < profile.customer_impact,
        }
        if delivered is not None:
            event["quality"] = rng.choice(profile.quality)
        events.append({k: v for k, v in event.items() if v is not None})
    return events


# touchpoint, scale, customers, how satisfied on average (0–1), how much loyalty follows it
FEEDBACK = [
    ("service-call", "csat", 320, 0.62, 0.8),
    ("dispute-resolution", "ces", 140, 0.45, 0.9),
    ("payment-confirmation", "csat", 70, 0.55, 0.4),
    ("card-delivery", "nps", 110, 0.7, 0.6),
]


def _feedback(rng: random.Random, now: datetime) -> list[dict[str, Any]]:
    """A few hundred customers' ratings; loyalty follows satisfaction where it drives it."""
    records = []
    for touchpoint, scale, customers, satisfied, follows in FEEDBACK:
        low, high = {"csat": (1, 5), "ces": (1, 7), "nps": (0, 10)}[scale]
        for n in range(customers):
            happiness = min(1.0, max(0.0, rng.gauss(satisfied, 0.22)))
            score = round(low + (high - low) * (1 - happiness if scale == "ces" else happiness))
            loyalty = follows * happiness * 10 + (1 - follows) * rng.uniform(0, 10)
            records.append(
                {
                    "touchpoint": touchpoint,
                    "external_id": f"{touchpoint}-survey-{n:04d}",
                    "at": (now - timedelta(minutes=rng.randrange(DAYS * 24 * 60))).isoformat(),
                    "scale": scale,
                    "score": score,
                    "loyalty": round(min(10.0, max(0.0, loyalty)), 1) if n % 5 else None,
                }
            )
    return records


def _multi_issue_case(now: datetime) -> list[dict[str, Any]]:
    """One customer, two issues: the card block that settles the dispute also stops the
    card the mortgage payment was taken from, so mortgage operations sends the case back."""
    day = now - timedelta(days=9)

    def step(n: int, handoff: str, hours: float, took: float, **extra: Any) -> dict[str, Any]:
        started = day + timedelta(hours=hours)
        return {
            "handoff": handoff,
            "external_id": f"case-7781-{n}",
            "started_at": started.isoformat(),
            "delivered_at": (started + timedelta(hours=took)).isoformat(),
            "case_ref": "case-7781",
            "quality": extra.pop("quality", 3),
            **extra,
        }

    return [
        step(1, "dispute-intake", 0.0, 1.5),
        step(2, "fraud-check", 2.0, 6.0),
        step(3, "dispute-outcome", 9.0, 30.0, quality=2, rework=True, customer_impact=True),
        step(4, "dispute-intake", 40.0, 3.0, note="Customer called back: outcome unclear"),
        step(5, "card-block", 44.0, 0.5, note="Card blocked to settle the dispute"),
        step(6, "kyc-refresh", 45.0, 20.0),
        step(7, "payment-change", 66.0, 50.0, quality=2, customer_impact=True,
             note="Direct debit failed: it was set up on the blocked card"),
    ]


def _duration(iso: str | None) -> timedelta | None:
    return parse_duration(iso) if iso is not None else None


async def _batches(items: list[dict[str, Any]], size: int = 2000) -> AsyncIterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
