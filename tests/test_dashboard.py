"""The rings-and-spokes dashboard: its sign-in over HTTP, and its picture in a real browser.

The HTTP tests check the session cookie (flags, binding to the key, revocation, the custom
header that keeps other sites from using it). The browser tests open ``/dashboard`` on a real
server loaded with the demo organisation, in Debian's chromium driven by Playwright, and hold
the picture to the REST API: one ``data-unit`` per unit with a ring, one ``data-handoff`` per
active handoff, each ``data-health`` the REST score for the same window. Every request the
page makes is recorded; one to another host fails the test.

Browser tests are skipped when chromium or Playwright is missing, except in CI (``CI=true``).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from http.cookies import SimpleCookie
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from service.api_keys.models import ApiKey
from service.core.permissions import Role
from service.dashboard import sessions as dashboard_sessions
from service.demo import build
from tests.browsers import launched_browser, require_browser
from tests.conftest import PG_URL
from tests.servers import ROOT, Server, fresh_database, running_server

PAGE_HEADER = {"X-SiloSpan-Session": "1"}
TIMEOUT_MS = 30_000

pytestmark = pytest.mark.e2e  # starts a real server or subprocess


def _cookie(response: httpx.Response) -> SimpleCookie:
    jar = SimpleCookie()
    for header in response.headers.get_list("set-cookie"):
        jar.load(header)
    return jar


async def _sign_in(client: httpx.AsyncClient, secret: str) -> str:
    response = await client.post("/dashboard/session", json={"key": secret}, headers=PAGE_HEADER)
    assert response.status_code == 200, response.text
    return _cookie(response)[dashboard_sessions.COOKIE].value


def _with_session(token: str, **extra: str) -> dict[str, str]:
    return {"Cookie": f"{dashboard_sessions.COOKIE}={token}", **PAGE_HEADER, **extra}


# HTTP ----------------------------------------------------------------------------------------


class TestThePage:
    async def test_it_is_served_without_a_key_with_a_same_origin_policy(self, client):
        response = await client.get("/dashboard")
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/html")
        policy = response.headers["content-security-policy"]
        assert "default-src 'self'" in policy
        assert "unsafe-inline" not in policy
        assert 'src="static/dashboard/dashboard.js"' in response.text

    async def test_its_assets_ship_in_the_package(self, client):
        for asset in ("dashboard.js", "dashboard.css"):
            response = await client.get(f"/static/dashboard/{asset}")
            assert response.status_code == 200, asset
            # no address to fetch from (the SVG namespace is a name, never fetched)
            text = response.text.replace("http://www.w3.org/2000/svg", "")
            assert "http://" not in text and "https://" not in text and "//cdn" not in text

    async def test_it_is_not_part_of_the_openapi_document(self, client):
        paths = (await client.get("/openapi.json")).json()["paths"]
        assert not [p for p in paths if p.startswith("/dashboard")]


class TestSignIn:
    async def test_a_bad_key_is_a_401_problem_and_sets_no_cookie(self, client):
        response = await client.post(
            "/dashboard/session", json={"key": "ss_not-a-real-key"}, headers=PAGE_HEADER
        )
        assert response.status_code == 401
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["code"] == "unauthenticated"
        assert "set-cookie" not in response.headers

    async def test_without_the_page_header_it_is_refused(self, client, keys):
        secret = await keys.secret(Role.reader)
        response = await client.post("/dashboard/session", json={"key": secret})
        assert response.status_code == 400
        assert response.headers["content-type"] == "application/problem+json"
        assert "set-cookie" not in response.headers

    async def test_a_missing_key_is_a_422_problem(self, client):
        response = await client.post("/dashboard/session", json={}, headers=PAGE_HEADER)
        assert response.status_code == 422
        assert response.headers["content-type"] == "application/problem+json"

    async def test_the_cookie_is_http_only_strict_and_does_not_hold_the_key(self, client, keys):
        secret = await keys.secret(Role.reader)
        response = await client.post(
            "/dashboard/session", json={"key": secret}, headers=PAGE_HEADER
        )
        assert response.status_code == 200
        assert response.json() == {
            "signed_in": True,
            "name": "test reader",
            "role": "reader",
            "partner": None,
        }
        (header,) = response.headers.get_list("set-cookie")
        morsel = _cookie(response)[dashboard_sessions.COOKIE]
        assert morsel["httponly"] is True
        assert morsel["samesite"].lower() == "strict"
        assert morsel["path"] == "/"
        assert int(morsel["max-age"]) == dashboard_sessions.LIFETIME_SECONDS
        assert secret not in header and secret[3:] not in header
        assert secret not in response.text


class TestTheSession:
    async def test_it_reads_the_api_as_its_key_does(self, client, keys):
        token = await _sign_in(client, await keys.secret(Role.reader))
        who = await client.get("/dashboard/session", headers=_with_session(token))
        assert who.json()["name"] == "test reader"
        units = await client.get("/v1/units", headers=_with_session(token))
        assert units.status_code == 200
        # a reader may not write, with a session as with the key
        created = await client.post(
            "/v1/units",
            json={"key": "x", "name": "X", "kind": "team"},
            headers=_with_session(token),
        )
        assert created.status_code == 403

    async def test_without_the_page_header_the_cookie_counts_for_nothing(self, client, keys):
        token = await _sign_in(client, await keys.secret(Role.reader))
        cookie = {"Cookie": f"{dashboard_sessions.COOKIE}={token}"}
        assert (await client.get("/v1/units", headers=cookie)).status_code == 401

    async def test_a_cross_site_request_cannot_use_it(self, client, keys):
        token = await _sign_in(client, await keys.secret(Role.reader))
        headers = _with_session(token, **{"Sec-Fetch-Site": "cross-site"})
        assert (await client.get("/v1/units", headers=headers)).status_code == 401

    async def test_revoking_the_key_ends_the_session(self, client, keys):
        admin = await keys.admin()
        created = await client.post(
            "/v1/api-keys", json={"name": "wall", "role": "reader"}, headers=admin
        )
        token = await _sign_in(client, created.json()["secret"])
        assert (await client.get("/v1/units", headers=_with_session(token))).status_code == 200
        revoked = await client.post(f"/v1/api-keys/{created.json()['id']}/revoke", headers=admin)
        assert revoked.status_code == 200
        for path in ("/v1/units", "/dashboard/session"):
            refused = await client.get(path, headers=_with_session(token))
            assert refused.status_code == 401, path
            assert refused.headers["content-type"] == "application/problem+json"

    async def test_a_forged_or_stale_cookie_is_refused(self, client, keys, session):
        token = await _sign_in(client, await keys.secret(Role.reader))
        version, key_id, issued, mac = token.split(".")
        key = await session.get(ApiKey, uuid.UUID(hex=key_id))
        stale = dashboard_sessions.issue(
            key, now=time.time() - dashboard_sessions.LIFETIME_SECONDS - 5
        )
        forged = [
            f"{version}.{key_id}.{int(issued) + 1}.{mac}",  # another time, the same MAC
            f"{version}.{key_id}.{issued}.{mac[:-2]}AA",
            f"{version}.{'0' * 32}.{issued}.{mac}",
            "v1.not-a-session",
            stale,
        ]
        for bad in forged:
            response = await client.get("/v1/units", headers=_with_session(bad))
            assert response.status_code == 401, bad

    async def test_signing_out_clears_the_cookie(self, client, keys):
        token = await _sign_in(client, await keys.secret(Role.reader))
        response = await client.delete("/dashboard/session", headers=_with_session(token))
        assert response.status_code == 204
        morsel = _cookie(response)[dashboard_sessions.COOKIE]
        assert morsel.value == ""
        assert morsel["max-age"] == "0"
        not_signed_in = await client.get("/dashboard/session", headers=PAGE_HEADER)
        assert not_signed_in.json() == {"signed_in": False}

    async def test_a_partner_session_sees_only_its_own_part(self, client, keys, session):
        await build(session, now=datetime.now(UTC))
        await session.commit()
        token = await _sign_in(client, await keys.secret(Role.partner, "swiftline"))
        who = (await client.get("/dashboard/session", headers=_with_session(token))).json()
        assert who["partner"] == "swiftline"
        units = (await client.get("/v1/units", headers=_with_session(token))).json()["items"]
        assert [u["key"] for u in units] == ["swiftline"]
        handoffs = (await client.get("/v1/handoffs", headers=_with_session(token))).json()
        assert handoffs["items"]
        for h in handoffs["items"]:
            assert "swiftline" in (h["from_unit"], h["to_unit"])


class TestTheDemo:
    def test_it_prints_the_dashboard_url(self, tmp_path, monkeypatch):
        import uvicorn
        from typer.testing import CliRunner

        from service.cli import app

        monkeypatch.setenv("SILOSPAN_DATABASE_URL", f"sqlite:///{tmp_path / 'demo.db'}")
        monkeypatch.setattr(uvicorn, "run", lambda *args, **kwargs: None)
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        result = CliRunner().invoke(app, ["demo", "--port", str(port)])
        assert result.exit_code == 0, result.output
        lines = dict(line.split(":", 1) for line in result.stdout.splitlines())
        assert lines["dashboard"].strip() == f"http://127.0.0.1:{port}/dashboard"


# The browser ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def _chromium() -> None:
    require_browser()


@dataclass
class Site:
    server: Server
    reader_key: str
    partner_key: str

    def api(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.server.base_url,
            headers={"Authorization": f"Bearer {self.server.admin_key}"},
            timeout=60,
        )


LOAD_DEMO = "import asyncio; from service.demo import load_demo; print(asyncio.run(load_demo())[0])"


def _load_demo(database_url: str) -> str:
    env = {**os.environ, "SILOSPAN_DATABASE_URL": database_url, "SILOSPAN_LOG_LEVEL": "WARNING"}
    run = [sys.executable, "-m", "service.cli"]
    subprocess.run([*run, "migrate"], env=env, check=True, cwd=ROOT, capture_output=True)
    loaded = subprocess.run(
        [sys.executable, "-c", LOAD_DEMO],
        env=env,
        check=True,
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    return loaded.stdout.strip()


@pytest.fixture(scope="module")
def site(backend: str, _chromium: None) -> Iterator[Site]:
    """A real server holding the demo organisation, its reader key and a partner key."""
    with fresh_database(PG_URL if backend == "postgresql" else None) as url:
        reader_key = _load_demo(url)
        with running_server(url) as server:
            with httpx.Client(
                base_url=server.base_url,
                headers={"Authorization": f"Bearer {server.admin_key}"},
            ) as api:
                partner = api.post(
                    "/v1/api-keys",
                    json={"name": "swiftline portal", "role": "partner", "partner": "swiftline"},
                )
                partner.raise_for_status()
            yield Site(server, reader_key, partner.json()["secret"])


@pytest.fixture(scope="module")
async def browser(_chromium: None) -> AsyncIterator[object]:
    async with launched_browser() as launched:
        yield launched


@dataclass
class Visit:
    page: object
    requests: list[str] = field(default_factory=list)
    foreign: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


async def _watch(browser, site: Site) -> tuple[object, Visit]:
    """A browser context whose every request is recorded; other hosts are refused."""
    own = urlsplit(site.server.base_url).netloc
    context = await browser.new_context(viewport={"width": 1400, "height": 1000})
    context.set_default_timeout(TIMEOUT_MS)
    page = await context.new_page()
    seen = Visit(page)

    async def route(route) -> None:
        url = route.request.url
        seen.requests.append(url)
        if urlsplit(url).netloc == own:
            await route.continue_()
        else:
            seen.foreign.append(url)
            await route.abort()

    await context.route("**/*", route)
    page.on("pageerror", lambda error: seen.errors.append(str(error)))
    return context, seen


@pytest.fixture
async def visit(browser, site: Site) -> AsyncIterator[Visit]:
    context, seen = await _watch(browser, site)
    try:
        yield seen
    finally:
        await context.close()


# A window in the past, so that no event falls due between the page's reading and the test's.
FROM_DAY = (datetime.now(UTC).date() - timedelta(days=60)).isoformat()
TO_DAY = (datetime.now(UTC).date() - timedelta(days=1)).isoformat()


async def _open(visit: Visit, site: Site, key: str, query: str = "") -> object:
    page = visit.page
    await page.goto(f"{site.server.base_url}/dashboard{query}")
    await page.locator("#api-key").fill(key)
    await page.locator("#sign-in-form button").click()
    await page.locator("#board[data-state=ready]").wait_for()
    return page


def _window_of(svg_from: str, svg_to: str) -> dict[str, str]:
    return {"from": svg_from, "to": svg_to}


async def _page_window(page) -> dict[str, str]:
    """The window the page asked the API for (written on the picture)."""
    svg = page.locator("#rings")
    return _window_of(await svg.get_attribute("data-from"), await svg.get_attribute("data-to"))


def _all(api: httpx.Client, path: str, **params: str) -> list[dict]:
    items: list[dict] = []
    cursor = None
    while True:
        page = api.get(
            path, params={**params, "limit": 500, **({"cursor": cursor} if cursor else {})}
        )
        page.raise_for_status()
        items += page.json()["items"]
        cursor = page.json()["next_cursor"]
        if not cursor:
            return items


def _number(shown: str | None) -> float | None:
    """A number as the page wrote it (JavaScript's shortest round-trip form), or None for
    an empty attribute or "no data"; compared with == to the API's JSON number."""
    if shown in ("", "no data", None):
        return None
    return float(shown)


async def _keys(scope, attribute: str, within: str = "") -> list[str]:
    """The values of ``attribute`` on the elements (inside ``within``) that carry it."""
    return await scope.locator(f"{within} [{attribute}]".strip()).evaluate_all(
        f"nodes => nodes.map(n => n.getAttribute('{attribute}'))"
    )


@pytest.mark.browser
class TestRingsView:
    async def test_the_picture_matches_the_api_for_the_window_in_the_address(
        self, visit: Visit, site: Site
    ):
        page = await _open(visit, site, site.reader_key, f"?from={FROM_DAY}&to={TO_DAY}")
        svg = page.locator("#rings")
        window = _window_of(
            await svg.get_attribute("data-from"), await svg.get_attribute("data-to")
        )
        assert window == {
            "from": f"{FROM_DAY}T00:00:00Z",
            "to": f"{(date.fromisoformat(TO_DAY) + timedelta(days=1)).isoformat()}T00:00:00Z",
        }
        with site.api() as api:
            units = _all(api, "/v1/units")
            active = _all(api, "/v1/handoffs", status="active")
            rest = {
                h["key"]: api.get(f"/v1/scores/handoffs/{h['key']}", params=window).json()["value"]
                for h in active
            }
        ringed = sorted(u["key"] for u in units if u["ring"] is not None)
        assert ringed, "the demo has units with a ring"
        assert sorted(await _keys(page, "data-unit")) == ringed
        assert sorted(await _keys(page, "data-handoff")) == sorted(rest)
        drawn = await page.locator("[data-handoff]").evaluate_all(
            "nodes => nodes.map(n => [n.dataset.handoff, n.dataset.health])"
        )
        assert any(value is not None for value in rest.values())
        for key, health in drawn:
            assert _number(health) == rest[key], key
        # the window stays in the address and in the selector
        query = parse_qs(urlsplit(page.url).query)
        assert query == {"from": [FROM_DAY], "to": [TO_DAY]}
        assert await page.locator("#window-from").input_value() == FROM_DAY
        assert visit.foreign == [] and visit.errors == []

    async def test_a_signed_in_page_draws_the_demo_quickly(self, visit: Visit, site: Site):
        """The issue's target is 1 s on this machine (scripts/dashboard_screenshot.py reports
        0.4-0.5 s); the test allows 3 s, because other suites share these cores, which still
        catches a page that fetches per unit or per handoff."""
        page = await _open(visit, site, site.reader_key)
        await page.reload()
        await page.locator("#board[data-state=ready]").wait_for()
        render_ms = int(await page.locator("#board").get_attribute("data-render-ms"))
        assert 0 < render_ms < 3000
        # one page of each list, not a request per unit or handoff
        api_calls = [u for u in visit.requests if "/v1/" in u]
        assert len(api_calls) <= 2 * 4

    async def test_without_a_window_the_last_90_days_are_put_in_the_address(
        self, visit: Visit, site: Site
    ):
        page = await _open(visit, site, site.reader_key)
        query = parse_qs(urlsplit(page.url).query)
        start, end = date.fromisoformat(query["from"][0]), date.fromisoformat(query["to"][0])
        assert (end - start).days == 89
        assert abs((end - datetime.now(UTC).date()).days) <= 1

    async def test_clicking_a_handoff_shows_its_components_as_the_api_gives_them(
        self, visit: Visit, site: Site
    ):
        page = await _open(visit, site, site.reader_key, f"?from={FROM_DAY}&to={TO_DAY}")
        window = _window_of(
            await page.locator("#rings").get_attribute("data-from"),
            await page.locator("#rings").get_attribute("data-to"),
        )
        with site.api() as api:
            score = api.get("/v1/scores/handoffs/dispute-outcome", params=window).json()
            findings = _all(api, "/v1/findings", subject="handoff:dispute-outcome")
        await page.locator('[data-handoff="dispute-outcome"] .mid').click()
        details = page.locator("#details[data-key=dispute-outcome]")
        await details.wait_for()
        assert (
            _number(await details.locator("[data-score]").get_attribute("data-score"))
            == (score["value"])
        )
        assert set(score["components"]) == {
            "timeliness",
            "quality",
            "rework_free",
            "recipient_satisfaction",
        }
        for name, component in score["components"].items():
            cell = details.locator(f'tr[data-component="{name}"] td[data-value]')
            assert _number(await cell.get_attribute("data-value")) == component["value"], name
        counts = score["details"]["counts"]
        for name, value in counts.items():
            cell = details.locator(f"td[data-count-{name}]")
            assert _number(await cell.inner_text()) == value, name
        assert (
            _number(await details.locator("td[data-buffer-rate]").inner_text())
            == (score["details"]["buffer_rate"])
        )
        assert await details.locator("td[data-cycle-time]").inner_text() == str(
            score["details"]["median_cycle_time"]
        )
        assert findings, "the demo's buffering finding is on this handoff"
        await details.locator("[data-finding]").first.wait_for()
        shown_rules = await _keys(details, "data-finding")
        assert sorted(shown_rules) == sorted(f["rule"] for f in findings)
        assert visit.foreign == [] and visit.errors == []

    async def test_a_unit_shows_its_score_goals_and_open_conflicts(self, visit: Visit, site: Site):
        page = await _open(visit, site, site.reader_key, f"?from={FROM_DAY}&to={TO_DAY}")
        window = _window_of(
            await page.locator("#rings").get_attribute("data-from"),
            await page.locator("#rings").get_attribute("data-to"),
        )
        with site.api() as api:
            score = api.get("/v1/scores/units/contact-centre", params=window).json()
            goals = _all(api, "/v1/goals", owner="contact-centre", status="active")
            conflicts = [
                c
                for c in _all(api, "/v1/conflicts", status="open")
                if any(g["owner"] == "contact-centre" for g in c["goals"])
            ]
        await page.locator('[data-unit="contact-centre"]').click()
        details = page.locator("#details[data-key=contact-centre]")
        await details.locator("[data-score]").wait_for()
        assert (
            _number(await details.locator("[data-score]").get_attribute("data-score"))
            == (score["value"])
        )
        for name, component in score["components"].items():
            cell = details.locator(f'tr[data-component="{name}"] td[data-value]')
            assert _number(await cell.get_attribute("data-value")) == component["value"], name
        assert goals and conflicts, "the demo's contact centre has goals in a conflict"
        await details.locator("[data-conflict]").first.wait_for()
        assert sorted(await _keys(details, "data-goal")) == sorted(g["key"] for g in goals)
        assert sorted(await _keys(details, "data-conflict")) == sorted(c["id"] for c in conflicts)

    async def test_keyboard_tab_reaches_every_unit_and_enter_opens_it(
        self, visit: Visit, site: Site
    ):
        page = await _open(visit, site, site.reader_key)
        expected = set(await _keys(page, "data-unit"))
        reached: set[str] = set()
        for _ in range(200):
            await page.keyboard.press("Tab")
            key = await page.evaluate("document.activeElement.getAttribute('data-unit')")
            if key:
                reached.add(key)
            if reached == expected:
                break
        assert reached == expected
        await page.keyboard.press("Enter")
        await page.locator(f'#details[data-key="{key}"]').wait_for()

    async def test_a_partner_key_sees_only_its_own_units_and_handoffs(
        self, visit: Visit, site: Site
    ):
        page = await _open(visit, site, site.partner_key)
        with httpx.Client(
            base_url=site.server.base_url,
            headers={"Authorization": f"Bearer {site.partner_key}"},
        ) as partner_api:
            own_units = [u["key"] for u in _all(partner_api, "/v1/units") if u["ring"]]
            own_handoffs = [h["key"] for h in _all(partner_api, "/v1/handoffs", status="active")]
        assert own_units == ["swiftline"]
        assert await _keys(page, "data-unit") == own_units
        assert sorted(await _keys(page, "data-handoff")) == sorted(own_handoffs)
        with site.api() as api:
            everything = {h["key"] for h in _all(api, "/v1/handoffs", status="active")}
        assert set(own_handoffs) < everything
        text = await page.locator("body").inner_text()
        for other in ("Contact centre", "Card services", "Marketing"):
            assert other not in text
        # no company score for a partner: its trend is its own partner score
        window = await _page_window(page)
        await page.locator('.tab[data-view="trend"]').click()
        await page.locator("#trend-chart[data-state=ready]").wait_for()
        with httpx.Client(
            base_url=site.server.base_url,
            headers={"Authorization": f"Bearer {site.partner_key}"},
        ) as partner_api:
            score = partner_api.get(
                "/v1/scores/partners/swiftline", params={**window, "bucket": "week"}
            ).json()
        shown = await page.locator("#trend-table td[data-value]").evaluate_all(
            "nodes => nodes.map(n => n.dataset.value)"
        )
        assert [_number(v) for v in shown] == [b["value"] for b in score["series"]]
        assert visit.foreign == [] and visit.errors == []


@pytest.mark.browser
class TestTheOtherViews:
    async def test_the_journey_shows_each_touchpoints_score_priority_and_chain(
        self, visit: Visit, site: Site
    ):
        page = await _open(visit, site, site.reader_key, f"?from={FROM_DAY}&to={TO_DAY}")
        window = await _page_window(page)
        await page.locator('.tab[data-view="journey"]').click()
        stages = page.locator("#journey-stages[data-state=ready]")
        await stages.wait_for()
        with site.api() as api:
            (journey,) = _all(api, "/v1/journeys")
            touchpoints = _all(api, "/v1/touchpoints", journey=journey["key"])
            scores = {
                t["key"]: api.get(f"/v1/scores/touchpoints/{t['key']}", params=window).json()
                for t in touchpoints
            }
        assert await _keys(stages, "data-stage") == journey["stages"]
        assert sorted(await _keys(stages, "data-touchpoint")) == sorted(scores)
        for key, score in scores.items():
            card = stages.locator(f'[data-touchpoint="{key}"]')
            assert (
                _number(await card.locator("[data-score]").get_attribute("data-score"))
                == (score["value"])
            ), key
            assert (
                _number(await card.locator("[data-priority]").get_attribute("data-priority"))
                == (score["details"]["priority"])
            )
            chain = sorted(score["details"]["upstream"], key=lambda u: u["depth"])
            shown = await card.locator(".chain [data-link-handoff]").evaluate_all(
                "nodes => nodes.map(n => n.dataset.linkHandoff)"
            )
            assert shown == [u["handoff"] for u in chain], key
        assert "#journey" in page.url and f"from={FROM_DAY}" in page.url
        assert visit.foreign == [] and visit.errors == []

    async def test_conflicts_and_findings_are_listed_most_severe_first(
        self, visit: Visit, site: Site
    ):
        page = await _open(visit, site, site.reader_key, "#issues")
        await page.locator("#finding-list [data-finding]").first.wait_for()
        with site.api() as api:
            conflicts = _all(api, "/v1/conflicts", status="open")
            findings = _all(api, "/v1/findings")
        assert await _keys(page, "data-conflict", "#conflict-list") == [c["id"] for c in conflicts]
        assert await _keys(page, "data-finding", "#finding-list") == [f["id"] for f in findings]
        severities = [f["severity"] for f in findings]
        assert severities == sorted(severities, reverse=True)
        first = page.locator(f'[data-finding="{findings[0]["id"]}"]')
        assert findings[0]["remedy"] in await first.inner_text()
        # a unit named in a finding opens it on the rings
        link = page.locator("#finding-list [data-link-unit]").first
        unit = await link.get_attribute("data-link-unit")
        await link.click()
        await page.locator(f'#details[data-key="{unit}"]').wait_for()
        assert await page.locator("#view-rings").is_visible()
        assert visit.foreign == [] and visit.errors == []

    async def test_a_case_is_drawn_as_swimlanes_with_its_transfers_and_ping_pongs(
        self, visit: Visit, site: Site
    ):
        page = await _open(visit, site, site.reader_key, "#case")
        await page.locator("#case-ref").fill("case-7781")
        await page.locator("#case-form button").click()
        await page.locator("#case-lanes[data-state=ready]").wait_for()
        with site.api() as api:
            case = api.get("/v1/cases/case-7781").json()
        assert page.url.endswith("#case/case-7781")
        assert await page.locator("#case-lanes [data-step]").count() == len(case["steps"])
        transfers = await _keys(page, "data-transfer", "#case-lanes")
        assert len(transfers) == sum(s["from_unit"] != s["to_unit"] for s in case["steps"])
        assert case["ping_pongs"] > 0
        assert await page.locator("#case-lanes .transfer.ping-pong").count() > 0
        late = [s for s in case["steps"] if s["late_by"]]
        assert await page.locator("#case-lanes .bar.late").count() == len(late)
        summary = await page.locator("#case-summary").inner_text()
        assert f"{case['transfers']} transfer(s)" in summary
        assert f"{case['ping_pongs']} ping-pong(s)" in summary
        await page.locator("#case-ref").fill("no-such-case")
        await page.locator("#case-form button").click()
        await page.locator("#case-lanes[data-state=error]").wait_for()
        assert "No case to show" in await page.locator("#case-summary").inner_text()
        assert visit.foreign == []

    async def test_the_trend_is_the_company_score_by_week(self, visit: Visit, site: Site):
        page = await _open(visit, site, site.reader_key, f"?from={FROM_DAY}&to={TO_DAY}#trend")
        await page.locator("#trend-chart[data-state=ready]").wait_for()
        window = await _page_window(page)
        with site.api() as api:
            score = api.get("/v1/scores/company", params={**window, "bucket": "week"}).json()
        shown = await page.locator("#trend-table td[data-value]").evaluate_all(
            "nodes => nodes.map(n => n.dataset.value)"
        )
        assert [_number(v) for v in shown] == [b["value"] for b in score["series"]]
        points = await page.locator("#trend-chart .trend-point").count()
        assert points == sum(b["value"] is not None for b in score["series"]) > 0
        assert visit.foreign == [] and visit.errors == []


@pytest.mark.browser
class TestSessionInTheBrowser:
    async def test_a_revoked_keys_session_is_refused(self, visit: Visit, site: Site):
        with site.api() as api:
            created = api.post("/v1/api-keys", json={"name": "wall screen", "role": "reader"})
            created.raise_for_status()
            page = await _open(visit, site, created.json()["secret"])
            cookies = await page.context.cookies()
            (session,) = [c for c in cookies if c["name"] == dashboard_sessions.COOKIE]
            assert session["httpOnly"] and session["sameSite"] == "Strict"
            assert await page.evaluate("document.cookie") == ""  # not readable by scripts
            api.post(f"/v1/api-keys/{created.json()['id']}/revoke").raise_for_status()
        await page.reload()
        await page.locator("#sign-in").wait_for()
        assert "revoked" in await page.locator("#sign-in-error").inner_text()
        assert await page.locator("[data-unit]").count() == 0

    async def test_signing_out_returns_to_the_sign_in(self, visit: Visit, site: Site):
        page = await _open(visit, site, site.reader_key)
        await page.locator("#sign-out").click()
        await page.locator("#sign-in").wait_for()
        cookies = await page.context.cookies()
        assert not [c for c in cookies if c["name"] == dashboard_sessions.COOKIE]
        await page.reload()
        await page.locator("#sign-in").wait_for()
        assert await page.locator("#board").is_hidden()

    async def test_a_bad_key_is_told_so_and_nothing_is_drawn(self, visit: Visit, site: Site):
        page = visit.page
        await page.goto(f"{site.server.base_url}/dashboard")
        await page.locator("#api-key").fill("ss_wrong")
        await page.locator("#sign-in-form button").click()
        await page.locator("#sign-in-error:has-text('not valid')").wait_for()
        assert await page.locator("#board").is_hidden()
        assert "ss_wrong" not in page.url
        assert visit.foreign == []


# A large company -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
async def big_site(backend: str, _chromium: None) -> AsyncIterator[Site]:
    """More handoffs than the page draws one by one (benchmarks/dashboard_scale.py, smaller)."""
    from benchmarks.dashboard_scale import build, load_events

    with (
        fresh_database(PG_URL if backend == "postgresql" else None) as url,
        running_server(url) as server,
    ):
        keys = await build(url, units=200, handoffs=800, seed=7)
        load_events(server.base_url, server.admin_key, keys, per=2, seed=7)
        with httpx.Client(
            base_url=server.base_url,
            headers={"Authorization": f"Bearer {server.admin_key}"},
            timeout=60,
        ) as api:
            created = api.post("/v1/api-keys", json={"name": "wall", "role": "reader"})
            created.raise_for_status()
        yield Site(server, created.json()["secret"], partner_key="")


@pytest.mark.browser
class TestALargeCompany:
    async def test_it_is_drawn_as_clusters_and_bundles_that_add_up_and_says_so(
        self, browser, big_site: Site
    ):
        context, visit = await _watch(browser, big_site)
        try:
            page = await _open(visit, big_site, big_site.reader_key, f"?from={FROM_DAY}")
            window = await _page_window(page)
            assert await page.locator("#rings").get_attribute("data-mode") == "clusters"
            assert "clusters" in await page.locator("#notes").inner_text()
            with big_site.api() as api:
                units = _all(api, "/v1/units")
                active = _all(api, "/v1/handoffs", status="active")
                scores = {
                    s["subject"]["key"]: s for s in _all(api, "/v1/scores/handoffs", **window)
                }
            clusters = await page.locator("[data-cluster]").evaluate_all(
                "nodes => nodes.map(n => [+n.dataset.units, +n.dataset.inside])"
            )
            assert sum(n for n, _ in clusters) == sum(u["ring"] is not None for u in units)
            bundles = await page.locator("[data-bundle]").evaluate_all(
                "nodes => nodes.map(n => [n.dataset.bundle, +n.dataset.handoffs])"
            )
            assert len(bundles) >= 3
            apart = await page.locator("#unconnected [data-handoff]").count()
            drawn = sum(n for _, n in bundles) + sum(inside for _, inside in clusters) + apart
            assert drawn == len(active)
            # a bundle's colour is the occurrence-weighted health of its handoffs, from REST
            order = [h["key"] for h in active]
            for bundle, _ in sorted(bundles, key=lambda b: -b[1])[:3]:
                await page.locator(f'[data-bundle="{bundle}"]').dispatch_event("click")
                members = page.locator(f'#details[data-key="{bundle}"] [data-member-handoff]')
                await members.first.wait_for()
                keys = sorted(await _keys(page, "data-member-handoff", "#details"), key=order.index)
                total = weight = 0.0
                for key in keys:
                    score = scores[key]
                    if score["value"] is None:
                        continue
                    w = score["details"]["counts"]["events"] or 1
                    total += score["value"] * w
                    weight += w
                expected = total / weight if weight else None
                shown = _number(
                    await page.locator(f'[data-bundle="{bundle}"]').get_attribute("data-health")
                )
                assert expected is not None and shown == pytest.approx(expected, rel=1e-12), bundle
            assert visit.requests and visit.foreign == [] and visit.errors == []
        finally:
            await context.close()
