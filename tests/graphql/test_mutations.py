"""Mutations call the same services as REST, one committed transaction each."""

from __future__ import annotations

from tests.factories import make_handoff, make_journey, make_touchpoint, make_unit

UPSERT = """
mutation($handoff: String!, $id: String!, $input: EventInput!) {
  upsertHandoffEvent(handoff: $handoff, externalId: $id, input: $input) {
    created event { externalId dueAt status handoff { key } }
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


async def _events(client, headers, handoff: str) -> list[str]:
    response = await client.get(f"/v1/handoffs/{handoff}/events", headers=headers)
    return [e["external_id"] for e in response.json()["items"]]


class TestUpsertHandoffEvent:
    async def test_creates_then_updates(self, gql, keys, session):
        await make_handoff(session, key="h", expected_within="PT4H")
        writer = await keys.writer()
        variables = {"handoff": "h", "id": "e1", "input": {"startedAt": "2026-11-01T09:00:00Z"}}
        first = (await gql(UPSERT, writer, variables)).json()["data"]["upsertHandoffEvent"]
        assert first["created"] is True
        assert first["event"]["dueAt"] == "2026-11-01T13:00:00+00:00"
        assert first["event"]["handoff"] == {"key": "h"}
        variables["input"]["deliveredAt"] = "2026-11-01T10:00:00Z"
        second = (await gql(UPSERT, writer, variables)).json()["data"]["upsertHandoffEvent"]
        assert second["created"] is False and second["event"]["status"] == "delivered"

    async def test_same_rules_as_rest(self, gql, keys, session):
        await make_handoff(session, key="h", expected_within=None)
        variables = {"handoff": "h", "id": "e1", "input": {"startedAt": "2026-11-01T09:00:00Z"}}
        body = (await gql(UPSERT, await keys.writer(), variables)).json()
        event = body["data"]["upsertHandoffEvent"]["event"]
        assert (event["dueAt"], event["status"]) == (None, "pending")  # no timing standard
        variables["input"]["dueAt"] = "2026-11-01T08:00:00Z"
        body = (await gql(UPSERT, await keys.writer(), variables)).json()
        assert body["errors"][0]["extensions"]["code"] == "invalid"
        assert "due_at must not be before started_at" in body["errors"][0]["message"]


class TestUpsertHandoffEvents:
    async def test_atomic_batch_with_a_bad_item_writes_nothing(self, gql, client, keys, session):
        await make_handoff(session, key="h")
        writer = await keys.writer()
        items = [
            {"handoff": "h", "externalId": "ok-1", "startedAt": "2026-11-01T09:00:00Z"},
            {"handoff": "nowhere", "externalId": "bad", "startedAt": "2026-11-01T09:00:00Z"},
            {"handoff": "h", "externalId": "bad-2", "startedAt": "2026-11-01T09:00:00Z", "quality": 9},
        ]
        body = (await gql(BULK, writer, {"items": items, "atomic": True})).json()
        error = body["errors"][0]
        assert error["extensions"]["code"] == "bulk_rejected"
        assert sorted(e["index"] for e in error["extensions"]["errors"]) == [1, 2]
        assert await _events(client, writer, "h") == []

    async def test_non_atomic_batch_writes_the_good_items(self, gql, client, keys, session):
        await make_handoff(session, key="h")
        writer = await keys.writer()
        items = [
            {"handoff": "h", "externalId": "ok-1", "startedAt": "2026-11-01T09:00:00Z"},
            {"handoff": "nowhere", "externalId": "bad", "startedAt": "2026-11-01T09:00:00Z"},
        ]
        result = (await gql(BULK, writer, {"items": items, "atomic": False})).json()["data"]
        assert result["upsertHandoffEvents"]["created"] == 1
        assert result["upsertHandoffEvents"]["rejected"] == 1
        assert result["upsertHandoffEvents"]["errors"][0]["index"] == 1
        assert await _events(client, writer, "h") == ["ok-1"]


class TestOtherMutations:
    async def test_feedback_review_and_joint_goals(self, gql, client, keys, session):
        await make_unit(session, key="front")
        await make_unit(session, key="courier", kind="partner")
        await make_journey(session, key="j", stages=["s"])
        await make_touchpoint(session, key="tp", journey="j", stage="s", owner="front")
        await make_handoff(session, key="h", from_unit="front", to_unit="courier")
        writer = await keys.writer()
        await client.post("/v1/metrics", json={"key": "m", "name": "M", "kind": "operational"},
                          headers=writer)
        await client.post(
            "/v1/partner-agreements",
            json={"key": "a", "title": "A", "partner": "courier", "internal_owner": "front",
                  "starts_on": "2026-01-01", "status": "active"},
            headers=writer,
        )
        feedback = (await gql(
            'mutation { upsertFeedback(touchpoint: "tp", externalId: "f1", input: '
            '{at: "2026-11-01T09:00:00Z", scale: nps, score: 9, loyalty: 8}) '
            "{ created feedback { score loyalty } } }",
            writer,
        )).json()["data"]["upsertFeedback"]
        assert feedback == {"created": True, "feedback": {"score": 9.0, "loyalty": 8.0}}
        partner = await keys.partner("courier")
        review = (await gql(
            'mutation { addHandoffReview(handoff: "h", input: {timeliness: 2, quality: 5}) '
            "{ timeliness quality } }",
            partner,
        )).json()["data"]["addHandoffReview"]
        assert review == {"timeliness": 2, "quality": 5}
        propose = (
            'mutation { proposeJointGoal(agreement: "a", input: {key: "%s", title: "On time", '
            'owner: "courier", metric: "m", direction: increase, kind: means}) '
            "{ key status proposedBy } }"
        )
        first = (await gql(propose % "agreed", writer)).json()["data"]["proposeJointGoal"]
        assert first["proposedBy"] == "internal"  # now the partner sees, and may name, m
        proposed = (await gql(propose % "jg", partner)).json()["data"]["proposeJointGoal"]
        assert proposed == {"key": "courier.jg", "status": "proposed", "proposedBy": "partner"}
        accepted = (await gql(
            'mutation { acceptJointGoal(agreement: "a", goal: "courier.jg") { status acceptedAt } }',
            writer,
        )).json()["data"]["acceptJointGoal"]
        assert accepted["status"] == "active" and accepted["acceptedAt"]
