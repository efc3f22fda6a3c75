"""Event-log import and handoff discovery through the real HTTP stack, against baselines.

    python benchmarks/discovery.py                       # SQLite, 1,000,000 events
    python benchmarks/discovery.py --events 50000        # a quick run
    python benchmarks/discovery.py --rounds 3            # best of 3 on a shared machine
    python benchmarks/discovery.py --postgres postgresql+psycopg://postgres@127.0.0.1/silospan_bench

Generates a log of N events (about N/10 cases over 500 groups, a fifth of the steps going
back to the previous group: ping-pongs), writes it as CSV and as XES, and posts each to
POST /v1/event-logs of a uvicorn server in a subprocess (streamed from the file). Then
GET /summary and the first page of GET /handoffs (the top 500 arcs; every page with
``--all-pages``), timed together as "discovery".

Baselines in the same run: the same CSV parsed with ``csv`` and inserted with the driver's
``executemany`` in one transaction into ``raw_rows``, a copy of ``event_log_rows`` with the
same primary key (its only index); and, when pm4py is installed (the ``bench`` extra),
``pm4py.discover_handover_of_work_network`` on the same rows, loaded beforehand (only the
discovery is timed). Targets: import >= 35% of the raw insert's rate; discovery time / pm4py's
<= 1.0 (SiloSpan also gives waits, which pm4py does not); with ``--memory``, the server's
resident memory grows by < 200 MB over an import.
"""

from __future__ import annotations

import argparse
import csv
import random
import sqlite3
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from xml.sax.saxutils import quoteattr

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.servers import fresh_database, running_server

START = datetime(2026, 1, 1, tzinfo=UTC)


def generate(events: int, groups: int, seed: int = 7) -> Iterator[tuple[str, str, datetime, str]]:
    """(case, group, time, activity), case after case; about 10 events per case."""
    rng = random.Random(seed)
    names = [f"Group {g:03d}" for g in range(groups)]
    made = case = 0
    while made < events:
        length = min(events - made, rng.randint(2, 18))
        at = START + timedelta(minutes=rng.randint(0, 500_000))
        previous, current = None, rng.choice(names)
        for step in range(length):
            yield f"C{case:07d}", current, at, f"step {step}"
            at += timedelta(minutes=rng.randint(1, 600))
            if previous is not None and rng.random() < 0.2:
                previous, current = current, previous  # back where it came from
            elif rng.random() < 0.6:
                previous, current = current, rng.choice(names)
        made += length
        case += 1


def write_csv(path: Path, events: int, groups: int) -> None:
    with path.open("w", newline="") as out:
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["case", "unit", "time", "activity"])
        for case, group, at, activity in generate(events, groups):
            writer.writerow([case, group, at.isoformat(), activity])


def write_xes(path: Path, events: int, groups: int) -> None:
    with path.open("w") as out:
        out.write('<?xml version="1.0" encoding="UTF-8"?>\n<log xes.version="1.0">\n')
        current = None
        for case, group, at, activity in generate(events, groups):
            if case != current:
                if current is not None:
                    out.write("</trace>\n")
                out.write(f'<trace><string key="concept:name" value="{case}"/>\n')
                current = case
            out.write(
                f'<event><string key="concept:name" value={quoteattr(activity)}/>'
                f'<string key="org:group" value={quoteattr(group)}/>'
                f'<date key="time:timestamp" value="{at.isoformat()}"/></event>\n'
            )
        if current is not None:
            out.write("</trace>\n")
        out.write("</log>\n")


def stream(path: Path, chunk: int = 1 << 20) -> Iterator[bytes]:
    with path.open("rb") as source:
        while data := source.read(chunk):
            yield data


def post_log(client: httpx.Client, path: Path, key: str, content_type: str) -> tuple[float, dict]:
    started = time.perf_counter()
    response = client.post(
        f"/v1/event-logs?key={key}",
        content=stream(path),
        headers={"Content-Type": content_type},
        timeout=7200,
    )
    elapsed = time.perf_counter() - started
    response.raise_for_status()
    return elapsed, response.json()


#: A status no generated row has: asking to pause on it changes no number, but makes the
#: service compute the arcs from the rows instead of reading what the import stored (the
#: summary has no wait, so it is read as stored either way).
LIVE = {"pause_statuses": "no such status"}


