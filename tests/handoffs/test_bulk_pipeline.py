"""Bulk writes that span several write batches, and values through the COPY path.

On PostgreSQL a bulk request is written in batches of ``core.bulk._WRITE_BATCH`` rows by
a binary COPY and one upsert each, while the next request batches are validated; these
tests send enough items for several such writes, with bad items and repeated keys in
different writes, and values that a text COPY would have to escape.
"""

from __future__ import annotations

import gc
from datetime import UTC, datetime

import pytest
from sqlalchemy import Column, Float, MetaData, Table, select
from sqlalchemy.dialects import postgresql

from service.core import bulk
from service.handoffs.models import HandoffEvent
from service.handoffs.service import EVENT_UPSERT
from service.journeys.service import FEEDBACK_UPSERT
from tests.handoffs.test_bulk import NDJSON, URL, event_count, item, listed, ndjson, report
from tests.problems import assert_problem

MANY = 25_000  # over two PostgreSQL write batches, in 13 request batches of 2,000


def many() -> list[dict]:
    return [item(f"e{n}", quality=1 + n % 5) for n in range(MANY)]


class TestSeveralWrites:
    async def test_every_item_is_counted_once(self, client, keys, session, kyc):
        response = await client.post(
            URL, content=ndjson(many()), headers={**await keys.writer(), **NDJSON}
        )
        assert response.status_code == 200, response.text
        assert report(response) == (MANY, 0, 0, 0)
        assert await event_count(session) == MANY

        again = many()
        for n in (3, 12_345, MANY - 1):  # one change in each write batch
            again[n]["quality"] = 1 + (again[n]["quality"] % 5)
        response = await client.post(
            URL, content=ndjson(again), headers={**await keys.writer(), **NDJSON}
        )
        assert report(response) == (0, 3, MANY - 3, 0)

    async def test_non_atomic_reports_bad_items_of_every_write_by_index(
        self, client, keys, session, kyc
    ):
        items = many()
        items[5]["quality"] = 0  # invalid: found by validation
        items[11_111]["handoff"] = "nowhere"  # found by prepare
        items[24_998] = item("e7", quality=5)  # repeats a key written two writes earlier
        lines = ndjson(items).split(b"\n")
        lines[17_000] = b"{not json"
        response = await client.post(
            f"{URL}?atomic=false",
            content=b"\n".join(lines),
            headers={**await keys.writer(), **NDJSON},
        )
        assert response.status_code == 200, response.text
        body = response.json()
        assert [e["index"] for e in body["errors"]] == [5, 11_111, 17_000]
        # created: all but the 3 rejected and the repeat; the repeat updates e7
        assert report(response) == (MANY - 4, 1, 0, 3)
        assert await event_count(session) == MANY - 4
        quality = select(HandoffEvent.quality).where(HandoffEvent.external_id == "e7")
        assert await session.scalar(quality) == 5

    async def test_atomic_reports_every_bad_item_after_the_first_and_writes_nothing(
        self, client, keys, session, kyc
    ):
        items = many()
        items[2_001]["quality"] = 0
        items[15_000]["handoff"] = "nowhere"  # after the first bad item: still reported
        items[MANY - 1]["started_at"] = "yesterday"
        response = await client.post(
            URL, content=ndjson(items), headers={**await keys.writer(), **NDJSON}
        )
        body = assert_problem(response, 422, "bulk_rejected")
        assert [e["index"] for e in body["errors"]] == [2_001, 15_000, MANY - 1]
        assert body["rejected"] == 3
        assert await event_count(session) == 0


class TestCopiedValues:
    @pytest.mark.parametrize("as_ndjson", [False, True])
    async def test_values_arrive_exactly(self, client, keys, kyc, as_ndjson):
        note = "tab\there, back\\slash, \\N, new\nline, quote \" and unicode é ✓ 😀"
        items = [
            item(
                "exact",
                started_at="2026-01-02T10:00:00.123456+05:30",
                due_at="2026-01-03T00:00:00-08:00",
                delivered_at="2026-01-02T23:59:59.999999Z",
                quality=4,
                rework=True,
                customer_impact=True,
                case_ref="case_1:a~b.c",
                note=note,
            ),
            item("nulls", quality=None, case_ref=None, note=None),
        ]
        headers = await keys.writer()
        if as_ndjson:
            response = await client.post(URL, content=ndjson(items), headers={**headers, **NDJSON})
        else:
            response = await client.post(URL, json=items, headers=headers)
        assert response.status_code == 200, response.text
        assert report(response) == (2, 0, 0, 0)
        events = await listed(client, keys)
        exact, nulls = events["exact"], events["nulls"]
        assert datetime.fromisoformat(exact["started_at"]) == datetime(
            2026, 1, 2, 4, 30, 0, 123456, tzinfo=UTC
        )
        assert datetime.fromisoformat(exact["due_at"]) == datetime(2026, 1, 3, 8, tzinfo=UTC)
        assert datetime.fromisoformat(exact["delivered_at"]) == datetime(
            2026, 1, 2, 23, 59, 59, 999999, tzinfo=UTC
        )
        assert (exact["quality"], exact["rework"], exact["customer_impact"]) == (4, True, True)
        assert (exact["case_ref"], exact["note"]) == ("case_1:a~b.c", note)
        assert (nulls["quality"], nulls["case_ref"], nulls["note"]) == (None, None, None)
        assert nulls["delivered_at"] is None

        # The same values again are unchanged: what was copied equals what was sent.
        if as_ndjson:
            response = await client.post(URL, content=ndjson(items), headers={**headers, **NDJSON})
        else:
            response = await client.post(URL, json=items, headers=headers)
        assert report(response) == (0, 0, 2, 0)


class TestBinaryCopyTypes:
    def test_events_and_feedback_are_copied_in_binary(self):
        dialect = postgresql.psycopg.dialect()
        for spec in (EVENT_UPSERT, FEEDBACK_UPSERT):
            for with_id in (True, False):
                staging = bulk._staging_table(spec, with_id)
                types = bulk._binary_copy_types(staging, dialect)
                assert types is not None and len(types) == len(staging.columns)
                copy_sql = bulk._copy_statements(spec, dialect, with_id)[1]
                assert copy_sql.endswith("(FORMAT BINARY)")

    def test_a_type_psycopg_cannot_name_is_copied_as_text(self):
        # FLOAT(10) is a real, not the float8 that bare FLOAT is: no guess, text instead.
        table = Table("t", MetaData(), Column("x", Float(precision=10)))
        assert bulk._binary_copy_types(table, postgresql.psycopg.dialect()) is None


class TestCollectionsDuringBulks:
    def test_raised_while_any_bulk_runs_and_restored_after_the_last(self):
        before = gc.get_threshold()
        first, second = bulk._fewer_collections(), bulk._fewer_collections()
        first.__enter__()
        assert gc.get_threshold()[0] >= bulk._BULK_GC_THRESHOLD
        second.__enter__()  # two requests overlap; the first ends first
        first.__exit__(None, None, None)
        assert gc.get_threshold()[0] >= bulk._BULK_GC_THRESHOLD
        second.__exit__(None, None, None)
        assert gc.get_threshold() == before

    def test_restored_when_a_bulk_fails(self):
        before = gc.get_threshold()
        with pytest.raises(RuntimeError), bulk._fewer_collections():
            raise RuntimeError("the request failed")
        assert gc.get_threshold() == before
