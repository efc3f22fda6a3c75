"""Summary and handoffs of small logs, against numbers worked out by hand (logs.py)."""

from __future__ import annotations

import base64

import orjson
import pytest

from tests.event_logs.logs import ARCS, FD, LOG, SUMMARY
from tests.problems import assert_problem

CSV = {"Content-Type": "text/csv"}


@pytest.fixture
async def support(client, keys) -> str:
    response = await client.post(
        "/v1/event-logs?key=support", content=LOG.encode(), headers={**CSV, **await keys.writer()}
    )
    assert response.status_code == 201, response.text
    return "support"


class TestSummary:
    async def test_counts_transfers_and_ping_pongs(self, client, keys, support):
        response = await client.get(
            f"/v1/event-logs/{support}/summary", headers=await keys.reader()
        )
        assert response.status_code == 200, response.text
        body = response.json()
        assert {k: body[k] for k in SUMMARY} == SUMMARY
        assert body["first_at"] == "2026-11-02T08:00:00Z"
        assert body["last_at"] == "2026-11-03T08:00:00Z"
        assert body["pause_statuses"] == []

    async def test_the_same_numbers_twice(self, client, keys, support):
        headers = await keys.reader()
        first = await client.get(f"/v1/event-logs/{support}/summary", headers=headers)
        second = await client.get(f"/v1/event-logs/{support}/summary", headers=headers)
        assert first.json() == second.json()

    async def test_a_log_of_single_events_has_no_transfer(self, client, keys):
        text = "case,unit,time\nc1,A,2026-11-02T09:00:00Z\nc2,B,2026-11-02T09:00:00Z\n"
        await client.post(
            "/v1/event-logs?key=lonely",
            content=text.encode(),
            headers={**CSV, **await keys.writer()},
        )
        body = (
            await client.get("/v1/event-logs/lonely/summary", headers=await keys.reader())
        ).json()
        assert (body["cases"], body["transfers"], body["ping_pongs"]) == (2, 0, 0)
        assert body["transfers_per_case"] == {"median": 0.0, "p90": 0, "max": 0}
        arcs = (
            await client.get("/v1/event-logs/lonely/handoffs", headers=await keys.reader())
        ).json()
        assert arcs == {"items": [], "next_cursor": None}

    async def test_repeats_collapse_before_ping_pongs_are_counted(self, client, keys):
        # A A B B A B: transfers A->B, B->A, A->B; ping-pongs A->B->A and B->A->B.
        times = [f"2026-11-02T0{h}:00:00Z" for h in range(1, 7)]
        units = ["A", "A", "B", "B", "A", "B"]
        text = "case,unit,time\n" + "".join(
            f"c,{u},{t}\n" for u, t in zip(units, times, strict=True)
        )
        await client.post(
            "/v1/event-logs?key=pp", content=text.encode(), headers={**CSV, **await keys.writer()}
        )
        body = (await client.get("/v1/event-logs/pp/summary", headers=await keys.reader())).json()
        assert (body["transfers"], body["ping_pongs"], body["cases_with_ping_pong"]) == (3, 2, 1)
        arcs = (await client.get("/v1/event-logs/pp/handoffs", headers=await keys.reader())).json()[
            "items"
        ]
        assert [(a["from"], a["to"], a["count"], a["ping_pongs"]) for a in arcs] == [
            ("A", "B", 2, 1),
            ("B", "A", 1, 1),
        ]
        # A->B waits: 1h (A at 02:00 -> B at 03:00) and 1h (A at 05:00 -> B at 06:00).
        assert arcs[0]["wait"] == {"median": "PT1H", "p90": "PT1H", "max": "PT1H"}

    async def test_a_log_still_importing_or_failed_has_no_summary(self, client, keys):
        await client.post(
            "/v1/event-logs?key=bad&case=nope",
            content=LOG.encode(),
            headers={**CSV, **await keys.writer()},
        )
        response = await client.get("/v1/event-logs/bad/summary", headers=await keys.reader())
        assert_problem(response, 409, "log_not_ready")

    async def test_an_unknown_log_is_404(self, client, keys):
        response = await client.get("/v1/event-logs/nope/handoffs", headers=await keys.reader())
        assert_problem(response, 404, "not_found")


