"""Bulk ingestion through the real HTTP stack, against raw ``executemany`` in the same run.

    python benchmarks/bulk_ingest.py                    # SQLite
    python benchmarks/bulk_ingest.py --postgres postgresql+psycopg://postgres@127.0.0.1/test
    python benchmarks/bulk_ingest.py --memory-events 1000000   # streaming memory check

Posts N events as NDJSON to POST /v1/handoff-events/bulk of a uvicorn server in a
subprocess, then inserts the same rows with the driver's ``executemany`` into an equivalent
table (same columns, indexes, unique key, checks and foreign key to a handoffs table), and
prints events/s for both and their ratio (target ≥ 0.35). Each side runs ``--rounds`` times
(new events every round) and the best round counts, as the machine may be shared.
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.servers import fresh_database, running_server

HANDOFFS = 100
START = datetime(2026, 1, 1, tzinfo=UTC)


def event(i: int, round_: int = 0) -> dict:
    started = START + timedelta(minutes=i)
    delivered = started + timedelta(hours=(i % 7))
    return {
        "handoff": f"h{i % HANDOFFS}",
        "external_id": f"r{round_}-{i}",
        "started_at": started.isoformat(),
        "delivered_at": delivered.isoformat(),
        "quality": 1 + i % 5,
        "rework": i % 11 == 0,
        "customer_impact": i % 13 == 0,
        "case_ref": f"case-{i // 4}",
    }


def ndjson(count: int, round_: int = 0, chunk: int = 5000) -> Iterator[bytes]:
    for start in range(0, count, chunk):
        end = min(count, start + chunk)
        yield b"".join(orjson.dumps(event(i, round_)) + b"\n" for i in range(start, end))


def setup_org(client: httpx.Client) -> None:
    for key in ("ops", "front"):
        client.post("/v1/units", json={"key": key, "name": key, "kind": "department"}).raise_for_status()
    for h in range(HANDOFFS):
        client.post(
            "/v1/handoffs",
            json={"key": f"h{h}", "from_unit": "ops", "to_unit": "front",
                  "deliverable": "work", "expected_within": "PT4H"},
        ).raise_for_status()


def post_events(client: httpx.Client, count: int, round_: int) -> tuple[float, dict]:
    started = time.perf_counter()
    response = client.post(
        "/v1/handoff-events/bulk",
        content=ndjson(count, round_),
        headers={"Content-Type": "application/x-ndjson"},
        timeout=3600,
    )
    elapsed = time.perf_counter() - started
    response.raise_for_status()
    return elapsed, response.json()


def raw_rows(count: int) -> tuple[list[uuid.UUID], list[tuple]]:
    handoff_ids = [uuid.uuid4() for _ in range(HANDOFFS)]
    rows = []
    for i in range(count):
        e = event(i)
        started = START + timedelta(minutes=i)
        rows.append((
            uuid.uuid4(), handoff_ids[i % HANDOFFS], e["external_id"], started,
            started + timedelta(hours=4), started + timedelta(hours=i % 7), e["quality"],
            e["rework"], e["customer_impact"], e["case_ref"], None, started, started,
        ))
    return handoff_ids, rows


COLUMNS = ("id, handoff_id, external_id, started_at, due_at, delivered_at, quality, rework, "
           "customer_impact, case_ref, note, created_at, updated_at")


RAW_TABLE = (
    "CREATE TABLE raw_events (id {uuid} PRIMARY KEY, "
    "handoff_id {uuid} NOT NULL REFERENCES raw_handoffs (id), "
    "external_id VARCHAR(128) NOT NULL, started_at {ts} NOT NULL, due_at {ts} NOT NULL, "
    "delivered_at {ts}, quality INTEGER CHECK (quality IS NULL OR (quality >= 1 AND quality <= 5)), "
    "rework BOOLEAN NOT NULL, customer_impact BOOLEAN NOT NULL, case_ref VARCHAR(128), note TEXT, "
    "created_at {ts} NOT NULL, updated_at {ts} NOT NULL, UNIQUE (handoff_id, external_id))"
)
RAW_INDEXES = (
    (
        "CREATE INDEX raw_health ON raw_events "
        "(handoff_id, due_at, delivered_at, quality, rework, customer_impact)"
    ),
    "CREATE INDEX raw_case ON raw_events (case_ref)",
)


def raw_sqlite(folder: Path, count: int) -> float:
    path = folder / "raw.db"
    path.unlink(missing_ok=True)
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute("CREATE TABLE raw_handoffs (id CHAR(32) PRIMARY KEY)")
    conn.execute(RAW_TABLE.format(uuid="CHAR(32)", ts="DATETIME"))
    for statement in RAW_INDEXES:
        conn.execute(statement)
    handoff_ids, raw = raw_rows(count)
    conn.executemany("INSERT INTO raw_handoffs VALUES (?)", [(h.hex,) for h in handoff_ids])
    rows = [
        (r[0].hex, r[1].hex, r[2], *(v.strftime("%Y-%m-%d %H:%M:%S.%f") for v in r[3:6]), *r[6:11],
         *(v.strftime("%Y-%m-%d %H:%M:%S.%f") for v in r[11:13]))
        for r in raw
    ]
    started = time.perf_counter()
    conn.execute("BEGIN IMMEDIATE")
    conn.executemany(f"INSERT INTO raw_events ({COLUMNS}) VALUES ({', '.join('?' * 13)})", rows)
    conn.execute("COMMIT")
    elapsed = time.perf_counter() - started
    conn.close()
    return elapsed


def raw_postgres(url: str, count: int) -> float:
    import psycopg
    from sqlalchemy.engine import make_url

    u = make_url(url)
    with psycopg.connect(host=u.host, port=u.port or 5432, user=u.username, dbname=u.database,
                         password=u.password) as conn:
        conn.execute("DROP TABLE IF EXISTS raw_events")
        conn.execute("DROP TABLE IF EXISTS raw_handoffs")
        conn.execute("CREATE TABLE raw_handoffs (id UUID PRIMARY KEY)")
        conn.execute(RAW_TABLE.format(uuid="UUID", ts="TIMESTAMPTZ"))
        for statement in RAW_INDEXES:
            conn.execute(statement)
        handoff_ids, rows = raw_rows(count)
        with conn.cursor() as cursor:
            cursor.executemany("INSERT INTO raw_handoffs VALUES (%s)", [(h,) for h in handoff_ids])
        conn.commit()
        started = time.perf_counter()
        with conn.cursor() as cursor:
            cursor.executemany(
                f"INSERT INTO raw_events ({COLUMNS}) VALUES ({', '.join(['%s'] * 13)})", rows
            )
        conn.commit()
        return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgres", help="PostgreSQL URL (a scratch database is created in it)")
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--memory-events", type=int, default=0,
                        help="also stream this many events and report the server's memory growth")
    args = parser.parse_args()
    backend = "postgresql" if args.postgres else "sqlite"

    with fresh_database(args.postgres) as url, running_server(url) as server:
        headers = {"Authorization": f"Bearer {server.admin_key}"}
        with httpx.Client(base_url=server.base_url, headers=headers, timeout=60) as client:
            setup_org(client)
            api_times = []
            for round_ in range(args.rounds):
                seconds, report = post_events(client, args.events, round_)
                assert report["created"] == args.events, report
                api_times.append(seconds)
            if args.memory_events:
                before = server.rss_kib()
                mem_seconds, mem_report = post_events(client, args.memory_events, args.rounds)
                peak = server.peak_rss_kib()
                print(f"memory: {args.memory_events:,} events in {mem_seconds:.1f} s "
                      f"({mem_report['created']:,} created); server RSS before {before / 1024:.0f} MiB, "
                      f"peak {peak / 1024:.0f} MiB, growth {(peak - before) / 1024:.0f} MiB")
        raw_times = []
        for _ in range(args.rounds):
            if args.postgres:
                raw_times.append(raw_postgres(url, args.events))
            else:
                raw_times.append(raw_sqlite(Path(url.removeprefix("sqlite:///")).parent, args.events))

    api_seconds, raw_seconds = min(api_times), min(raw_times)
    api_rate = args.events / api_seconds
    raw_rate = args.events / raw_seconds
    print(f"backend: {backend}, events: {args.events:,}, best of {args.rounds} rounds")
    print(f"API (HTTP NDJSON bulk): {api_rate:,.0f} events/s ({api_seconds:.2f} s)")
    print(f"raw executemany:        {raw_rate:,.0f} events/s ({raw_seconds:.2f} s)")
    print(f"ratio: {api_rate / raw_rate:.2f} (target >= 0.35)")


if __name__ == "__main__":
    main()
