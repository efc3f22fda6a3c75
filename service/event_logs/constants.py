from __future__ import annotations

from enum import StrEnum


class LogFormat(StrEnum):
    csv = "csv"
    xes = "xes"


class LogStatus(StrEnum):
    importing = "importing"
    ready = "ready"
    failed = "failed"


#: Text columns of a row (case, unit, activity, status, resource) hold at most this much.
MAX_VALUE_LENGTH = 200
#: Bad rows listed (with their line numbers) on the log; the rest are only counted.
MAX_REPORTED_REJECTIONS = 100
