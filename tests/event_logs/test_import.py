"""POST /v1/event-logs: streamed CSV import, gzip, mapping, bad rows, strict mode, access."""

from __future__ import annotations

import asyncio
import gzip

import pytest
from sqlalchemy import func, select

from service.event_logs import importer
from service.event_logs.models import EventLog, EventLogRow
from tests.event_logs.logs import LOG, REJECTIONS
from tests.factories import make_unit
from tests.problems import assert_problem

CSV = {"Content-Type": "text/csv"}


async def rows_in(session) -> int:
    return await session.scalar(select(func.count()).select_from(EventLogRow))


async def logs_in(session) -> int:
    return await session.scalar(select(func.count()).select_from(EventLog))


def chunked(data: bytes, size: int):
    """The body in small pieces, so records and gzip blocks are cut anywhere."""

    async def stream():
        for start in range(0, len(data), size):
            yield data[start : start + size]

    return stream()


class TestImport:
    async def test_a_csv_log_is_imported_with_its_counts_and_bad_rows(self, client, keys):
        response = await client.post(
            "/v1/event-logs?key=support&name=Support%20desk",
            content=LOG.encode(),
            headers={**CSV, **await keys.writer()},
        )
        assert response.status_code == 201, response.text
        assert response.headers["Location"] == "/v1/event-logs/support"
        body = response.json()
        assert body["status"] == "ready"
        assert body["name"] == "Support desk"
        assert (body["rows_read"], body["events"], body["cases"], body["units"]) == (17, 12, 4, 3)
        assert body["rejected"] == 5
        assert [r["line"] for r in body["rejections"]] == [line for line, _ in REJECTIONS]
        for got, (_, words) in zip(body["rejections"], REJECTIONS, strict=True):
            assert words in got["reason"]
        assert body["first_at"] == "2026-11-02T08:00:00Z"
        assert body["last_at"] == "2026-11-03T08:00:00Z"
        assert body["bytes_read"] == len(LOG.encode())
        again = await client.get("/v1/event-logs/support", headers=await keys.reader())
        assert again.json() == body

    @pytest.mark.parametrize("declared", [True, False], ids=["content-encoding", "magic-bytes"])
    async def test_gzip_is_read_by_header_or_by_content(self, client, keys, declared):
        headers = {**CSV, **await keys.writer()}
        if declared:
            headers["Content-Encoding"] = "gzip"
        response = await client.post(
            "/v1/event-logs?key=zipped",
            content=chunked(gzip.compress(LOG.encode()), 7),
            headers=headers,
        )
        assert response.status_code == 201, response.text
        assert (response.json()["events"], response.json()["rejected"]) == (12, 5)

    async def test_records_cut_anywhere_read_the_same(self, client, keys, session):
        # A quoted field with a line break inside, and a body sent 3 bytes at a time.
        text = (
            'case,unit,time\n"c1","Front\nDesk",2026-11-02T09:00:00Z\nc1,B,2026-11-02T10:00:00Z\n'
        )
        response = await client.post(
            "/v1/event-logs?key=cut",
            content=chunked(text.encode(), 3),
            headers={**CSV, **await keys.writer()},
        )
        assert response.status_code == 201, response.text
        units = (
            await session.scalars(select(EventLogRow.unit).order_by(EventLogRow.position))
        ).all()
        assert units == ["Front\nDesk", "B"]
        positions = (
            await session.scalars(select(EventLogRow.position).order_by(EventLogRow.position))
        ).all()
        assert positions == [2, 4]  # the line each record starts on

    async def test_columns_are_mapped_and_the_zone_assumed(self, client, keys, session):
        text = "Ticket;Group;When\nT-1;Ops;2026-07-01 10:00:00\n"
        response = await client.post(
            "/v1/event-logs?key=mapped&case=Ticket&unit=Group&time=When&delimiter=%3B"
            "&assume_tz=Europe/Paris",
            content=text.encode(),
            headers={**CSV, **await keys.writer()},
        )
        assert response.status_code == 201, response.text
        body = response.json()
        # Paris is UTC+2 in July.
        assert body["first_at"] == "2026-07-01T08:00:00Z"
        assert body["mapping"]["case"] == "Ticket"
        assert body["mapping"]["assume_tz"] == "Europe/Paris"
        assert await rows_in(session) == 1

    async def test_a_missing_column_fails_the_import_and_keeps_no_rows(self, client, keys, session):
        response = await client.post(
            "/v1/event-logs?key=nocase&case=Ticket",
            content=LOG.encode(),
            headers={**CSV, **await keys.writer()},
        )
        body = assert_problem(response, 422, "invalid")
        assert "Ticket" in body["detail"]
        log = (await client.get("/v1/event-logs/nocase", headers=await keys.reader())).json()
        assert log["status"] == "failed"
        assert "Ticket" in log["failure_reason"]
        assert await rows_in(session) == 0

    async def test_an_unknown_zone_is_refused(self, client, keys, session):
        response = await client.post(
            "/v1/event-logs?key=tz&assume_tz=Mars/Olympus",
            content=LOG.encode(),
            headers={**CSV, **await keys.writer()},
        )
        assert_problem(response, 422, "invalid")
        assert await logs_in(session) == 0

    async def test_a_body_that_is_not_gzip_fails_cleanly(self, client, keys, session):
        # Written in batches first, then the broken tail: nothing of it may stay.
        data = gzip.compress(LOG.encode())[:-12]
        response = await client.post(
            "/v1/event-logs?key=broken",
            content=data,
            headers={**CSV, **await keys.writer(), "Content-Encoding": "gzip"},
        )
        assert_problem(response, 422, "unreadable_log")
        assert await rows_in(session) == 0
        log = (await client.get("/v1/event-logs/broken", headers=await keys.reader())).json()
        assert log["status"] == "failed"
        # The key can be posted again, and then it imports.
        retry = await client.post(
            "/v1/event-logs?key=broken",
            content=LOG.encode(),
            headers={**CSV, **await keys.writer()},
        )
        assert retry.status_code == 201, retry.text

    async def test_text_that_is_not_utf8_is_refused(self, client, keys, session):
        response = await client.post(
            "/v1/event-logs?key=latin",
            content="case,unit,time\nc1,Caf\u00e9,2026-11-02T09:00:00Z\n".encode("latin-1"),
            headers={**CSV, **await keys.writer()},
        )
        body = assert_problem(response, 422, "unreadable_log")
        assert "UTF-8" in body["detail"]
        assert await rows_in(session) == 0

    async def test_an_empty_body_is_refused(self, client, keys):
        response = await client.post(
            "/v1/event-logs?key=empty", content=b"", headers={**CSV, **await keys.writer()}
        )
        assert_problem(response, 422, "invalid")

    async def test_a_taken_key_is_a_conflict(self, client, keys):
        headers = {**CSV, **await keys.writer()}
        first = await client.post("/v1/event-logs?key=twice", content=LOG.encode(), headers=headers)
        assert first.status_code == 201
        second = await client.post(
            "/v1/event-logs?key=twice", content=LOG.encode(), headers=headers
        )
        assert_problem(second, 409, "key_exists")


