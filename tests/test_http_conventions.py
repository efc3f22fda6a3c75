"""HTTP conventions every route shares: problem details, limits, idempotency, operations."""

from __future__ import annotations

import asyncio
import base64
import json
import socket
import time

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncSession

from service.api.deps import get_write_sessions
from service.core.config import Settings, get_settings
from service.handoffs.models import Handoff, HandoffEvent
from service.main import create_app
from service.org_units.models import Unit
from tests.factories import make_event, make_handoff, make_unit
from tests.problems import assert_problem


async def count(session, model) -> int:
    return await session.scalar(select(func.count()).select_from(model))


def handoff_body(**overrides) -> dict:
    return {
        "key": "kyc",
        "from_unit": "ops",
        "to_unit": "branch",
        "deliverable": "KYC",
        **overrides,
    }


@pytest.fixture
async def units(session):
    await make_unit(session, key="ops")
    await make_unit(session, key="branch")


@pytest.fixture
async def kyc(session, units):
    return await make_handoff(session, key="kyc", from_unit="ops", to_unit="branch")


class TestUnknownRoutes:
    async def test_an_unknown_route_is_a_404_problem(self, client, keys):
        response = await client.get("/v1/nothing-here", headers=await keys.reader())
        body = assert_problem(response, 404, "not_found")
        assert body["instance"] == "/v1/nothing-here"

    async def test_an_unknown_route_is_404_without_a_key_too(self, client):
        assert_problem(await client.get("/v2/units"), 404, "not_found")

    @pytest.mark.parametrize(
        ("method", "path"),
        [("GET", "/v1/units/"), ("POST", "/v1/handoffs/"), ("GET", "/healthz/"), ("GET", "/graphql/")],
    )
    async def test_a_trailing_slash_is_404_not_a_redirect(self, client, keys, method, path):
        # A redirect would be built from the Host header: a link to any site a client names.
        response = await client.request(
            method, path, headers={**await keys.writer(), "Host": "evil.example"}
        )
        body = assert_problem(response, 404, "not_found")
        assert "location" not in response.headers
        assert body["instance"] == path

    async def test_a_wrong_method_is_a_405_problem_naming_the_allowed_ones(self, client, keys):
        response = await client.delete("/v1/handoffs", headers=await keys.writer())
        assert_problem(response, 405, "method_not_allowed")
        assert response.headers["allow"] == "GET, POST"

    async def test_405_lists_every_method_of_the_path(self, client, keys, kyc):
        response = await client.post("/v1/handoffs/kyc", headers=await keys.writer())
        assert_problem(response, 405, "method_not_allowed")
        assert response.headers["allow"] == "DELETE, GET, PATCH"


