"""The HTTP side of /graphql: reading a request and refusing one it cannot read.

A request that is not one GraphQL operation (a body that is not UTF-8 JSON, a JSON value
that is not an object, variables nested beyond reason, a batch, a mutation over GET, …) is
answered ``400 application/problem+json`` like every other transport error of the service,
before any GraphQL work. Everything GraphQL itself refuses (syntax, validation, limits,
domain errors) stays a GraphQL response with ``errors``.
"""

from __future__ import annotations

from typing import Any

import orjson
from cross_web import AsyncHTTPRequestAdapter, HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from strawberry.exceptions import MissingQueryError
from strawberry.fastapi import GraphQLRouter
from strawberry.http import GraphQLRequestData
from strawberry.http.parse_content_type import parse_content_type
from strawberry.http.types import QueryParams
from strawberry.schema.exceptions import InvalidOperationTypeError
from strawberry.types.unset import UNSET

from service.api import docs
from service.api.problems import problem
from service.core.errors import DomainError
from service.graphql.ide import asks_for_ide, graphiql_page

#: The deepest JSON a request may nest (the body counts as one level). The deepest input
#: this schema takes (a batch of events in ``variables``) needs four.
MAX_JSON_DEPTH = 32
JSON_MEDIA_TYPE = "application/json"
ALLOWED_METHODS = ("GET", "POST")


class BadGraphQLRequest(DomainError):
    """A request to /graphql that is not one readable GraphQL operation."""

    code = "bad_graphql_request"
    title = "Bad request"
    status = 400

    def __init__(self, detail: str, *, loc: tuple[str, ...] = ()) -> None:
        extra = {"errors": [{"loc": list(loc), "msg": detail}]} if loc else {}
        super().__init__(detail, **extra)


class GraphiQLOff(DomainError):
    code = "not_found"
    title = "Not found"
    status = 404


class SiloSpanGraphQLRouter(GraphQLRouter):
    """Strawberry's FastAPI router, reading requests strictly and refusing with problems.

    Strawberry answers what it cannot read with ``text/plain`` and lets a few bodies through
    to a 500 (a JSON string, invalid UTF-8, deep nesting). Here every request goes through
    :meth:`parse_http_body`, and every refusal Strawberry raises itself (an operation type
    the method does not allow, an unknown operation name) becomes a problem too.
    """

    def __init__(self, *args: Any, path: str = "", **kwargs: Any) -> None:
        super().__init__(*args, path=path, **kwargs)
        # Other methods get the service's 405, naming the methods /graphql does serve
        # (the shared handler only knows the REST routes).
        self.add_api_route(
            path,
            _method_not_allowed,
            methods=["PUT", "PATCH", "DELETE", "OPTIONS"],
            include_in_schema=False,
        )

    async def run(self, request: Any, context: Any = UNSET, root_value: Any = UNSET) -> Any:
        try:
            return await super().run(request, context=context, root_value=root_value)
        except HTTPException as exc:
            if exc.status_code == 404:
                raise GraphiQLOff("GraphiQL is off here; send queries with POST") from exc
            detail = exc.reason
            if isinstance(exc.__cause__, InvalidOperationTypeError):
                detail = f"{detail}: send it with POST"
            elif isinstance(exc.__cause__, MissingQueryError):
                detail = "query is empty: send the GraphQL document as a string"
            raise BadGraphQLRequest(detail) from exc

    def should_render_graphql_ide(self, request: Any) -> bool:
        return asks_for_ide(request)

    async def render_graphql_ide(self, request: Request) -> HTMLResponse:
        page = HTMLResponse(graphiql_page(docs.root_path(request) + docs.STATIC_PATH))
        return docs.secure(page)

    async def parse_http_body(self, request: AsyncHTTPRequestAdapter) -> GraphQLRequestData:
        if request.method == "GET":
            data: Any = self.parse_query_params(request.query_params)
            where = "query"
        else:
            content_type, _ = parse_content_type(request.content_type or "")
            if content_type != JSON_MEDIA_TYPE:
                sent = content_type or "no content type"
                raise BadGraphQLRequest(
                    f"send the operation as {JSON_MEDIA_TYPE}, not {sent}",
                    loc=("header", "content-type"),
                )
            data = _decode(await request.get_body(), loc=("body",))
            where = "body"
        return _operation(data, where)

    def parse_query_params(self, params: QueryParams) -> dict[str, Any]:
        data: dict[str, Any] = dict(params)
        for name in ("variables", "extensions"):
            if data.get(name):
                data[name] = _decode(data[name], loc=("query", name))
        return data


async def _method_not_allowed(request: Request) -> Response:
    allowed = ", ".join(ALLOWED_METHODS)
    return problem(
        request,
        status=405,
        code="method_not_allowed",
        detail=f"{request.method} is not supported here; use {allowed}",
        headers={"Allow": allowed},
    )


def _decode(raw: str | bytes, *, loc: tuple[str, ...]) -> Any:
    what = ".".join(loc) if loc != ("body",) else "the body"
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        if isinstance(raw, bytes) and not _is_utf8(raw):
            raise BadGraphQLRequest(f"{what} is not valid UTF-8", loc=loc) from exc
        if str(exc).startswith("depth limit exceeded"):
            raise _too_deep(what, loc) from exc
        raise BadGraphQLRequest(f"{what} is not valid JSON: {exc}", loc=loc) from exc
    if _depth_exceeds(value, MAX_JSON_DEPTH):
        raise _too_deep(what, loc)
    return value


def _is_utf8(raw: bytes) -> bool:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _too_deep(what: str, loc: tuple[str, ...]) -> BadGraphQLRequest:
    return BadGraphQLRequest(
        f"{what} nests JSON deeper than {MAX_JSON_DEPTH} levels", loc=loc
    )


def _depth_exceeds(value: Any, limit: int) -> bool:
    """Whether ``value`` nests objects and arrays more than ``limit`` levels (no recursion)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if not isinstance(item, (dict, list)):
            continue
        if depth > limit:
            return True
        children = item.values() if isinstance(item, dict) else item
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return False


def _operation(data: Any, where: str) -> GraphQLRequestData:
    if isinstance(data, list):
        raise BadGraphQLRequest(
            "batching is off: send one operation per request, as a JSON object", loc=(where,)
        )
    if not isinstance(data, dict):
        raise BadGraphQLRequest(
            f"the {where} must be a JSON object with a query, not {_json_type(data)}",
            loc=(where,),
        )
    query = data.get("query")
    if not isinstance(query, str):
        detail = "query is missing" if query is None else f"query is {_json_type(query)}"
        raise BadGraphQLRequest(
            f"{detail}: send the GraphQL document as a string", loc=(where, "query")
        )
    for name in ("variables", "extensions"):
        value = data.get(name)
        if value is not None and not isinstance(value, dict):
            raise BadGraphQLRequest(
                f"{name} must be a JSON object, not {_json_type(value)}", loc=(where, name)
            )
    operation_name = data.get("operationName")
    if operation_name is not None and not isinstance(operation_name, str):
        raise BadGraphQLRequest(
            f"operationName must be a string, not {_json_type(operation_name)}",
            loc=(where, "operationName"),
        )
    return GraphQLRequestData(
        query=query,
        variables=data.get("variables"),
        operation_name=operation_name,
        extensions=data.get("extensions"),
    )


def _json_type(value: Any) -> str:
    """The JSON type of a decoded value, with its article: 'a string', 'an array', 'null'."""
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return "null"