class TestStrict:
    async def test_any_bad_row_rejects_the_whole_file(self, client, keys, session):
        response = await client.post(
            "/v1/event-logs?key=strict&strict=true",
            content=LOG.encode(),
            headers={**CSV, **await keys.writer()},
        )
        body = assert_problem(response, 422, "log_rejected")
        assert body["rejected"] == 5
        assert [r["line"] for r in body["rejections"]] == [line for line, _ in REJECTIONS]
        assert await rows_in(session) == 0
        assert await logs_in(session) == 0

    async def test_a_clean_file_imports(self, client, keys):
        clean = "\n".join(LOG.splitlines()[:13]) + "\n"
        response = await client.post(
            "/v1/event-logs?key=strict-ok&strict=true",
            content=clean.encode(),
            headers={**CSV, **await keys.writer()},
        )
        assert response.status_code == 201, response.text
        assert (response.json()["events"], response.json()["rejected"]) == (12, 0)


class TestListAndDelete:
    async def test_list_get_and_delete(self, client, keys, session):
        headers = {**CSV, **await keys.writer()}
        for key in ("first", "second"):
            response = await client.post(
                f"/v1/event-logs?key={key}", content=LOG.encode(), headers=headers
            )
            assert response.status_code == 201
        listed = await client.get("/v1/event-logs?limit=1", headers=await keys.reader())
        assert listed.status_code == 200
        page = listed.json()
        assert len(page["items"]) == 1 and page["next_cursor"]
        rest = await client.get(
            f"/v1/event-logs?limit=1&cursor={page['next_cursor']}", headers=await keys.reader()
        )
        assert {page["items"][0]["key"], rest.json()["items"][0]["key"]} == {"first", "second"}
        deleted = await client.delete("/v1/event-logs/first", headers=await keys.writer())
        assert deleted.status_code == 204
        assert_problem(
            await client.get("/v1/event-logs/first", headers=await keys.reader()), 404, "not_found"
        )
        assert await rows_in(session) == 12  # the other log's rows


