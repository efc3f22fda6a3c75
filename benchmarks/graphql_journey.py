"""The dashboard's journey view: one GraphQL query against the REST calls it replaces.

    python benchmarks/graphql_journey.py
    python benchmarks/graphql_journey.py --postgres postgresql+psycopg://postgres@127.0.0.1/test

Builds a journey of 50 touchpoints, each served by 10 upstream handoffs from providers with
goals (and the conflicts between them) and a few events, through the API of a real uvicorn
server. Then, in the same run, times
- one GraphQL query: journey → touchpoints → owner, score → upstream handoffs (depth, score)
  → provider units → their goals → conflicts;
- the REST calls a client would otherwise make for the same view;
and prints both times, their ratio, and the SQL statements each side sends (counted in a
second, in-process pass over the same database). Best of --rounds.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import orjson
from sqlalchemy import event

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from service.core.config import Settings, get_settings
from service.core.db import Database
from service.core.telemetry import configure_logging
from service.main import create_app
from tests.servers import fresh_database, running_server

TOUCHPOINTS = 50
UPSTREAM = 10
EVENTS_PER_HANDOFF = 20
NOW = datetime.now(UTC).replace(microsecond=0)

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
            goals { key title direction incentiveWeight conflicts { items { id severity metricPath } } }
          }
        }
      }
    }
  }
}
"""


def setup(client: httpx.Client) -> None:
    def post(path: str, body: dict) -> None:
        client.post(path, json=body).raise_for_status()

    post("/v1/journeys", {"key": "j", "name": "Journey", "stages": ["one"]})
    post("/v1/metrics", {"key": "speed", "name": "Speed", "kind": "operational"})
    post("/v1/metrics", {"key": "care", "name": "Care", "kind": "survey_score"})
    post("/v1/metric-relations", {"from_metric": "speed", "to_metric": "care", "effect": 1})
    for t in range(TOUCHPOINTS):
        post("/v1/units", {"key": f"front-{t}", "name": f"Front {t}", "kind": "team"})
        post("/v1/touchpoints", {"key": f"t{t}", "journey": "j", "stage": "one",
                                 "name": f"Touchpoint {t}", "owner": f"front-{t}",
                                 "moment_of_truth": t % 5 == 0})
        for h in range(UPSTREAM):
            provider = f"back-{t}-{h}"
            post("/v1/units", {"key": provider, "name": provider, "kind": "department"})
            post("/v1/handoffs", {"key": f"h{t}-{h}", "from_unit": provider, "to_unit": f"front-{t}",
                                  "deliverable": "work", "touchpoint": f"t{t}",
                                  "expected_within": "PT4H"})
            post("/v1/goals", {"key": f"g{t}-{h}", "title": "Goal", "owner": provider,
                               "metric": "speed" if h % 2 else "care",
                               "direction": "decrease" if h % 2 else "increase",
                               "kind": "means", "touchpoints": [f"t{t}"],
                               "incentive_weight": 0.1 if h % 2 else 0.0})
    client.post("/v1/handoff-events/bulk", content=b"".join(events()),
                headers={"Content-Type": "application/x-ndjson"}).raise_for_status()


def events() -> Iterator[bytes]:
    for t in range(TOUCHPOINTS):
        for h in range(UPSTREAM):
            for n in range(EVENTS_PER_HANDOFF):
                started = NOW - timedelta(hours=n * 7 + h)
                yield orjson.dumps({
                    "handoff": f"h{t}-{h}", "external_id": f"e{n}",
                    "started_at": started.isoformat(),
                    "delivered_at": (started + timedelta(hours=1 + n % 6)).isoformat(),
                    "quality": 1 + n % 5,
                }) + b"\n"


def graphql_view(client: httpx.Client) -> dict:
    response = client.post("/graphql", json={"query": VIEW, "variables": {"key": "j"}})
    response.raise_for_status()
    body = response.json()
    assert "errors" not in body, body["errors"][:2]
    return body["data"]["journey"]


def rest_view(client: httpx.Client) -> dict:
    """The same view assembled from REST calls, as a client without GraphQL would."""

    def get(path: str, **params) -> dict:
        response = client.get(path, params=params)
        response.raise_for_status()
        return response.json()

    def all_items(path: str, **params) -> list[dict]:
        items, cursor = [], None
        while True:
            page = get(path, limit=500, **params, **({"cursor": cursor} if cursor else {}))
            items += page["items"]
            cursor = page["next_cursor"]
            if cursor is None:
                return items

    journey = get("/v1/journeys/j")
    journey["score"] = get("/v1/scores/journeys/j")
    conflicts = all_items("/v1/conflicts")
    journey["touchpoints"] = []
    for touchpoint in all_items("/v1/touchpoints", journey="j"):
        touchpoint["owner"] = get(f"/v1/units/{touchpoint['owner']}")
        touchpoint["score"] = score = get(f"/v1/scores/touchpoints/{touchpoint['key']}")
        touchpoint["upstream"] = []
        for upstream in score["details"]["upstream"]:
            handoff = get(f"/v1/handoffs/{upstream['handoff']}")
            handoff["score"] = get(f"/v1/scores/handoffs/{handoff['key']}")
            provider = get(f"/v1/units/{handoff['from_unit']}")
            provider["goals"] = all_items("/v1/goals", owner=provider["key"])
            for goal in provider["goals"]:
                goal["conflicts"] = [
                    c for c in conflicts if goal["key"] in {g["key"] for g in c["goals"]}
                ]
            handoff["fromUnit"] = provider
            touchpoint["upstream"].append({"depth": upstream["depth"], "handoff": handoff})
        journey["touchpoints"].append(touchpoint)
    return journey