class TestRequestBodies:
    @pytest.mark.parametrize("body", [b"{not json", b'{"key": "ops",}', b"\xff\xfe\x00", b""])
    async def test_a_body_that_is_not_json_is_a_422_problem(self, client, keys, session, body):
        response = await client.post(
            "/v1/units",
            content=body,
            headers={**await keys.writer(), "content-type": "application/json"},
        )
        problem = assert_problem(response, 422, "validation_failed")
        assert problem["errors"][0]["loc"][0] == "body"
        assert await count(session, Unit) == 0

    async def test_a_json_body_of_the_wrong_shape_is_422(self, client, keys, session):
        response = await client.post("/v1/units", json=["ops"], headers=await keys.writer())
        problem = assert_problem(response, 422, "validation_failed")
        assert problem["errors"][0]["loc"][0] == "body"
        assert await count(session, Unit) == 0

    async def test_a_declared_body_over_the_limit_is_413(self, client, keys, session, settings):
        padding = " " * settings.max_body_bytes
        body = f'{{"key": "ops", "name": "Ops", "kind": "team"{padding}}}'.encode()
        response = await client.post(
            "/v1/units",
            content=body,
            headers={**await keys.writer(), "content-type": "application/json"},
        )
        assert_problem(response, 413, "payload_too_large")
        assert await count(session, Unit) == 0

    async def test_a_streamed_body_over_the_limit_is_413(self, client, keys, session, settings):
        chunk = b" " * 65536

        async def body():  # no Content-Length: the limit applies while reading
            yield b'{"key": "ops", "name": "Ops", "kind": "team"'
            for _ in range(settings.max_body_bytes // len(chunk) + 1):
                yield chunk
            yield b"}"

        response = await client.post(
            "/v1/units",
            content=body(),
            headers={**await keys.writer(), "content-type": "application/json"},
        )
        assert_problem(response, 413, "payload_too_large")
        assert await count(session, Unit) == 0

    async def test_a_body_at_the_limit_is_accepted(self, client, keys, session, settings):
        head = b'{"key": "ops", "name": "Ops", "kind": "team"'
        body = head + b" " * (settings.max_body_bytes - len(head) - 1) + b"}"
        assert len(body) == settings.max_body_bytes
        response = await client.post(
            "/v1/units",
            content=body,
            headers={**await keys.writer(), "content-type": "application/json"},
        )
        assert response.status_code == 201, response.text

    async def test_an_event_body_over_the_limit_is_413_and_writes_nothing(
        self, client, keys, session, settings, kyc
    ):
        note = "x" * settings.max_body_bytes
        response = await client.put(
            "/v1/handoffs/kyc/events/e1",
            json={"started_at": "2026-01-01T10:00:00Z", "note": note},
            headers=await keys.writer(),
        )
        assert_problem(response, 413, "payload_too_large")
        assert await count(session, HandoffEvent) == 0


class TestPageSize:
    async def test_a_huge_limit_is_cut_to_the_maximum(self, client, keys, units):
        response = await client.get("/v1/units?limit=100000", headers=await keys.reader())
        assert response.status_code == 200
        assert len(response.json()["items"]) <= 500

    async def test_a_limit_over_the_maximum_returns_pages_of_the_maximum(
        self, client, keys, session, app, settings
    ):
        small = settings.model_copy(update={"page_default": 2, "page_max": 3})
        app.dependency_overrides[get_settings] = lambda: small
        for key in ("a", "b", "c", "d", "e"):
            await make_unit(session, key=key)
        headers = await keys.reader()
        cut = await client.get("/v1/units?limit=100000", headers=headers)
        assert [u["key"] for u in cut.json()["items"]] == ["a", "b", "c"]
        assert cut.json()["next_cursor"] is not None
        default = await client.get("/v1/units", headers=headers)
        assert [u["key"] for u in default.json()["items"]] == ["a", "b"]

    @pytest.mark.parametrize("limit", ["0", "-1", "ten", "1.5", str(2**31 + 1)])
    async def test_a_limit_that_is_not_a_positive_integer_is_422(self, client, keys, limit):
        response = await client.get(f"/v1/handoffs?limit={limit}", headers=await keys.reader())
        body = assert_problem(response, 422, "validation_failed")
        assert body["errors"][0]["loc"] == ["query", "limit"]

    async def test_a_cursor_from_another_listing_is_422(self, client, keys, session, kyc):
        for key in ("a", "b"):
            await make_unit(session, key=key)
        headers = await keys.reader()
        units_page = await client.get("/v1/units?limit=1", headers=headers)
        response = await client.get(
            f"/v1/handoffs/kyc/events?cursor={units_page.json()['next_cursor']}", headers=headers
        )
        body = assert_problem(response, 422, "invalid_cursor")
        assert body["errors"][0]["loc"] == ["query", "cursor"]


def crafted(value) -> str:
    """A cursor as a client could forge one: base64url JSON, unpadded."""
    return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()


class TestCursors:
    @pytest.mark.parametrize(
        "cursor",
        [
            "!!!",
            crafted("a"),
            crafted(["\u0000"]),  # PostgreSQL cannot store or compare NUL
            crafted(["a\u001fb"]),
            crafted(["x" * 300]),
            crafted([{"a": 1}]),
            crafted([["a"]]),
            crafted([None]),
            crafted([1]),
            crafted([True]),
            crafted(["a", "b"]),
            crafted([]),
            base64.urlsafe_b64encode(b'["\\ud800"]').decode(),  # a lone surrogate
            base64.urlsafe_b64encode(b"\xff\xfe").decode(),  # not UTF-8
        ],
    )
    async def test_a_forged_key_cursor_is_422(self, client, keys, units, cursor):
        response = await client.get(f"/v1/units?cursor={cursor}", headers=await keys.reader())
        body = assert_problem(response, 422, "invalid_cursor")
        assert body["errors"] == [{"loc": ["query", "cursor"], "msg": body["detail"]}]

    @pytest.mark.parametrize(
        "due_at",
        [
            "0001-01-01T00:00:00+00:00",
            "9999-12-31T23:59:59+00:00",
            "0001-01-01T00:00:00+05:00",  # before the first moment there is, in UTC
            "9999-12-31T23:59:59-05:00",  # after the last one
            "1799-12-31T23:59:59+00:00",
            "2026-01-01T10:00:00",  # no offset
            "2026-13-01T10:00:00+00:00",
            "yesterday",
            "",
            1767261600,
            None,
        ],
    )
    async def test_a_forged_time_cursor_is_422(self, client, keys, session, kyc, due_at):
        await make_event(session, "kyc", external_id="e1")
        cursor = crafted([due_at, "0b9d2a3e-6f3c-4d7e-9f5a-1c2b3d4e5f60"])
        response = await client.get(
            f"/v1/handoffs/kyc/events?cursor={cursor}", headers=await keys.reader()
        )
        assert_problem(response, 422, "invalid_cursor")

    @pytest.mark.parametrize("event_id", ["not-a-uuid", "", 7, "\u0000"])
    async def test_a_forged_id_in_a_time_cursor_is_422(self, client, keys, kyc, event_id):
        cursor = crafted(["2026-01-01T10:00:00+00:00", event_id])
        response = await client.get(
            f"/v1/handoffs/kyc/events?cursor={cursor}", headers=await keys.reader()
        )
        assert_problem(response, 422, "invalid_cursor")

    async def test_a_time_cursor_far_ahead_is_an_empty_page(self, client, keys, session, kyc):
        # Due dates run up to ten years past the last supported start: such a cursor is sound.
        await make_event(session, "kyc", external_id="e1")
        cursor = crafted(["9009-12-01T00:00:00+00:00", "0b9d2a3e-6f3c-4d7e-9f5a-1c2b3d4e5f60"])
        response = await client.get(
            f"/v1/handoffs/kyc/events?cursor={cursor}", headers=await keys.reader()
        )
        assert response.status_code == 200, response.text
        assert response.json() == {"items": [], "next_cursor": None}

    @pytest.mark.parametrize(
        "severity", [2**63, 10**30, 1.5, "1", True, None, float(2**70)]
    )
    async def test_a_forged_findings_cursor_is_422(self, client, keys, severity):
        cursor = crafted([severity, "buffering", "kyc", "0b9d2a3e-6f3c-4d7e-9f5a-1c2b3d4e5f60"])
        response = await client.get(f"/v1/findings?cursor={cursor}", headers=await keys.reader())
        assert_problem(response, 422, "invalid_cursor")

    async def test_a_findings_cursor_past_the_end_is_an_empty_page(self, client, keys):
        # Severity runs down the pages: after severity 0 there is nothing.
        cursor = crafted([0, "a", "a", "0b9d2a3e-6f3c-4d7e-9f5a-1c2b3d4e5f60"])
        response = await client.get(f"/v1/findings?cursor={cursor}", headers=await keys.reader())
        assert response.status_code == 200, response.text
        assert response.json() == {"items": [], "next_cursor": None}


class TestIdempotencyKey:
    async def test_a_retry_replays_the_stored_response(self, client, keys, session, units):
        headers = {**await keys.writer(), "Idempotency-Key": "req-1"}
        first = await client.post("/v1/handoffs", json=handoff_body(), headers=headers)
        second = await client.post("/v1/handoffs", json=handoff_body(), headers=headers)
        assert first.status_code == second.status_code == 201
        assert second.content == first.content
        assert second.headers["location"] == "/v1/handoffs/kyc"
        assert second.headers["idempotent-replayed"] == "true"
        assert await count(session, Handoff) == 1

    async def test_the_same_document_spelled_differently_is_the_same_request(
        self, client, keys, session, units
    ):
        headers = {
            **await keys.writer(),
            "Idempotency-Key": "req-2",
            "content-type": "application/json",
        }
        first = await client.post(
            "/v1/handoffs",
            content=b'{"key":"kyc","from_unit":"ops","to_unit":"branch","deliverable":"KYC"}',
            headers=headers,
        )
        second = await client.post(
            "/v1/handoffs",
            content=b'{ "deliverable": "KYC", "to_unit": "branch",\n  "from_unit": "ops", "key": "kyc" }',
            headers=headers,
        )
        assert first.status_code == 201
        assert second.status_code == 201
        assert second.headers["idempotent-replayed"] == "true"
        assert await count(session, Handoff) == 1

    async def test_the_same_key_with_another_body_is_422(self, client, keys, session, units):
        headers = {**await keys.writer(), "Idempotency-Key": "req-3"}
        await client.post("/v1/handoffs", json=handoff_body(), headers=headers)
        response = await client.post(
            "/v1/handoffs", json=handoff_body(key="kyc-2"), headers=headers
        )
        body = assert_problem(response, 422, "idempotency_key_reused")
        assert body["errors"][0]["loc"] == ["header", "Idempotency-Key"]
        assert await count(session, Handoff) == 1

    async def test_the_same_key_on_another_path_is_422(self, client, keys, session, kyc):
        headers = {**await keys.writer(), "Idempotency-Key": "req-4"}
        await client.post(
            "/v1/handoffs/kyc/reviews", json={"timeliness": 3, "quality": 3}, headers=headers
        )
        response = await client.post(
            "/v1/handoffs", json=handoff_body(key="kyc-2"), headers=headers
        )
        assert_problem(response, 422, "idempotency_key_reused")
        assert await count(session, Handoff) == 1

    async def test_another_api_key_may_use_the_same_key_for_another_body(
        self, client, keys, session, units
    ):
        writer = {**await keys.writer(), "Idempotency-Key": "req-5"}
        admin = {**await keys.admin(), "Idempotency-Key": "req-5"}
        first = await client.post("/v1/handoffs", json=handoff_body(), headers=writer)
        other = await client.post("/v1/handoffs", json=handoff_body(key="kyc-2"), headers=admin)
        assert first.status_code == other.status_code == 201
        assert "idempotent-replayed" not in other.headers
        assert await count(session, Handoff) == 2

    async def test_another_api_key_never_gets_a_replay(self, client, keys, session, units):
        writer = {**await keys.writer(), "Idempotency-Key": "req-6"}
        admin = {**await keys.admin(), "Idempotency-Key": "req-6"}
        first = await client.post("/v1/handoffs", json=handoff_body(), headers=writer)
        same_body = await client.post("/v1/handoffs", json=handoff_body(), headers=admin)
        assert first.status_code == 201
        # The create really ran for the admin's key, and found the writer's handoff.
        assert_problem(same_body, 409, "key_exists")
        assert await count(session, Handoff) == 1

    async def test_a_failed_request_is_not_remembered(self, client, keys, session):
        headers = {**await keys.writer(), "Idempotency-Key": "req-7"}
        await make_unit(session, key="ops")
        failed = await client.post("/v1/handoffs", json=handoff_body(), headers=headers)
        assert_problem(failed, 422, "unknown_reference")
        await make_unit(session, key="branch")
        retried = await client.post("/v1/handoffs", json=handoff_body(), headers=headers)
        assert retried.status_code == 201
        assert "idempotent-replayed" not in retried.headers

    @pytest.mark.parametrize("value", ["has space", "x" * 256, "tab\there"])
    async def test_a_malformed_key_is_422(self, client, keys, session, units, value):
        headers = {**await keys.writer(), "Idempotency-Key": value}
        response = await client.post("/v1/handoffs", json=handoff_body(), headers=headers)
        body = assert_problem(response, 422, "validation_failed")
        assert body["errors"][0]["loc"] == ["header", "Idempotency-Key"]
        assert await count(session, Handoff) == 0


class TestOperations:
    async def test_healthz_needs_no_key(self, client):
        response = await client.get("/healthz")
        assert response.status_code == 200
        assert response.json() == {"status": "ok"}

    async def test_readyz_reports_a_current_schema_without_a_key(self, client):
        response = await client.get("/readyz")
        assert response.status_code == 200
        assert response.json() == {"status": "ready"}

    async def test_metrics_count_requests_by_route_template_and_ingested_events(
        self, client, keys, kyc
    ):
        def value(text: str, name: str, **labels: str) -> float:
            for family in text_string_to_metric_families(text):
                for sample in family.samples:
                    if sample.name == name and all(
                        sample.labels.get(k) == v for k, v in labels.items()
                    ):
                        return sample.value
            return 0.0

        reader = await keys.reader()
        before = (await client.get("/metrics", headers=reader)).text
        writer = await keys.writer()
        await client.get("/v1/handoffs/kyc", headers=writer)
        await client.put(
            "/v1/handoffs/kyc/events/e1",
            json={"started_at": "2026-01-01T10:00:00Z"},
            headers=writer,
        )
        await client.put(
            "/v1/handoffs/kyc/events/e1",
            json={"started_at": "2026-01-01T10:00:00Z"},
            headers=writer,
        )
        response = await client.get("/metrics", headers=reader)
        assert response.status_code == 200
        after = response.text
        assert "silospan_http_requests_total" in after
        assert "silospan_handoff_events_ingested_total" in after
        labels = {"method": "GET", "route": "/v1/handoffs/{key}", "status": "200"}
        requests = "silospan_http_requests_total"
        assert value(after, requests, **labels) == value(before, requests, **labels) + 1
        ingested = "silospan_handoff_events_ingested_total"
        for outcome in ("created", "unchanged"):
            assert (
                value(after, ingested, outcome=outcome)
                == value(before, ingested, outcome=outcome) + 1
            )
        assert 'route="/v1/handoffs/kyc"' not in after  # templates, never raw paths


class TestMetricsAccess:
    async def test_metrics_need_an_api_key(self, client):
        response = await client.get("/metrics")
        assert_problem(response, 401, "unauthenticated")
        assert "silospan_http_requests_total" not in response.text

    async def test_an_unknown_key_is_401(self, client):
        response = await client.get("/metrics", headers={"Authorization": "Bearer ss_unknown"})
        assert_problem(response, 401, "unauthenticated")

    async def test_a_revoked_key_is_401(self, client, keys):
        admin = await keys.admin()
        reader = await keys.reader()
        listed = await client.get("/v1/api-keys", headers=admin)
        reader_id = next(k["id"] for k in listed.json()["items"] if k["role"] == "reader")
        revoked = await client.post(f"/v1/api-keys/{reader_id}/revoke", headers=admin)
        assert revoked.status_code == 200, revoked.text
        assert_problem(await client.get("/metrics", headers=reader), 401, "unauthenticated")

    @pytest.mark.parametrize("role", ["admin", "writer", "reader", "partner"])
    async def test_any_role_may_read_metrics(self, client, keys, session, role):
        if role == "partner":
            await make_unit(session, key="courier", kind="partner")
            headers = await keys.partner("courier")
        else:
            headers = await getattr(keys, role)()
        response = await client.get("/metrics", headers=headers)
        assert response.status_code == 200, response.text
        assert "silospan_http_requests_total" in response.text

    async def test_the_public_setting_opens_metrics_without_a_key(self, app, client, settings):
        public = settings.model_copy(update={"metrics_public": True})
        app.dependency_overrides[get_settings] = lambda: public
        response = await client.get("/metrics")
        assert response.status_code == 200, response.text
        assert "silospan_http_requests_total" in response.text

    def test_the_public_setting_is_off_unless_set(self, monkeypatch):
        monkeypatch.delenv("SILOSPAN_METRICS_PUBLIC", raising=False)
        assert Settings().metrics_public is False
        monkeypatch.setenv("SILOSPAN_METRICS_PUBLIC", "true")
        assert Settings().metrics_public is True


class TestServerErrors:
    async def test_a_500_reveals_no_internals(self, app, client, keys):
        @app.get("/v1/test-only/boom")
        async def boom() -> None:
            raise RuntimeError('SELECT secret FROM api_keys -- File "/srv/service/x.py", line 3')

        response = await client.get("/v1/test-only/boom", headers=await keys.reader())
        body = assert_problem(response, 500, "internal_error")
        for leak in ("Traceback", 'File "', "RuntimeError", "SELECT", "api_keys", "service/"):
            assert leak not in response.text
        assert set(body) == {"type", "title", "status", "detail", "code", "instance"}

    @pytest.mark.parametrize(
        "error",
        [
            OperationalError("COMMIT", {}, Exception("disk I/O error")),
            RuntimeError("the connection dropped during COMMIT"),
        ],
        ids=["operational-error", "runtime-error"],
    )
    async def test_a_failed_commit_is_a_5xx_and_nothing_is_kept(
        self, app, client, keys, session, connection, kyc, error
    ):
        class CommitFails(AsyncSession):
            async def commit(self) -> None:
                raise error

        def sessions() -> AsyncSession:
            return CommitFails(
                bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False
            )

        headers = await keys.writer()
        app.dependency_overrides[get_write_sessions] = lambda: sessions
        response = await client.put(
            "/v1/handoffs/kyc/events/e1",
            json={"started_at": "2026-01-01T10:00:00Z"},
            headers=headers,
        )
        assert response.status_code >= 500
        assert response.headers["content-type"] == "application/problem+json"
        assert "disk I/O" not in response.text and "COMMIT" not in response.text
        listed = await client.get("/v1/handoffs/kyc/events", headers=headers)
        assert listed.json()["items"] == []
        assert await count(session, HandoffEvent) == 0


class TestRequestIds:
    async def test_every_response_carries_a_request_id(self, client):
        response = await client.get("/healthz")
        assert len(response.headers["x-request-id"]) == 32

    async def test_a_given_request_id_is_echoed(self, client):
        response = await client.get("/healthz", headers={"X-Request-ID": "trace-42"})
        assert response.headers["x-request-id"] == "trace-42"


@pytest.fixture
async def impatient_client(app, settings):
    """A client of an app that waits 0.3 s for a stalled request body."""
    impatient = settings.model_copy(update={"body_timeout_seconds": 0.3})
    application = create_app(impatient)
    application.dependency_overrides = {
        **app.dependency_overrides,
        get_settings: lambda: impatient,
    }
    transport = httpx.ASGITransport(app=application, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield client


async def stalled(first: bytes):
    """A body that sends ``first`` and then nothing more for a long time."""
    yield first
    await asyncio.sleep(30)
    yield b"}"


class TestStalledBodies:
    async def test_a_body_shorter_than_declared_is_408_and_closes_the_connection(
        self, impatient_client, keys, session
    ):
        headers = {
            **await keys.writer(),
            "content-type": "application/json",
            "content-length": "100",
        }
        started = time.monotonic()
        response = await impatient_client.post("/v1/units", content=stalled(b"{}"), headers=headers)
        assert time.monotonic() - started < 5
        assert_problem(response, 408, "request_timeout")
        assert response.headers["connection"] == "close"
        assert await count(session, Unit) == 0

    async def test_a_stalled_bulk_stream_is_408_and_writes_nothing(
        self, impatient_client, keys, session, kyc
    ):
        line = b'{"handoff": "kyc", "external_id": "e1", "started_at": "2026-01-01T10:00:00Z"}\n'
        headers = {**await keys.writer(), "content-type": "application/x-ndjson"}
        started = time.monotonic()
        response = await impatient_client.post(
            "/v1/handoff-events/bulk", content=stalled(line), headers=headers
        )
        assert time.monotonic() - started < 5
        assert_problem(response, 408, "request_timeout")
        assert response.headers["connection"] == "close"
        assert await count(session, HandoffEvent) == 0

    async def test_a_slow_body_that_keeps_coming_is_accepted(
        self, impatient_client, keys, session
    ):
        async def trickle():
            for part in (b'{"key": "ops", ', b'"name": "Ops", ', b'"kind": "team"}'):
                await asyncio.sleep(0.15)  # each pause under the timeout, all of them over it
                yield part

        headers = {**await keys.writer(), "content-type": "application/json"}
        response = await impatient_client.post("/v1/units", content=trickle(), headers=headers)
        assert response.status_code == 201, response.text

    @pytest.mark.e2e  # raw HTTP/1.1 to a real uvicorn
    def test_a_real_server_answers_a_short_body_and_closes_the_connection(self, live_server):
        host, port = live_server.base_url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=30) as sock:
            sock.sendall(
                b"POST /v1/units HTTP/1.1\r\nHost: test\r\n"
                b"Authorization: Bearer " + live_server.admin_key.encode() + b"\r\n"
                b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{}"
            )
            started = time.monotonic()
            received = b""
            while chunk := sock.recv(65536):  # until the server closes the connection
                received += chunk
            elapsed = time.monotonic() - started
        default = Settings.model_fields["body_timeout_seconds"].default
        assert elapsed < default + 3, elapsed
        assert received.startswith(b"HTTP/1.1 408 "), received[:200]
        assert b"application/problem+json" in received

    def test_the_timeouts_are_settings(self, monkeypatch):
        monkeypatch.setenv("SILOSPAN_BODY_TIMEOUT_SECONDS", "2.5")
        monkeypatch.setenv("SILOSPAN_KEEP_ALIVE_SECONDS", "7")
        assert (Settings().body_timeout_seconds, Settings().keep_alive_seconds) == (2.5, 7)


class TestAuthorizationHeaders:
    """Two Authorization headers are refused before either is looked at."""

    @staticmethod
    def twice(first: dict[str, str], second: dict[str, str]) -> list[tuple[str, str]]:
        return [("Authorization", first["Authorization"]), ("Authorization", second["Authorization"])]

    @pytest.mark.parametrize("second", ["writer", "bogus"])
    async def test_two_headers_are_400_and_nothing_is_written(
        self, client, keys, session, second
    ):
        other = await keys.writer() if second == "writer" else {"Authorization": "Bearer ss_nope"}
        response = await client.post(
            "/v1/units",
            json={"key": "ops", "name": "Ops", "kind": "team"},
            headers=self.twice(await keys.writer(), other),
        )
        body = assert_problem(response, 400, "bad_request")
        assert body["header"] == "Authorization"
        assert await count(session, Unit) == 0

    async def test_a_reader_and_an_admin_header_authenticate_as_neither(self, client, keys):
        response = await client.get(
            "/v1/api-keys", headers=self.twice(await keys.reader(), await keys.admin())
        )
        assert_problem(response, 400, "bad_request")

    async def test_graphql_refuses_two_headers_too(self, client, keys):
        response = await client.post(
            "/graphql",
            json={"query": "{ __typename }"},
            headers=self.twice(await keys.reader(), await keys.reader()),
        )
        assert_problem(response, 400, "bad_request")

    async def test_metrics_refuse_two_headers_too(self, client, keys):
        response = await client.get(
            "/metrics", headers=self.twice(await keys.reader(), await keys.reader())
        )
        assert_problem(response, 400, "bad_request")

    async def test_one_header_still_authenticates(self, client, keys):
        response = await client.get("/v1/units", headers=await keys.reader())
        assert response.status_code == 200
