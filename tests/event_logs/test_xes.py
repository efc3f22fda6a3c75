"""XES import (IEEE 1849): the same hand-computed log as the CSV tests, streamed."""

from __future__ import annotations

import gzip

from sqlalchemy import func, select

from service.event_logs.models import EventLogRow
from tests.event_logs.logs import ARCS, LOG_XES, SUMMARY, XES_REJECTIONS
from tests.event_logs.test_import import chunked
from tests.problems import assert_problem

XML = {"Content-Type": "application/xml"}


class TestXes:
    async def test_the_same_numbers_as_the_csv(self, client, keys):
        response = await client.post(
            "/v1/event-logs?key=xes",
            content=chunked(LOG_XES.encode(), 50),
            headers={**XML, **await keys.writer()},
        )
        assert response.status_code == 201, response.text
        body = response.json()
        assert body["format"] == "xes"
        assert (body["events"], body["cases"], body["units"], body["rejected"]) == (12, 4, 3, 4)
        assert [r["line"] for r in body["rejections"]] == [line for line, _ in XES_REJECTIONS]
        for got, (_, words) in zip(body["rejections"], XES_REJECTIONS, strict=True):
            assert words in got["reason"]
        reader = await keys.reader()
        summary = (await client.get("/v1/event-logs/xes/summary", headers=reader)).json()
        assert {k: summary[k] for k in SUMMARY} == SUMMARY
        arcs = (await client.get("/v1/event-logs/xes/handoffs", headers=reader)).json()
        assert arcs == {"items": ARCS, "next_cursor": None}

    async def test_gzip_and_the_unit_attribute(self, client, keys, session):
        # Per person: every event's unit is its org:resource; here only the trace has one,
        # which its events inherit.
        text = LOG_XES.replace(
            '<string key="concept:name" value="c3"/>',
            '<string key="concept:name" value="c3"/><string key="org:resource" value="cy"/>',
        )
        response = await client.post(
            "/v1/event-logs?key=people&format=xes&unit_attribute=org:resource",
            content=gzip.compress(text.encode()),
            headers={"Content-Type": "application/octet-stream", **await keys.writer()},
        )
        assert response.status_code == 201, response.text
        assert response.json()["events"] == 1
        units = (await session.scalars(select(EventLogRow.unit))).all()
        assert units == ["cy"]

    async def test_malformed_xml_fails_and_keeps_nothing(self, client, keys, session):
        response = await client.post(
            "/v1/event-logs?key=broken",
            content=LOG_XES[:-20].encode() + b"<oops>",
            headers={**XML, **await keys.writer()},
        )
        assert_problem(response, 422, "unreadable_log")
        assert await session.scalar(select(func.count()).select_from(EventLogRow)) == 0
        log = (await client.get("/v1/event-logs/broken", headers=await keys.reader())).json()
        assert log["status"] == "failed"

    async def test_strict(self, client, keys, session):
        response = await client.post(
            "/v1/event-logs?key=strict&strict=true",
            content=LOG_XES.encode(),
            headers={**XML, **await keys.writer()},
        )
        body = assert_problem(response, 422, "log_rejected")
        assert body["rejected"] == 4
        assert await session.scalar(select(func.count()).select_from(EventLogRow)) == 0
