"""Several dispatchers on one database, and a dispatcher killed mid-delivery.

Two dispatchers with their own connection pools (as two replicas would be) drain 1,000
messages at once: each arrives exactly once, no attempt is sent twice, none is lost. A real
``silospan worker`` process is SIGKILLed while its POST is in flight: the message stays
leased, then another worker delivers it, with the same ``webhook-id``, once the lease ends.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler

import pytest
from sqlalchemy import func, select
from standardwebhooks.webhooks import Webhook

from service.core.db import Database, transaction
from service.webhooks import dispatcher
from service.webhooks import service as webhooks_service
from service.webhooks.constants import EventType
from service.webhooks.models import WebhookDelivery
from tests.servers import ROOT
from tests.webhooks.conftest import _Server
from tests.webhooks.support import subscribe

pytestmark = [pytest.mark.concurrency, pytest.mark.e2e]

MESSAGES = 1_000


async def drain(db: Database, settings) -> int:
    """Dispatch until nothing is due for this dispatcher; returns how many it attempted."""
    attempted = 0
    async with dispatcher.new_client(settings) as client:
        while sent := await dispatcher.dispatch_once(db, settings, client):
            attempted += sent
    return attempted


class TestTwoDispatchers:
    async def test_a_thousand_messages_arrive_once_each(self, hooks, receiver):
        hook = await subscribe(hooks, receiver.url)
        async with transaction(hooks.database.write_sessions) as session:
            events = [webhooks_service.Event({"n": n}) for n in range(MESSAGES)]
            assert await webhooks_service.emit_many(session, EventType.webhook_test, events) == (
                MESSAGES
            )
        # A lease far longer than a round: any second attempt would be a double claim.
        settings = hooks.settings.model_copy(update={"webhooks_lease_seconds": 300.0})
        replicas = [Database.from_settings(settings) for _ in range(2)]
        try:
            attempted = await asyncio.gather(*(drain(db, settings) for db in replicas))
        finally:
            for db in replicas:
                await db.dispose()

        assert sum(attempted) == MESSAGES
        assert all(attempted), f"both dispatchers should share the work: {attempted}"
        ids = Counter(headers["webhook-id"] for headers, _ in receiver.received)
        assert len(ids) == MESSAGES
        assert set(ids.values()) == {1}
        numbers = sorted(e["data"]["n"] for e in receiver.bodies(hook["secret"]))
        assert numbers == list(range(MESSAGES))
        async with hooks.database.read_sessions() as session:
            outcomes = (
                await session.execute(
                    select(WebhookDelivery.status, WebhookDelivery.attempts, func.count()).group_by(
                        WebhookDelivery.status, WebhookDelivery.attempts
                    )
                )
            ).all()
        assert [tuple(row) for row in outcomes] == [("succeeded", 1, MESSAGES)]


class _Stalling:
    """A receiver whose first POST hangs until released (the worker is killed meanwhile);
    later POSTs are answered at once."""

    def __init__(self) -> None:
        self.received: list[tuple[dict[str, str], bytes]] = []
        self.arrived = threading.Event()
        self.release = threading.Event()
        state = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                state.received.append((dict(self.headers.items()), body))
                if len(state.received) == 1:
                    state.arrived.set()
                    state.release.wait(30)
                try:
                    self.send_response(200)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                except OSError:
                    pass  # the killed worker's connection is gone

            def log_message(self, *args) -> None:
                pass

        self.server = _Server(("127.0.0.1", 0), Handler)
        self.server.handle_error = lambda *args: None  # type: ignore[method-assign]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks"

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


def start_worker(database_url: str) -> subprocess.Popen:
    env = {
        **os.environ,
        "SILOSPAN_DATABASE_URL": database_url,
        "SILOSPAN_WEBHOOKS_ALLOW_HTTP": "true",
        "SILOSPAN_WEBHOOKS_ALLOW_PRIVATE": "true",
        "SILOSPAN_WEBHOOKS_LEASE_SECONDS": "3",
        "SILOSPAN_WEBHOOKS_DISPATCH_SECONDS": "0.1",
        "SILOSPAN_LOG_LEVEL": "WARNING",
    }
    return subprocess.Popen(
        [sys.executable, "-m", "service.cli", "worker"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


async def wait_for(condition, seconds: float) -> bool:
    for _ in range(int(seconds * 20)):
        if condition():
            return True
        await asyncio.sleep(0.05)
    return condition()


class TestKilledWorker:
    async def test_a_worker_killed_mid_delivery_leaves_it_to_the_next(self, hooks):
        stalling = _Stalling()
        first = second = None
        try:
            hook = await subscribe(hooks, stalling.url)
            response = await hooks.http.post(f"/v1/webhooks/{hook['id']}/test", headers=hooks.admin)
            assert response.status_code == 202, response.text

            first = start_worker(hooks.url)
            assert await wait_for(stalling.arrived.is_set, 60), "the worker never delivered"
            os.kill(first.pid, signal.SIGKILL)  # mid-delivery: the POST awaits its answer
            first.wait(timeout=30)
            stalling.release.set()

            # Leased (3 s) by the dead worker: not due for anyone yet.
            async with dispatcher.new_client(hooks.settings) as client:
                assert await dispatcher.dispatch_once(hooks.database, hooks.settings, client) == 0

            second = start_worker(hooks.url)
            assert await wait_for(lambda: len(stalling.received) >= 2, 60), (
                "the next worker never delivered"
            )
            await asyncio.sleep(0.5)  # let it record the outcome
        finally:
            for process in (first, second):
                if process is not None and process.poll() is None:
                    process.terminate()
                    process.wait(timeout=30)
            stalling.close()

        (killed_headers, killed_body), (headers, body) = stalling.received
        assert (killed_headers["webhook-id"], killed_body) == (headers["webhook-id"], body)
        assert Webhook(hook["secret"]).verify(body, headers)["type"] == "webhook.test"
        listed = await hooks.http.get(f"/v1/webhooks/{hook['id']}/deliveries", headers=hooks.admin)
        (delivery,) = listed.json()["items"]
        assert (delivery["status"], delivery["attempts"]) == ("succeeded", 2)