async def count_statements(url: str, admin_key: str) -> tuple[int, int]:
    """The SQL statements each side sends, counted in-process against the same database."""
    settings = Settings(database_url=url, log_level="WARNING")
    configure_logging(settings.log_level)  # the ASGI transport runs no lifespan
    app = create_app(settings)
    app.dependency_overrides[get_settings] = lambda: settings
    app.state.db = db = Database.from_settings(settings)
    statements: list[str] = []

    def record(*args) -> None:
        statements.append(args[2])

    engines = {db.read_engine.sync_engine, db.write_engine.sync_engine}
    for engine in engines:
        event.listen(engine, "before_cursor_execute", record)
    transport = httpx.ASGITransport(app=app)
    headers = {"Authorization": f"Bearer {admin_key}"}
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://bench", headers=headers,
                                     timeout=600) as client:
            response = await client.post("/graphql", json={"query": VIEW, "variables": {"key": "j"}})
            response.raise_for_status()
            graphql = len(statements)
            statements.clear()
        rest = await _rest_statements(app, headers, statements)
    finally:
        for engine in engines:
            event.remove(engine, "before_cursor_execute", record)
        await db.dispose()
    return graphql, rest


async def _rest_statements(app, headers: dict, statements: list[str]) -> int:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bench",
                                 headers=headers, timeout=600) as client:
        async def get(path: str, **params) -> dict:
            response = await client.get(path, params=params)
            response.raise_for_status()
            return response.json()

        await get("/v1/journeys/j")
        await get("/v1/scores/journeys/j")
        await get("/v1/conflicts", limit=500)
        touchpoints = (await get("/v1/touchpoints", journey="j", limit=500))["items"]
        for touchpoint in touchpoints:
            await get(f"/v1/units/{touchpoint['owner']}")
            score = await get(f"/v1/scores/touchpoints/{touchpoint['key']}")
            for upstream in score["details"]["upstream"]:
                handoff = await get(f"/v1/handoffs/{upstream['handoff']}")
                await get(f"/v1/scores/handoffs/{handoff['key']}")
                await get(f"/v1/units/{handoff['from_unit']}")
                await get("/v1/goals", owner=handoff["from_unit"], limit=500)
    return len(statements)


def timed(fn, *args):
    started = time.perf_counter()
    result = fn(*args)
    return time.perf_counter() - started, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgres", help="PostgreSQL URL (a scratch database is created in it)")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    backend = "postgresql" if args.postgres else "sqlite"

    with fresh_database(args.postgres) as url, running_server(url) as server:
        headers = {"Authorization": f"Bearer {server.admin_key}"}
        requests_sent = {"count": 0}

        def count_request(request: httpx.Request) -> None:
            requests_sent["count"] += 1

        with httpx.Client(base_url=server.base_url, headers=headers, timeout=600,
                          event_hooks={"request": [count_request]}) as client:
            setup(client)
            graphql_times, rest_times, requests = [], [], 0
            for _ in range(args.rounds):
                seconds, view = timed(graphql_view, client)
                graphql_times.append(seconds)
                assert len(view["touchpoints"]) == TOUCHPOINTS
                assert all(len(t["upstream"]) == UPSTREAM for t in view["touchpoints"])
                before = requests_sent["count"]
                seconds, rest = timed(rest_view, client)
                rest_times.append(seconds)
                requests = requests_sent["count"] - before
                assert len(rest["touchpoints"]) == TOUCHPOINTS
        graphql_statements, rest_statements = asyncio.run(count_statements(url, server.admin_key))

    graphql_s, rest_s = min(graphql_times), min(rest_times)
    print(f"backend: {backend}; journey view of {TOUCHPOINTS} touchpoints x {UPSTREAM} upstream "
          f"handoffs; best of {args.rounds}")
    print(f"GraphQL, 1 request:       {graphql_s * 1000:8.0f} ms, {graphql_statements} SQL statements")
    print(f"REST, {requests} requests: {rest_s * 1000:8.0f} ms, {rest_statements} SQL statements")
    print(f"ratio GraphQL / REST: {graphql_s / rest_s:.3f}")


if __name__ == "__main__":
    main()
