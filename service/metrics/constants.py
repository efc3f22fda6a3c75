from enum import IntEnum, StrEnum


class MetricKind(StrEnum):
    operational = "operational"
    financial = "financial"
    survey_score = "survey_score"
    customer_effort = "customer_effort"
    loyalty_program = "loyalty_program"
    recovery = "recovery"
    other = "other"


class Effect(IntEnum):
    """Raising the first metric tends to raise (+1) or lower (-1) the second."""

    raises = 1
    lowers = -1
