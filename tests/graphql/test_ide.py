"""GraphiQL at GET /graphql: the page opens without a key; every query still needs one."""

from __future__ import annotations

import json
import re

import httpx
import pytest

from service.core.config import get_settings
from service.graphql.ide import EXAMPLE_QUERY, HEADERS, asks_for_ide
from service.main import create_app
from tests.factories import make_journey, make_touchpoint, make_unit
from tests.problems import assert_problem

HTML = {"Accept": "text/html,application/xhtml+xml"}


def page_config(html: str) -> dict:
    return json.loads(re.search(r"const CONFIG = (.*);\n", html).group(1))


@pytest.fixture(autouse=True)
def _ide_on(settings):
    if not settings.graphql_ide_enabled:
        pytest.skip("the IDE is off in this environment")


@pytest.fixture
async def ide_off(app, settings):
    """A client of an app built with SILOSPAN_GRAPHQL_IDE=false (same database)."""
    off = settings.model_copy(update={"graphql_ide": False})
    application = create_app(off)
    application.dependency_overrides = {**app.dependency_overrides, get_settings: lambda: off}
    transport = httpx.ASGITransport(app=application, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield client


class TestThePage:
    async def test_a_browser_opens_it_without_a_key(self, client):
        response = await client.get("/graphql", headers=HTML)
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/html")
        assert "<title>SiloSpan GraphiQL</title>" in response.text

    async def test_it_loads_nothing_from_another_host(self, client):
        html = (await client.get("/graphql", headers=HTML)).text
        assets = re.findall(r'(?:src|href)="([^"]+)"', html)
        assert len(assets) == 5
        assert all(asset.startswith("/static/") for asset in assets), assets
        policy = (await client.get("/graphql", headers=HTML)).headers["content-security-policy"]
        assert "default-src 'self'" in policy
        assert "connect-src 'self'" in policy

    async def test_its_assets_are_served(self, client):
        html = (await client.get("/graphql", headers=HTML)).text
        for asset in re.findall(r'(?:src|href)="([^"]+)"', html):
            response = await client.get(asset)
            assert response.status_code == 200, asset
            assert len(response.content) > 300, asset

    async def test_the_headers_are_prefilled_for_a_key(self, client):
        config = page_config((await client.get("/graphql", headers=HTML)).text)
        assert config["headers"] == HEADERS
        assert json.loads(config["headers"]) == {"Authorization": "Bearer "}

    async def test_the_journey_view_is_the_example_query(self, client):
        config = page_config((await client.get("/graphql", headers=HTML)).text)
        assert config["query"] == EXAMPLE_QUERY
        assert "query JourneyView" in config["query"]

    async def test_a_script_end_in_the_config_cannot_close_the_script(self, client):
        html = (await client.get("/graphql", headers=HTML)).text
        script = html.split("<script>", 1)[1].split("</script>", 1)[0]
        assert "CONFIG" in script and "ReactDOM.createRoot" in script

    async def test_behind_a_path_prefix_the_assets_follow_it(self, app):
        transport = httpx.ASGITransport(app=app, root_path="/silospan")
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            html = (await client.get("/silospan/graphql", headers=HTML)).text
        assets = re.findall(r'(?:src|href)="([^"]+)"', html)
        assert all(asset.startswith("/silospan/static/") for asset in assets), assets


class TestQueriesStillNeedAKey:
    async def test_a_post_without_a_key_is_401(self, client):
        response = await client.post("/graphql", json={"query": "{ __typename }"})
        assert_problem(response, 401, "unauthenticated")

    async def test_a_get_query_without_a_key_is_401_even_from_a_browser(self, client):
        response = await client.get("/graphql", params={"query": "{ __typename }"}, headers=HTML)
        assert_problem(response, 401, "unauthenticated")

    async def test_a_key_in_the_url_is_no_key(self, client, keys):
        secret = (await keys.reader())["Authorization"].removeprefix("Bearer ")
        params = {"query": "{ __typename }", "api_key": secret, "access_token": secret}
        response = await client.get("/graphql", params=params, headers=HTML)
        assert_problem(response, 401, "unauthenticated")

    async def test_a_json_client_without_a_key_gets_401_not_the_page(self, client):
        response = await client.get("/graphql", headers={"Accept": "application/json"})
        assert_problem(response, 401, "unauthenticated")


class TestTheExampleQuery:
    async def test_it_answers_the_journey_view_with_a_reader_key(self, client, keys, session):
        owner = await make_unit(session, key="contact-centre")
        await make_journey(session, key="multi-issue-enquiry", name="Enquiry", stages=["contact"])
        await make_touchpoint(
            session, key="service-call", journey="multi-issue-enquiry", stage="contact",
            owner=owner.key, moment_of_truth=True,
        )
        response = await client.post(
            "/graphql", json={"query": EXAMPLE_QUERY}, headers=await keys.reader()
        )
        body = response.json()
        assert "errors" not in body, body
        journey = body["data"]["journey"]
        assert journey["name"] == "Enquiry"
        assert journey["touchpoints"][0]["key"] == "service-call"
        assert journey["touchpoints"][0]["owner"] == {"key": "contact-centre", "ring": 1}


class TestWhenTheIdeIsOff:
    async def test_the_page_is_not_served_without_a_key(self, ide_off):
        response = await ide_off.get("/graphql", headers=HTML)
        assert_problem(response, 401, "unauthenticated")

    async def test_with_a_key_it_is_a_404(self, ide_off, keys):
        response = await ide_off.get("/graphql", headers={**HTML, **await keys.reader()})
        assert_problem(response, 404, "not_found")


class TestAsksForIde:
    @pytest.mark.parametrize(
        ("method", "query", "accept", "expected"),
        [
            ("GET", {}, "text/html", True),
            ("GET", {}, "*/*", True),
            ("GET", {"query": "{ __typename }"}, "text/html", False),
            ("GET", {}, "application/json", False),
            ("GET", {}, "", False),
            ("POST", {}, "text/html", False),
        ],
    )
    def test_only_a_get_for_html_without_a_query(self, method, query, accept, expected):
        request = httpx.Request(method, "http://test/graphql", params=query)

        class Adapter:
            def __init__(self) -> None:
                self.method = method
                self.query_params = dict(request.url.params)
                self.headers = {"accept": accept}

        assert asks_for_ide(Adapter()) is expected
