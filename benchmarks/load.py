"""Mixed traffic from simulated clients against `silospan serve` on PostgreSQL (locust).

    pip install -e '.[bench]'
    python benchmarks/load.py --postgres postgresql+psycopg://postgres@127.0.0.1:5432/postgres
    python benchmarks/load.py --postgres URL --users 50 --run-time 180 --workers 2

Headless and bounded: ``--users`` clients for ``--run-time`` seconds, on the loopback
interface only. The URL names the PostgreSQL server; the script (re)creates its own database
there (``--database``, default ``silospan_load``; never ``postgres`` or ``test``), loads the
demo organisation into it, starts ``silospan serve --workers N`` on a free loopback port and
drops the database at the end (``--keep`` keeps it).

Traffic (by weight of simulated users):
- readers (4): the company score, a handoff's score, open conflicts, findings and the
  dashboard's GraphQL journey view;
- integrations (3): PUT of single events, bulk posts of 1,000 events as NDJSON, PUT of
  customer feedback;
- partner portals (1, the courier's partner key): their handoff's events, their partner
  score, PUT of events on their handoff.

Prints requests/s, p50/p95/p99 per route, failures and 5xx, then checks that nothing was lost:
every acknowledged event and feedback is stored, once. Exits non-zero when any request
failed or an acknowledged write is missing. Targets: 0 errors, 0 5xx, nothing lost.
"""

from __future__ import annotations

# locust patches the standard library for gevent on import: it comes first.
import locust
from locust import FastHttpUser, between, events, task
from locust.env import Environment

# isort: split
import argparse
import contextlib
import itertools
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import gevent
import httpx
import orjson
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from benchmarks.graphql_journey import VIEW

FORBIDDEN_DATABASES = {"postgres", "test", "template0", "template1"}
INTERNAL_HANDOFFS = [
    "dispute-intake",
    "dispute-outcome",
    "fraud-check",
    "card-block",
    "payment-change",
    "kyc-refresh",
    "card-print",
]
PARTNER = "swiftline"
PARTNER_HANDOFF = "card-dispatch"
TOUCHPOINTS = ["service-call", "dispute-resolution", "payment-confirmation", "card-delivery"]
JOURNEY = "multi-issue-enquiry"
BULK_SIZE = 1000
NOW = datetime.now(UTC).replace(microsecond=0)

_ids = itertools.count()


@dataclass
class Shared:
    """What the simulated clients share: keys, and the writes the server acknowledged."""

    keys: dict[str, str] = field(default_factory=dict)
    events: set[tuple[str, str]] = field(default_factory=set)  # (handoff, external_id)
    feedback: set[tuple[str, str]] = field(default_factory=set)  # (touchpoint, external_id)
    statuses: Counter = field(default_factory=Counter)


Run = Shared()


def unique(prefix: str) -> str:
    return f"load-{prefix}-{os.getpid()}-{next(_ids)}"


def event_body(rng: random.Random) -> dict:
    started = NOW - timedelta(minutes=rng.randrange(60 * 24 * 30))
    body = {"started_at": started.isoformat(), "quality": rng.randint(1, 5)}
    if rng.random() < 0.8:
        body["delivered_at"] = (started + timedelta(minutes=rng.randrange(60 * 48))).isoformat()
    return body


@events.request.add_listener
def _count_status(response=None, exception=None, **_kwargs) -> None:
    status = getattr(response, "status_code", None) if response is not None else None
    Run.statuses[status if status else "no response"] += 1


class Reader(FastHttpUser):
    weight = 4
    wait_time = between(0.05, 0.3)

    def on_start(self) -> None:
        self.auth = {"Authorization": f"Bearer {Run.keys['reader']}"}
        self.rng = random.Random()

    @task(3)
    def company_score(self) -> None:
        self.client.get("/v1/scores/company", headers=self.auth, name="GET /v1/scores/company")

    @task(3)
    def handoff_score(self) -> None:
        key = self.rng.choice(INTERNAL_HANDOFFS)
        self.client.get(
            f"/v1/scores/handoffs/{key}", headers=self.auth, name="GET /v1/scores/handoffs/{key}"
        )

    @task(2)
    def conflicts(self) -> None:
        self.client.get("/v1/conflicts?status=open", headers=self.auth, name="GET /v1/conflicts")

    @task(2)
    def findings(self) -> None:
        self.client.get("/v1/findings", headers=self.auth, name="GET /v1/findings")

    @task(1)
    def journey_view(self) -> None:
        with self.client.post(
            "/graphql",
            json={"query": VIEW, "variables": {"key": JOURNEY}},
            headers=self.auth,
            name="POST /graphql (journey view)",
            catch_response=True,
        ) as response:
            if response.status_code == 200 and response.json().get("errors"):
                response.failure(f"GraphQL errors: {response.json()['errors'][:1]}")


