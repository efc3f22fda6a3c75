"""/docs (Swagger UI) and /redoc: served with assets from the package, no key, no CDN."""

from __future__ import annotations

import re

import httpx
import pytest

from service.api.docs import STATIC_DIR

PAGES = ["/docs", "/redoc"]


def assets_of(html: str) -> list[str]:
    return re.findall(r'(?:src|href)="([^"]+)"', html)


class TestPages:
    @pytest.mark.parametrize("path", PAGES)
    async def test_it_opens_without_a_key(self, client, path):
        response = await client.get(path)
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/html")

    @pytest.mark.parametrize("path", PAGES)
    async def test_every_asset_comes_from_the_service(self, client, path):
        html = (await client.get(path)).text
        assert assets_of(html), html
        assert all(asset.startswith("/static/") for asset in assets_of(html)), html
        assert "fonts.googleapis.com" not in html
        assert "/openapi.json" in html

    @pytest.mark.parametrize("path", PAGES)
    async def test_the_browser_may_fetch_from_the_service_only(self, client, path):
        policy = (await client.get(path)).headers["content-security-policy"]
        assert "default-src 'self'" in policy
        assert "connect-src 'self'" in policy
        assert "http" not in policy

    @pytest.mark.parametrize("path", PAGES)
    async def test_every_asset_is_served(self, client, path):
        for asset in assets_of((await client.get(path)).text):
            response = await client.get(asset)
            assert response.status_code == 200, asset
            assert len(response.content) > 300, asset

    async def test_swagger_ui_shows_no_validator_badge(self, client):
        # The badge is an image from validator.swagger.io.
        assert '"validatorUrl": null' in (await client.get("/docs")).text

    @pytest.mark.parametrize("path", PAGES)
    async def test_behind_a_path_prefix_the_urls_follow_it(self, app, path):
        transport = httpx.ASGITransport(app=app, root_path="/silospan")
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            html = (await client.get(f"/silospan{path}")).text
        assert all(a.startswith("/silospan/static/") for a in assets_of(html)), html
        assert "/silospan/openapi.json" in html


class TestStaticFiles:
    async def test_a_large_asset_arrives_whole(self, client):
        # A streamed file: the retry middleware must not cut it short.
        path = STATIC_DIR / "graphiql" / "graphiql.min.js"
        response = await client.get("/static/graphiql/graphiql.min.js")
        assert response.status_code == 200
        assert response.content == path.read_bytes()
        assert "javascript" in response.headers["content-type"]

    async def test_an_unknown_asset_is_a_404_problem(self, client):
        response = await client.get("/static/nothing.js")
        assert response.status_code == 404
        assert response.headers["content-type"] == "application/problem+json"

    async def test_nothing_outside_the_folder_is_served(self, client):
        for path in ["/static/../main.py", "/static/%2e%2e/main.py", "/static/..%2fmain.py"]:
            assert (await client.get(path)).status_code == 404, path

    def test_every_vendored_bundle_ships_with_its_licence(self):
        for folder in ["swagger-ui", "redoc", "graphiql"]:
            names = [p.name for p in (STATIC_DIR / folder).iterdir()]
            assert any(name.startswith("LICENSE") for name in names), folder

    def test_no_bundle_names_a_cdn(self):
        cdn = re.compile(rb"https://(unpkg\.com|cdn\.jsdelivr\.net|cdn\.redoc\.ly|fonts\.googleapis)")
        for path in STATIC_DIR.rglob("*"):
            if path.suffix in {".js", ".css", ".html", ".svg"}:
                assert not cdn.search(path.read_bytes()), path
