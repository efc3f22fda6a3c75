"""Bulk ingestion through the real HTTP stack, against raw ``executemany`` in the same run.

    python benchmarks/bulk_ingest.py                    # SQLite
    python benchmarks/bulk_ingest.py --postgres postgresql+psycopg://postgres@127.0.0.1/silospan_bench
    python benchmarks/bulk_ingest.py --memory-events 1000000   # streaming memory check

Posts N events as NDJSON (made before the clock starts, then streamed in 1 MiB chunks) to
POST /v1/handoff-events/bulk of a uvicorn server in a subprocess. The baseline takes the
same NDJSON bytes, parses them (``orjson``, as the
service does) and inserts the rows with the driver's ``executemany`` in one transaction
into ``raw_events``, a copy of the service's own ``handoff_events`` table made in the same
database from its stored definition: the same columns, checks, unique key, foreign keys and
exactly the same indexes (SQLite: the ``sqlite_master`` DDL renamed; PostgreSQL:
``LIKE … INCLUDING ALL`` plus the foreign keys), on the same connection settings (WAL,
synchronous=FULL, foreign keys on). API and baseline rounds alternate, each into an empty
table, and the median of ``--rounds`` rounds counts. Targets: SQLite >= 0.5, PostgreSQL >= 1.0.
"""

from __future__ import annotations

import argparse
import sqlite3
import statistics
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


def streamed(body: bytes, chunk: int = 1 << 20) -> Iterator[bytes]:
    for start in range(0, len(body), chunk):
        yield body[start : start + chunk]


def post_events(client: httpx.Client, body: bytes | Iterator[bytes]) -> tuple[float, dict]:
    """POST the events (streamed, chunked) and time the request."""
    started = time.perf_counter()
    response = client.post(
        "/v1/handoff-events/bulk",
        content=streamed(body) if isinstance(body, bytes) else body,
        headers={"Content-Type": "application/x-ndjson"},
        timeout=3600,
    )
    elapsed = time.perf_counter() - started
    response.raise_for_status()
    return elapsed, response.json()


COLUMNS = ("id, handoff_id, external_id, started_at, due_at, delivered_at, quality, rework, "
           "customer_impact, case_ref, note, written_by_unit_id, case_private, created_at, "
           "updated_at")


def ndjson_body(count: int, round_: int) -> bytes:
    return b"".join(ndjson(count, round_))


def raw_sqlite(path: Path, body: bytes) -> float:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA busy_timeout=10000")
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute("DROP TABLE IF EXISTS raw_events")
    ddl = [sql for (sql,) in conn.execute(
        "SELECT sql FROM sqlite_master WHERE tbl_name = 'handoff_events' AND sql IS NOT NULL "
        "ORDER BY type DESC"  # the table before its indexes
    )]
    for sql in ddl:  # the service's table and every one of its indexes, renamed
        conn.execute(sql.replace("handoff_events", "raw_events"))
    handoffs = {key: hid for key, hid in conn.execute("SELECT key, id FROM handoffs")}
    now = datetime.now(UTC).isoformat(" ", "microseconds")[:26]
    insert = f"INSERT INTO raw_events ({COLUMNS}) VALUES ({', '.join('?' * 15)})"
    started = time.perf_counter()
    rows = []
    for line in body.splitlines():
        e = orjson.loads(line)
        rows.append((
            uuid.uuid4().hex, handoffs[e["handoff"]], e["external_id"], e["started_at"],
            e["started_at"], e["delivered_at"], e["quality"], e["rework"],
            e["customer_impact"], e["case_ref"], None, None, False, now, now,
        ))
    conn.execute("BEGIN IMMEDIATE")
    conn.executemany(insert, rows)
    conn.execute("COMMIT")
    elapsed = time.perf_counter() - started
    conn.execute("DROP TABLE raw_events")
    conn.close()
    return elapsed


