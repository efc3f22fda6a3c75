"""The ASGI application: ``uvicorn service.main:create_app --factory`` (or ``service.main:app``)."""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI
from fastapi.routing import APIRoute

from service import __version__
from service.alignment import sweeper
from service.api import docs, problems
from service.api.deps import reject_unknown_query
from service.api.middleware import (
    BodyLimitMiddleware,
    BodyTimeoutMiddleware,
    RetryMiddleware,
    TelemetryMiddleware,
)
from service.api.openapi import build_openapi
from service.api.rest import OPERATIONS_ROUTER, STREAMING_PATHS, V1_ROUTERS, api_routes
from service.core.config import Settings, get_settings
from service.core.db import Database
from service.core.telemetry import configure_logging
from service.dashboard import router as dashboard
from service.event_logs import importer
from service.graphql.schema import graphql_router
from service.webhooks import dispatcher


def _operation_id(route: APIRoute) -> str:
    # Stable operationIds (the function names) keep the committed openapi.json diffable
    # and generated clients readable.
    return route.name


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        configure_logging(settings.log_level, json=settings.log_json)
        app.state.db = Database.from_settings(settings)
        # Modules, schemas and the app live as long as the process. Moving them out of the
        # collector's generations keeps each full collection (a page of 500 scores sets
        # one off) from rescanning some 200,000 objects that can never be garbage.
        gc.collect()
        gc.freeze()
        # Background work of the process: the findings sweep and the webhook dispatcher.
        tasks: list[asyncio.Task[None]] = []
        if settings.findings_sweep_seconds > 0:
            sweep = asyncio.create_task(
                sweeper.run(
                    app.state.db,
                    interval=settings.findings_sweep_seconds,
                    batch=settings.findings_sweep_batch,
                )
            )
            tasks.append(sweep)
        if settings.webhooks_dispatch_seconds > 0:
            tasks.append(asyncio.create_task(dispatcher.run(app.state.db, settings)))
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await importer.stop_background()
            await app.state.db.dispose()

    app = FastAPI(
        title="SiloSpan",
        version=__version__,
        lifespan=lifespan,
        generate_unique_id_function=_operation_id,
        # /docs and /redoc are served by service.api.docs, from assets in the package.
        docs_url=None,
        redoc_url=None,
        # No redirect from "/v1/units/" to "/v1/units": Starlette builds it from the Host
        # header, so it would send clients to whatever site a request names. A path is
        # either a route or a 404.
        redirect_slashes=False,
    )
    app.state.settings = settings
    app.state.api_routes = api_routes()
    problems.install(app)
    docs.install(app)
    dashboard.install(app)
    app.include_router(OPERATIONS_ROUTER)
    for router in V1_ROUTERS:
        app.include_router(router, dependencies=[Depends(reject_unknown_query)])
    app.include_router(graphql_router(settings))
    app.add_middleware(
        BodyLimitMiddleware, max_bytes=settings.max_body_bytes, streaming_paths=STREAMING_PATHS
    )
    app.add_middleware(
        RetryMiddleware, streaming_paths=STREAMING_PATHS, max_bytes=settings.max_body_bytes
    )
    app.add_middleware(BodyTimeoutMiddleware, seconds=settings.body_timeout_seconds)
    app.add_middleware(TelemetryMiddleware)

    def openapi() -> dict:
        if app.openapi_schema is None:
            app.openapi_schema = build_openapi(app)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app


def __getattr__(name: str) -> FastAPI:
    # ``service.main:app`` builds the app on first access, so importing this module for
    # ``create_app`` does not read settings or open anything.
    if name == "app":
        application = create_app()
        globals()["app"] = application
        return application
    raise AttributeError(name)
