"""The API reference pages, ``/docs`` (Swagger UI) and ``/redoc`` (ReDoc), and their assets.

Both pages load nothing from outside the service: their scripts, styles and icon ship in
the package (``service/static/``, served at ``/static``), so they open offline and on
networks that block CDNs. Their ``Content-Security-Policy`` lets the browser fetch from
this origin only, so a page that tried to reach another host would fail loudly in the
browser test rather than quietly depend on the network.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.staticfiles import StaticFiles
from starlette.responses import HTMLResponse

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"
STATIC_PATH = "/static"

#: Same origin only. Inline script and style: the pages start their bundles inline. Data
#: URLs: the bundles inline their fonts and icons. Blob workers: ReDoc's search index.
PAGE_POLICY = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self' data:; worker-src 'self' blob:; connect-src 'self'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)

router = APIRouter(include_in_schema=False)


def root_path(request: Request) -> str:
    """Where the app is mounted (behind a proxy that strips a prefix), without a trailing /."""
    return request.scope.get("root_path", "").rstrip("/")


def static_url(request: Request, asset: str) -> str:
    return f"{root_path(request)}{STATIC_PATH}/{asset}"


def secure(page: HTMLResponse) -> HTMLResponse:
    page.headers["Content-Security-Policy"] = PAGE_POLICY
    page.headers["X-Content-Type-Options"] = "nosniff"
    return page


@router.get("/docs")
async def swagger_ui(request: Request) -> HTMLResponse:
    return secure(
        get_swagger_ui_html(
            openapi_url=f"{root_path(request)}{request.app.openapi_url}",
            title=f"{request.app.title} API reference",
            swagger_js_url=static_url(request, "swagger-ui/swagger-ui-bundle.js"),
            swagger_css_url=static_url(request, "swagger-ui/swagger-ui.css"),
            swagger_favicon_url=static_url(request, "favicon.svg"),
            oauth2_redirect_url=None,
            # No validator badge (an image from validator.swagger.io); keys are given with
            # "Authorize" and kept for the page's life only, never in the browser's storage.
            swagger_ui_parameters={"validatorUrl": None, "persistAuthorization": False},
        )
    )


@router.get("/redoc")
async def redoc(request: Request) -> HTMLResponse:
    return secure(
        get_redoc_html(
            openapi_url=f"{root_path(request)}{request.app.openapi_url}",
            title=f"{request.app.title} API reference",
            redoc_js_url=static_url(request, "redoc/redoc.standalone.js"),
            redoc_favicon_url=static_url(request, "favicon.svg"),
            with_google_fonts=False,
        )
    )


def install(app: FastAPI) -> None:
    """Serves /docs, /redoc and the packaged assets at /static."""
    app.include_router(router)
    app.mount(STATIC_PATH, StaticFiles(directory=STATIC_DIR), name="static")
