"""GraphQL enums over the domain's own enums: the same names and values as REST's schema.

Each domain enum is registered once, here (Strawberry refuses a second registration). A
finding's ``rule`` stays a string: rule names hold hyphens, which GraphQL names cannot.
"""

from __future__ import annotations

import strawberry

from service.alignment.constants import ConflictStatus as ConflictStatusValue
from service.alignment.constants import FindingStatus as FindingStatusValue
from service.alignment.constants import FindingStatusFilter as FindingStatusFilterValue
from service.goals.constants import Direction as DirectionValue
from service.goals.constants import GoalKind as GoalKindValue
from service.goals.constants import GoalStatus as GoalStatusValue
from service.goals.constants import ProposedBy as ProposedByValue
from service.handoffs.constants import EventStatus as EventStatusValue
from service.handoffs.constants import HandoffStatus as HandoffStatusValue
from service.journeys.constants import FeedbackScale as FeedbackScaleValue
from service.metrics.constants import MetricKind as MetricKindValue
from service.org_units.constants import UnitKind as UnitKindValue
from service.partner_agreements.constants import AgreementStatus as AgreementStatusValue
from service.webhooks.constants import DeliveryStatus as DeliveryStatusValue

AgreementStatus = strawberry.enum(AgreementStatusValue)
ConflictStatus = strawberry.enum(ConflictStatusValue)
DeliveryStatus = strawberry.enum(DeliveryStatusValue)
Direction = strawberry.enum(DirectionValue)
EventStatus = strawberry.enum(EventStatusValue, description="pending, delivered or overdue, now.")
FeedbackScale = strawberry.enum(FeedbackScaleValue)
FindingStatus = strawberry.enum(FindingStatusValue)
FindingStatusFilter = strawberry.enum(FindingStatusFilterValue)
GoalKind = strawberry.enum(GoalKindValue)
GoalStatus = strawberry.enum(GoalStatusValue)
HandoffStatus = strawberry.enum(HandoffStatusValue)
MetricKind = strawberry.enum(MetricKindValue)
ProposedBy = strawberry.enum(ProposedByValue)
UnitKind = strawberry.enum(UnitKindValue)
