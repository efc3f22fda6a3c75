"""The dashboard with a large company: 2,000 units and 20,000 handoffs, in a real browser.

    python benchmarks/dashboard_scale.py                              # SQLite
    python benchmarks/dashboard_scale.py --postgres postgresql+psycopg://postgres@127.0.0.1/test
    python benchmarks/dashboard_scale.py --units 500 --handoffs 5000 --events-per-handoff 1

Builds the organisation in a fresh database: units on five rings (100 own touchpoints,
then 300, 600, 650 and 300 further out; a tenth are outside parties; 50 are connected to
nothing), handoffs from each ring to the one inside it and within rings, written straight
through the models in one transaction with the rings computed once (there is no bulk
endpoint for units and handoffs), then events for every handoff through the real
``POST /v1/handoff-events/bulk``. Then it opens ``/dashboard`` in Debian's chromium, signs
in with a reader key and reports: the time until the picture is drawn, the longest task
that blocked the page (a frozen page is one long task), how many SVG elements were drawn,
and what the page says it aggregated. It fails if the page asks another host, never
becomes ready, or blocks for more than --max-block seconds at a stretch.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from service.api_keys.service import SYSTEM
from service.core.config import Settings
from service.core.db import Database, transaction
from service.handoffs.models import Handoff
from service.journeys import service as journeys_service
from service.journeys.schemas import JourneyCreate, TouchpointCreate
from service.org_units import service as units_service
from service.org_units.models import Unit
from tests.servers import fresh_database, running_server

RING_SHARES = [0.05, 0.15, 0.30, 0.325, 0.15]  # of the connected units, ring 1 outward
OUTSIDE = ["partner", "supplier", "channel", "alliance"]


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


async def build(url: str, units: int, handoffs: int, seed: int) -> list[str]:
    """Units and handoffs through the models, in one transaction; returns the handoff keys."""
    rng = random.Random(seed)
    db = Database.from_settings(Settings(database_url=url, log_level="WARNING"))
    try:
        async with transaction(db.write_sessions) as session:
            connected = units - 50
            layers: list[list[Unit]] = []
            made = 0
            for ring, share in enumerate(RING_SHARES, start=1):
                size = round(connected * share) if ring < len(RING_SHARES) else connected - made
                layer = []
                for i in range(size):
                    kind = rng.choice(OUTSIDE) if rng.random() < 0.1 else "department"
                    unit = Unit(key=f"u{ring}-{i:04d}", name=f"Unit {ring}.{i}", kind=kind)
                    layer.append(unit)
                made += size
                layers.append(layer)
            loose = [Unit(key=f"loose-{i:03d}", name=f"Loose {i}", kind="team") for i in range(50)]
            session.add_all([u for layer in layers for u in layer] + loose)
            await session.flush()
            await journeys_service.create_journey(
                session,
                SYSTEM,
                JourneyCreate(key="big", name="Big journey", stages=["one", "two", "three"]),
            )
            for i, owner in enumerate(layers[0]):
                await journeys_service.create_touchpoint(
                    session,
                    SYSTEM,
                    TouchpointCreate(
                        key=f"tp-{i:03d}",
                        journey="big",
                        stage=["one", "two", "three"][i % 3],
                        name=f"Touchpoint {i}",
                        channel="phone",
                        owner=owner.key,
                        moment_of_truth=i % 10 == 0,
                    ),
                )
            rows = []
            keys = []
            for i in range(handoffs):
                ring = rng.randrange(1, len(layers))  # from ring+1 to ring, or within ring
                inward = rng.random() < 0.8
                provider = rng.choice(layers[ring] if inward else layers[ring - 1])
                recipient = rng.choice(layers[ring - 1])
                if provider is recipient:
                    recipient = layers[ring - 1][
                        (layers[ring - 1].index(recipient) + 1) % len(layers[ring - 1])
                    ]
                key = f"h-{i:05d}"
                keys.append(key)
                rows.append(
                    Handoff(
                        key=key,
                        from_unit_id=provider.id,
                        to_unit_id=recipient.id,
                        deliverable=f"Deliverable {i}",
                        expected_within=timedelta(hours=rng.choice([2, 4, 8, 24])),
                    )
                )
            session.add_all(rows)
            await session.flush()
            await units_service.recompute_rings(session)
        return keys
    finally:
        await db.dispose()


def load_events(base_url: str, admin_key: str, keys: list[str], per: int, seed: int) -> None:
    rng = random.Random(seed)
    now = datetime.now(UTC).replace(microsecond=0)
    lines = []
    for key in keys:
        reliability = rng.random()
        for n in range(per):
            started = now - timedelta(days=rng.uniform(2, 40))
            due = started + timedelta(hours=8)
            late = rng.random() > reliability
            delivered = due + timedelta(hours=3) if late else due - timedelta(hours=1)
            lines.append(
                orjson.dumps(
                    {
                        "handoff": key,
                        "external_id": f"{key}-{n}",
                        "started_at": started.isoformat(),
                        "due_at": due.isoformat(),
                        "delivered_at": delivered.isoformat(),
                        "quality": rng.randint(1, 5),
                    }
                )
            )
    with httpx.Client(
        base_url=base_url,
        headers={
            "Authorization": f"Bearer {admin_key}",
            "Content-Type": "application/x-ndjson",
        },
        timeout=600,
    ) as api:
        for start in range(0, len(lines), 5000):
            body = b"\n".join(lines[start : start + 5000])
            api.post("/v1/handoff-events/bulk", content=body).raise_for_status()


async def open_page(base_url: str, key: str, max_block: float) -> dict:
    from playwright.async_api import async_playwright

    own = urlsplit(base_url).netloc
    foreign: list[str] = []
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path="/usr/bin/chromium", args=["--disable-gpu", "--no-first-run"]
        )
        try:
            context = await browser.new_context(viewport={"width": 1400, "height": 1000})

            async def route(route) -> None:
                if urlsplit(route.request.url).netloc == own:
                    await route.continue_()
                else:
                    foreign.append(route.request.url)
                    await route.abort()

            await context.route("**/*", route)
            # Long tasks: anything that keeps the page from answering for over 50 ms.
            await context.add_init_script(
                "window.__long = [];"
                "new PerformanceObserver(l => l.getEntries().forEach(e => "
                "window.__long.push(e.duration))).observe({type: 'longtask', buffered: true});"
            )
            page = await context.new_page()
            await page.goto(f"{base_url}/dashboard")
            await page.locator("#api-key").fill(key)
            started = time.perf_counter()
            await page.locator("#sign-in-form button").click()
            await page.locator("#board[data-state=ready]").wait_for(timeout=600_000)
            elapsed = time.perf_counter() - started
            long_tasks = await page.evaluate("window.__long")
            elements = await page.locator("#rings *").count()
            notes = await page.locator("#notes").inner_text()
            status = await page.locator("#status").inner_text()
            # The page still answers: select a cluster or a handoff by keyboard.
            await page.keyboard.press("Tab")
            answered = time.perf_counter()
            await page.evaluate("1")
            responsive = time.perf_counter() - answered
        finally:
            await browser.close()
    if foreign:
        raise SystemExit(f"the page asked other hosts: {foreign}")
    longest = max(long_tasks, default=0) / 1000
    result = {
        "ready_s": round(elapsed, 2),
        "longest_block_s": round(longest, 3),
        "long_tasks": len(long_tasks),
        "svg_elements": elements,
        "responsive_s": round(responsive, 3),
        "notes": notes,
        "status": status,
    }
    if longest > max_block:
        raise SystemExit(f"the page froze for {longest:.2f} s: {result}")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgres", default=None)
    parser.add_argument("--units", type=int, default=2000)
    parser.add_argument("--handoffs", type=int, default=20000)
    parser.add_argument("--events-per-handoff", type=int, default=2)
    parser.add_argument("--max-block", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=20261203)
    args = parser.parse_args()
    with fresh_database(args.postgres) as url, running_server(url) as server:
        log(f"building {args.units} units and {args.handoffs} handoffs")
        built = time.perf_counter()
        keys = asyncio.run(build(url, args.units, args.handoffs, args.seed))
        log(f"  built in {time.perf_counter() - built:.1f} s; loading events")
        loaded = time.perf_counter()
        load_events(server.base_url, server.admin_key, keys, args.events_per_handoff, args.seed)
        log(f"  events in {time.perf_counter() - loaded:.1f} s; opening the dashboard")
        with httpx.Client(
            base_url=server.base_url,
            headers={"Authorization": f"Bearer {server.admin_key}"},
            timeout=60,
        ) as api:
            created = api.post("/v1/api-keys", json={"name": "wall", "role": "reader"})
            created.raise_for_status()
        result = asyncio.run(open_page(server.base_url, created.json()["secret"], args.max_block))
    for name, value in result.items():
        print(f"{name:>17}: {value}")


if __name__ == "__main__":
    main()
