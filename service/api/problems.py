"""RFC 9457 problem details for every error the HTTP API returns."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

import orjson
import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from service.core.config import get_settings
from service.core.db import is_transient
from service.core.errors import DomainError, Unauthenticated, Unavailable

PROBLEM_MEDIA_TYPE = "application/problem+json"
#: Set on the request scope when its transaction failed transiently (see RetryMiddleware).
TRANSIENT = "silospan.transient"
log = structlog.get_logger("silospan.errors")


class ValidationIssue(BaseModel):
    loc: list[str | int]
    msg: str


class Problem(BaseModel):
    """An error, as RFC 9457 problem details."""

    model_config = ConfigDict(extra="allow")

    type: str = Field(examples=["https://silospan.dev/problems/not_found"])
    title: str
    status: int
    detail: str
    instance: str | None = None
    code: str
    errors: list[ValidationIssue] | None = None


class ProblemResponse(Response):
    media_type = PROBLEM_MEDIA_TYPE

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, option=orjson.OPT_NON_STR_KEYS)


def problem(
    request: Request | None,
    *,
    status: int,
    code: str,
    detail: str,
    title: str | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> ProblemResponse:
    settings = request.app.state.settings if request is not None else get_settings()
    body = {
        "type": settings.problem_type_base + code,
        "title": title or HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        "code": code,
        **({"instance": request.url.path} if request is not None else {}),
        **extra,
    }
    return ProblemResponse(body, status_code=status, headers=headers)


def _domain_error(request: Request, exc: DomainError) -> ProblemResponse:
    headers = {}
    if isinstance(exc, Unauthenticated):
        headers["WWW-Authenticate"] = 'Bearer realm="silospan"'
    if exc.retry_after is not None:
        headers["Retry-After"] = str(exc.retry_after)
    return problem(
        request,
        status=exc.status,
        title=exc.title,
        detail=exc.detail,
        headers=headers,
        **exc.extensions,
    )


def _clean_loc(loc: tuple[Any, ...]) -> list[str | int]:
    return [part if isinstance(part, int) else str(part) for part in loc]


def _validation_error(request: Request, exc: RequestValidationError) -> ProblemResponse:
    errors = [{"loc": _clean_loc(err["loc"]), "msg": err["msg"]} for err in exc.errors()]
    first = errors[0] if errors else {"loc": [], "msg": "invalid request"}
    where = ".".join(str(p) for p in first["loc"])
    return problem(
        request,
        status=422,
        code="validation_failed",
        title="Unprocessable content",
        detail=f"{where}: {first['msg']}" if where else first["msg"],
        errors=errors,
    )


def _http_error(request: Request, exc: StarletteHTTPException) -> ProblemResponse:
    codes = {
        404: "not_found",
        405: "method_not_allowed",
        408: "request_timeout",
        413: "payload_too_large",
    }
    detail = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).description
    headers = dict(exc.headers or {})
    if exc.status_code == 400 and detail == "There was an error parsing the body":
        # FastAPI's answer to a body that is not UTF-8 JSON: the same 422 as any bad body.
        return problem(
            request,
            status=422,
            code="validation_failed",
            title="Unprocessable content",
            detail="body: the body is not valid UTF-8 JSON",
            errors=[{"loc": ["body"], "msg": "the body is not valid UTF-8 JSON"}],
        )
    if exc.status_code == 404 and detail == "Not Found":
        detail = f"no route matches {request.url.path}"
    if exc.status_code == 405:
        allowed = allowed_methods(request.app.state.api_routes, request.url.path)
        headers["Allow"] = ", ".join(allowed)
        detail = f"{request.method} is not supported here; use {', '.join(allowed)}"
    return problem(
        request,
        status=exc.status_code,
        code=codes.get(exc.status_code, f"http_{exc.status_code}"),
        detail=detail,
        headers=headers,
    )


def matching_routes(routes: list[APIRoute], path: str) -> list[APIRoute]:
    """The routes serving ``path``. A literal path (/v1/conflicts/detect) wins over a
    template that also matches it (/v1/conflicts/{conflict_id}), as in routing."""
    matching = [route for route in routes if route.path_regex.match(path)]
    literal = [route for route in matching if "{" not in route.path]
    return literal or matching


def allowed_methods(routes: list[APIRoute], path: str) -> list[str]:
    """Every method some route serves at ``path`` (Starlette names only the first match's)."""
    return sorted({method for route in matching_routes(routes, path) for method in route.methods})


def _database_error(request: Request, exc: DBAPIError) -> ProblemResponse:
    if is_transient(exc):
        log.warning("transient database error", path=request.url.path, error=str(exc.orig))
        request.scope[TRANSIENT] = True  # RetryMiddleware may run the request again
        return _domain_error(
            request, Unavailable("the database is busy with concurrent work; retry the request")
        )
    return _unhandled(request, exc)


def _pool_exhausted(request: Request, exc: PoolTimeout) -> ProblemResponse:
    # Every connection stayed in use for SILOSPAN_DB_POOL_TIMEOUT_SECONDS: answer now
    # rather than queue the client behind a saturated database.
    log.warning("no database connection free", path=request.url.path)
    return _domain_error(
        request, Unavailable("every database connection is in use; retry the request shortly")
    )


def _unhandled(request: Request, exc: Exception) -> ProblemResponse:
    log.exception("unhandled error", path=request.url.path, exc_info=exc)
    return problem(
        request,
        status=500,
        code="internal_error",
        detail="the server could not complete the request; it has been logged",
    )


def install(app: FastAPI) -> None:
    app.add_exception_handler(DomainError, _domain_error)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, _validation_error)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, _http_error)  # type: ignore[arg-type]
    app.add_exception_handler(DBAPIError, _database_error)  # type: ignore[arg-type]
    app.add_exception_handler(PoolTimeout, _pool_exhausted)  # type: ignore[arg-type]
    app.add_exception_handler(Exception, _unhandled)


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for the problems a route can answer (besides the shared ones)."""
    return {
        status: {"model": Problem, "description": HTTPStatus(status).phrase}
        for status in statuses
    }
