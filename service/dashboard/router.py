"""``/dashboard``: the rings-and-spokes page, and its sign-in (``/dashboard/session``).

The page is static (``service/static/dashboard/``): it holds no data, so it is served
without a key. It reads everything through ``/v1`` like any other client, authenticated by
the session cookie set here, so what it shows is exactly what the signed-in key may read.
None of these routes is part of the API's OpenAPI document.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Request, Response
from pydantic import Field
from starlette.responses import HTMLResponse

from service.api.deps import ReadSessionsDep
from service.api.docs import STATIC_DIR
from service.core.errors import BadRequest
from service.core.fields import InputModel
from service.dashboard import sessions as dashboard_sessions
from service.org_units import service as org_units_service

PAGE = STATIC_DIR / "dashboard" / "index.html"

#: Same origin only, and nothing inline: the page's script and style are files of the
#: package, its picture is SVG built by that script.
PAGE_POLICY = (
    "default-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)

router = APIRouter(include_in_schema=False)


class SignIn(InputModel):
    key: Annotated[str, Field(min_length=1, max_length=256, description="An API key's secret.")]


def _require_page_header(request: Request) -> None:
    # The custom header makes a cross-site form unable to sign a browser in or out.
    if request.headers.get(dashboard_sessions.HEADER) != "1":
        raise BadRequest(
            f"send the header '{dashboard_sessions.HEADER}: 1' (the dashboard page does)",
            header=dashboard_sessions.HEADER,
        )


def _whoami(name: str, role: str, partner: str | None) -> dict[str, Any]:
    return {"signed_in": True, "name": name, "role": role, "partner": partner}


@router.get("/dashboard")
async def dashboard_page() -> HTMLResponse:
    page = HTMLResponse(PAGE.read_text(encoding="utf-8"))
    page.headers["Content-Security-Policy"] = PAGE_POLICY
    page.headers["X-Content-Type-Options"] = "nosniff"
    page.headers["Referrer-Policy"] = "no-referrer"
    page.headers["Cache-Control"] = "no-store"
    return page


@router.post("/dashboard/session")
async def sign_in(
    body: SignIn, request: Request, response: Response, sessions: ReadSessionsDep
) -> dict[str, Any]:
    """Check the key once and set a session cookie bound to it (the key is not kept)."""
    _require_page_header(request)
    async with sessions() as session:
        token, key = await dashboard_sessions.start(session, body.key.strip())
        partners = await org_units_service.keys_for_ids(session, [key.partner_unit_id])
    response.set_cookie(
        dashboard_sessions.COOKIE,
        token,
        max_age=dashboard_sessions.LIFETIME_SECONDS,
        path="/",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    response.headers["Cache-Control"] = "no-store"
    return _whoami(key.name, key.role, partners.get(key.partner_unit_id))


@router.get("/dashboard/session")
async def who_is_signed_in(request: Request, sessions: ReadSessionsDep) -> dict[str, Any]:
    """The key the session belongs to (name, role, partner unit); ``signed_in: false``
    without a session cookie; 401 for a cookie that is no longer good (expired, forged,
    or its key revoked)."""
    token = dashboard_sessions.token_of(request.cookies, request.headers)
    if token is None:
        return {"signed_in": False}
    async with sessions() as session:
        key = await dashboard_sessions.load_key(session, token)
        partners = await org_units_service.keys_for_ids(session, [key.partner_unit_id])
    return _whoami(key.name, key.role, partners.get(key.partner_unit_id))


@router.delete("/dashboard/session", status_code=204)
async def sign_out(request: Request) -> Response:
    """Clear the session cookie (revoke the key to end every session made with it)."""
    _require_page_header(request)
    response = Response(status_code=204)
    response.delete_cookie(
        dashboard_sessions.COOKIE,
        path="/",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return response


def install(app: FastAPI) -> None:
    app.include_router(router)
