"""Validated field types and base classes shared by every domain's schemas."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Generic, TypeVar

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    StringConstraints,
    WithJsonSchema,
)

KEY_PATTERN = r"^[a-z0-9][a-z0-9._-]{0,63}$"
EXTERNAL_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:~-]{0,127}$"


def _no_control_characters(value: str) -> str:
    # PostgreSQL refuses NUL in text; other control characters are never meaningful here.
    if any(ord(ch) < 32 and ch not in "\n\r\t" for ch in value):
        raise ValueError("control characters are not allowed")
    return value


Key = Annotated[
    str,
    StringConstraints(pattern=KEY_PATTERN),
    Field(description="Client-chosen key: lowercase letters, digits, '.', '_', '-' (≤ 64)."),
]
ExternalId = Annotated[
    str,
    StringConstraints(pattern=EXTERNAL_ID_PATTERN),
    Field(description="The source system's id: letters, digits, '.', '_', ':', '~', '-' (≤ 128)."),
]
Name = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=200),
    AfterValidator(_no_control_characters),
]
Label = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=64),
    AfterValidator(_no_control_characters),
]
Text = Annotated[
    str,
    StringConstraints(max_length=4000),
    AfterValidator(_no_control_characters),
]
_ISO_DATE_START = re.compile(r"^\d{4}-\d{2}-\d{2}")


def _iso_text(value: Any) -> Any:
    # Only ISO 8601 text (or a datetime already): a bare number is not read as Unix time.
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str) or not _ISO_DATE_START.match(value):
        raise ValueError("expected an ISO 8601 timestamp such as 2026-11-02T09:00:00+01:00")
    return value


# Every instant a client sends lies in [EARLIEST, LATEST]. Far enough from datetime's own
# limits (years 1 and 9999) that adding a window (90 days back), a duration (at most
# MAX_DURATION) or a bucket step (at most 400 months) can never leave the calendar, and
# wide enough for any real handoff, feedback or score window.
EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)
LATEST = datetime(9000, 1, 1, tzinfo=UTC)
_OUT_OF_RANGE = (
    f"timestamp must be between {EARLIEST.isoformat().replace('+00:00', 'Z')} "
    f"and {LATEST.isoformat().replace('+00:00', 'Z')}"
)


def supported_instant(value: datetime) -> datetime:
    """``value`` in UTC, if it has an offset and lies in [EARLIEST, LATEST]; else ValueError."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("timestamp must have an offset, such as Z or +01:00")
    # Stored as UTC: a far-past or far-future moment that cannot be converted is invalid
    # input, not a server error.
    try:
        instant = value.astimezone(UTC)
    except (OverflowError, ValueError) as exc:
        raise ValueError(_OUT_OF_RANGE) from exc
    if not EARLIEST <= instant <= LATEST:
        raise ValueError(_OUT_OF_RANGE)
    return instant


Timestamp = Annotated[
    AwareDatetime,
    BeforeValidator(_iso_text),
    AfterValidator(supported_instant),
    Field(
        description="ISO 8601 timestamp with an offset (one without is rejected), "
        "between 1900-01-01T00:00:00Z and 9000-01-01T00:00:00Z."
    ),
]


def _convertible(value: datetime) -> datetime:
    supported_instant(value)
    return value


# A timestamp whose offset matters beyond the moment it names (a window's calendar).
LocalTimestamp = Annotated[
    AwareDatetime,
    BeforeValidator(_iso_text),
    AfterValidator(_convertible),
    Field(
        description="ISO 8601 timestamp with an offset (one without is rejected), "
        "between 1900-01-01T00:00:00Z and 9000-01-01T00:00:00Z."
    ),
]
Rating = Annotated[int, Field(ge=1, le=5)]

_DURATION = re.compile(
    r"^P(?!$)(?:(?P<weeks>\d+)W)?(?:(?P<days>\d+)D)?"
    r"(?:T(?=\d)(?:(?P<hours>\d+)H)?(?:(?P<minutes>\d+)M)?(?:(?P<seconds>\d+(?:\.\d{1,6})?)S)?)?$"
)
# The longest duration a client may send: ten years of 365 days. Longer than any real
# promise or expected time, and short enough that a supported instant plus it stays far
# inside the calendar (see LATEST).
MAX_DURATION = timedelta(days=3650)
_TOO_LONG = "a duration must not exceed 10 years (P3650D)"


def parse_duration(value: Any) -> timedelta:
    if isinstance(value, timedelta):
        parsed = value
    elif isinstance(value, str):
        match = _DURATION.match(value)
        if match is None:
            raise ValueError(
                "expected an ISO 8601 duration in weeks, days, hours, minutes or seconds, "
                "such as PT4H or P2D (years and months are ambiguous and not accepted)"
            )
        parts = {name: float(v) for name, v in match.groupdict().items() if v}
        try:
            parsed = timedelta(**parts)
        except OverflowError as exc:  # past timedelta's own limit: far over MAX_DURATION
            raise ValueError(_TOO_LONG) from exc
    else:
        # ValueError, not TypeError: pydantic reports it as a 422 validation error.
        raise ValueError("expected an ISO 8601 duration string such as PT4H")  # noqa: TRY004
    if parsed <= timedelta(0):
        raise ValueError("a duration must be positive")
    if parsed > MAX_DURATION:
        raise ValueError(_TOO_LONG)
    return parsed


def format_duration(value: timedelta) -> str:
    """ISO 8601, in the largest exact units: 4 hours is ``PT4H``, 2 days ``P2D``."""
    if value < timedelta(0):
        return "-" + format_duration(-value)
    micros = value // timedelta(microseconds=1)
    days, rest = divmod(micros, 86_400_000_000)
    hours, rest = divmod(rest, 3_600_000_000)
    minutes, rest = divmod(rest, 60_000_000)
    seconds, micro = divmod(rest, 1_000_000)
    out = "P" + (f"{days}D" if days else "")
    clock = ""
    if hours:
        clock += f"{hours}H"
    if minutes:
        clock += f"{minutes}M"
    if seconds or micro:
        clock += f"{seconds}.{micro:06d}".rstrip("0").rstrip(".") + "S"
    if clock:
        out += "T" + clock
    return out if out != "P" else "PT0S"


# For requests: a positive ISO 8601 duration in weeks, days, hours, minutes or seconds, at
# most MAX_DURATION (10 years, P3650D); anything else, however large, is a 422.
IsoDuration = Annotated[
    timedelta,
    BeforeValidator(parse_duration),
    PlainSerializer(format_duration, return_type=str, when_used="json"),
    WithJsonSchema(
        {
            "type": "string",
            "format": "duration",
            "description": "Positive ISO 8601 duration in weeks, days, hours, minutes or "
            "seconds, at most 10 years (P3650D).",
            "examples": ["PT4H", "P2D"],
        }
    ),
]

# For responses: any duration (zero, or longer than an input may be), written the same way.
DurationRead = Annotated[
    timedelta,
    PlainSerializer(format_duration, return_type=str, when_used="json"),
    WithJsonSchema({"type": "string", "format": "duration", "examples": ["PT4H", "P2D"]}),
]


class InputModel(BaseModel):
    """Request bodies: unknown fields are refused (no mass assignment), no NaN or infinity."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class ReadModel(BaseModel):
    model_config = ConfigDict(from_attributes=True)


T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = Field(
        description="Pass as ?cursor= for the next page; null on the last page."
    )
