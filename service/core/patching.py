"""JSON merge patch (RFC 7396) over flat resources, and optimistic concurrency."""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from service.core.errors import Invalid, VersionMismatch

CreateT = TypeVar("CreateT", bound=BaseModel)


def etag_for(version: int) -> str:
    return f'"{version}"'


def check_version(current: int, expected: int | None) -> None:
    """``expected`` is the version the client last saw (from If-Match), or None to skip."""
    if expected is not None and expected != current:
        raise VersionMismatch(etag_for(current))


def validation_errors(exc: ValidationError, *, prefix: tuple[str | int, ...]) -> list[dict]:
    return [{"loc": [*prefix, *err["loc"]], "msg": err["msg"]} for err in exc.errors()]


def merge(current: dict[str, Any], patch: BaseModel, schema: type[CreateT]) -> CreateT:
    """The resource after the patch, validated by the same rules as a create.

    ``current`` is the resource in its create shape. Fields absent from the patch keep their
    value; a field sent as null is cleared, which the create schema refuses when the field
    is required.
    """
    merged = {**current, **patch.model_dump(exclude_unset=True)}
    try:
        return schema.model_validate(merged)
    except ValidationError as exc:
        errors = validation_errors(exc, prefix=("body",))
        raise Invalid(errors[0]["msg"], errors=errors) from exc
