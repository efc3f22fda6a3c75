"""Scores through the API against a hand-written SQL query, in the same run.

    python benchmarks/scores.py                 # SQLite
    python benchmarks/scores.py --postgres postgresql+psycopg://postgres@127.0.0.1/test

Loads 1,000,000 events over 2,000 handoffs serving 200 touchpoints (plus feedback and
reviews) through the bulk API of a real uvicorn server, then times
- GET /v1/scores/company,
- the score of every handoff (GET /v1/scores/handoffs, 500 per page),
- one hand-written GROUP BY that computes each handoff's timeliness and quality,
and prints each API time against the SQL time (target: ≤ 3×). Best of --rounds.
After loading, the tables are analysed (and vacuumed on PostgreSQL), as the database's
autovacuum does after any bulk load, so both sides run on the same, settled tables.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import orjson
from sqlalchemy import create_engine, text

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from service.core.db import sync_url
from tests.servers import fresh_database, running_server

TOUCHPOINTS = 200
HANDOFFS_PER_TOUCHPOINT = 10
OWNERS = 20
NOW = datetime.now(UTC).replace(microsecond=0)
SPAN = timedelta(days=80)  # inside the default 90-day window


def setup(client: httpx.Client) -> None:
    post = lambda path, body: client.post(path, json=body).raise_for_status()
    post("/v1/journeys", {"key": "j", "name": "Journey", "stages": ["one"]})
    for u in range(OWNERS):
        post("/v1/units", {"key": f"front-{u}", "name": f"Front {u}", "kind": "team"})
    for u in range(HANDOFFS_PER_TOUCHPOINT):
        post("/v1/units", {"key": f"back-{u}", "name": f"Back {u}", "kind": "department"})
    for t in range(TOUCHPOINTS):
        post("/v1/touchpoints", {
            "key": f"t{t}", "journey": "j", "stage": "one", "name": f"Touchpoint {t}",
            "owner": f"front-{t % OWNERS}", "moment_of_truth": t % 7 == 0,
        })
        for h in range(HANDOFFS_PER_TOUCHPOINT):
            post("/v1/handoffs", {
                "key": f"h{t}-{h}", "from_unit": f"back-{h}", "to_unit": f"front-{t % OWNERS}",
                "deliverable": "work", "touchpoint": f"t{t}", "expected_within": "PT4H",
            })


def events(count: int, chunk: int = 10_000) -> Iterator[bytes]:
    handoffs = TOUCHPOINTS * HANDOFFS_PER_TOUCHPOINT
    start = NOW - SPAN
    for first in range(0, count, chunk):
        lines = []
        for i in range(first, min(count, first + chunk)):
            started = start + timedelta(seconds=(i * 6907) % int(SPAN.total_seconds()))
            h = i % handoffs
            item = {
                "handoff": f"h{h // HANDOFFS_PER_TOUCHPOINT}-{h % HANDOFFS_PER_TOUCHPOINT}",
                "external_id": f"e{i}",
                "started_at": started.isoformat(),
                "rework": i % 17 == 0,
                "customer_impact": i % 23 == 0,
            }
            if i % 10:
                item["delivered_at"] = (started + timedelta(hours=1 + i % 6)).isoformat()
                item["quality"] = 1 + i % 5
            lines.append(orjson.dumps(item))
        yield b"\n".join(lines) + b"\n"


def feedback() -> Iterator[bytes]:
    lines = []
    for t in range(TOUCHPOINTS):
        for n in range(40):
            lines.append(orjson.dumps({
                "touchpoint": f"t{t}", "external_id": f"f{t}-{n}",
                "at": (NOW - timedelta(hours=n * 7 + t)).isoformat(), "scale": "csat",
                "score": 1 + (n * 3 + t) % 5, "loyalty": (n * 3 + t) % 11,
            }))
    yield b"\n".join(lines) + b"\n"


HAND_WRITTEN = """
SELECT handoff_id,
       COUNT(*) AS events,
       SUM(CASE WHEN due_at <= :as_of THEN 1 ELSE 0 END) AS due,
       SUM(CASE WHEN due_at <= :as_of AND delivered_at IS NOT NULL
                 AND delivered_at <= due_at THEN 1 ELSE 0 END) AS on_time,
       COUNT(quality) AS rated,
       SUM(quality) AS quality_total
