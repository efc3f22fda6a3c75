from enum import StrEnum


class EventType(StrEnum):
    """What a subscription can be told about (payload: ``type``, ``timestamp``, ``data``)."""

    handoff_event_overdue = "handoff_event.overdue"
    handoff_event_delivered_late = "handoff_event.delivered_late"
    handoff_health_dropped = "handoff.health_dropped"
    conflict_opened = "conflict.opened"
    conflict_resolved = "conflict.resolved"
    finding_opened = "finding.opened"
    finding_cleared = "finding.cleared"
    joint_goal_proposed = "joint_goal.proposed"
    joint_goal_accepted = "joint_goal.accepted"
    event_log_ready = "event_log.ready"
    webhook_test = "webhook.test"


class DeliveryStatus(StrEnum):
    pending = "pending"  # waiting for its next attempt (or leased by a dispatcher)
    succeeded = "succeeded"
    failed = "failed"  # every retry of the schedule failed
