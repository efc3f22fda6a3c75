"""FastAPI dependencies: sessions, the caller, pagination, preconditions."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import Depends, Header, Path, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from service.api_keys import service as api_keys_service
from service.core.config import Settings, get_settings
from service.core.db import Database
from service.core.errors import BadRequest, Invalid, Unauthenticated
from service.core.fields import EXTERNAL_ID_PATTERN, KEY_PATTERN
from service.core.pagination import PageRequest
from service.core.permissions import Action, Principal
from service.dashboard import sessions as dashboard_sessions


def get_write_sessions(request: Request) -> async_sessionmaker[AsyncSession]:
    db: Database = request.app.state.db
    return db.write_sessions


def get_read_sessions(request: Request) -> async_sessionmaker[AsyncSession]:
    db: Database = request.app.state.db
    return db.read_sessions


WriteSessionsDep = Annotated[async_sessionmaker[AsyncSession], Depends(get_write_sessions)]
ReadSessionsDep = Annotated[async_sessionmaker[AsyncSession], Depends(get_read_sessions)]


async def get_session(sessions: WriteSessionsDep) -> AsyncIterator[AsyncSession]:
    """The request's write transaction: committed when the endpoint returns, before the
    response is sent (scope="function"), rolled back when it raises."""
    async with sessions() as session:
        try:
            yield session
            await session.commit()
        except BaseException:
            await session.rollback()
            raise


async def get_read_session(sessions: ReadSessionsDep) -> AsyncIterator[AsyncSession]:
    """A read-only transaction (a replica when configured); never commits."""
    async with sessions() as session:
        try:
            yield session
        finally:
            await session.rollback()


SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]
ReadSessionDep = Annotated[AsyncSession, Depends(get_read_session, scope="function")]
SettingsDep = Annotated[Settings, Depends(get_settings)]


class BearerKey(HTTPBearer):
    """The request's one ``Authorization: Bearer`` credential (or None).

    Two or more ``Authorization`` headers are refused (400) before either is looked at:
    which one a proxy, a log or the server honours would otherwise differ.
    """

    async def __call__(self, request: Request) -> HTTPAuthorizationCredentials | None:
        count = len(request.headers.getlist("authorization"))
        if count > 1:
            raise BadRequest(
                f"send one Authorization header; this request has {count}",
                header="Authorization",
            )
        return await super().__call__(request)


_bearer = BearerKey(
    auto_error=False,
    scheme_name="HTTPBearer",
    description="An API key: `Authorization: Bearer ss_...`. Create one with "
    "`silospan keys create` or POST /v1/api-keys.",
)
# The bearer credentials as such, for a route that authenticates only when a setting says
# so, and for GraphQL's context.
bearer_credentials = _bearer


def dashboard_session(request: Request) -> str | None:
    """The dashboard's session cookie, on the same-origin calls its page makes (else None)."""
    return dashboard_sessions.token_of(request.cookies, request.headers)


async def get_principal(
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    sessions: ReadSessionsDep,
    dashboard_token: Annotated[str | None, Depends(dashboard_session)] = None,
) -> Principal:
    if credentials is None and dashboard_token is not None:
        async with sessions() as session:
            return await dashboard_sessions.authenticate(session, dashboard_token)
    if credentials is None:
        raise Unauthenticated("send an API key as 'Authorization: Bearer <secret>'")
    # A short transaction of its own: the key lookup never holds a connection for the
    # rest of the request.
    async with sessions() as session:
        return await api_keys_service.authenticate(session, credentials.credentials)


def allow(action: Action) -> Any:
    """The authenticated caller, if its role may perform ``action`` (else 403).

    The action is kept on the dependency so the OpenAPI document and the authorization
    matrix test can read which action each route performs.
    """

    async def authorized(principal: Annotated[Principal, Depends(get_principal)]) -> Principal:
        principal.require(action)
        return principal

    authorized.action = action  # type: ignore[attr-defined]
    return Depends(authorized)


def page_params(
    settings: SettingsDep,
    limit: Annotated[
        int | None,
        Query(ge=1, le=2**31, description="Page size: default 50; larger values are cut to 500."),
    ] = None,
    cursor: Annotated[
        str | None, Query(max_length=512, description="next_cursor of the previous page.")
    ] = None,
) -> PageRequest:
    size = settings.page_default if limit is None else min(limit, settings.page_max)
    return PageRequest(limit=size, cursor=cursor or None)


PageDep = Annotated[PageRequest, Depends(page_params)]


def if_match_version(
    if_match: Annotated[
        str | None,
        Header(
            alias="If-Match",
            max_length=128,
            description="The ETag you last read; the change is refused with 412 if it is stale.",
        ),
    ] = None,
) -> int | None:
    if if_match is None or if_match.strip() == "*":
        return None
    tag = if_match.strip().removeprefix("W/").strip('"')
    # A tag this API never issued matches no version: the update answers 412 once the
    # caller and the resource have been checked, like any stale tag.
    return int(tag) if tag.isdigit() and len(tag) < 18 else -1


IfMatchDep = Annotated[int | None, Depends(if_match_version)]


KeyPath = Annotated[str, Path(pattern=KEY_PATTERN, description="The resource's key.")]
ExternalIdPath = Annotated[
    str, Path(pattern=EXTERNAL_ID_PATTERN, description="The source system's id for the record.")
]
KeyFilter = Annotated[
    str | None, Query(pattern=KEY_PATTERN, description="Only rows referring to this key.")
]


def reject_unknown_query(
    request: Request, _caller: Annotated[Principal, Depends(get_principal)]
) -> None:
    """Refuse query parameters the route does not take (a typo is an error, not a no-op).

    It depends on the caller so that a request without a valid key is a 401 first.
    """
    route = request.scope.get("route")
    allowed = _query_names(route) if route is not None else None
    if allowed is None:
        return
    unknown = sorted(set(request.query_params) - allowed)
    if unknown:
        raise Invalid(
            f"unknown query parameter(s): {', '.join(unknown)}",
            errors=[{"loc": ["query", name], "msg": "unknown parameter"} for name in unknown],
        )


_QUERY_NAMES: dict[int, frozenset[str] | None] = {}


def _query_names(route: Any) -> frozenset[str] | None:
    key = id(route)
    if key not in _QUERY_NAMES:
        dependant = getattr(route, "dependant", None)
        if dependant is None:
            _QUERY_NAMES[key] = None
        else:
            names: set[str] = set()
            pending = [dependant]
            while pending:
                current = pending.pop()
                names.update(param.alias for param in current.query_params)
                pending.extend(current.dependencies)
            _QUERY_NAMES[key] = frozenset(names)
    return _QUERY_NAMES[key]