class Integration(FastHttpUser):
    weight = 3
    wait_time = between(0.05, 0.3)

    def on_start(self) -> None:
        self.auth = {"Authorization": f"Bearer {Run.keys['writer']}"}
        self.rng = random.Random()

    @task(6)
    def put_event(self) -> None:
        handoff, external_id = self.rng.choice(INTERNAL_HANDOFFS), unique("e")
        body = {**event_body(self.rng), "case_ref": f"load-case-{self.rng.randrange(5000)}"}
        response = self.client.put(
            f"/v1/handoffs/{handoff}/events/{external_id}",
            json=body,
            headers=self.auth,
            name="PUT /v1/handoffs/{key}/events/{id}",
        )
        if response.status_code in (200, 201):
            Run.events.add((handoff, external_id))

    @task(1)
    def bulk(self) -> None:
        items = []
        for _ in range(BULK_SIZE):
            handoff = self.rng.choice(INTERNAL_HANDOFFS)
            items.append({"handoff": handoff, "external_id": unique("b"), **event_body(self.rng)})
        response = self.client.post(
            "/v1/handoff-events/bulk",
            data=b"".join(orjson.dumps(item) + b"\n" for item in items),
            headers={**self.auth, "Content-Type": "application/x-ndjson"},
            name="POST /v1/handoff-events/bulk (1,000)",
        )
        if response.status_code == 200:
            Run.events.update((item["handoff"], item["external_id"]) for item in items)

    @task(4)
    def feedback(self) -> None:
        touchpoint, external_id = self.rng.choice(TOUCHPOINTS), unique("f")
        at = NOW - timedelta(minutes=self.rng.randrange(60 * 24 * 30))
        response = self.client.put(
            f"/v1/touchpoints/{touchpoint}/feedback/{external_id}",
            json={"at": at.isoformat(), "scale": "csat", "score": self.rng.randint(1, 5)},
            headers=self.auth,
            name="PUT /v1/touchpoints/{key}/feedback/{id}",
        )
        if response.status_code in (200, 201):
            Run.feedback.add((touchpoint, external_id))


class PartnerPortal(FastHttpUser):
    weight = 1
    wait_time = between(0.05, 0.3)

    def on_start(self) -> None:
        self.auth = {"Authorization": f"Bearer {Run.keys['partner']}"}
        self.rng = random.Random()

    @task(2)
    def events(self) -> None:
        self.client.get(
            f"/v1/handoffs/{PARTNER_HANDOFF}/events?limit=100",
            headers=self.auth,
            name="GET /v1/handoffs/{key}/events (partner)",
        )

    @task(2)
    def partner_score(self) -> None:
        self.client.get(
            f"/v1/scores/partners/{PARTNER}",
            headers=self.auth,
            name="GET /v1/scores/partners/{key} (partner)",
        )

    @task(1)
    def put_event(self) -> None:
        external_id = unique("p")
        response = self.client.put(
            f"/v1/handoffs/{PARTNER_HANDOFF}/events/{external_id}",
            json=event_body(self.rng),
            headers=self.auth,
            name="PUT /v1/handoffs/{key}/events/{id} (partner)",
        )
        if response.status_code in (200, 201):
            Run.events.add((PARTNER_HANDOFF, external_id))


# The run -----------------------------------------------------------------------------------


@contextlib.contextmanager
def own_database(server_url: str, name: str, *, keep: bool) -> Iterator[str]:
    if name in FORBIDDEN_DATABASES or not name.replace("_", "").isalnum():
        raise SystemExit(f"refusing to use database {name!r}: name one of its own")
    admin = create_engine(
        make_url(server_url).set(drivername="postgresql+psycopg"), isolation_level="AUTOCOMMIT"
    )
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        url = make_url(server_url).set(drivername="postgresql+psycopg", database=name)
        yield url.render_as_string(hide_password=False)
    finally:
        if not keep:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def cli(env: dict, *args: str) -> str:
    return subprocess.run(
        [sys.executable, "-m", "service.cli", *args],
        env=env,
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()


@contextlib.contextmanager
def serving(database_url: str, workers: int) -> Iterator[str]:
    env = {
        **os.environ,
        "SILOSPAN_DATABASE_URL": database_url,
        "SILOSPAN_LOG_LEVEL": "WARNING",
        "SILOSPAN_ENVIRONMENT": "production",
    }
    cli(env, "migrate")
    load_demo = (
        "import asyncio; from service.demo import load_demo; print(asyncio.run(load_demo())[0])"
    )
    subprocess.run(
        [sys.executable, "-c", load_demo], env=env, cwd=ROOT, check=True, capture_output=True
    )
    Run.keys = {
        "reader": cli(env, "keys", "create", "--name", "load reader", "--role", "reader"),
        "writer": cli(env, "keys", "create", "--name", "load writer", "--role", "writer"),
        "partner": cli(
            env,
            "keys",
            "create",
            "--name",
            "load partner",
            "--role",
            "partner",
            "--partner",
            PARTNER,
        ),
    }
    port = free_port()
    log = tempfile.NamedTemporaryFile(prefix="silospan-load-", suffix=".log", delete=False)  # noqa: SIM115
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "service.cli",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            str(workers),
        ],
        env=env,
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{base_url}/readyz", timeout=1).status_code == 200:
                    break
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    f"the server did not start:\n{Path(log.name).read_text()[-2000:]}"
                )
            time.sleep(0.2)
        yield base_url
    finally:
        process.terminate()  # SIGTERM: uvicorn drains in-flight requests, then stops
        process.wait(timeout=60)
        log.close()
        server_errors = [
            line
            for line in Path(log.name).read_text().splitlines()
            if "Traceback" in line or "ERROR" in line
        ]
        if server_errors:
            print(
                f"server log ({log.name}) has {len(server_errors)} error lines, e.g. "
                f"{server_errors[0]}"
            )
        else:
            Path(log.name).unlink(missing_ok=True)


