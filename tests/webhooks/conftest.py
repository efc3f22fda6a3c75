"""Webhook test fixtures: a real HTTP receiver on loopback, and the live app allowed to
send to it."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from service.core.config import Settings, get_settings
from service.core.permissions import Role


class _Server(ThreadingHTTPServer):
    # A dispatcher opens up to a batch of connections at once: the default backlog (5)
    # would refuse some of them.
    request_queue_size = 1024
    daemon_threads = True


@dataclass
class Receiver:
    """An HTTP server on loopback that records every POST and answers the scripted codes
    (then 200)."""

    codes: list[int] = field(default_factory=list)
    received: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    url: str = ""

    def bodies(self, secret: str) -> list[dict]:
        """Every delivery, verified with the subscription's secret."""
        return [Webhook(secret).verify(body, headers) for headers, body in self.received]

    def signed_with(self, secret: str) -> list[dict]:
        """The deliveries that this secret signed (another subscription's do not verify)."""
        verified = []
        for headers, body in self.received:
            try:
                verified.append(Webhook(secret).verify(body, headers))
            except WebhookVerificationError:
                continue
        return verified


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            state.received.append((dict(self.headers.items()), body))
            code = state.codes.pop(0) if state.codes else 200
            self.send_response(code)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args) -> None:
            pass

    server = _Server(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hooks"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


OPEN = {"webhooks_allow_http": True, "webhooks_allow_private": True}


@pytest.fixture
async def hooks(live_app):
    """The live app, allowed to send to loopback over http, retrying quickly."""
    settings = Settings(
        database_url=live_app.url,
        log_json=False,
        log_level="WARNING",
        webhooks_retry_seconds=[0.05, 0.05],
        webhooks_lease_seconds=1.0,
        **OPEN,
    )
    live_app.app.dependency_overrides[get_settings] = lambda: settings
    live_app.settings = settings
    async with live_app.client() as client:
        live_app.http = client
        live_app.admin = {"Authorization": f"Bearer {await live_app.secret(Role.admin)}"}
        yield live_app
