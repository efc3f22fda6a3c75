"""/docs, /redoc and GraphiQL in a real browser: Debian's chromium, driven by Playwright.

Each page is opened on a real server with every request recorded; a request to any other
host is refused and fails the test, so the pages are proven to load offline. Swagger UI
and ReDoc must list the operations; GraphiQL must run its example query once the key is
typed into its headers, as a person would.

Skipped when chromium or Playwright is missing, except in CI (``CI=true``), where that
fails: `.ci/run` installs chromium, and the test extras install Playwright.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import httpx
import pytest

from service.graphql.ide import HEADERS
from tests.browsers import launched_browser, require_browser
from tests.conftest import PG_URL
from tests.servers import Server, fresh_database, running_server

TIMEOUT_MS = 30_000
JOURNEY = "multi-issue-enquiry"  # the example query's journey

pytestmark = [pytest.mark.browser, pytest.mark.e2e]


@pytest.fixture(scope="module", autouse=True)
def _browser_available() -> None:
    require_browser()


@dataclass
class Site:
    server: Server
    reader_key: str


@pytest.fixture(scope="module")
def site(backend: str, _browser_available: None) -> Iterator[Site]:
    """A real server with the example query's journey, one touchpoint, and a reader key."""
    with (
        fresh_database(PG_URL if backend == "postgresql" else None) as url,
        running_server(url) as server,
        httpx.Client(
            base_url=server.base_url,
            headers={"Authorization": f"Bearer {server.admin_key}"},
            timeout=30,
        ) as api,
    ):
        for path, body in [
            ("/v1/units", {"key": "contact-centre", "name": "Contact centre", "kind": "department"}),
            ("/v1/journeys", {"key": JOURNEY, "name": "Multi-issue enquiry", "stages": ["contact"]}),
            (
                "/v1/touchpoints",
                {
                    "key": "service-call",
                    "journey": JOURNEY,
                    "stage": "contact",
                    "name": "Service call",
                    "owner": "contact-centre",
                    "moment_of_truth": True,
                },
            ),
        ]:
            api.post(path, json=body).raise_for_status()
        created = api.post("/v1/api-keys", json={"name": "browser", "role": "reader"})
        created.raise_for_status()
        yield Site(server, created.json()["secret"])


@pytest.fixture(scope="module")
async def browser(_browser_available: None) -> AsyncIterator[object]:
    async with launched_browser() as launched:
        yield launched


@dataclass
class Visit:
    """A page, and what it asked for: every request, and those refused as foreign."""

    page: object
    requests: list[str] = field(default_factory=list)
    foreign: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


@pytest.fixture
async def visit(browser, site: Site) -> AsyncIterator[Visit]:
    own = urlsplit(site.server.base_url).netloc
    context = await browser.new_context()
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
    page.on("response", lambda r: r.status >= 400 and seen.failed.append(f"{r.status} {r.url}"))
    page.on("pageerror", lambda error: seen.errors.append(str(error)))
    page.on(
        "console", lambda m: m.type == "error" and seen.errors.append(f"console: {m.text}")
    )
    try:
        yield seen
    finally:
        await context.close()


def assert_only_the_service(seen: Visit) -> None:
    assert seen.requests, "the page made no request at all"
    assert seen.foreign == [], f"requests to other hosts: {seen.foreign}"
    assert seen.errors == [], seen.errors


class TestSwaggerUI:
    async def test_it_lists_the_operations_with_nothing_from_another_host(
        self, visit: Visit, site: Site
    ):
        page = visit.page
        await page.goto(f"{site.server.base_url}/docs")
        units = page.locator(".opblock-summary-path", has_text="/v1/units").first
        await units.wait_for()
        operations = await page.locator(".opblock").count()
        assert operations > 40, operations
        assert_only_the_service(visit)
        assert visit.failed == []


class TestReDoc:
    async def test_it_lists_the_operations_with_nothing_from_another_host(
        self, visit: Visit, site: Site
    ):
        page = visit.page
        await page.goto(f"{site.server.base_url}/redoc")
        await page.locator('[data-section-id="operation/list_units"]').wait_for(state="attached")
        operations = await page.locator('[data-section-id^="operation/"]').count()
        assert operations > 40, operations
        assert_only_the_service(visit)
        assert visit.failed == []


class TestGraphiQL:
    async def test_the_example_query_runs_with_the_key_typed_into_the_headers(
        self, visit: Visit, site: Site
    ):
        page = visit.page
        await page.goto(f"{site.server.base_url}/graphql")
        query_editor = page.locator(".graphiql-query-editor .CodeMirror")
        await query_editor.wait_for()
        assert "query JourneyView" in await query_editor.inner_text()
        headers_editor = page.locator(".graphiql-editor-tool .graphiql-editor:not(.hidden)")
        lines = await headers_editor.locator(".CodeMirror-line").all_inner_texts()
        assert json.loads("".join(lines)) == json.loads(HEADERS)
        # No key yet: the page asks for one instead of sending a request doomed to a 401.
        assert not any(url.endswith("/graphql") for url in visit.requests[1:])

        # As a person would: click at the end of the headers, step back inside "Bearer ",
        # type the key, run the query.
        await headers_editor.locator(".CodeMirror-lines").click()
        await page.keyboard.press("Control+End")
        await page.keyboard.press("ArrowLeft")
        await page.keyboard.press("ArrowLeft")
        await page.keyboard.type(site.reader_key)

        def is_query(response) -> bool:
            body = response.request.post_data or ""
            return response.url.endswith("/graphql") and "JourneyView" in body

        async with page.expect_response(is_query) as answered:
            await page.locator(".graphiql-execute-button").click()
        response = await answered.value
        assert response.request.headers["authorization"] == f"Bearer {site.reader_key}"
        assert response.status == 200
        body = await response.json()
        assert "errors" not in body, body
        journey = body["data"]["journey"]
        assert journey["name"] == "Multi-issue enquiry"
        assert [t["key"] for t in journey["touchpoints"]] == ["service-call"]

        result = page.locator(".result-window")
        await result.get_by_text("Multi-issue enquiry").wait_for()
        # The key worked, so the schema is fetched with it: the docs open.
        await page.get_by_role("button", name="Show Documentation Explorer").click()
        await page.get_by_text("A GraphQL schema provides a root type").wait_for()
        assert_only_the_service(visit)
        assert visit.failed == []

    async def test_a_query_without_a_key_is_still_refused(self, visit: Visit, site: Site):
        page = visit.page
        await page.goto(f"{site.server.base_url}/graphql")
        await page.locator(".graphiql-query-editor .CodeMirror").wait_for()

        def is_query(response) -> bool:
            return response.url.endswith("/graphql") and response.request.method == "POST"

        async with page.expect_response(is_query) as answered:
            await page.locator(".graphiql-execute-button").click()
        response = await answered.value
        assert response.status == 401
        assert (await response.json())["code"] == "unauthenticated"
        assert visit.foreign == []
