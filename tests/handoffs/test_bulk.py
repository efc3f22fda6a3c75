"""REST: POST /v1/handoff-events/bulk (JSON arrays and NDJSON)."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest
from sqlalchemy import func, select

from service.core.config import get_settings
from service.handoffs.models import HandoffEvent
from tests.factories import make_event, make_handoff, make_unit
from tests.problems import assert_problem

URL = "/v1/handoff-events/bulk"
NDJSON = {"content-type": "application/x-ndjson"}


def item(external_id: str, handoff: str = "kyc", **fields) -> dict:
    return {
        "handoff": handoff,
        "external_id": external_id,
        "started_at": "2026-01-02T10:00:00Z",
        **fields,
    }


def ndjson(items: list) -> bytes:
    return b"\n".join(orjson.dumps(i) for i in items) + b"\n"


async def event_count(session) -> int:
    return await session.scalar(select(func.count()).select_from(HandoffEvent))


async def listed(client, keys, handoff: str = "kyc") -> dict[str, dict]:
    response = await client.get(
        f"/v1/handoffs/{handoff}/events?limit=500", headers=await keys.reader()
    )
    assert response.status_code == 200
    return {e["external_id"]: e for e in response.json()["items"]}


def report(response) -> tuple[int, int, int, int]:
    body = response.json()
    return body["created"], body["updated"], body["unchanged"], body["rejected"]


@pytest.fixture
def limits(app, settings):
    """Override the app's settings with smaller bulk limits for one test."""

    def apply(**changes):
        small = settings.model_copy(update=changes)
        app.dependency_overrides[get_settings] = lambda: small
        return small

    return apply