def run_load(base_url: str, users: int, run_time: float) -> Environment:
    env = Environment(
        user_classes=[Reader, Integration, PartnerPortal], host=base_url, events=events
    )
    runner = env.create_local_runner()
    runner.start(users, spawn_rate=max(1, users / 5))
    gevent.spawn_later(run_time, runner.quit)
    runner.greenlet.join()
    return env


def report(env: Environment, run_time: float) -> int:
    stats = env.stats
    print(
        f"\n{'route':<50} {'requests':>9} {'req/s':>7} {'p50':>6} {'p95':>6} {'p99':>6} {'fail':>5}"
    )
    for entry in sorted(stats.entries.values(), key=lambda e: e.name):
        print(
            f"{entry.name:<50} {entry.num_requests:>9} {entry.num_requests / run_time:>7.1f} "
            f"{entry.get_response_time_percentile(0.5):>6.0f} "
            f"{entry.get_response_time_percentile(0.95):>6.0f} "
            f"{entry.get_response_time_percentile(0.99):>6.0f} {entry.num_failures:>5}"
        )
    total = stats.total
    print(
        f"{'all':<50} {total.num_requests:>9} {total.num_requests / run_time:>7.1f} "
        f"{total.get_response_time_percentile(0.5):>6.0f} "
        f"{total.get_response_time_percentile(0.95):>6.0f} "
        f"{total.get_response_time_percentile(0.99):>6.0f} {total.num_failures:>5}"
    )
    print("(times in ms)")
    server_errors = sum(n for s, n in Run.statuses.items() if isinstance(s, int) and s >= 500)
    print(f"statuses: {dict(sorted(Run.statuses.items(), key=str))}; 5xx: {server_errors}")
    for error in list(stats.errors.values())[:5]:
        print(f"  {error.occurrences} × {error.method} {error.name}: {error.error}"[:300])
    return total.num_failures + server_errors


def lost_writes(database_url: str) -> int:
    """Acknowledged events and feedback missing from the database (or stored twice)."""
    engine = create_engine(database_url)
    events_sql = text(
        "SELECT h.key, e.external_id FROM handoff_events e JOIN handoffs h "
        "ON h.id = e.handoff_id WHERE e.external_id LIKE 'load-%'"
    )
    feedback_sql = text(
        "SELECT t.key, f.external_id FROM feedback f JOIN touchpoints t "
        "ON t.id = f.touchpoint_id WHERE f.external_id LIKE 'load-%'"
    )
    with engine.connect() as conn:
        stored_events = Counter(tuple(row) for row in conn.execute(events_sql))
        stored_feedback = Counter(tuple(row) for row in conn.execute(feedback_sql))
    engine.dispose()
    missing = len(Run.events - set(stored_events)) + len(Run.feedback - set(stored_feedback))
    twice = sum(1 for n in (*stored_events.values(), *stored_feedback.values()) if n > 1)
    # Requests still in flight when the run stopped may be stored without an answer read.
    unanswered = len(set(stored_events) - Run.events) + len(set(stored_feedback) - Run.feedback)
    print(
        f"acknowledged: {len(Run.events)} events and {len(Run.feedback)} feedback; "
        f"missing: {missing}; stored twice: {twice}; stored but cut off before the answer: "
        f"{unanswered}"
    )
    return missing + twice


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgres", required=True, help="a PostgreSQL server URL")
    parser.add_argument("--database", default="silospan_load", help="created (and dropped) here")
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--run-time", type=float, default=180, help="seconds")
    parser.add_argument("--workers", type=int, default=2, help="server worker processes")
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    args = parser.parse_args()
    if not 1 <= args.users <= 500 or not 1 <= args.run_time <= 3600:
        raise SystemExit("--users must be 1–500 and --run-time 1–3600 s")
    print(
        f"locust {locust.__version__}: {args.users} users for {args.run_time:g} s against "
        f"silospan serve --workers {args.workers} on PostgreSQL"
    )
    with own_database(args.postgres, args.database, keep=args.keep) as url:
        with serving(url, args.workers) as base_url:
            env = run_load(base_url, args.users, args.run_time)
        failures = report(env, args.run_time)
        lost = lost_writes(url)
    sys.exit(1 if failures or lost else 0)


if __name__ == "__main__":
    main()