class TestAccess:
    async def test_partner_keys_see_no_event_log(self, client, keys, session):
        await client.post(
            "/v1/event-logs?key=mine", content=LOG.encode(), headers={**CSV, **await keys.writer()}
        )
        await make_unit(session, key="courier", kind="partner")
        await session.commit()
        partner = await keys.partner("courier")
        for method, path in [
            ("GET", "/v1/event-logs"),
            ("GET", "/v1/event-logs/mine"),
            ("GET", "/v1/event-logs/mine/summary"),
            ("GET", "/v1/event-logs/mine/handoffs"),
            ("GET", "/v1/event-logs/mine/conformance"),
            ("DELETE", "/v1/event-logs/mine"),
            ("POST", "/v1/event-logs?key=theirs"),
        ]:
            response = await client.request(
                method, path, content=LOG.encode(), headers={**CSV, **partner}
            )
            assert_problem(response, 404, "not_found")
        assert await logs_in(session) == 1

    async def test_readers_may_not_import_or_delete(self, client, keys):
        reader = await keys.reader()
        response = await client.post(
            "/v1/event-logs?key=r", content=LOG.encode(), headers={**CSV, **reader}
        )
        assert_problem(response, 403, "forbidden")
        assert_problem(await client.delete("/v1/event-logs/r", headers=reader), 403, "forbidden")


class TestBatches:
    """Rows are committed batch by batch; a failure after some batches removes them all."""

    @pytest.fixture(autouse=True)
    def small_batches(self, monkeypatch):
        monkeypatch.setattr(importer, "BATCH_ROWS", 3)

    async def test_many_batches_give_the_same_log(self, client, keys, session):
        response = await client.post(
            "/v1/event-logs?key=batched",
            content=chunked(LOG.encode(), 40),
            headers={**CSV, **await keys.writer()},
        )
        assert response.status_code == 201, response.text
        assert (response.json()["events"], response.json()["rejected"]) == (12, 5)
        assert await rows_in(session) == 12

    async def test_a_failure_after_committed_batches_leaves_no_row(
        self, client, keys, session, monkeypatch
    ):
        written: list[int] = []
        write = importer._Job._write

        async def counted(job, rows):
            await write(job, rows)
            written.append(len(rows))

        monkeypatch.setattr(importer._Job, "_write", counted)

        async def body():
            yield LOG.encode()  # more than a batch of good rows, committed...
            await asyncio.sleep(0.05)
            yield b"\xff\xfe not utf-8\n"  # ...then bytes that stop the import

        response = await client.post(
            "/v1/event-logs?key=halfway", content=body(), headers={**CSV, **await keys.writer()}
        )
        assert_problem(response, 422, "unreadable_log")
        assert sum(written) >= 9  # batches had been committed before the failure
        assert await rows_in(session) == 0
        log = (await client.get("/v1/event-logs/halfway", headers=await keys.reader())).json()
        assert (log["status"], log["events"]) == ("failed", 0)
        assert "UTF-8" in log["failure_reason"]


class TestValues:
    async def test_control_characters_and_long_values_reject_the_row(self, client, keys):
        text = (
            "case,unit,time\n"
            "c1,A\x00B,2026-11-02T09:00:00Z\n"
            f"c1,{'x' * 201},2026-11-02T09:00:00Z\n"
            "c1,\tTabbed\t,2026-11-02T09:00:00Z\n"
        )
        response = await client.post(
            "/v1/event-logs?key=values",
            content=text.encode(),
            headers={**CSV, **await keys.writer()},
        )
        assert response.status_code == 201, response.text
        body = response.json()
        assert (body["events"], body["rejected"]) == (1, 2)
        assert [(r["line"], r["reason"]) for r in body["rejections"]] == [
            (2, "unit contains a control character"),
            (3, "unit is longer than 200 characters"),
        ]

    async def test_every_kind_of_value_is_stored_as_read(self, client, keys, session):
        # Rows reach SQLite as JSON: quotes, backslashes, line breaks inside quotes, other
        # scripts and emoji, times before 1970 and near the end of the range come back whole.
        text = (
            "case,unit,time,activity,status,resource\n"
            'c1,"Ops ""Tier 2""",1900-01-01T00:00:00Z,"two\nlines",,\n'
            "c1,Back\\slash,2026-11-02T09:00:00+05:30,Zürich 東京 🙂,\tdone\t,\n"
            "c2,V5 3rd,8999-12-31T23:59:59.999999Z,,,r1\n"
        )
        response = await client.post(
            "/v1/event-logs?key=values",
            content=text.encode(),
            headers={**CSV, **await keys.writer()},
        )
        assert response.status_code == 201, response.text
        stored = (
            await session.execute(
                select(
                    EventLogRow.position,
                    EventLogRow.case_ref,
                    EventLogRow.unit,
                    EventLogRow.at_us,
                    EventLogRow.activity,
                    EventLogRow.status,
                    EventLogRow.resource,
                ).order_by(EventLogRow.position)
            )
        ).all()
        assert [tuple(row) for row in stored] == [
            (2, "c1", 'Ops "Tier 2"', -2208988800000000, "two\nlines", None, None),
            (4, "c1", "Back\\slash", 1793590200000000, "Zürich 東京 🙂", "done", None),
            (5, "c2", "V5 3rd", 221845391999999999, None, None, "r1"),
        ]
