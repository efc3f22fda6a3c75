from datetime import timedelta
from enum import StrEnum

#: A score's window when none is given, and the window stored findings are judged over.
DEFAULT_WINDOW = timedelta(days=90)


class ConflictStatus(StrEnum):
    open = "open"
    resolved = "resolved"


class FindingStatus(StrEnum):
    open = "open"
    cleared = "cleared"


class FindingStatusFilter(StrEnum):
    """Which findings a listing shows."""

    open = "open"
    cleared = "cleared"
    all = "all"

    def as_status(self) -> FindingStatus | None:
        return None if self is FindingStatusFilter.all else FindingStatus(self.value)


class SubjectType(StrEnum):
    """What a finding is about; its subject id is that row's id."""

    unit = "unit"
    handoff = "handoff"
    goal = "goal"
    journey = "journey"
    touchpoint = "touchpoint"
    agreement = "agreement"
    conflict = "conflict"
    # An arc discovered in an event log: its id is derived from the log and the arc's
    # units (service/event_logs/arc_subjects.py), since arcs are stored without one.
    discovered_arc = "discovered_arc"


class Bucket(StrEnum):
    day = "day"
    week = "week"
    month = "month"
