"""The OpenAPI document: problem+json errors, the shared responses, roles per operation."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute

from service.api.bulk import BODY_MODELS
from service.api.problems import PROBLEM_MEDIA_TYPE, Problem
from service.api.rest import api_routes
from service.core.permissions import POLICY, Action, Role

API_DESCRIPTION = """\
SiloSpan shows where the silos of a company hurt its customers: handoffs between units,
the goals that pull against each other, and partners judged on price alone.

Every `/v1` call needs `Authorization: Bearer <api key>`. Errors are RFC 9457
`application/problem+json`. Lists take `?limit=` (default 50, at most 500) and `?cursor=`.
"""


def route_action(route: APIRoute) -> Action | None:
    """The action a route performs, declared by its ``allow(...)`` dependency."""
    pending = [route.dependant]
    while pending:
        dependant = pending.pop()
        action = getattr(dependant.call, "action", None)
        if action is not None:
            return action
        pending.extend(dependant.dependencies)
    return None


def _problem_ref() -> dict[str, Any]:
    return {"$ref": "#/components/schemas/Problem"}


def _problem_response(description: str) -> dict[str, Any]:
    return {"description": description, "content": {PROBLEM_MEDIA_TYPE: {"schema": _problem_ref()}}}


def build_openapi(app: FastAPI) -> dict[str, Any]:
    schema = get_openapi(
        title="SiloSpan",
        version=app.version,
        description=API_DESCRIPTION,
        routes=app.routes,
    )
    actions = {
        (method.lower(), route.path_format): route_action(route)
        for route in api_routes()
        for method in route.methods
    }
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    for model in (Problem, *BODY_MODELS):
        components[model.__name__] = model.model_json_schema(
            ref_template="#/components/schemas/{model}"
        )
        for defs_name, defs in components[model.__name__].pop("$defs", {}).items():
            components[defs_name] = defs
    for path, operations in schema.get("paths", {}).items():
        for method, operation in operations.items():
            responses = operation.setdefault("responses", {})
            for status, response in list(responses.items()):
                if status.isdigit() and int(status) >= 400:
                    responses[status] = _problem_response(response.get("description", "Error"))
            if not path.startswith("/v1/"):
                continue
            action = actions.get((method, path))
            responses.setdefault("401", _problem_response("Missing, unknown or revoked API key"))
            if action is not None:
                roles = sorted(role.value for role in POLICY[action])
                operation["x-required-action"] = action.value
                operation["x-roles"] = roles
                if set(POLICY[action]) != set(Role):
                    responses.setdefault("403", _problem_response("The key's role may not do this"))
            if operation.get("requestBody"):
                responses.setdefault("413", _problem_response("The body is too large"))
            responses.setdefault("422", _problem_response("Invalid input"))
            responses.setdefault("503", _problem_response("Busy: retry shortly"))
    for unused in ("HTTPValidationError", "ValidationError"):
        components.pop(unused, None)
    return schema
