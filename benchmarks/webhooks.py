"""Webhook delivery through the outbox, against raw HTTP POSTs to the same receiver.

    python benchmarks/webhooks.py                       # SQLite, 10,000 events
    python benchmarks/webhooks.py --postgres postgresql+psycopg://postgres@127.0.0.1/silospan_bench
    python benchmarks/webhooks.py --events 1000 --steady-seconds 5   # a quick look

A uvicorn server (``silospan serve``'s app, with its dispatcher at the default settings:
a round every second when idle, 50 deliveries at once, 10 s timeouts) runs in a subprocess
on a fresh database; it may post to loopback over http. One subscription listens for
``handoff_event.delivered_late``, and a receiver on loopback (uvicorn, in a process of its
own) records when each delivery arrives.

1. Steady: late events are written one PUT at a time at ``--rate`` per second for
   ``--steady-seconds``, so the dispatcher delivers while the API takes writes.
2. Burst: ``--events`` late events in one NDJSON bulk request (one transaction), then the
   outbox drains.

The delay of a delivery runs from its event's ``timestamp`` (set when the event is queued,
inside the writing transaction, so just before its commit) to its arrival at the receiver:
p50, p99 and max; throughput is deliveries per second of the burst, from the bulk's commit
to the last arrival. Baseline, in the same run: the same number of POSTs of a body of the
same size to the same receiver with httpx, 50 at a time (the dispatcher's batch). Target:
p99 delay under 2 s in the steady phase.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.servers import fresh_database, running_server

LATE = "handoff_event.delivered_late"


class Receiver:
    """The receiving endpoint in its own process (uvicorn, this file's ``receiver_app``), so
    it competes with neither the server nor this process for the interpreter."""

    def __init__(self) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "benchmarks.webhooks:receiver_app",
                "--port",
                str(port),
                "--log-level",
                "warning",
                "--no-access-log",
            ],
            cwd=Path(__file__).resolve().parent.parent,
        )
        self.base = f"http://127.0.0.1:{port}"
        self.url = f"{self.base}/hooks"
        self.taken = 0
        for _ in range(300):
            try:
                httpx.get(f"{self.base}/count", timeout=1).raise_for_status()
                break
            except httpx.HTTPError:
                time.sleep(0.1)

    def count(self) -> int:
        return httpx.get(f"{self.base}/count", timeout=30).json() - self.taken

    def take(self) -> list[tuple[float, bytes, str]]:
        """The arrivals since the last take: (arrival time, body, webhook-id)."""
        everything = orjson.loads(httpx.get(f"{self.base}/dump", timeout=120).content)
        taken = everything[self.taken :]
        self.taken = len(everything)
        return [(arrived, body.encode(), webhook_id) for arrived, body, webhook_id in taken]

    def shutdown(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


_ARRIVALS: list[tuple[float, str, str]] = []


async def receiver_app(scope, receive, send) -> None:
    """Records every POST with its arrival time; GET /count and /dump report them."""
    if scope["type"] != "http":
        return
    if scope["method"] == "POST":
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = dict(scope["headers"])
        _ARRIVALS.append((time.time(), body.decode(), headers.get(b"webhook-id", b"").decode()))
        answer = b""
        status = 204
    else:
        answer = orjson.dumps(len(_ARRIVALS) if scope["path"] == "/count" else _ARRIVALS)
        status = 200
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-length", str(len(answer)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": answer})


def late_event() -> dict:
    """Started three hours ago, due (PT1H) two hours ago, delivered an hour ago: late."""
    now = datetime.now(UTC)
    return {
        "started_at": (now - timedelta(hours=3)).isoformat(),
        "delivered_at": (now - timedelta(hours=1)).isoformat(),
        "quality": 4,
    }


def setup(client: httpx.Client, url: str) -> None:
    for key in ("ops", "branch"):
        client.post("/v1/units", json={"key": key, "name": key, "kind": "department"})
    handoff = {
        "key": "kyc",
        "from_unit": "ops",
        "to_unit": "branch",
        "deliverable": "KYC",
        "expected_within": "PT1H",
    }
    client.post("/v1/handoffs", json=handoff).raise_for_status()
    client.post("/v1/webhooks", json={"url": url, "event_types": [LATE]}).raise_for_status()


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def delays(arrivals: list[tuple[float, bytes, str]]) -> list[float]:
    out = []
    for arrived, body, _ in arrivals:
        queued = datetime.fromisoformat(orjson.loads(body)["timestamp"])
        out.append(arrived - queued.timestamp())
    return out


def wait_for(receiver: Receiver, count: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while receiver.count() < count and time.monotonic() < deadline:
        time.sleep(0.05)
    return receiver.count() >= count


def describe(label: str, values: list[float]) -> str:
    return (
        f"{label}: p50 {statistics.median(values):.3f} s, p99 {percentile(values, 0.99):.3f} s, "
        f"max {max(values):.3f} s"
    )


async def steady(
    base_url: str, headers: dict, rate: float, seconds: float
) -> tuple[int, int, float]:
    """One PUT every 1/rate seconds (each on its own task, so a slow write never delays
    the next), retried after a 503's Retry-After as a client would; returns how many were
    written, how many answers were 503, and the seconds until the last write was done."""
    count = int(rate * seconds)
    busy = 0
    async with httpx.AsyncClient(base_url=base_url, headers=headers, timeout=60) as client:
        start = time.monotonic()

        async def put(i: int) -> None:
            nonlocal busy
            await asyncio.sleep(max(0.0, start + i / rate - time.monotonic()))
            while True:
                response = await client.put(f"/v1/handoffs/kyc/events/s{i}", json=late_event())
                if response.status_code != 503:
                    response.raise_for_status()
                    return
                busy += 1
                await asyncio.sleep(float(response.headers.get("retry-after", "1")))

        await asyncio.gather(*(put(i) for i in range(count)))
        return count, busy, time.monotonic() - start


async def raw_posts(url: str, body: bytes, count: int, concurrency: int = 50) -> float:
    """Seconds for ``count`` POSTs of ``body``, ``concurrency`` at a time."""
    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=30) as client:
        started = time.perf_counter()
        for first in range(0, count, concurrency):
            batch = range(first, min(count, first + concurrency))
            await asyncio.gather(
                *(
                    client.post(url, content=body, headers={"content-type": "application/json"})
                    for _ in batch
                )
            )
        return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgres", help="PostgreSQL URL (a scratch database is created in it)")
    parser.add_argument("--events", type=int, default=10_000, help="events of the burst")
    parser.add_argument("--rate", type=float, default=50.0, help="steady writes per second")
    parser.add_argument("--steady-seconds", type=float, default=20.0)
    args = parser.parse_args()
    backend = "postgresql" if args.postgres else "sqlite"
    os.environ["SILOSPAN_WEBHOOKS_ALLOW_HTTP"] = "true"
    os.environ["SILOSPAN_WEBHOOKS_ALLOW_PRIVATE"] = "true"
    receiver = Receiver()
    try:
        run(args, backend, receiver)
    finally:
        receiver.shutdown()


def run(args: argparse.Namespace, backend: str, receiver: Receiver) -> None:
    with fresh_database(args.postgres) as url, running_server(url) as server:
        headers = {"Authorization": f"Bearer {server.admin_key}"}
        with httpx.Client(base_url=server.base_url, headers=headers, timeout=600) as client:
            setup(client, receiver.url)

            written, busy, took = asyncio.run(
                steady(server.base_url, headers, args.rate, args.steady_seconds)
            )
            if not wait_for(receiver, written, 120):
                sys.exit(f"steady: only {receiver.count()} of {written} deliveries arrived")
            steady_arrivals = receiver.take()

            lines = b"".join(
                orjson.dumps({"handoff": "kyc", "external_id": f"b{i}", **late_event()}) + b"\n"
                for i in range(args.events)
            )
            response = client.post(
                "/v1/handoff-events/bulk",
                content=lines,
                headers={"content-type": "application/x-ndjson"},
            )
            response.raise_for_status()
            committed = time.time()
            if not wait_for(receiver, args.events, 600):
                sys.exit(f"burst: only {receiver.count()} of {args.events} deliveries arrived")
            burst_arrivals = receiver.take()

    ids = [webhook_id for _, _, webhook_id in steady_arrivals + burst_arrivals]
    duplicates = len(ids) - len(set(ids))
    burst_seconds = max(arrived for arrived, _, _ in burst_arrivals) - committed
    body = burst_arrivals[0][1]
    raw_seconds = asyncio.run(raw_posts(receiver.url, body, args.events))

    steady_delays = delays(steady_arrivals)
    print(
        f"backend: {backend}; steady {len(steady_arrivals)} events at {args.rate:g}/s, one PUT "
        f"each ({busy} answers 503, retried after Retry-After; all written in {took:.1f} s); "
        f"burst {args.events:,} events in one bulk request"
    )
    print(
        describe("steady delay, queued to received", steady_delays)
        + f" (target p99 < 2 s: {'met' if percentile(steady_delays, 0.99) < 2 else 'MISSED'})"
    )
    print(describe("burst delay, queued to received", delays(burst_arrivals)))
    print(
        f"burst throughput: {args.events / burst_seconds:,.0f} deliveries/s "
        f"({burst_seconds:.2f} s from commit to the last arrival)"
    )
    print(
        f"baseline, raw httpx POSTs of the same body, 50 at a time: "
        f"{args.events / raw_seconds:,.0f} requests/s ({raw_seconds:.2f} s)"
    )
    print(
        f"ratio: {(args.events / burst_seconds) / (args.events / raw_seconds):.2f}; "
        f"duplicate webhook-ids: {duplicates}"
    )


if __name__ == "__main__":
    main()
