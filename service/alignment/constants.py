from enum import StrEnum


class ConflictStatus(StrEnum):
    open = "open"
    resolved = "resolved"


class Bucket(StrEnum):
    day = "day"
    week = "week"
    month = "month"
