"""Domain errors. Both transports turn them into their own error shapes.

REST answers ``application/problem+json`` with ``status``/``title`` and ``code``; GraphQL
reports ``extensions.code``. Nothing here knows about HTTP frameworks.
"""

from __future__ import annotations

from typing import Any, ClassVar


class DomainError(Exception):
    code: ClassVar[str] = "error"
    title: ClassVar[str] = "Error"
    status: ClassVar[int] = 400
    #: Seconds after which the same request may succeed (a ``Retry-After`` header), if it is
    #: worth retrying unchanged at all.
    retry_after: ClassVar[int | None] = None

    def __init__(self, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra

    @property
    def extensions(self) -> dict[str, Any]:
        return {"code": self.code, **self.extra}


class BadRequest(DomainError):
    """A request that cannot be read one way only (two credentials, for example)."""

    code = "bad_request"
    title = "Bad request"
    status = 400


class NotFound(DomainError):
    code = "not_found"
    title = "Not found"
    status = 404


class Conflict(DomainError):
    code = "conflict"
    title = "Conflict"
    status = 409


class Forbidden(DomainError):
    code = "forbidden"
    title = "Forbidden"
    status = 403


class Unauthenticated(DomainError):
    code = "unauthenticated"
    title = "Unauthenticated"
    status = 401


class Invalid(DomainError):
    """Well-formed input that breaks a rule: an unknown reference, a cycle, a bad range."""

    code = "invalid"
    title = "Unprocessable content"
    status = 422

    def __init__(self, detail: str, *, loc: tuple[str | int, ...] = (), **extra: Any) -> None:
        errors = extra.pop("errors", None) or [{"loc": list(loc), "msg": detail}]
        super().__init__(detail, errors=errors, **extra)


class PreconditionFailed(DomainError):
    code = "precondition_failed"
    title = "Precondition failed"
    status = 412


class PayloadTooLarge(DomainError):
    code = "payload_too_large"
    title = "Payload too large"
    status = 413


class Unavailable(DomainError):
    """A transient database condition (lock timeout, serialization failure): retry."""

    code = "retry"
    title = "Service busy"
    status = 503
    retry_after = 1


class NotFoundFor(NotFound):
    """Not found, naming the resource type so clients can tell which key missed."""

    def __init__(self, resource: str, key: object) -> None:
        super().__init__(f"{resource} {key!s} does not exist", resource=resource, key=str(key))


class KeyExists(Conflict):
    code = "key_exists"

    def __init__(self, resource: str, key: str) -> None:
        super().__init__(f"{resource} {key!r} already exists", resource=resource, key=key)


class StillReferenced(Conflict):
    code = "still_referenced"

    def __init__(self, resource: str, key: str, referenced_by: dict[str, int]) -> None:
        parts = ", ".join(f"{count} {kind}" for kind, count in referenced_by.items())
        super().__init__(
            f"{resource} {key!r} is still referenced by {parts}",
            resource=resource,
            key=key,
            referenced_by=referenced_by,
        )


class UnknownReference(Invalid):
    code = "unknown_reference"

    def __init__(self, field: str, resource: str, key: object, *, loc_prefix: tuple = ("body",)):
        super().__init__(
            f"{field}: {resource} {key!s} does not exist",
            loc=(*loc_prefix, field),
            field=field,
        )


class VersionMismatch(PreconditionFailed):
    code = "version_mismatch"

    def __init__(self, current_etag: str) -> None:
        super().__init__(
            "If-Match does not match the current version; fetch it again and retry",
            current_etag=current_etag,
        )