FROM handoff_events
WHERE due_at >= :start AND due_at < :end
GROUP BY handoff_id
"""


def hand_written_sql(url: str, start: datetime, end: datetime, as_of: datetime) -> tuple[float, int]:
    engine = create_engine(sync_url(url))
    sqlite = url.startswith("sqlite")

    def bind(moment: datetime):  # stored as naive UTC text on SQLite
        return moment.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds") if sqlite else moment

    with engine.connect() as conn:
        started = time.perf_counter()
        rows = conn.execute(text(HAND_WRITTEN), {"start": bind(start), "end": bind(end), "as_of": bind(as_of)}).all()
        # the same arithmetic the API does with the aggregates
        scores = {
            r.handoff_id: (r.on_time / r.due if r.due else None,
                           (r.quality_total - r.rated) / 4 / r.rated if r.rated else None)
            for r in rows
        }
        elapsed = time.perf_counter() - started
    engine.dispose()
    return elapsed, len(scores)


def analyze(url: str) -> None:
    """What the database's own maintenance does after a bulk load: planner statistics, and
    on PostgreSQL the visibility map (autovacuum vacuums insert-only tables too), without
    which no scan can be index-only."""
    engine = create_engine(sync_url(url), isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text("ANALYZE" if url.startswith("sqlite") else "VACUUM ANALYZE"))
    engine.dispose()


def timed(fn):
    started = time.perf_counter()
    result = fn()
    return time.perf_counter() - started, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgres", help="PostgreSQL URL (a scratch database is created in it)")
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    backend = "postgresql" if args.postgres else "sqlite"

    with fresh_database(args.postgres) as url, running_server(url) as server:
        headers = {"Authorization": f"Bearer {server.admin_key}"}
        with httpx.Client(base_url=server.base_url, headers=headers, timeout=3600) as client:
            setup(client)
            load_s, _ = timed(lambda: client.post(
                "/v1/handoff-events/bulk", content=events(args.events),
                headers={"Content-Type": "application/x-ndjson"}).raise_for_status())
            client.post("/v1/feedback/bulk", content=feedback(),
                        headers={"Content-Type": "application/x-ndjson"}).raise_for_status()
            print(f"loaded {args.events:,} events in {load_s:.1f} s")
            analyze(url)
            as_of = NOW
            window = {"as_of": as_of.isoformat(), "from": (as_of - timedelta(days=90)).isoformat(),
                      "to": as_of.isoformat()}

            def company():
                response = client.get("/v1/scores/company", params=window)
                response.raise_for_status()
                return orjson.loads(response.content)

            def every_handoff():
                scores, cursor = [], None
                while True:
                    params = {**window, "limit": 500, **({"cursor": cursor} if cursor else {})}
                    response = client.get("/v1/scores/handoffs", params=params)
                    response.raise_for_status()
                    page = orjson.loads(response.content)  # the client's parser is not the API's cost
                    scores += page["items"]
                    cursor = page["next_cursor"]
                    if cursor is None:
                        return scores

            company_times, handoff_times, sql_times = [], [], []
            for _ in range(args.rounds):
                seconds, body = timed(company)
                company_times.append(seconds)
                seconds, scores = timed(every_handoff)
                handoff_times.append(seconds)
                assert len(scores) == TOUCHPOINTS * HANDOFFS_PER_TOUCHPOINT
                seconds, count = hand_written_sql(
                    url, as_of - timedelta(days=90), as_of, as_of)
                sql_times.append(seconds)
                assert count == TOUCHPOINTS * HANDOFFS_PER_TOUCHPOINT

    sql = min(sql_times)
    print(f"backend: {backend}, events: {args.events:,}, handoffs: "
          f"{TOUCHPOINTS * HANDOFFS_PER_TOUCHPOINT:,}, touchpoints: {TOUCHPOINTS}; best of {args.rounds}")
    print(f"company score {body['value']} via API:   {min(company_times) * 1000:8.0f} ms "
          f"(ratio {min(company_times) / sql:.2f})")
    print(f"every handoff's score via API:  {min(handoff_times) * 1000:8.0f} ms "
          f"(ratio {min(handoff_times) / sql:.2f})")
    print(f"hand-written SQL (timeliness, quality per handoff): {sql * 1000:8.0f} ms")
    print("target: each ratio <= 3")


if __name__ == "__main__":
    main()