def discover(
    client: httpx.Client, key: str, all_pages: bool, live: bool = False
) -> tuple[float, dict, int]:
    """Summary and the first page of arcs (the top 500), or every page; ``live`` computes
    them from the rows (as with pause statuses) instead of reading the stored discovery."""
    extra = LIVE if live else {}
    started = time.perf_counter()
    summary = (
        client.get(f"/v1/event-logs/{key}/summary", params=extra, timeout=3600)
        .raise_for_status()
        .json()
    )
    arcs, cursor = 0, None
    while True:
        params = {"limit": 500, **extra, **({"cursor": cursor} if cursor else {})}
        page = client.get(f"/v1/event-logs/{key}/handoffs", params=params, timeout=3600)
        page.raise_for_status()
        arcs += len(page.json()["items"])
        cursor = page.json()["next_cursor"]
        if cursor is None or not all_pages:
            break
    return time.perf_counter() - started, summary, arcs


def rows_of(path: Path) -> list[tuple]:
    rows = []
    with path.open(newline="") as source:
        reader = csv.reader(source)
        next(reader)
        for position, (case, unit, at, activity) in enumerate(reader, start=2):
            moment = datetime.fromisoformat(at)
            rows.append(
                (
                    case,
                    (moment - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1),
                    position,
                    unit,
                    activity,
                )
            )
    return rows


def raw_sqlite(db: Path, path: Path) -> float:
    conn = sqlite3.connect(db, isolation_level=None)
    for pragma in ("journal_mode=WAL", "synchronous=FULL", "busy_timeout=10000", "foreign_keys=ON"):
        conn.execute(f"PRAGMA {pragma}")
    conn.execute("DROP TABLE IF EXISTS raw_rows")
    (ddl,) = conn.execute(
        "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'event_log_rows'"
    ).fetchone()
    conn.execute(ddl.replace("event_log_rows", "raw_rows"))
    (log_id,) = conn.execute("SELECT id FROM event_logs LIMIT 1").fetchone()
    started = time.perf_counter()
    rows = [(log_id, c, t, p, u, a, None, None) for c, t, p, u, a in rows_of(path)]
    conn.execute("BEGIN IMMEDIATE")
    conn.executemany(
        "INSERT INTO raw_rows (log_id, case_ref, at_us, position, unit, activity, status, "
        "resource) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        rows,
    )
    conn.execute("COMMIT")
    elapsed = time.perf_counter() - started
    conn.execute("DROP TABLE raw_rows")
    conn.close()
    return elapsed


def raw_postgres(url: str, path: Path) -> float:
    import psycopg
    from sqlalchemy.engine import make_url

    u = make_url(url)
    with psycopg.connect(
        host=u.host, port=u.port or 5432, user=u.username, dbname=u.database, password=u.password
    ) as conn:
        conn.execute("DROP TABLE IF EXISTS raw_rows")
        conn.execute("CREATE TABLE raw_rows (LIKE event_log_rows INCLUDING ALL)")
        conn.execute("ALTER TABLE raw_rows ADD FOREIGN KEY (log_id) REFERENCES event_logs (id)")
        (log_id,) = conn.execute("SELECT id FROM event_logs LIMIT 1").fetchone()
        conn.commit()
        started = time.perf_counter()
        rows = [(log_id, c, t, p, u, a, None, None) for c, t, p, u, a in rows_of(path)]
        with conn.cursor() as cursor:
            cursor.executemany(
                "INSERT INTO raw_rows (log_id, case_ref, at_us, position, unit, activity, "
                "status, resource) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
                rows,
            )
        conn.commit()
        elapsed = time.perf_counter() - started
        conn.execute("DROP TABLE raw_rows")
        conn.commit()
        return elapsed


def pm4py_seconds(path: Path, rounds: int) -> list[float] | None:
    try:
        import pandas as pd
        import pm4py
    except ImportError:
        return None
    frame = pd.read_csv(path)
    frame["time"] = pd.to_datetime(frame["time"], utc=True)
    frame = pm4py.format_dataframe(
        frame, case_id="case", activity_key="activity", timestamp_key="time"
    )
    frame["org:resource"] = frame["unit"]
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        pm4py.discover_handover_of_work_network(frame, resource_key="org:resource")
        times.append(time.perf_counter() - started)
    return times


