"""Discovery over a random log equals a plain Python computation of SCORING.md's rules.

The reference below walks each case's rows in Python, collapses repeats to find ping-pongs
(the SQL instead pairs consecutive transfers), and takes percentiles with exact fractions:
two different routes to the same numbers.
"""

from __future__ import annotations

import csv
import io
import itertools
import math
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from fractions import Fraction

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.ext.asyncio import AsyncSession

from service.api_keys.service import SYSTEM
from service.core.pagination import PageRequest
from service.event_logs import importer
from service.event_logs import service as event_logs_service

UNITS = ["A", "B", "Front Desk", "V5 3rd, (Ops)", 'say "hi"']
STATUSES = ["", "open", "pending"]
BASE = datetime(2026, 11, 2, 8, tzinfo=UTC)
_example = itertools.count()

# Few units per example (down to two) so arcs carry many transfers, and A -> B -> A is common.
rows_strategy = st.integers(
    2, len(UNITS)
).flatmap(
    lambda k: st.lists(
        st.tuples(
            st.integers(0, 5),  # case
            st.sampled_from(UNITS[:k]),
            st.integers(0, 30),  # minutes after BASE: few values, so times tie often
            st.sampled_from(STATUSES),
        ),
        max_size=60,
    )
)


def percentile(sorted_values: list, p: int):
    return sorted_values[math.ceil(Fraction(p, 100) * len(sorted_values)) - 1]


def reference(rows: list[tuple[int, str, int, str]], pauses: set[str]):
    cases: dict[int, list] = defaultdict(list)
    for position, (case, unit, minute, status) in enumerate(rows):
        cases[case].append((minute, position, unit, status))
    arcs: dict[tuple[str, str], dict] = {}
    per_case = []
    pings_total = cases_with_ping = 0
    for events in cases.values():
        events.sort()
        transfers = 0
        for (m1, _, u1, s1), (m2, _, u2, _) in itertools.pairwise(events):
            if u1 == u2:
                continue
            transfers += 1
            arc = arcs.setdefault((u1, u2), {"waits": [], "cases": set(), "pings": 0})
            arc["waits"].append(0 if s1 in pauses else (m2 - m1) * 60_000_000)
            arc["cases"].add(id(events))
        per_case.append(transfers)
        sequence = [u for u, _ in itertools.groupby(e[2] for e in events)]
        pings = 0
        for a, b, c in zip(sequence, sequence[1:], sequence[2:], strict=False):
            if a == c:
                pings += 1
                arcs[(a, b)]["pings"] += 1
        pings_total += pings
        cases_with_ping += pings > 0
    per_case.sort()
    n = len(per_case)
    summary = {
        "cases": n,
        "events": len(rows),
        "units": len({r[1] for r in rows}),
        "transfers": sum(per_case),
        "cases_with_transfer": sum(1 for t in per_case if t),
        "ping_pongs": pings_total,
        "cases_with_ping_pong": cases_with_ping,
        "median": (per_case[(n - 1) // 2] + per_case[n // 2]) / 2 if n else 0.0,
        "p90": percentile(per_case, 90) if n else 0,
        "max": per_case[-1] if n else 0,
    }
    listed = []
    for (a, b), arc in arcs.items():
        waits = sorted(arc["waits"])
        k = len(waits)
        listed.append(
            (
                -k,
                a,
                b,
                len(arc["cases"]),
                arc["pings"],
                (waits[(k - 1) // 2] + waits[k // 2]) // 2,
                percentile(waits, 90),
                waits[-1],
            )
        )
    listed.sort(key=lambda t: (t[0], t[1].encode(), t[2].encode()))
    return summary, listed


def as_csv(rows: list[tuple[int, str, int, str]]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["case", "unit", "time", "status"])
    for case, unit, minute, status in rows:
        at = (BASE + timedelta(minutes=minute)).isoformat()
        writer.writerow([f"case {case}", unit, at, status])
    return out.getvalue().encode()


async def pieces(data: bytes, size: int):
    for start in range(0, len(data), size):
        yield data[start : start + size]


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    rows=rows_strategy,
    paused=st.booleans(),
    chunk=st.integers(1, 64),
    page_size=st.integers(1, 4),
)
async def test_discovery_equals_the_reference(connection, session, rows, paused, chunk, page_size):
    def sessions() -> AsyncSession:
        return AsyncSession(
            bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False
        )

    key = f"prop-{next(_example)}"
    options = importer.ImportOptions(key=key)
    await importer.import_log(sessions, SYSTEM, options, pieces(as_csv(rows), chunk))
    pauses = ["pending"] if paused else []
    expected_summary, expected_arcs = reference(rows, set(pauses))

    summary = await event_logs_service.summary(session, SYSTEM, key, pauses)
    got = summary.model_dump()
    spread = got.pop("transfers_per_case")
    got.update(spread)
    assert {k: got[k] for k in expected_summary} == expected_summary

    arcs, cursor = await event_logs_service.handoffs(
        session, SYSTEM, key, PageRequest(limit=500), pauses
    )
    assert cursor is None
    paged: list = []
    while True:
        page, cursor = await event_logs_service.handoffs(
            session, SYSTEM, key, PageRequest(limit=page_size, cursor=cursor), pauses
        )
        paged.extend(page)
        if cursor is None:
            break
    assert paged == arcs
    assert [
        (
            -a.count,
            a.source,
            a.target,
            a.cases,
            a.ping_pongs,
            a.wait_median_us,
            a.wait_p90_us,
            a.wait_max_us,
        )
        for a in arcs
    ] == expected_arcs
