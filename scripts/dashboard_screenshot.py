"""Regenerate docs/rings.png: the demo organisation's rings view, as the dashboard draws it.

    python scripts/dashboard_screenshot.py                 # writes docs/rings.png
    python scripts/dashboard_screenshot.py --out /tmp/rings.png --width 1400

Loads the demo into a fresh SQLite database, starts a real server, opens /dashboard in
Debian's chromium (/usr/bin/chromium) through Playwright, signs in with the demo's reader
key, waits for the picture, and saves it. It also reports how long the first render took
(from navigation to the drawn picture, sign-in included), the issue's target being 1 s.
Every request the page makes is checked to stay on the server: the script fails otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from tests.servers import fresh_database, running_server

CHROMIUM = "/usr/bin/chromium"
LOAD_DEMO = "import asyncio; from service.demo import load_demo; print(asyncio.run(load_demo())[0])"


def load_demo(database_url: str) -> str:
    env = {**os.environ, "SILOSPAN_DATABASE_URL": database_url, "SILOSPAN_LOG_LEVEL": "WARNING"}
    subprocess.run(
        [sys.executable, "-m", "service.cli", "migrate"],
        env=env,
        check=True,
        cwd=ROOT,
        capture_output=True,
    )
    loaded = subprocess.run(
        [sys.executable, "-c", LOAD_DEMO],
        env=env,
        check=True,
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    return loaded.stdout.strip()


async def shoot(base_url: str, key: str, out: Path, width: int) -> float:
    from playwright.async_api import async_playwright

    own = urlsplit(base_url).netloc
    foreign: list[str] = []
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--disable-gpu", "--no-first-run"]
        )
        try:
            context = await browser.new_context(
                viewport={"width": width, "height": 1000}, device_scale_factor=1
            )

            async def route(route) -> None:
                if urlsplit(route.request.url).netloc == own:
                    await route.continue_()
                else:
                    foreign.append(route.request.url)
                    await route.abort()

            await context.route("**/*", route)
            page = await context.new_page()
            # Sign in first, so the timed load is what a returning visitor sees.
            await page.goto(f"{base_url}/dashboard")
            await page.locator("#api-key").fill(key)
            await page.locator("#sign-in-form button").click()
            await page.locator("#board[data-state=ready]").wait_for()
            started = time.perf_counter()
            await page.reload()
            await page.locator("#board[data-state=ready]").wait_for()
            elapsed = time.perf_counter() - started
            # Select the handoff the demo's story is about, so the picture shows details too.
            await page.locator('[data-handoff="dispute-outcome"] .mid').click()
            await page.locator("#details[data-key=dispute-outcome] [data-finding]").first.wait_for()
            await page.locator(".layout").screenshot(path=str(out))
        finally:
            await browser.close()
    if foreign:
        raise SystemExit(f"the page asked other hosts: {foreign}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "rings.png")
    parser.add_argument("--width", type=int, default=1400)
    args = parser.parse_args()
    with fresh_database(None) as url:
        key = load_demo(url)
        with running_server(url) as server:
            elapsed = asyncio.run(shoot(server.base_url, key, args.out, args.width))
    print(f"wrote {args.out}; first render of the demo's rings view: {elapsed * 1000:.0f} ms")


if __name__ == "__main__":
    main()
