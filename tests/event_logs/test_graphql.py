"""GraphQL ``eventLog(key)``: the same numbers as REST, and nothing for partner keys."""

from __future__ import annotations

from tests.event_logs.logs import ARCS, FD, LOG, SUMMARY
from tests.factories import make_unit

CSV = {"Content-Type": "text/csv"}
QUERY = """
query ($key: String!, $pauses: [String!]) {
  eventLog(key: $key) {
    key status events rejected
    summary { cases transfers pingPongs casesWithPingPong transfersPerCase { median p90 max } }
    handoffs(first: 2) { items { from to count cases pingPongs wait { median p90 max } } nextCursor }
    paused: handoffs(first: 1, pauseStatuses: $pauses) { items { wait { median p90 max } } }
    conformance(first: 1) { unregisteredTotal unregistered { from to } unobserved { handoff } }
  }
}
"""


async def post(client, headers, key="support"):
    return await client.post(
        "/graphql",
        json={"query": QUERY, "variables": {"key": key, "pauses": ["waiting on customer"]}},
        headers=headers,
    )


class TestEventLogQuery:
    async def test_reads_summary_handoffs_and_conformance(self, client, keys):
        imported = await client.post(
            "/v1/event-logs?key=support",
            content=LOG.encode(),
            headers={**CSV, **await keys.writer()},
        )
        assert imported.status_code == 201
        response = await post(client, await keys.reader())
        body = response.json()
        assert "errors" not in body, body
        log = body["data"]["eventLog"]
        assert (log["key"], log["status"], log["events"], log["rejected"]) == (
            "support",
            "ready",
            12,
            5,
        )
        assert log["summary"] == {
            "cases": SUMMARY["cases"],
            "transfers": SUMMARY["transfers"],
            "pingPongs": SUMMARY["ping_pongs"],
            "casesWithPingPong": SUMMARY["cases_with_ping_pong"],
            "transfersPerCase": SUMMARY["transfers_per_case"],
        }
        assert log["handoffs"]["items"] == [
            {
                **{k: a[k] for k in ("from", "to", "count", "cases", "wait")},
                "pingPongs": a["ping_pongs"],
            }
            for a in ARCS[:2]
        ]
        assert log["handoffs"]["nextCursor"]
        assert log["paused"]["items"] == [
            {"wait": {"median": "PT0S", "p90": "PT0S", "max": "PT0S"}}
        ]
        assert log["conformance"]["unregisteredTotal"] == 4
        assert log["conformance"]["unregistered"] == [{"from": "Billing", "to": FD}]
        assert log["conformance"]["unobserved"] == []

    async def test_a_partner_key_gets_null_and_not_found(self, client, keys, session):
        await client.post(
            "/v1/event-logs?key=support",
            content=LOG.encode(),
            headers={**CSV, **await keys.writer()},
        )
        await make_unit(session, key="courier", kind="partner")
        await session.commit()
        response = await post(client, await keys.partner("courier"))
        body = response.json()
        assert body["data"] == {"eventLog": None}
        assert body["errors"][0]["extensions"]["code"] == "not_found"