def raw_postgres(url: str, body: bytes) -> float:
    import psycopg
    from sqlalchemy.engine import make_url

    u = make_url(url)
    with psycopg.connect(host=u.host, port=u.port or 5432, user=u.username, dbname=u.database,
                         password=u.password) as conn:
        conn.execute("DROP TABLE IF EXISTS raw_events")
        conn.execute("CREATE TABLE raw_events (LIKE handoff_events INCLUDING ALL)")
        conn.execute("ALTER TABLE raw_events ADD FOREIGN KEY (handoff_id) REFERENCES handoffs (id)")
        conn.execute(
            "ALTER TABLE raw_events ADD FOREIGN KEY (written_by_unit_id) REFERENCES units (id)"
        )
        handoffs = dict(conn.execute("SELECT key, id FROM handoffs").fetchall())
        conn.commit()
        now = datetime.now(UTC)
        insert = f"INSERT INTO raw_events ({COLUMNS}) VALUES ({', '.join(['%s'] * 15)})"
        started = time.perf_counter()
        rows = []
        for line in body.splitlines():
            e = orjson.loads(line)
            rows.append((
                uuid.uuid4(), handoffs[e["handoff"]], e["external_id"], e["started_at"],
                e["started_at"], e["delivered_at"], e["quality"], e["rework"],
                e["customer_impact"], e["case_ref"], None, None, False, now, now,
            ))
        with conn.cursor() as cursor:
            cursor.executemany(insert, rows)
        conn.commit()
        elapsed = time.perf_counter() - started
        conn.execute("DROP TABLE raw_events")
        conn.commit()
        return elapsed


def empty_events(url: str) -> None:
    """Between API rounds: the service's table back to empty, as the baseline's starts."""
    from sqlalchemy import create_engine, text

    from service.core.db import sync_url

    engine = create_engine(sync_url(url))
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM handoff_events"))
    engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgres", help="PostgreSQL URL (a scratch database is created in it)")
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--memory-events", type=int, default=0,
                        help="also stream this many events and report the server's memory growth")
    args = parser.parse_args()
    backend = "postgresql" if args.postgres else "sqlite"
    target = 1.0 if args.postgres else 0.5

    with fresh_database(args.postgres) as url, running_server(url) as server:
        headers = {"Authorization": f"Bearer {server.admin_key}"}
        with httpx.Client(base_url=server.base_url, headers=headers, timeout=60) as client:
            setup_org(client)
            api_times, raw_times = [], []
            for round_ in range(args.rounds):
                empty_events(url)
                # Made before either is timed: the API and the baseline time the same bytes,
                # and the client does not make events on the cores the server needs.
                body = ndjson_body(args.events, round_)
                seconds, report = post_events(client, body)
                assert report["created"] == args.events, report
                api_times.append(seconds)
                if args.postgres:
                    raw_times.append(raw_postgres(url, body))
                else:
                    raw_times.append(raw_sqlite(Path(url.removeprefix("sqlite:///")), body))
                print(f"round {round_ + 1}: API {seconds:.2f} s, raw {raw_times[-1]:.2f} s, "
                      f"ratio {raw_times[-1] / seconds:.2f}", flush=True)
            if args.memory_events:
                empty_events(url)
                before = server.rss_kib()
                mem_seconds, mem_report = post_events(client, ndjson(args.memory_events, args.rounds))
                peak = server.peak_rss_kib()
                print(f"memory: {args.memory_events:,} events in {mem_seconds:.1f} s "
                      f"({mem_report['created']:,} created); server RSS before {before / 1024:.0f} MiB, "
                      f"peak {peak / 1024:.0f} MiB, growth {(peak - before) / 1024:.0f} MiB")

    api_seconds, raw_seconds = statistics.median(api_times), statistics.median(raw_times)
    api_rate = args.events / api_seconds
    raw_rate = args.events / raw_seconds
    print(f"backend: {backend}, events: {args.events:,}, median of {args.rounds} rounds")
    print(f"API (HTTP NDJSON bulk):        {api_rate:,.0f} events/s ({api_seconds:.2f} s)")
    print(f"raw parse + executemany:       {raw_rate:,.0f} events/s ({raw_seconds:.2f} s)")
    print(f"ratio: {api_rate / raw_rate:.2f} (target >= {target})")


if __name__ == "__main__":
    main()
