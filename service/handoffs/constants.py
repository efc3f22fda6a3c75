from enum import StrEnum


class HandoffStatus(StrEnum):
    active = "active"
    retired = "retired"


class EventStatus(StrEnum):
    """How an occurrence stands right now (a filter, derived from its timestamps)."""

    pending = "pending"  # not delivered, not yet due
    delivered = "delivered"
    overdue = "overdue"  # not delivered, due date passed