def best(times: list[float]) -> str:
    """The best of the rounds (the least disturbed by the rest of a shared machine)."""
    if len(times) == 1:
        return f"{times[0]:.1f} s"
    return f"{min(times):.1f} s (best of {', '.join(f'{t:.1f}' for t in times)})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgres", help="PostgreSQL URL (a scratch database is created in it)")
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--groups", type=int, default=500)
    parser.add_argument("--memory", action="store_true", help="report the server's RSS growth")
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="time the CSV import, the raw insert, computed discovery and pm4py this many times, "
        "interleaved, and compare the best of each (a shared machine's noise only slows a run)",
    )
    parser.add_argument(
        "--all-pages",
        action="store_true",
        help="time every page of /handoffs (each page recomputes the arcs), not just the top 500",
    )
    args = parser.parse_args()
    backend = "postgresql" if args.postgres else "sqlite"

    with tempfile.TemporaryDirectory(prefix="silospan-discovery-") as folder:
        csv_path, xes_path = Path(folder) / "log.csv", Path(folder) / "log.xes"
        write_csv(csv_path, args.events, args.groups)
        write_xes(xes_path, args.events, args.groups)
        print(
            f"{backend}: {args.events:,} events over {args.groups} groups; "
            f"CSV {csv_path.stat().st_size / 1e6:.0f} MB, XES {xes_path.stat().st_size / 1e6:.0f} MB"
        )
        with fresh_database(args.postgres) as url, running_server(url) as server:
            headers = {"Authorization": f"Bearer {server.admin_key}"}
            with httpx.Client(base_url=server.base_url, headers=headers, timeout=60) as client:
                before = server.rss_kib()
                imports, raws = [], []
                for left in reversed(range(args.rounds)):
                    key = f"bench-csv-{left}" if left else "bench-csv"  # the last one stays
                    seconds, log = post_log(client, csv_path, key, "text/csv")
                    assert log["events"] == args.events, log
                    imports.append(seconds)
                    if args.postgres:
                        raws.append(raw_postgres(url, csv_path))
                    else:
                        raws.append(raw_sqlite(Path(url.removeprefix("sqlite:///")), csv_path))
                    if left:
                        client.delete(f"/v1/event-logs/{key}", timeout=3600).raise_for_status()
                grown = (server.peak_rss_kib() - before) / 1024
                csv_rate = args.events / min(imports)
                print(
                    f"import CSV: {best(imports)}, {csv_rate:,.0f} events/s"
                    + (f"; server peak RSS +{grown:.0f} MB" if args.memory else "")
                )
                raw_rate = args.events / min(raws)
                print(
                    f"raw executemany: {best(raws)}, {raw_rate:,.0f} rows/s; "
                    f"import / raw = {csv_rate / raw_rate:.2f} (target >= 0.35)"
                )
                seconds, log = post_log(client, xes_path, "bench-xes", "application/xml")
                assert log["events"] == args.events, log
                print(f"import XES: {seconds:.1f} s, {args.events / seconds:,.0f} events/s")
                discovery, summary, arcs = discover(client, "bench-csv", args.all_pages)
                print(
                    f"discovery (summary + {arcs:,} arcs): {discovery:.2f} s; "
                    f"{summary['transfers']:,} transfers, {summary['ping_pongs']:,} ping-pongs"
                )
                computed_times = []
                for _ in range(args.rounds):
                    seconds, live_summary, _ = discover(client, "bench-csv", False, live=True)
                    assert live_summary["transfers"] == summary["transfers"], live_summary
                    computed_times.append(seconds)
                computed = min(computed_times)
                print(
                    "discovery with the arcs computed from the rows (summary + top 500 arcs): "
                    f"{best(computed_times)}"
                )
        pm4py_times = pm4py_seconds(csv_path, args.rounds)
        if pm4py_times is None:
            print("pm4py: not installed (pip install -e '.[bench]'); no ratio")
        else:
            theirs = min(pm4py_times)
            print(
                f"pm4py handover of work: {best(pm4py_times)}; SiloSpan / pm4py = "
                f"{discovery / theirs:.2f} reading the stored discovery, "
                f"{computed / theirs:.2f} computing it (target <= 1.0)"
            )


if __name__ == "__main__":
    main()
