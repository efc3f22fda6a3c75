"""Partners against each other: who may join a case, and who may change an event.

Two partners share the company's handoffs: ``p1`` provides ``swap`` to ``p2`` (a handoff
both take part in); ``p2`` also receives ``p2-in`` from the warehouse and gives
``p2-out`` back to it, so the company's case ``X`` made of ``p2``'s steps has transfers and
a ping-pong that ``p1`` must never see or change. ``p1`` has ``p1-in`` of its own.

Every door writes events through the same service function, so the rules are asserted by
REST (PUT and NDJSON bulk) and by the GraphQL mutations alike.
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from sqlalchemy import select

from service.handoffs.models import HandoffEvent
from tests.factories import make_event, make_handoff, make_unit
from tests.problems import assert_problem

CASE = "case-x"
NEW = "case-new"
START = "2026-01-05T09:00:00+00:00"
SCORE = (
    "/v1/scores/partners/p2?from=2026-01-01T00:00:00Z&to=2026-02-01T00:00:00Z"
    "&as_of=2026-03-01T00:00:00Z"
)

UPSERT = """
mutation($handoff: String!, $id: String!, $input: EventInput!) {
  upsertHandoffEvent(handoff: $handoff, externalId: $id, input: $input) {
    created event { externalId caseRef quality source }
  }
}
"""
BULK = """
mutation($items: [BulkEventInput!]!, $atomic: Boolean!) {
  upsertHandoffEvents(items: $items, atomic: $atomic) {
    created updated unchanged rejected errors { index loc msg }
  }
}
"""
EVENTS = """
query($handoff: String!) {
  handoff(key: $handoff) { events { items { externalId source } } }
}
"""


@pytest.fixture
async def world(session) -> None:
    await make_unit(session, key="warehouse")
    await make_unit(session, key="p1", kind="partner")
    await make_unit(session, key="p2", kind="partner")
    await make_handoff(session, key="swap", from_unit="p1", to_unit="p2")
    await make_handoff(session, key="p2-in", from_unit="warehouse", to_unit="p2")
    await make_handoff(session, key="p2-out", from_unit="p2", to_unit="warehouse")
    await make_handoff(session, key="p1-in", from_unit="warehouse", to_unit="p1")


@pytest.fixture
async def company_case(session, world) -> None:
    """The company's case X: warehouse → p2 → warehouse → p2, none of it p1's."""
    for external_id, handoff, hour, delivered in (
        ("x1", "p2-in", 9, 10),
        ("x2", "p2-out", 11, 12),
        ("x3", "p2-in", 13, None),
    ):
        await make_event(
            session,
            handoff,
            external_id=external_id,
            started_at=f"2026-01-05T{hour:02d}:00:00+00:00",
            delivered_at=f"2026-01-05T{delivered:02d}:30:00+00:00" if delivered else None,
            case_ref=CASE,
        )


def gql(client):
    async def call(query: str, headers: dict[str, str], variables: dict[str, Any]):
        response = await client.post(
            "/graphql", json={"query": query, "variables": variables}, headers=headers
        )
        assert response.status_code == 200, response.text
        return response.json()

    return call


async def case(client, headers, ref: str = CASE):
    return await client.get(f"/v1/cases/{ref}", headers=headers)


async def put(client, headers, handoff: str, external_id: str, **fields):
    return await client.put(
        f"/v1/handoffs/{handoff}/events/{external_id}",
        json={"started_at": START, **fields},
        headers=headers,
    )


async def rows(session) -> list[tuple]:
    """Every event as stored, to show that a refused write changed nothing."""
    result = await session.execute(
        select(
            HandoffEvent.handoff_id,
            HandoffEvent.external_id,
            HandoffEvent.started_at,
            HandoffEvent.delivered_at,
            HandoffEvent.quality,
            HandoffEvent.case_ref,
            HandoffEvent.case_private,
            HandoffEvent.written_by_unit_id,
            HandoffEvent.updated_at,
        ).order_by(HandoffEvent.handoff_id, HandoffEvent.external_id)
    )
    return [tuple(row) for row in result.all()]


# 1. Joining cases ------------------------------------------------------------------------------


class TestAPartnerCannotJoinAnotherPartiesCase:
    """Design: a partner's event joins a company case only if the partner already takes part
    in it (a step on a handoff it provides or receives), or starts a case under a new ref.
    A ref of a company case it has no part in is accepted exactly like a new ref (refusing it
    would tell the partner the case exists), but the event forms the partner's own case of
    that ref, apart from the company's: the company's case and everyone's view of it stay as
    they were, and the partner sees only its own steps, as for any case it started."""

    async def test_the_case_is_404_to_an_outsider(self, client, keys, company_case):
        response = await case(client, await keys.partner("p1"))

        body = assert_problem(response, 404, "not_found")
        assert (body["resource"], body["key"]) == ("case", CASE)

    async def test_writing_the_ref_answers_like_a_new_ref(self, client, keys, company_case):
        p1 = await keys.partner("p1")

        taken = await put(client, p1, "p1-in", "e1", case_ref=CASE)
        new = await put(client, p1, "p1-in", "e2", case_ref=NEW)

        assert taken.status_code == new.status_code == 201
        strip = {"id", "external_id", "case_ref", "created_at", "updated_at"}
        assert {k: v for k, v in taken.json().items() if k not in strip} == {
            k: v for k, v in new.json().items() if k not in strip
        }
        assert taken.json()["case_ref"] == CASE

    async def test_the_partner_sees_only_its_own_case(self, client, keys, company_case):
        p1 = await keys.partner("p1")
        await put(client, p1, "p1-in", "e1", case_ref=CASE, delivered_at="2026-01-05T10:00:00Z")

        seen = await case(client, p1)
        own_new = await put(client, p1, "p1-in", "e2", case_ref=NEW)
        fresh = await case(client, p1, NEW)

        assert seen.status_code == 200 and own_new.status_code == 201
        body = seen.json()
        assert [s["external_id"] for s in body["steps"]] == ["e1"]
        assert all(s["visible"] for s in body["steps"])
        assert body["transfers"] == 1 and body["ping_pongs"] == 0
        assert body["open_steps"] == 0
        # Exactly what a case it started under a new ref looks like.
        assert body["path"] == fresh.json()["path"] == ["(another unit)", "p1"]

    async def test_the_company_and_the_other_partner_see_their_case_unchanged(
        self, client, keys, session, company_case
    ):
        reader, p2 = await keys.reader(), await keys.partner("p2")
        before = (await case(client, reader)).json(), (await case(client, p2)).json()

        await put(client, await keys.partner("p1"), "p1-in", "e1", case_ref=CASE)

        after = (await case(client, reader)).json(), (await case(client, p2)).json()
        assert after == _ignoring_clock(before, after)
        assert [s["external_id"] for s in after[0]["steps"]] == ["x1", "x2", "x3"]
        assert after[0]["transfers"] == 3 and after[0]["ping_pongs"] == 2

    async def test_a_partner_in_the_case_joins_it(self, client, keys, company_case):
        p2 = await keys.partner("p2")
        response = await put(
            client, p2, "p2-out", "x4", case_ref=CASE, started_at="2026-01-05T14:00:00Z"
        )

        assert response.status_code == 201
        steps = (await case(client, await keys.reader())).json()["steps"]
        assert [s["external_id"] for s in steps] == ["x1", "x2", "x3", "x4"]

    async def test_a_new_ref_starts_a_company_case(self, client, keys, world):
        response = await put(client, await keys.partner("p1"), "p1-in", "e1", case_ref=NEW)

        assert response.status_code == 201
        steps = (await case(client, await keys.reader(), NEW)).json()["steps"]
        assert [s["external_id"] for s in steps] == ["e1"]

    async def test_moving_an_own_event_into_the_case_keeps_it_apart(
        self, client, keys, company_case
    ):
        p1 = await keys.partner("p1")
        await put(client, p1, "p1-in", "e1", case_ref=NEW)

        moved = await put(client, p1, "p1-in", "e1", case_ref=CASE)

        assert moved.status_code == 200
        steps = (await case(client, await keys.reader())).json()["steps"]
        assert [s["external_id"] for s in steps] == ["x1", "x2", "x3"]
        assert [s["external_id"] for s in (await case(client, p1)).json()["steps"]] == ["e1"]

    @pytest.mark.parametrize("media_type", ["application/x-ndjson", "application/json"])
    async def test_bulk_follows_the_same_rule(self, client, keys, company_case, media_type):
        items = [
            {"handoff": "p1-in", "external_id": "e1", "started_at": START, "case_ref": CASE},
            {"handoff": "p1-in", "external_id": "e2", "started_at": START, "case_ref": NEW},
        ]
        body = ndjson(items) if media_type.endswith("ndjson") else orjson.dumps(items)

        response = await client.post(
            "/v1/handoff-events/bulk",
            content=body,
            headers={**await keys.partner("p1"), "Content-Type": media_type},
        )

        assert response.status_code == 200, response.text
        assert response.json()["created"] == 2 and response.json()["rejected"] == 0
        company = (await case(client, await keys.reader())).json()
        assert [s["external_id"] for s in company["steps"]] == ["x1", "x2", "x3"]
        own = (await case(client, await keys.partner("p1"))).json()
        assert [s["external_id"] for s in own["steps"]] == ["e1"]

    async def test_graphql_follows_the_same_rule(self, client, keys, company_case):
        p1 = await keys.partner("p1")
        variables = {"handoff": "p1-in", "id": "e1", "input": {"startedAt": START, "caseRef": CASE}}

        single = await gql(client)(UPSERT, p1, variables)
        items = [{"handoff": "p1-in", "externalId": "e2", "startedAt": START, "caseRef": CASE}]
        bulk = await gql(client)(BULK, p1, {"items": items, "atomic": True})

        assert single["data"]["upsertHandoffEvent"]["created"] is True
        assert bulk["data"]["upsertHandoffEvents"]["created"] == 1
        company = (await case(client, await keys.reader())).json()
        assert [s["external_id"] for s in company["steps"]] == ["x1", "x2", "x3"]
        own = (await case(client, p1)).json()
        assert sorted(s["external_id"] for s in own["steps"]) == ["e1", "e2"]


# 3. Who wrote it -------------------------------------------------------------------------------


class TestAPartnerChangesOnlyWhatItWrote:
    """Changing another writer's event is 403, not 404: both parties of a handoff read its
    events, so the partner already sees the event and a 404 would hide nothing; 403 says
    the event is there but not the caller's to change. Internal writers change any event;
    an event keeps the source of whoever created it."""

    async def test_the_other_partys_event_is_403_and_unchanged(self, client, keys, session, world):
        p2 = await keys.partner("p2")
        created = await put(client, p2, "swap", "s1", quality=5, delivered_at=START)
        reader = await keys.reader()
        score = (await client.get(SCORE, headers=reader)).json()
        before = await rows(session)

        response = await put(
            client,
            await keys.partner("p1"),
            "swap",
            "s1",
            quality=1,
            delivered_at="2026-01-09T09:00:00Z",
        )

        assert created.status_code == 201 and created.json()["source"] == "p2"
        assert_problem(response, 403, "forbidden")
        assert await rows(session) == before
        assert (await client.get(SCORE, headers=reader)).json() == score

    async def test_an_internal_event_is_403_to_a_partner(self, client, keys, session, world):
        await make_event(session, "swap", external_id="s1", quality=4)

        response = await put(client, await keys.partner("p1"), "swap", "s1", quality=1)

        assert_problem(response, 403, "forbidden")

    async def test_a_partner_creates_and_changes_its_own(self, client, keys, world):
        p1 = await keys.partner("p1")

        created = await put(client, p1, "swap", "s1", quality=2)
        changed = await put(client, p1, "swap", "s1", quality=4)

        assert (created.status_code, changed.status_code) == (201, 200)
        assert changed.json()["quality"] == 4 and changed.json()["source"] == "p1"

    async def test_an_internal_writer_changes_any_and_the_source_stays(
        self, client, keys, world
    ):
        await put(client, await keys.partner("p2"), "swap", "s1", quality=5)

        response = await put(client, await keys.writer(), "swap", "s1", quality=3)

        assert response.status_code == 200
        assert (response.json()["quality"], response.json()["source"]) == (3, "p2")

    async def test_reads_show_the_source(self, client, keys, session, world):
        await make_event(session, "swap", external_id="i1")
        await put(client, await keys.partner("p1"), "swap", "a1")
        await put(client, await keys.partner("p2"), "swap", "b1")

        async def sources(headers) -> dict[str, str]:
            response = await client.get("/v1/handoffs/swap/events", headers=headers)
            return {e["external_id"]: e["source"] for e in response.json()["items"]}

        assert await sources(await keys.reader()) == {"i1": "internal", "a1": "p1", "b1": "p2"}
        # A partner may not see the other partner's unit: it is named as in case paths.
        assert await sources(await keys.partner("p1")) == {
            "i1": "internal",
            "a1": "p1",
            "b1": "(another unit)",
        }
        body = await gql(client)(EVENTS, await keys.reader(), {"handoff": "swap"})
        listed = body["data"]["handoff"]["events"]["items"]
        assert {e["externalId"]: e["source"] for e in listed} == {
            "i1": "internal",
            "a1": "p1",
            "b1": "p2",
        }

    async def test_bulk_rejects_the_item_by_index(self, client, keys, session, world):
        await put(client, await keys.partner("p2"), "swap", "s1", quality=5)
        before = await rows(session)
        items = [
            {"handoff": "swap", "external_id": "mine", "started_at": START},
            {"handoff": "swap", "external_id": "s1", "started_at": START, "quality": 1},
        ]
        headers = {**await keys.partner("p1"), "Content-Type": "application/x-ndjson"}

        atomic = await client.post("/v1/handoff-events/bulk", content=ndjson(items), headers=headers)
        after_atomic = await rows(session)
        partial = await client.post(
            "/v1/handoff-events/bulk?atomic=false", content=ndjson(items), headers=headers
        )

        body = assert_problem(atomic, 422, "bulk_rejected")
        assert [(e["index"], e["loc"]) for e in body["errors"]] == [(1, [1, "external_id"])]
        assert after_atomic == before
        assert partial.status_code == 200, partial.text
        result = partial.json()
        assert (result["created"], result["rejected"]) == (1, 1)
        assert [e["index"] for e in result["errors"]] == [1]
        listed = await client.get("/v1/handoffs/swap/events", headers=await keys.reader())
        quality = {e["external_id"]: e["quality"] for e in listed.json()["items"]}
        assert quality == {"mine": None, "s1": 5}

    async def test_graphql_follows_the_same_rule(self, client, keys, session, world):
        await put(client, await keys.partner("p2"), "swap", "s1", quality=5)
        p1 = await keys.partner("p1")
        before = await rows(session)

        variables = {"handoff": "swap", "id": "s1", "input": {"startedAt": START, "quality": 1}}
        single = await gql(client)(UPSERT, p1, variables)
        items = [{"handoff": "swap", "externalId": "s1", "startedAt": START, "quality": 1}]
        bulk = await gql(client)(BULK, p1, {"items": items, "atomic": False})

        assert single["errors"][0]["extensions"]["code"] == "forbidden"
        assert bulk["data"]["upsertHandoffEvents"]["rejected"] == 1
        assert bulk["data"]["upsertHandoffEvents"]["errors"][0]["index"] == 0
        assert await rows(session) == before


def ndjson(items: list) -> bytes:
    return b"\n".join(orjson.dumps(i) for i in items) + b"\n"


def _ignoring_clock(before: tuple, after: tuple) -> tuple:
    """``before`` with the fields that follow the clock for an open case (its elapsed time
    and the open step's lateness) taken from ``after``."""
    result = []
    for old, new in zip(before, after, strict=True):
        old = {**old, "elapsed": new["elapsed"]}
        old["steps"] = [
            {**o, "late_by": n.get("late_by")} if "late_by" in o else o
            for o, n in zip(old["steps"], new["steps"], strict=True)
        ]
        result.append(old)
    return tuple(result)
