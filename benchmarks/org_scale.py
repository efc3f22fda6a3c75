"""Latency of goal writes, pages and scores at 1,000 and at 10,000 goals, in the same run.

    python benchmarks/org_scale.py                       # SQLite, 1,000 and 10,000 goals
    python benchmarks/org_scale.py --postgres postgresql+psycopg://postgres@127.0.0.1/test
    python benchmarks/org_scale.py --small 100 --large 1000 --events-per-goal 5 --rounds 5

Builds two organisations, each in its own fresh database through the API of a real
uvicorn server. Everything scales with the number of goals G: G/10 units, G/100 metrics
chained by relations (m0→m1 +1, m1→m2 −1, ...), G/50 touchpoints in journeys of 20,
G/5 handoffs between units (half of them feeding a touchpoint: 5 per touchpoint), G goals
spread over units, metrics and touchpoints (a third name no touchpoint; increase, decrease
and maintain mixed; a quarter carry an incentive), and G × --events-per-goal (default 100)
handoff events due over the last 60 days, loaded in NDJSON batches through
POST /v1/handoff-events/bulk. Goals are created one POST at a time (goals on metrics three
apart never duel, so a few clients create the goals of such metrics side by side). After
building, the tables are analysed (and vacuumed on PostgreSQL), as benchmarks/scores.py
does, and the open conflicts are counted.

Then, for each organisation, --rounds times in this order, it times
 1. POST /v1/goals (a new goal, spread like the others),
 2. PATCH /v1/goals/{key} {"title"},
 3. PATCH /v1/goals/{key} {"direction"} (increase ⇄ decrease: opens or closes conflicts),
 4. GET /v1/conflicts?limit=50,
 5. GET /v1/findings?limit=50,
 6. GET /v1/scores/company,
 7. GET /v1/scores/units/{key},
 8. the GraphQL journey view of a journey of 20 touchpoints (graphql_journey.py's query, with
    the five most severe conflicts of each goal, as a dashboard shows them, and a cursor),
 9. PUT /v1/handoffs/{key}/events/{external_id}, the baseline for a write,
and prints each call's median at both sizes with their ratio. Targets: large/small ≤ 2.0
for every call but the company score (≤ 12.0: it reads every event, and there are ten
times as many), and per organisation the slowest goal write ≤ 5 × the event PUT. The
script always exits 0: it is a report. Setup progress goes to stderr.

With --cpu, each organisation's four writes (1-3 and 9) are also made --rounds times in
this process, on the same database through an app of its own, and their median CPU time
(time.process_time: this process and the SQLite thread, not the PostgreSQL server) and
SQL statement count are printed: figures that a busy machine disturbs far less than
wall time.
"""

from __future__ import annotations

import argparse
import random
import signal
import statistics
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import orjson
from sqlalchemy import create_engine, text

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from service.core.db import sync_url
from tests.servers import fresh_database, running_server

JOURNEY_SIZE = 20
STAGES = ["discover", "buy", "use", "support"]
METRIC_KINDS = ["operational", "financial", "survey_score", "customer_effort", "recovery"]
NOW = datetime.now(UTC).replace(microsecond=0)
SPAN = timedelta(days=60)
WORKERS = 3
TIMEOUT = 3600

VIEW = """
query JourneyView($key: String!) {
  journey(key: $key) {
    key name
    score { value }
    touchpoints {
      key name momentOfTruth
      owner { key name ring }
      score { value components { name value count } }
      upstream {
        depth
        handoff {
          key deliverable expectedWithin
          score { value components { name value count } }
          fromUnit {
            key name ring
            goals { key title direction incentiveWeight conflicts(first: 5) { items { id severity metricPath } nextCursor } }
          }
        }
      }
    }
  }
}
"""

