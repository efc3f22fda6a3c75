from enum import StrEnum


class Direction(StrEnum):
    increase = "increase"
    decrease = "decrease"
    maintain = "maintain"


class GoalKind(StrEnum):
    means = "means"
    ends = "ends"


class GoalStatus(StrEnum):
    proposed = "proposed"
    active = "active"
    retired = "retired"


class ProposedBy(StrEnum):
    internal = "internal"
    partner = "partner"
