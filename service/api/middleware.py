"""Pure ASGI middleware: request limits, metrics and access logs."""

from __future__ import annotations

import asyncio
import time
import uuid

import structlog
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.api.problems import TRANSIENT, matching_routes, problem
from service.core.telemetry import HTTP_LATENCY, HTTP_REQUESTS

log = structlog.get_logger("silospan.access")


class BodyLimitMiddleware:
    """Refuses bodies over ``max_bytes`` with 413, by Content-Length or while streaming.

    Paths in ``streaming_paths`` enforce their own, larger limits (bulk ingestion).
    """

    def __init__(self, app: ASGIApp, *, max_bytes: int, streaming_paths: frozenset[str]) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.streaming_paths = streaming_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self.streaming_paths:
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes:
            response = problem(
                None,
                status=413,
                code="payload_too_large",
                detail=f"the body is larger than the {self.max_bytes}-byte limit",
                instance=scope["path"],
            )
            await response(scope, receive, send)
            return
        received = 0
        limit = self.max_bytes

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    # An HTTPException passes through FastAPI's body parsing untouched.
                    raise HTTPException(413, f"the body is larger than the {limit}-byte limit")
            return message

        await self.app(scope, limited_receive, send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


class BodyTimeout(HTTPException):
    """The client stopped sending a request body it had announced."""

    def __init__(self, seconds: float) -> None:
        super().__init__(
            408,
            f"the request body stopped arriving for {seconds:g} s; send it whole",
            headers={"Connection": "close"},
        )


class BodyTimeoutMiddleware:
    """Answers 408 and closes the connection when a request body stalls for ``seconds``.

    uvicorn waits for an announced body as long as the client keeps the connection open
    (a ``Content-Length: 100`` with 2 bytes sent would hold a worker's connection and, for
    a write, a database transaction). Each wait for the next piece of the body is bounded;
    once the body is complete, ``receive`` is passed through untouched (it then only
    reports a disconnect, which a streaming response may wait for as long as it runs).
    """

    def __init__(self, app: ASGIApp, *, seconds: float) -> None:
        self.app = app
        self.seconds = seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        body_complete = False
        response_started = False

        async def timed_receive() -> Message:
            nonlocal body_complete
            if body_complete:
                return await receive()
            try:
                message = await asyncio.wait_for(receive(), self.seconds)
            except TimeoutError:
                raise BodyTimeout(self.seconds) from None
            if message["type"] != "http.request" or not message.get("more_body"):
                body_complete = True
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal response_started
            if message["type"] == "http.response.start":
                response_started = True
            await send(message)

        try:
            await self.app(scope, timed_receive, tracking_send)
        except BodyTimeout as exc:
            # Raised where the body is read outside the app's handlers (RetryMiddleware);
            # inside them, the HTTPException handler gives the same answer.
            if response_started:
                raise
            response = problem(
                None,
                status=408,
                code="request_timeout",
                detail=exc.detail,
                instance=scope["path"],
                headers=exc.headers,
            )
            await response(scope, receive, send)


class RetryMiddleware:
    """Re-runs a request whose transaction hit a serialization failure or deadlock.

    The failed transaction was rolled back, so running the request again is safe. Only
    requests with a declared body within the normal size limit are retried (bulk streams
    are not: their body is gone); after ``attempts`` tries the client gets the 503 with
    Retry-After.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        streaming_paths: frozenset[str],
        max_bytes: int,
        attempts: int = 3,
    ) -> None:
        self.app = app
        self.streaming_paths = streaming_paths
        self.max_bytes = max_bytes
        self.attempts = attempts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        declared = _content_length(scope)
        if declared is None and scope.get("method") in ("GET", "HEAD", "DELETE", "OPTIONS"):
            declared = 0
        if (
            scope["type"] != "http"
            or scope["path"] in self.streaming_paths
            or declared is None
            or declared > self.max_bytes
        ):
            await self.app(scope, receive, send)
            return
        body = await _read_body(receive)
        for attempt in range(1, self.attempts + 1):
            attempt_scope = dict(scope)
            last = attempt == self.attempts
            held: list[Message] = []
            replayed = False

            async def replay() -> Message:
                nonlocal replayed
                if replayed:
                    # After the body, receive only reports the client's disconnect: a
                    # streaming response (a static file) waits on it while it sends, so
                    # it must come when the client leaves, not at once.
                    return await receive()
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}

            async def send_or_hold(
                message: Message, last=last, attempt_scope=attempt_scope, held=held
            ) -> None:
                if not last and attempt_scope.get(TRANSIENT):
                    held.append(message)  # a transient failure: this answer is dropped
                    return
                await send(message)

            await self.app(attempt_scope, replay, send_or_hold)
            if not attempt_scope.get(TRANSIENT) or last:
                return
            await asyncio.sleep(0.05 * attempt)


async def _read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            break
    return b"".join(chunks)


class TelemetryMiddleware:
    """Counts and times requests by route template, and writes one access log line each."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500
        request_id = _header(scope, b"x-request-id") or uuid.uuid4().hex

        async def send_with_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", request_id.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_status)
        finally:
            template = _template(scope)
            elapsed = time.perf_counter() - started
            HTTP_REQUESTS.labels(scope["method"], template, str(status)).inc()
            HTTP_LATENCY.labels(scope["method"], template).observe(elapsed)
            log.info(
                "request",
                request_id=request_id,
                method=scope["method"],
                path=scope["path"],
                route=template,
                status=status,
                duration_ms=round(elapsed * 1000, 2),
            )


def _template(scope: Scope) -> str:
    """The route template a request matched (a bounded label, unlike the raw path)."""
    app = scope.get("app")
    routes = getattr(getattr(app, "state", None), "api_routes", None) or []
    for route in matching_routes(routes, scope["path"]):
        if scope["method"] in route.methods or scope["method"] == "HEAD":
            return route.path_format
    return "graphql" if scope["path"] == "/graphql" else "unmatched"


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            decoded = value.decode("latin-1")
            return decoded if len(decoded) <= 128 and decoded.isprintable() else None
    return None