CALLS = [
    ("create goal", 2.0),
    ("patch goal title", 2.0),
    ("patch goal direction", 2.0),
    ("conflicts, first page", 2.0),
    ("findings, first page", 2.0),
    ("company score", 12.0),
    ("unit score", 2.0),
    ("GraphQL journey view", 2.0),
    ("event PUT", 2.0),
]
GOAL_WRITES = ["create goal", "patch goal title", "patch goal direction"]
WRITE_TARGET = 5.0


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@dataclass
class Org:
    """The shape of one organisation of ``goals`` goals; every key is made here."""

    goals: int
    events_per_goal: float
    units: int = field(init=False)
    metrics: int = field(init=False)
    touchpoints: int = field(init=False)
    handoffs: int = field(init=False)

    def __post_init__(self) -> None:
        self.units = max(2, self.goals // 10)
        self.metrics = max(2, self.goals // 100)
        self.touchpoints = max(JOURNEY_SIZE, self.goals // 50)
        self.handoffs = max(2, self.goals // 5)
        self.rng = random.Random(self.goals)
        self.goal_specs = [self.goal(i) for i in range(self.goals)]

    @property
    def events(self) -> int:
        return round(self.goals * self.events_per_goal)

    def touchpoint_owner(self, t: int) -> str:
        return f"u{(t * 7) % self.units}"

    def handoff(self, h: int) -> dict:
        """Even handoffs feed touchpoint h/2 mod T: the first of each five delivers to its
        owner (depth 1), the others to the provider of the one before (depth 2, 3, ...)."""
        body = {"key": f"h{h}", "deliverable": f"Work {h}",
                "expected_within": "PT4H" if h % 3 else "P1D"}
        if h % 2 == 0:
            t, nth = (h // 2) % self.touchpoints, (h // 2) // self.touchpoints
            body["touchpoint"] = f"t{t}"
            body["to_unit"] = self.touchpoint_owner(t) if nth == 0 else self.provider(h - 2 * self.touchpoints)
            body["from_unit"] = self.provider(h)
        else:
            body["from_unit"] = f"u{(h * 13 + 1) % self.units}"
            body["to_unit"] = f"u{(h * 29 + 5) % self.units}"
        if body["from_unit"] == body["to_unit"]:
            body["to_unit"] = f"u{(int(body['to_unit'][1:]) + 1) % self.units}"
        return body

    def provider(self, h: int) -> str:
        return f"u{(h * 17 + 3) % self.units}"

    def goal(self, i: int, key: str | None = None) -> dict:
        rng = self.rng
        touchpoints = [] if i % 3 == 0 else [f"t{rng.randrange(self.touchpoints)}"]
        if touchpoints and i % 7 == 1:
            touchpoints.append(f"t{(int(touchpoints[0][1:]) + 1) % self.touchpoints}")
        return {
            "key": key or f"g{i}", "title": f"Goal {i}", "owner": f"u{rng.randrange(self.units)}",
            "metric": f"m{rng.randrange(self.metrics)}",
            "direction": rng.choice(["increase", "decrease", "maintain"]),
            "kind": "means" if i % 2 else "ends", "touchpoints": touchpoints,
            "incentive_weight": 0.1 if i % 4 == 1 else 0.0,
        }

    def event_batches(self, size: int) -> Iterator[bytes]:
        """G × events-per-goal events over the handoffs, started over the last 60 days (due
        before now), nine in ten delivered, some late, some reworked."""
        span = int((SPAN - timedelta(days=1)).total_seconds())
        start = NOW - SPAN
        for first in range(0, self.events, size):
            lines = []
            for i in range(first, min(self.events, first + size)):
                started = start + timedelta(seconds=(i * 7919) % span)
                item = {"handoff": f"h{i % self.handoffs}", "external_id": f"e{i}",
                        "started_at": started.isoformat(), "rework": i % 17 == 0,
                        "customer_impact": i % 23 == 0}
                if i % 10:
                    item["delivered_at"] = (started + timedelta(hours=1 + i % 6)).isoformat()
                    item["quality"] = 1 + i % 5
                lines.append(orjson.dumps(item))
            yield b"\n".join(lines) + b"\n"


class Clients:
    """One keep-alive client per thread, all with the admin key."""

    def __init__(self, base_url: str, admin_key: str) -> None:
        self.base_url, self.headers = base_url, {"Authorization": f"Bearer {admin_key}"}
        self.local, self.all = threading.local(), []

    def get(self) -> httpx.Client:
        if not hasattr(self.local, "client"):
            self.local.client = httpx.Client(base_url=self.base_url, headers=self.headers,
                                             timeout=TIMEOUT)
            self.all.append(self.local.client)
        return self.local.client

    def close(self) -> None:
        for client in self.all:
            client.close()


def check(response: httpx.Response) -> httpx.Response:
    if not response.is_success:
        raise RuntimeError(f"{response.request.method} {response.request.url}: "
                           f"{response.status_code} {response.text[:500]}")
    return response


def build(org: Org, clients: Clients, batch: int) -> None:
    def post(path: str, body: dict) -> None:
        check(clients.get().post(path, json=body))

    def each(path: str, bodies: list[dict]) -> None:
        with ThreadPoolExecutor(WORKERS) as pool:
            list(pool.map(lambda body: post(path, body), bodies))

    def stage(name: str, fn: Callable[[], object]) -> None:
        started = time.perf_counter()
        fn()
        log(f"  {name} in {time.perf_counter() - started:.1f} s")

    def structure() -> None:
        each("/v1/units", [{"key": f"u{u}", "name": f"Unit {u}",
                            "kind": "team" if u % 3 else "department"} for u in range(org.units)])
        each("/v1/metrics", [{"key": f"m{m}", "name": f"Metric {m}",
                              "kind": METRIC_KINDS[m % len(METRIC_KINDS)]} for m in range(org.metrics)])
        each("/v1/metric-relations", [{"from_metric": f"m{m}", "to_metric": f"m{m + 1}",
                                       "effect": 1 if m % 2 == 0 else -1}
                                      for m in range(org.metrics - 1)])
        journeys = -(-org.touchpoints // JOURNEY_SIZE)
        each("/v1/journeys", [{"key": f"j{j}", "name": f"Journey {j}", "stages": STAGES}
                              for j in range(journeys)])
        each("/v1/touchpoints", [
            {"key": f"t{t}", "journey": f"j{t // JOURNEY_SIZE}", "name": f"Touchpoint {t}",
             "stage": STAGES[(t % JOURNEY_SIZE) * len(STAGES) // JOURNEY_SIZE],
             "owner": org.touchpoint_owner(t), "moment_of_truth": t % 5 == 0,
             "driver_weight": (t % 4) / 4}
            for t in range(org.touchpoints)])
        each("/v1/handoffs", [org.handoff(h) for h in range(org.handoffs)])

    done = [0]

    def create_goals(specs: list[dict]) -> None:
        for spec in specs:
            post("/v1/goals", spec)
            done[0] += 1  # progress only: a lost increment does not matter
            if done[0] % 1000 == 0:
                log(f"    {done[0]:,} goals")

    def goals() -> None:
        """One POST per goal. Goals on metrics three or more apart never duel, so the goals
        of one metric are made in order by one client, and the metrics of one residue mod 3
        side by side (no conflict is missed between concurrent transactions)."""
        by_metric: dict[int, list[dict]] = defaultdict(list)
        for spec in org.goal_specs:
            by_metric[int(spec["metric"][1:])].append(spec)
        for residue in range(3):
            with ThreadPoolExecutor(WORKERS) as pool:
                list(pool.map(create_goals, [g for m, g in by_metric.items() if m % 3 == residue]))

    def events() -> None:
        batches, lock, created = org.event_batches(batch), threading.Lock(), [0]

        def worker() -> None:  # pulls batches one at a time: never more than two in memory
            while True:
                with lock:
                    body = next(batches, None)
                if body is None:
                    return
                report = check(clients.get().post("/v1/handoff-events/bulk", content=body,
                                                  headers={"Content-Type": "application/x-ndjson"}))
                with lock:
                    created[0] += report.json()["created"]

        with ThreadPoolExecutor(2) as pool:
            for future in [pool.submit(worker) for _ in range(2)]:
                future.result()
        assert created[0] == org.events, (created[0], org.events)

    stage(f"{org.units:,} units, {org.metrics:,} metrics, {org.touchpoints:,} touchpoints, "
          f"{org.handoffs:,} handoffs", structure)
    stage(f"{org.goals:,} goals", goals)
    stage(f"{org.events:,} events in batches of {batch:,}", events)


def analyze(url: str) -> None:
    """What the database's own maintenance does after a bulk load (see scores.py)."""
    engine = create_engine(sync_url(url), isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text("ANALYZE" if url.startswith("sqlite") else "VACUUM ANALYZE"))
    engine.dispose()


def open_conflicts(client: httpx.Client) -> int:
    count, cursor = 0, None
    while True:
        params = {"status": "open", "limit": 500, **({"cursor": cursor} if cursor else {})}
        page = check(client.get("/v1/conflicts", params=params)).json()
        count += len(page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            return count


def measure(org: Org, client: httpx.Client, rounds: int) -> dict[str, float]:
    """The median seconds of each call over ``rounds`` rounds of the nine calls in order."""
    times: dict[str, list[float]] = defaultdict(list)

    def timed(name: str, method: str, path: str, **kwargs) -> httpx.Response:
        started = time.perf_counter()
        response = client.request(method, path, **kwargs)
        times[name].append(time.perf_counter() - started)
        return check(response)

    for r in range(rounds):
        *goal_writes, event_put = write_requests(org, r, "bench")
        for name, method, path, body in goal_writes:
            timed(name, method, path, json=body)
        timed("conflicts, first page", "GET", "/v1/conflicts", params={"limit": 50})
        timed("findings, first page", "GET", "/v1/findings", params={"limit": 50})
        timed("company score", "GET", "/v1/scores/company")
        timed("unit score", "GET", f"/v1/scores/units/u{(r * 37) % org.units}")
        view = timed("GraphQL journey view", "POST", "/graphql",
                     json={"query": VIEW, "variables": {"key": "j0"}}).json()
        assert "errors" not in view, view["errors"][:2]
        assert len(view["data"]["journey"]["touchpoints"]) == JOURNEY_SIZE
        name, method, path, body = event_put
        timed(name, method, path, json=body)
        log(f"    round {r + 1}: " + ", ".join(f"{name} {seconds[-1] * 1000:.0f} ms"
                                                for name, seconds in times.items()))
    return {name: statistics.median(values) for name, values in times.items()}


def write_requests(org: Org, r: int, prefix: str) -> list[tuple[str, str, str, dict]]:
    """Round ``r`` of the four writes: (name, method, path, JSON body)."""
    flippable = [g for g in org.goal_specs if g["direction"] != "maintain"]
    renamed = org.goal_specs[(r * 131 + 7) % org.goals]
    flipped = flippable[(r * 97 + 3) % len(flippable)]
    flipped["direction"] = "decrease" if flipped["direction"] == "increase" else "increase"
    started_at = NOW - timedelta(hours=2 + r)
    return [
        ("create goal", "POST", "/v1/goals", org.goal(org.goals + r, key=f"{prefix}-{r}")),
        ("patch goal title", "PATCH", f"/v1/goals/{renamed['key']}",
         {"title": f"Goal renamed in round {r}"}),
        ("patch goal direction", "PATCH", f"/v1/goals/{flipped['key']}",
         {"direction": flipped["direction"]}),
        ("event PUT", "PUT", f"/v1/handoffs/h{(r * 53) % org.handoffs}/events/{prefix}-{r}",
         {"started_at": started_at.isoformat(),
          "delivered_at": (started_at + timedelta(hours=1)).isoformat(), "quality": 4}),
    ]


def measure_cpu(org: Org, url: str, admin_key: str, rounds: int) -> dict[str, tuple[float, float]]:
    """Per write: the median CPU seconds and SQL statements of ``rounds`` calls made in this
    process (after one round that warms its caches), on the database at ``url``."""
    import asyncio

    from sqlalchemy import event

    from service.core.config import Settings
    from service.main import create_app

    async def run() -> dict[str, tuple[float, float]]:
        app = create_app(Settings(database_url=url, findings_sweep_seconds=0,
                                  webhooks_dispatch_seconds=0, log_level="WARNING"))
        statements = [0]
        cpu: dict[str, list[float]] = defaultdict(list)
        counted: dict[str, list[int]] = defaultdict(list)
        async with app.router.lifespan_context(app):
            event.listen(app.state.db.write_engine.sync_engine, "before_cursor_execute",
                         lambda *_: statements.__setitem__(0, statements[0] + 1))
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://cpu",
                                         headers={"Authorization": f"Bearer {admin_key}"}) as client:
                for r in range(rounds + 1):
                    # other goals and handoffs than the wall-time rounds' (which come first)
                    for name, method, path, body in write_requests(org, rounds + r, "cpu"):
                        statements[0], started = 0, time.process_time()
                        check(await client.request(method, path, json=body))
                        if r:
                            cpu[name].append(time.process_time() - started)
                            counted[name].append(statements[0])
        return {name: (statistics.median(cpu[name]), statistics.median(counted[name]))
                for name in cpu}

    return asyncio.run(run())


def run_org(label: str, org: Org, postgres: str | None, rounds: int, batch: int,
            cpu: bool = False) -> tuple[dict[str, float], dict[str, tuple[float, float]]]:
    log(f"{label} organisation: {org.goals:,} goals, {org.units:,} units, {org.metrics:,} metrics, "
        f"{org.touchpoints:,} touchpoints, {org.handoffs:,} handoffs, {org.events:,} events")
    with fresh_database(postgres) as url, running_server(url) as server:
        clients = Clients(server.base_url, server.admin_key)
        try:
            started = time.perf_counter()
            build(org, clients, batch)
            analyze(url)
            log(f"  built in {time.perf_counter() - started:.0f} s")
            client = clients.get()
            started = time.perf_counter()
            conflicts = open_conflicts(client)
            log(f"  {conflicts:,} open conflicts (counted in {time.perf_counter() - started:.1f} s)")
            print(f"{label}: {org.goals:,} goals, {org.events:,} events, {conflicts:,} open conflicts")
            started = time.perf_counter()
            medians = measure(org, client, rounds)
            log(f"  measured {rounds} rounds in {time.perf_counter() - started:.0f} s")
            cpu_medians = measure_cpu(org, url, server.admin_key, rounds) if cpu else {}
        finally:
            clients.close()
    return medians, cpu_medians


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgres", help="PostgreSQL URL (a scratch database is created in it)")
    parser.add_argument("--small", type=int, default=1000, help="goals of the small organisation")
    parser.add_argument("--large", type=int, default=10000, help="goals of the large organisation")
    events = parser.add_mutually_exclusive_group()
    events.add_argument("--events-per-goal", type=float, default=100.0,
                        help="events loaded per goal (default 100)")
    events.add_argument("--events", type=int,
                        help="events of the small organisation (the large one scales alike)")
    parser.add_argument("--batch", type=int, default=5000, help="events per bulk request")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--cpu", action="store_true",
                        help="also time the writes in-process: CPU time and SQL statements")
    args = parser.parse_args()
    # stopped with SIGTERM, still stop the servers and drop the scratch databases
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    per_goal = args.events / args.small if args.events is not None else args.events_per_goal
    backend = "postgresql" if args.postgres else "sqlite"

    small, small_cpu = run_org("small", Org(args.small, per_goal), args.postgres, args.rounds,
                               args.batch, args.cpu)
    large, large_cpu = run_org("large", Org(args.large, per_goal), args.postgres, args.rounds,
                               args.batch, args.cpu)

    print(f"backend: {backend}; {args.small:,} vs {args.large:,} goals, "
          f"{per_goal:g} events per goal; median of {args.rounds} rounds")
    header = f"{'call':<24} {'small':>10} {'large':>10} {'ratio':>7} {'target':>8}  result"
    print(header)
    print("-" * len(header))
    failed = []
    for name, target in CALLS:
        ratio = large[name] / small[name]
        ok = ratio <= target
        failed += [] if ok else [name]
        print(f"{name:<24} {small[name] * 1000:8.1f}ms {large[name] * 1000:8.1f}ms {ratio:7.2f} "
              f"{'<= ' + format(target, '.1f'):>8}  {'pass' if ok else 'FAIL'}")
    for label, medians in (("small", small), ("large", large)):
        slowest = max(GOAL_WRITES, key=medians.__getitem__)
        ratio = medians[slowest] / medians["event PUT"]
        ok = ratio <= WRITE_TARGET
        failed += [] if ok else [f"goal write / event PUT at {label}"]
        print(f"goal write / event PUT at {label}: {ratio:.2f} ({slowest}, "
              f"{medians[slowest] * 1000:.1f} ms / {medians['event PUT'] * 1000:.1f} ms; "
              f"target <= {WRITE_TARGET:.1f}): {'pass' if ok else 'FAIL'}")
    for label, figures in (("small", small_cpu), ("large", large_cpu)):
        if figures:
            put = figures["event PUT"][0]
            print(f"in-process at {label}: " + "; ".join(
                f"{name} {seconds * 1000:.1f} ms CPU ({seconds / put:.2f}x), {count:.0f} statements"
                for name, (seconds, count) in figures.items()))
    checks = len(CALLS) + 2
    print(f"summary: {checks - len(failed)} of {checks} targets met"
          + (f"; failed: {', '.join(failed)}" if failed else ""))


if __name__ == "__main__":
    main()