class TestHandoffs:
    async def test_arcs_most_frequent_first_with_waits(self, client, keys, support):
        response = await client.get(
            f"/v1/event-logs/{support}/handoffs", headers=await keys.reader()
        )
        assert response.status_code == 200, response.text
        assert response.json() == {"items": ARCS, "next_cursor": None}

    async def test_paused_time_does_not_count(self, client, keys, support):
        response = await client.get(
            f"/v1/event-logs/{support}/handoffs?pause_statuses=waiting%20on%20customer",
            headers=await keys.reader(),
        )
        first = response.json()["items"][0]
        assert (first["from"], first["to"]) == ("Billing", FD)
        # c2's 2h at Billing were spent waiting on the customer: both waits are 0.
        assert first["wait"] == {"median": "PT0S", "p90": "PT0S", "max": "PT0S"}
        assert response.json()["items"][1:] == ARCS[1:]
        summary = await client.get(
            f"/v1/event-logs/{support}/summary?pause_statuses=waiting%20on%20customer,other",
            headers=await keys.reader(),
        )
        assert summary.json()["pause_statuses"] == ["waiting on customer", "other"]
        assert summary.json()["transfers"] == SUMMARY["transfers"]

    async def test_pages_follow_each_other(self, client, keys, support):
        headers = await keys.reader()
        seen, cursor = [], None
        while True:
            url = f"/v1/event-logs/{support}/handoffs?limit=1" + (
                f"&cursor={cursor}" if cursor else ""
            )
            page = (await client.get(url, headers=headers)).json()
            seen.extend(page["items"])
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert seen == ARCS

    async def test_a_forged_cursor_is_refused(self, client, keys, support):
        response = await client.get(
            f"/v1/event-logs/{support}/handoffs?cursor=bm90LWpzb24", headers=await keys.reader()
        )
        assert_problem(response, 422, "invalid_cursor")

    async def test_a_cursor_naming_an_arc_the_log_lacks_is_refused(self, client, keys, support):
        # Well formed: (count, from, to), but no arc of this log.
        cursor = base64.urlsafe_b64encode(orjson.dumps([1, "Nobody", FD])).rstrip(b"=").decode()
        response = await client.get(
            f"/v1/event-logs/{support}/handoffs?cursor={cursor}", headers=await keys.reader()
        )
        assert_problem(response, 422, "invalid_cursor")

    async def test_a_stored_page_continues_under_pause_statuses(self, client, keys, support):
        # Pauses change waits, never counts: the listings share their order and cursors.
        headers = await keys.reader()
        first = await client.get(f"/v1/event-logs/{support}/handoffs?limit=1", headers=headers)
        cursor = first.json()["next_cursor"]
        rest = await client.get(
            f"/v1/event-logs/{support}/handoffs?cursor={cursor}&pause_statuses=none",
            headers=headers,
        )
        assert rest.status_code == 200, rest.text
        assert first.json()["items"] + rest.json()["items"] == ARCS


class TestPercentiles:
    @pytest.mark.parametrize(
        ("n", "median", "p90"),
        [
            (10, "PT5M30S", "PT9M"),  # ranks 5 and 6; ceil(9.0) = 9
            (11, "PT6M", "PT10M"),  # rank 6; ceil(9.9) = 10
            (1, "PT1M", "PT1M"),
        ],
    )
    async def test_nearest_rank_on_the_sorted_waits(self, client, keys, n, median, p90):
        # n cases, each one transfer A -> B whose wait is its number in minutes, listed in
        # reverse so the file's order is not the sorted order.
        lines = ["case,unit,time"]
        for i in range(n, 0, -1):
            lines.append(f"c{i},A,2026-11-02T08:00:00Z")
            lines.append(f"c{i},B,2026-11-02T08:{i:02d}:00Z")
        text = "\n".join(lines) + "\n"
        await client.post(
            "/v1/event-logs?key=ranks",
            content=text.encode(),
            headers={**CSV, **await keys.writer()},
        )
        arcs = (
            await client.get("/v1/event-logs/ranks/handoffs", headers=await keys.reader())
        ).json()["items"]
        assert len(arcs) == 1
        assert arcs[0]["wait"] == {"median": median, "p90": p90, "max": f"PT{n}M"}