class TestBulkUpsertHandoffEvents:
    async def test_a_json_array_creates_every_event(self, client, keys, kyc):
        items = [item(f"e{n}") for n in range(3)]
        response = await client.post(URL, json=items, headers=await keys.writer())
        assert response.status_code == 200
        assert response.json() == {
            "created": 3,
            "updated": 0,
            "unchanged": 0,
            "rejected": 0,
            "errors": [],
            "errors_truncated": False,
        }
        events = await listed(client, keys)
        assert sorted(events) == ["e0", "e1", "e2"]
        assert events["e0"]["due_at"].startswith("2026-01-02T14:00:00")

    @pytest.mark.parametrize(
        "media_type",
        [
            "application/x-ndjson",
            "application/ndjson",
            "application/jsonl",
            "application/x-ndjson; charset=utf-8",
        ],
    )
    async def test_ndjson_creates_every_event(self, client, keys, kyc, media_type):
        body = ndjson([item(f"e{n}") for n in range(3)])
        response = await client.post(
            URL, content=body, headers={**await keys.writer(), "content-type": media_type}
        )
        assert response.status_code == 200, response.text
        assert report(response) == (3, 0, 0, 0)
        assert sorted(await listed(client, keys)) == ["e0", "e1", "e2"]

    async def test_ndjson_tolerates_blank_lines_crlf_and_no_final_newline(self, client, keys, kyc):
        body = b"\r\n".join([orjson.dumps(item("e0")), b"", orjson.dumps(item("e1"))])
        response = await client.post(URL, content=body, headers={**await keys.writer(), **NDJSON})
        assert response.status_code == 200, response.text
        assert report(response) == (2, 0, 0, 0)

    async def test_sending_again_is_all_unchanged(self, client, keys, kyc):
        body = ndjson([item(f"e{n}") for n in range(4)])
        headers = {**await keys.writer(), **NDJSON}
        first = await client.post(URL, content=body, headers=headers)
        before = await listed(client, keys)
        again = await client.post(URL, content=body, headers=headers)
        assert report(first) == (4, 0, 0, 0)
        assert report(again) == (0, 0, 4, 0)
        assert await listed(client, keys) == before

    async def test_counts_created_updated_and_unchanged_together(self, client, keys, session, kyc):
        await make_event(session, "kyc", external_id="same", started_at="2026-01-02T10:00:00Z")
        await make_event(session, "kyc", external_id="changed", started_at="2026-01-02T10:00:00Z")
        items = [item("same"), item("changed", quality=2, rework=True), item("new")]
        response = await client.post(URL, json=items, headers=await keys.writer())
        assert report(response) == (1, 1, 1, 0)
        events = await listed(client, keys)
        assert (events["changed"]["quality"], events["changed"]["rework"]) == (2, True)
        assert events["same"]["quality"] is None

    async def test_updates_keep_the_id_and_change_the_values(self, client, keys, session, kyc):
        original = await make_event(
            session, "kyc", external_id="e1", started_at="2026-01-02T10:00:00Z"
        )
        response = await client.post(
            URL,
            json=[item("e1", delivered_at="2026-01-02T11:00:00Z", case_ref="CASE-7")],
            headers=await keys.writer(),
        )
        assert report(response) == (0, 1, 0, 0)
        event = (await listed(client, keys))["e1"]
        assert event["id"] == str(original.id)
        assert event["status"] == "delivered"
        assert event["case_ref"] == "CASE-7"

    async def test_an_empty_array_writes_nothing(self, client, keys, session, kyc):
        response = await client.post(URL, json=[], headers=await keys.writer())
        assert response.status_code == 200
        assert report(response) == (0, 0, 0, 0)
        assert await event_count(session) == 0

    async def test_items_span_several_handoffs(self, client, keys, session, kyc):
        await make_handoff(session, key="kyc-back", from_unit="branch", to_unit="ops")
        items = [item("e1"), item("e1", handoff="kyc-back"), item("e2", handoff="kyc-back")]
        response = await client.post(URL, json=items, headers=await keys.writer())
        assert report(response) == (3, 0, 0, 0)
        assert sorted(await listed(client, keys, "kyc-back")) == ["e1", "e2"]

    async def test_an_item_without_expected_within_or_due_at_has_no_due_time(
        self, client, keys, session, kyc
    ):
        await make_handoff(
            session, key="adhoc", from_unit="branch", to_unit="ops", expected_within=None
        )
        items = [
            item("dated", handoff="adhoc", due_at="2026-01-03T10:00:00Z"),
            item("undated", handoff="adhoc"),
        ]
        response = await client.post(URL, json=items, headers=await keys.writer())
        assert response.status_code == 200, response.text
        assert response.json()["created"] == 2
        listed = await client.get("/v1/handoffs/adhoc/events", headers=await keys.reader())
        due = {e["external_id"]: e["due_at"] for e in listed.json()["items"]}
        assert due == {"dated": "2026-01-03T10:00:00Z", "undated": None}

    # Atomic (the default): one bad item, nothing written --------------------------------------

    async def test_one_bad_item_rejects_the_request_and_writes_nothing(
        self, client, keys, session, kyc
    ):
        items = [item("e0"), item("e1"), item("e2", quality=9), item("e3")]
        response = await client.post(URL, json=items, headers=await keys.writer())
        body = assert_problem(response, 422, "bulk_rejected")
        assert body["rejected"] == 1
        assert [(e["index"], e["loc"]) for e in body["errors"]] == [(2, [2, "quality"])]
        assert await listed(client, keys) == {}
        assert await event_count(session) == 0

    async def test_every_bad_item_is_listed_by_index(self, client, keys, session, kyc):
        items = [
            item("e0"),
            item("e1", started_at="2026-01-02T10:00:00"),
            item("e2"),
            item("bad id"),
            {"handoff": "kyc", "external_id": "e4"},
            item("e5", delivered_at="2026-01-01T10:00:00Z"),
            item("e6", colour="red"),
        ]
        response = await client.post(URL, json=items, headers=await keys.writer())
        body = assert_problem(response, 422, "bulk_rejected")
        assert body["rejected"] == 5
        by_index = {e["index"]: e["loc"] for e in body["errors"]}
        assert by_index == {
            1: [1, "started_at"],
            3: [3, "external_id"],
            4: [4, "started_at"],
            5: [5],
            6: [6, "colour"],
        }
        for error in body["errors"]:
            assert error["loc"][0] == error["index"]
            assert error["msg"]
        assert body["errors_truncated"] is False
        assert await event_count(session) == 0

    async def test_a_start_too_late_to_fall_due_is_an_item_error(self, client, keys, session, kyc):
        # started_at + the handoff's PT4H would pass the last date there is.
        items = [item("e0"), item("e1", started_at="9999-12-31T22:00:00Z"), item("e2")]
        response = await client.post(URL, json=items, headers=await keys.writer())
        body = assert_problem(response, 422, "bulk_rejected")
        assert [(e["index"], e["loc"]) for e in body["errors"]] == [(1, [1, "started_at"])]
        assert await event_count(session) == 0

    async def test_an_unknown_handoff_is_an_item_error(self, client, keys, session, kyc):
        items = [item("e0"), item("e1", handoff="nowhere")]
        response = await client.post(URL, json=items, headers=await keys.writer())
        body = assert_problem(response, 422, "bulk_rejected")
        assert [(e["loc"], e["msg"]) for e in body["errors"]] == [
            ([1, "handoff"], "handoff 'nowhere' does not exist")
        ]
        assert await event_count(session) == 0

    async def test_a_bad_item_in_a_later_batch_undoes_the_earlier_batches(
        self, client, keys, session, kyc
    ):
        items = [item(f"e{n}") for n in range(4500)]  # more than two batches of 2,000
        items[4321]["quality"] = 0
        response = await client.post(
            URL, content=ndjson(items), headers={**await keys.writer(), **NDJSON}
        )
        body = assert_problem(response, 422, "bulk_rejected")
        assert [e["loc"] for e in body["errors"]] == [[4321, "quality"]]
        assert await event_count(session) == 0

    async def test_a_rejected_request_leaves_existing_events_as_they_were(
        self, client, keys, session, kyc
    ):
        await make_event(session, "kyc", external_id="e0", started_at="2026-01-02T10:00:00Z")
        before = await listed(client, keys)
        items = [item("e0", quality=5, note="changed"), item("e1", handoff="nowhere")]
        response = await client.post(URL, json=items, headers=await keys.writer())
        assert_problem(response, 422, "bulk_rejected")
        assert await listed(client, keys) == before

    async def test_reported_errors_are_capped(self, client, keys, session, kyc, limits):
        limits(bulk_max_reported_errors=2)
        items = [item(f"e{n}", quality=0) for n in range(5)]
        response = await client.post(URL, json=items, headers=await keys.writer())
        body = assert_problem(response, 422, "bulk_rejected")
        assert body["rejected"] == 5
        assert [e["index"] for e in body["errors"]] == [0, 1]
        assert body["errors_truncated"] is True
        assert await event_count(session) == 0

    # Non-atomic ------------------------------------------------------------------------------

    async def test_non_atomic_writes_the_valid_items_and_reports_the_rest(
        self, client, keys, session, kyc
    ):
        items = [item("e0"), item("e1", quality=7), item("e2"), item("e3", handoff="nowhere")]
        response = await client.post(f"{URL}?atomic=false", json=items, headers=await keys.writer())
        assert response.status_code == 200
        body = response.json()
        assert report(response) == (2, 0, 0, 2)
        # The report names the item by index, and its loc starts with it, as when atomic.
        assert [(e["index"], e["loc"]) for e in body["errors"]] == [
            (1, [1, "quality"]),
            (3, [3, "handoff"]),
        ]
        assert sorted(await listed(client, keys)) == ["e0", "e2"]

    async def test_non_atomic_with_only_bad_items_writes_nothing(self, client, keys, session, kyc):
        response = await client.post(
            f"{URL}?atomic=false", json=[item("e0", quality=0)], headers=await keys.writer()
        )
        assert response.status_code == 200
        assert report(response) == (0, 0, 0, 1)
        assert await event_count(session) == 0

    async def test_atomic_must_be_a_boolean(self, client, keys, session, kyc):
        response = await client.post(
            f"{URL}?atomic=maybe", json=[item("e0")], headers=await keys.writer()
        )
        body = assert_problem(response, 422, "validation_failed")
        assert body["errors"][0]["loc"] == ["query", "atomic"]
        assert await event_count(session) == 0

    # Repeats within one request --------------------------------------------------------------

    @pytest.mark.parametrize("as_ndjson", [False, True])
    async def test_the_same_external_id_twice_ends_with_the_last_values(
        self, client, keys, kyc, as_ndjson
    ):
        items = [item("e1", quality=1, note="first"), item("e1", quality=5, note="last")]
        headers = await keys.writer()
        if as_ndjson:
            response = await client.post(URL, content=ndjson(items), headers={**headers, **NDJSON})
        else:
            response = await client.post(URL, json=items, headers=headers)
        assert response.status_code == 200, response.text
        assert report(response) == (1, 1, 0, 0)
        events = await listed(client, keys)
        assert list(events) == ["e1"]
        assert (events["e1"]["quality"], events["e1"]["note"]) == (5, "last")

    async def test_a_repeat_amid_other_items_ends_with_the_last_values(self, client, keys, kyc):
        items = [item("a"), item("e1", quality=1), item("b"), item("e1", quality=4), item("c")]
        response = await client.post(URL, json=items, headers=await keys.writer())
        assert report(response) == (4, 1, 0, 0)
        events = await listed(client, keys)
        assert sorted(events) == ["a", "b", "c", "e1"]
        assert events["e1"]["quality"] == 4

    # Malformed bodies ------------------------------------------------------------------------

    async def test_a_malformed_ndjson_line_is_an_item_error(self, client, keys, session, kyc):
        body = b"\n".join(
            [
                orjson.dumps(item("e0")),
                b'{"handoff": "kyc", "external_id": ',
                orjson.dumps(item("e2")),
            ]
        )
        response = await client.post(URL, content=body, headers={**await keys.writer(), **NDJSON})
        problem = assert_problem(response, 422, "bulk_rejected")
        assert [e["loc"][0] for e in problem["errors"]] == [1]
        assert await event_count(session) == 0

    async def test_a_malformed_ndjson_line_is_reported_when_not_atomic(self, client, keys, kyc):
        body = b"\n".join([orjson.dumps(item("e0")), b"not json", orjson.dumps(item("e2"))])
        response = await client.post(
            f"{URL}?atomic=false", content=body, headers={**await keys.writer(), **NDJSON}
        )
        assert response.status_code == 200
        assert report(response) == (2, 0, 0, 1)
        assert [e["index"] for e in response.json()["errors"]] == [1]
        assert sorted(await listed(client, keys)) == ["e0", "e2"]

    @pytest.mark.parametrize(
        "lines",
        [
            [b"[" + orjson.dumps(item("s1")) + b"]"],
            [orjson.dumps(item("s1")) + b", " + orjson.dumps(item("s2"))],
            [orjson.dumps(item("s1")) + b" " + orjson.dumps(item("s2"))],
            # Two fragments that would join into one valid item, after a smuggled one:
            [
                orjson.dumps(item("s1")) + b', {"handoff": "kyc", "external_id": "s2"',
                b'"started_at": "2026-01-02T10:00:00Z"}',
            ],
        ],
    )
    async def test_a_line_that_is_not_exactly_one_item_is_an_item_error(
        self, client, keys, session, kyc, lines
    ):
        body = b"\n".join([*lines, orjson.dumps(item("e1"))])
        response = await client.post(URL, content=body, headers={**await keys.writer(), **NDJSON})
        problem = assert_problem(response, 422, "bulk_rejected")
        assert [e["index"] for e in problem["errors"]] == list(range(len(lines)))
        assert problem["rejected"] == len(lines)
        assert await event_count(session) == 0

    async def test_item_errors_after_a_malformed_line_keep_their_line_index(
        self, client, keys, session, kyc
    ):
        body = b"\n".join(
            [
                orjson.dumps(item("s1")) + b", " + orjson.dumps(item("s2")),
                orjson.dumps(item("e1", handoff="nowhere")),
                orjson.dumps(item("e2")),
            ]
        )
        response = await client.post(
            f"{URL}?atomic=false", content=body, headers={**await keys.writer(), **NDJSON}
        )
        assert response.status_code == 200, response.text
        assert report(response) == (1, 0, 0, 2)
        assert [(e["index"], e["loc"]) for e in response.json()["errors"]][1] == (1, [1, "handoff"])
        assert [e["index"] for e in response.json()["errors"]] == [0, 1]
        assert sorted(await listed(client, keys)) == ["e2"]

    @pytest.mark.parametrize(
        "body", [b'{"handoff": "kyc"}', b'"events"', b"42", b"null", b"[1, 2", b"\xff\xfe"]
    )
    async def test_a_body_that_is_not_a_json_array_is_422(self, client, keys, session, kyc, body):
        response = await client.post(
            URL, content=body, headers={**await keys.writer(), "content-type": "application/json"}
        )
        problem = assert_problem(response, 422, "invalid")
        assert problem["errors"][0]["loc"] == ["body"]
        assert await event_count(session) == 0

    async def test_array_items_that_are_not_objects_are_item_errors(
        self, client, keys, session, kyc
    ):
        response = await client.post(
            URL, json=[item("e0"), 7, "x", None], headers=await keys.writer()
        )
        body = assert_problem(response, 422, "bulk_rejected")
        assert sorted(e["index"] for e in body["errors"]) == [1, 2, 3]
        assert await event_count(session) == 0

    @pytest.mark.parametrize("media_type", ["text/plain", "application/xml", "multipart/form-data"])
    async def test_an_unsupported_media_type_is_415(self, client, keys, session, kyc, media_type):
        response = await client.post(
            URL,
            content=ndjson([item("e0")]),
            headers={**await keys.writer(), "content-type": media_type},
        )
        assert_problem(response, 415, "unsupported_media_type")
        assert await event_count(session) == 0

    # Limits ----------------------------------------------------------------------------------

    async def test_a_json_body_over_the_limit_is_413(self, client, keys, session, kyc, limits):
        small = limits(bulk_max_json_bytes=2048)
        items = [item(f"e{n}") for n in range(40)]
        body = orjson.dumps(items)
        assert len(body) > small.bulk_max_json_bytes
        response = await client.post(
            URL, content=body, headers={**await keys.writer(), "content-type": "application/json"}
        )
        problem = assert_problem(response, 413, "payload_too_large")
        assert problem["max_bytes"] == 2048
        assert await event_count(session) == 0

    async def test_a_streamed_json_body_over_the_limit_is_413(
        self, client, keys, session, kyc, limits
    ):
        limits(bulk_max_json_bytes=2048)
        body = orjson.dumps([item(f"e{n}") for n in range(40)])

        async def chunks():  # no Content-Length: the limit applies while reading
            for start in range(0, len(body), 500):
                yield body[start : start + 500]

        response = await client.post(
            URL,
            content=chunks(),
            headers={**await keys.writer(), "content-type": "application/json"},
        )
        assert_problem(response, 413, "payload_too_large")
        assert await event_count(session) == 0

    async def test_an_ndjson_body_over_its_limit_is_413(self, client, keys, session, kyc, limits):
        limits(bulk_max_ndjson_bytes=4096)
        body = ndjson([item(f"e{n}") for n in range(100)])

        async def chunks():
            for start in range(0, len(body), 1000):
                yield body[start : start + 1000]

        response = await client.post(
            URL, content=chunks(), headers={**await keys.writer(), **NDJSON}
        )
        assert_problem(response, 413, "payload_too_large")
        assert await event_count(session) == 0

    async def test_the_json_limit_does_not_cap_ndjson(self, client, keys, kyc, limits):
        limits(bulk_max_json_bytes=2048)
        response = await client.post(
            URL,
            content=ndjson([item(f"e{n}") for n in range(40)]),
            headers={**await keys.writer(), **NDJSON},
        )
        assert response.status_code == 200
        assert report(response) == (40, 0, 0, 0)

    @pytest.mark.parametrize("as_ndjson", [False, True])
    async def test_more_items_than_allowed_is_413_and_writes_nothing(
        self, client, keys, session, kyc, limits, as_ndjson
    ):
        limits(bulk_max_items=3)
        items = [item(f"e{n}") for n in range(4)]
        headers = await keys.writer()
        if as_ndjson:
            response = await client.post(URL, content=ndjson(items), headers={**headers, **NDJSON})
        else:
            response = await client.post(URL, json=items, headers=headers)
        problem = assert_problem(response, 413, "payload_too_large")
        assert problem["max_items"] == 3
        assert await event_count(session) == 0

    async def test_exactly_the_item_limit_is_accepted(self, client, keys, kyc, limits):
        limits(bulk_max_items=3)
        response = await client.post(
            URL, json=[item(f"e{n}") for n in range(3)], headers=await keys.writer()
        )
        assert response.status_code == 200, response.text
        assert report(response) == (3, 0, 0, 0)

    async def test_the_item_limit_counts_across_batches(self, client, keys, session, kyc, limits):
        limits(bulk_max_items=2500)
        items = [item(f"e{n}") for n in range(2600)]  # the first batch of 2,000 is written first
        response = await client.post(
            URL, content=ndjson(items), headers={**await keys.writer(), **NDJSON}
        )
        assert_problem(response, 413, "payload_too_large")
        assert await event_count(session) == 0

    # Roles and partners ----------------------------------------------------------------------

    async def test_a_reader_may_not_ingest(self, client, keys, session, kyc):
        response = await client.post(URL, json=[item("e0")], headers=await keys.reader())
        assert_problem(response, 403, "forbidden")
        assert await event_count(session) == 0

    async def test_a_partner_ingests_on_its_own_handoffs(self, client, keys, session, kyc):
        await make_unit(session, key="courier", kind="partner")
        await make_handoff(session, key="parcel", from_unit="courier", to_unit="branch")
        await make_handoff(session, key="returns", from_unit="branch", to_unit="courier")
        items = [item("p1", handoff="parcel"), item("r1", handoff="returns")]
        response = await client.post(URL, json=items, headers=await keys.partner("courier"))
        assert response.status_code == 200
        assert report(response) == (2, 0, 0, 0)

    async def test_a_partners_items_on_other_handoffs_do_not_exist(
        self, client, keys, session, kyc
    ):
        await make_unit(session, key="courier", kind="partner")
        await make_handoff(session, key="parcel", from_unit="courier", to_unit="branch")
        items = [item("p1", handoff="parcel"), item("k1", handoff="kyc")]
        response = await client.post(URL, json=items, headers=await keys.partner("courier"))
        body = assert_problem(response, 422, "bulk_rejected")
        assert [(e["loc"], e["msg"]) for e in body["errors"]] == [
            ([1, "handoff"], "handoff 'kyc' does not exist")
        ]
        assert await event_count(session) == 0

    async def test_a_partners_items_on_other_handoffs_are_rejected_when_not_atomic(
        self, client, keys, session, kyc
    ):
        await make_unit(session, key="courier", kind="partner")
        await make_handoff(session, key="parcel", from_unit="courier", to_unit="branch")
        items = [item("p1", handoff="parcel"), item("k1", handoff="kyc")]
        response = await client.post(
            f"{URL}?atomic=false", json=items, headers=await keys.partner("courier")
        )
        assert response.status_code == 200
        assert report(response) == (1, 0, 0, 1)
        assert await listed(client, keys, "kyc") == {}
        assert sorted(await listed(client, keys, "parcel")) == ["p1"]

    async def test_reported_times_are_utc(self, client, keys, kyc):
        response = await client.post(
            URL,
            json=[item("e0", started_at="2026-01-02T10:00:00+05:30")],
            headers=await keys.writer(),
        )
        assert response.status_code == 200
        event = (await listed(client, keys))["e0"]
        started = datetime.fromisoformat(event["started_at"])
        assert started == datetime(2026, 1, 2, 4, 30, tzinfo=UTC)
