"""Every table, imported once so metadata (and Alembic) sees the whole schema."""

from service.alignment.models import Conflict, Finding
from service.api_keys.models import ApiKey
from service.event_logs.models import EventLog, EventLogArc, EventLogRow, EventLogUnit
from service.goals.models import Goal, GoalCheckIn, GoalContribution, GoalTouchpoint
from service.handoffs.models import Handoff, HandoffEvent, HandoffReview
from service.idempotency.models import IdempotencyRecord
from service.journeys.models import Feedback, Journey, Touchpoint
from service.metrics.models import Metric, MetricRelation
from service.org_units.models import Unit
from service.partner_agreements.models import PartnerAgreement
from service.webhooks.models import WebhookDelivery, WebhookMessage, WebhookSubscription

__all__ = [
    "ApiKey",
    "Conflict",
    "EventLog",
    "EventLogArc",
    "EventLogRow",
    "EventLogUnit",
    "Feedback",
    "Finding",
    "Goal",
    "GoalCheckIn",
    "GoalContribution",
    "GoalTouchpoint",
    "Handoff",
    "HandoffEvent",
    "HandoffReview",
    "IdempotencyRecord",
    "Journey",
    "Metric",
    "MetricRelation",
    "PartnerAgreement",
    "Touchpoint",
    "Unit",
    "WebhookDelivery",
    "WebhookMessage",
    "WebhookSubscription",
]
