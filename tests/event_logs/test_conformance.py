"""GET /v1/event-logs/{key}/conformance: the hand-computed log against a small registry."""

from __future__ import annotations

from service.event_logs.keys import derive_key
from tests.event_logs.logs import ARCS, FD, LOG, V5
from tests.factories import make_handoff, make_unit

CSV = {"Content-Type": "text/csv"}


class TestDeriveKey:
    def test_a_valid_key_is_its_own_key(self):
        assert derive_key("billing") == "billing"

    def test_free_text_gets_a_readable_collision_safe_key(self):
        key = derive_key(V5)
        assert key.startswith("v5-3rd-ops-") and len(key) == len("v5-3rd-ops-") + 6
        # Names whose slugs agree still get different keys; the same name, the same key.
        assert derive_key("V5 3rd") != derive_key("v5 3rd") != derive_key("v5-3rd")
        assert derive_key(V5) == key


class TestConformance:
    async def test_unregistered_unobserved_and_slow(self, client, keys, session):
        desk, billing, v5 = derive_key(FD), derive_key("Billing"), derive_key(V5)
        for key in (desk, billing, v5, "legal"):
            await make_unit(session, key=key)
        # Observed FD -> Billing waits 30m at p90: slower than 10 minutes.
        await make_handoff(
            session, key="desk-billing", from_unit=desk, to_unit=billing, expected_within="PT10M"
        )
        # Both units are in the log; V5 never hands to Billing.
        await make_handoff(session, key="v5-billing", from_unit=v5, to_unit=billing)
        # Legal is not in the log: not expected to be observed.
        await make_handoff(session, key="desk-legal", from_unit=desk, to_unit="legal")
        # Registered but retired: FD -> V5 stays unregistered.
        await make_handoff(session, key="old", from_unit=desk, to_unit=v5, status="retired")
        await session.commit()
        response = await client.post(
            "/v1/event-logs?key=support",
            content=LOG.encode(),
            headers={**CSV, **await keys.writer()},
        )
        assert response.status_code == 201, response.text

        response = await client.get(
            "/v1/event-logs/support/conformance", headers=await keys.reader()
        )
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["units"] == [
            {"name": "Billing", "key": billing, "unit": billing},
            {"name": FD, "key": desk, "unit": desk},
            {"name": V5, "key": v5, "unit": v5},
        ]
        assert body["unregistered_total"] == 3
        mapped = {"Billing": billing, FD: desk, V5: v5}
        assert body["unregistered"] == [
            {**arc, "from_unit": mapped[arc["from"]], "to_unit": mapped[arc["to"]]}
            for arc in ARCS
            if (arc["from"], arc["to"]) != (FD, "Billing")
        ]
        assert body["unobserved"] == [
            {"handoff": "v5-billing", "from_unit": v5, "to_unit": billing}
        ]
        assert body["timing"] == [
            {
                "handoff": "desk-billing",
                "from": FD,
                "to": "Billing",
                "count": 1,
                "p90": "PT30M",
                "expected_within": "PT10M",
            }
        ]

    async def test_with_no_registry_every_arc_is_hidden(self, client, keys):
        await client.post(
            "/v1/event-logs?key=support",
            content=LOG.encode(),
            headers={**CSV, **await keys.writer()},
        )
        response = await client.get(
            "/v1/event-logs/support/conformance?limit=1", headers=await keys.reader()
        )
        body = response.json()
        assert body["unregistered_total"] == len(ARCS)
        assert body["unregistered"] == [{**ARCS[0], "from_unit": None, "to_unit": None}]
        assert body["unobserved"] == [] and body["timing"] == []
        assert all(u["unit"] is None for u in body["units"])

    async def test_registered_arcs_at_the_head_leave_room_for_the_limit(
        self, client, keys, session
    ):
        desk, billing = derive_key(FD), derive_key("Billing")
        for key in (desk, billing):
            await make_unit(session, key=key)
        # Billing -> FD heads the listing; registered, it is not hidden.
        await make_handoff(session, key="billing-desk", from_unit=billing, to_unit=desk)
        await session.commit()
        await client.post(
            "/v1/event-logs?key=support",
            content=LOG.encode(),
            headers={**CSV, **await keys.writer()},
        )
        mapped = {"Billing": billing, FD: desk, V5: None}
        expected = [
            {**arc, "from_unit": mapped[arc["from"]], "to_unit": mapped[arc["to"]]}
            for arc in ARCS[1:3]
        ]
        # Stored, then computed from the rows: the same answer.
        for pauses in ("", "&pause_statuses=none"):
            response = await client.get(
                f"/v1/event-logs/support/conformance?limit=2{pauses}",
                headers=await keys.reader(),
            )
            body = response.json()
            assert body["unregistered_total"] == len(ARCS) - 1
            assert body["unregistered"] == expected

    async def test_a_unit_that_never_hands_off_still_counts(self, client, keys, session):
        """Its name is in no arc: the log's rows give it, and its handoff is unobserved."""
        solo, a = derive_key("Solo desk"), derive_key("A")
        for key in (solo, a):
            await make_unit(session, key=key)
        await make_handoff(session, key="solo-a", from_unit=solo, to_unit=a)
        await session.commit()
        log = (
            "case,unit,time\n"
            "c1,A,2026-01-01T10:00:00Z\nc1,B,2026-01-01T11:00:00Z\n"
            "c2,Solo desk,2026-01-01T12:00:00Z\n"
        )
        response = await client.post(
            "/v1/event-logs?key=solo", content=log.encode(), headers={**CSV, **await keys.writer()}
        )
        assert response.status_code == 201, response.text
        response = await client.get("/v1/event-logs/solo/conformance", headers=await keys.reader())
        body = response.json()
        assert [u["name"] for u in body["units"]] == ["A", "B", "Solo desk"]
        assert body["unobserved"] == [{"handoff": "solo-a", "from_unit": solo, "to_unit": a}]
        assert body["unregistered_total"] == 1
