"""The discovery findings (docs/method.md §10): `unregistered-handoff` and `ping-pong` in
GET /v1/findings, opened when a log becomes ready and kept current by the registry's writes.

The hand-computed log (tests/event_logs/logs.py) has 6 transfers over 4 arcs, each at least
one sixth of them, with at most one ping-pong per arc: every arc is an unregistered-handoff
candidate and none a ping-pong.
"""

from __future__ import annotations

import pytest
from sqlalchemy import select, update

from service.alignment import finding_service
from service.alignment.models import Finding
from service.api_keys.service import SYSTEM
from service.event_logs.arc_subjects import subject_key
from service.event_logs.keys import derive_key
from service.event_logs.models import EventLog
from service.handoffs import service as handoffs_service
from service.handoffs.schemas import HandoffUpdate
from tests.alignment.test_finding_refresh import evaluated, stored_open
from tests.event_logs.logs import ARCS, FD, LOG, V5
from tests.factories import make_handoff, make_touchpoint, make_unit

CSV = {"Content-Type": "text/csv"}
DESK, V5_KEY, BILLING = derive_key(FD), derive_key(V5), derive_key("Billing")
KEY_OF = {FD: DESK, V5: V5_KEY, "Billing": BILLING}


async def import_log(client, keys, key: str = "support", body: str = LOG) -> None:
    response = await client.post(
        f"/v1/event-logs?key={key}", content=body.encode(), headers={**CSV, **await keys.writer()}
    )
    assert response.status_code == 201, response.text


async def findings(client, keys, **params) -> list[dict]:
    response = await client.get("/v1/findings", params=params, headers=await keys.reader())
    assert response.status_code == 200, response.text
    return response.json()["items"]


def arc_key(source: str, target: str, log: str = "support") -> str:
    return f"{log}/{source} -> {target}"


class TestUnregisteredHandoff:
    async def test_each_unregistered_arc_of_a_ready_log_is_a_finding(self, client, keys):
        await import_log(client, keys)

        found = await findings(client, keys, rule="unregistered-handoff")

        by_key = {f["subject"]["key"]: f for f in found}
        assert set(by_key) == {arc_key(a["from"], a["to"]) for a in ARCS}
        first = by_key[arc_key("Billing", FD)]
        assert first["severity"] == 2
        assert first["subject"] == {"type": "discovered_arc", "key": "support/Billing -> Front Desk"}
        assert first["evidence"] == {
            "log": "support",
            "source": "Billing",
            "target": FD,
            "from_unit": BILLING,
            "to_unit": DESK,
            "transfers": 2,
            "log_transfers": 6,
            "cases": 2,
            "ping_pongs": 0,
            "share": 0.3333,
        }
        assert "2 times (33% of the log's transfers, in 2 cases)" in first["explanation"]
        assert "/v1/event-logs/support/handoffs/adopt" in first["remedy"]
        # No arc of this log reaches five ping-pongs.
        assert await findings(client, keys, rule="ping-pong") == []

    async def test_a_subject_filter_finds_one_arc_by_its_key(self, client, keys):
        await import_log(client, keys)
        subject = f"discovered_arc:{arc_key(FD, V5)}"

        (found,) = await findings(client, keys, subject=subject)

        assert found["subject"]["key"] == arc_key(FD, V5)

    async def test_a_subject_filter_reads_the_type_up_to_the_first_colon(self, client, keys):
        body = "case,unit,time\nc1,Ops: 1st line,2026-11-02T09:00:00Z\nc1,Ops: 2nd,2026-11-02T10:00:00Z\n"
        await import_log(client, keys, key="ops", body=body)

        (found,) = await findings(client, keys, subject="discovered_arc:ops/Ops: 1st line -> Ops: 2nd")

        assert found["subject"] == {"type": "discovered_arc", "key": "ops/Ops: 1st line -> Ops: 2nd"}

    async def test_registering_the_handoff_clears_it_and_retiring_it_reopens_it(
        self, client, keys, session
    ):
        await import_log(client, keys)
        for key in (DESK, BILLING):
            await make_unit(session, key=key)
        await make_handoff(session, key="desk-billing", from_unit=DESK, to_unit=BILLING)
        await session.commit()

        found = await findings(client, keys, rule="unregistered-handoff", status="cleared")
        assert [f["subject"]["key"] for f in found] == [arc_key(FD, "Billing")]
        opened = await findings(client, keys, rule="unregistered-handoff")
        assert arc_key(FD, "Billing") not in {f["subject"]["key"] for f in opened}

        await handoffs_service.update(
            session, SYSTEM, "desk-billing", HandoffUpdate(status="retired")
        )
        await session.commit()
        (reopened,) = await findings(client, keys, subject=f"discovered_arc:{arc_key(FD, 'Billing')}")
        assert reopened["id"] == found[0]["id"] and reopened["status"] == "open"

    async def test_a_moment_of_truth_owned_by_an_arcs_unit_makes_it_severity_three(
        self, client, keys, session
    ):
        await import_log(client, keys)
        await make_unit(session, key=V5_KEY)
        await make_touchpoint(session, owner=V5_KEY, moment_of_truth=True)
        await session.commit()

        found = await findings(client, keys, rule="unregistered-handoff")

        severity = {f["subject"]["key"]: f["severity"] for f in found}
        assert severity == {
            arc_key(FD, V5): 3,
            arc_key(V5, FD): 3,
            arc_key("Billing", FD): 2,
            arc_key(FD, "Billing"): 2,
        }

    async def test_adopting_an_arc_under_a_chosen_unit_key_clears_its_finding(
        self, client, keys, session
    ):
        await import_log(client, keys)
        await make_unit(session, key="billing-team")
        await session.commit()

        response = await client.post(
            "/v1/event-logs/support/handoffs/adopt",
            json={"from": "Billing", "to": FD, "key": "billing-desk", "from_unit": "billing-team"},
            headers=await keys.writer(),
        )
        assert response.status_code == 200, response.text

        open_keys = {f["subject"]["key"] for f in await findings(client, keys)}
        assert arc_key("Billing", FD) not in open_keys
        assert arc_key(FD, "Billing") in open_keys  # the other direction stays hidden

    async def test_deleting_the_log_clears_its_findings(self, client, keys):
        await import_log(client, keys)
        await import_log(client, keys, key="other")

        response = await client.delete("/v1/event-logs/support", headers=await keys.writer())
        assert response.status_code == 204, response.text

        open_keys = {f["subject"]["key"] for f in await findings(client, keys)}
        assert open_keys == {arc_key(a["from"], a["to"], "other") for a in ARCS}
        cleared = await findings(client, keys, status="cleared")
        assert {f["subject"]["key"] for f in cleared} == {arc_key(a["from"], a["to"]) for a in ARCS}

    async def test_partners_see_no_discovery_finding(self, client, keys, session):
        await import_log(client, keys)
        await make_unit(session, key="acme", kind="partner")
        await session.commit()

        assert await findings(client, keys) != []
        response = await client.get("/v1/findings", headers=await keys.partner("acme"))
        assert response.status_code == 200 and response.json()["items"] == []


def ping_pong_log(cases: int, returns: int) -> str:
    """``cases`` cases Desk -> Ops, ``returns`` of them straight back to Desk (one
    ping-pong each, on Desk -> Ops), and then every case on to Legal: 2 x cases + returns
    transfers."""
    lines = ["case,unit,time"]
    for i in range(cases):
        units = ["Desk", "Ops", "Desk", "Legal"] if i < returns else ["Desk", "Ops", "Legal"]
        lines += [f"k{i},{unit},2026-11-02T{9 + n:02}:00:00Z" for n, unit in enumerate(units)]
    return "\n".join(lines) + "\n"


class TestPingPong:
    @pytest.mark.parametrize(("returns", "fires"), [(5, True), (4, False)])
    async def test_five_returns_in_at_least_ten_percent_of_the_arcs_cases(
        self, client, keys, returns, fires
    ):
        # Desk -> Ops: 50 cases; 5 ping-pongs are 10% of them, 4 are too few.
        await import_log(client, keys, key="desk", body=ping_pong_log(50, returns))

        found = await findings(client, keys, rule="ping-pong")

        if not fires:
            assert found == []
            return
        (finding,) = found
        assert finding["subject"]["key"] == "desk/Desk -> Ops"
        assert finding["severity"] == 2
        assert finding["evidence"]["ping_pongs"] == 5
        assert finding["evidence"]["cases"] == 50
        assert finding["evidence"]["ping_pong_share"] == 0.1
        assert "5 times a case went from Desk to Ops and straight back" in finding["explanation"]


class TestStoredEqualsFullEvaluation:
    async def test_after_imports_and_registry_writes(self, client, keys, session):
        await import_log(client, keys)
        await import_log(client, keys, key="desk", body=ping_pong_log(20, 6))
        desk, ops = derive_key("Desk"), derive_key("Ops")
        for key in (DESK, BILLING, desk, ops):
            await make_unit(session, key=key)
        await make_handoff(session, key="a", from_unit=DESK, to_unit=BILLING)
        await make_handoff(session, key="b", from_unit=desk, to_unit=ops)
        await make_touchpoint(session, owner=ops, moment_of_truth=True)
        await session.commit()

        stored = await stored_open(session)
        arcs = {(f[0], f[2], f[3]) for f in stored if f[1] == "discovered_arc"}
        # Registered: FD -> Billing and Desk -> Ops; the ping-pong stays, at severity 3.
        assert ("ping-pong", "desk/Desk -> Ops", 3) in arcs
        assert ("unregistered-handoff", "desk/Ops -> Desk", 3) in arcs
        assert not {k for _, k, _ in arcs} & {"desk/Desk -> Ops", arc_key(FD, "Billing")} - {
            k for r, k, _ in arcs if r == "ping-pong"
        }
        assert stored == await evaluated(session)

    async def test_the_sweep_judges_the_arcs_of_logs_ready_before_findings_were_kept(
        self, client, keys, session
    ):
        await import_log(client, keys)
        await import_log(client, keys, key="desk", body=ping_pong_log(20, 6))
        # As an upgrade leaves them: ready, never judged, no finding.
        await session.execute(Finding.__table__.delete())
        await session.execute(update(EventLog).values(arcs_judged_at=None))

        await full_turns(session, batch=1)

        stored = await stored_open(session)
        # Every arc of both logs is unregistered; Desk -> Ops also ping-pongs.
        assert len([f for f in stored if f[1] == "discovered_arc"]) == len(ARCS) + 4 + 1
        assert stored == await evaluated(session)
        judged = (await session.scalars(select(EventLog.arcs_judged_at))).all()
        assert len(judged) == 2 and None not in judged

    async def test_the_sweep_leaves_judged_logs_alone(self, client, keys, session):
        """Arcs depend on no clock: once judged, a log is not judged again by every turn."""
        await import_log(client, keys)
        await session.execute(Finding.__table__.delete())

        await full_turns(session, batch=1000)

        assert await stored_open(session) == set()


async def full_turns(session, batch: int, turns: int = 2) -> None:
    cursor = finding_service.SweepCursor()
    for _ in range(turns * len(finding_service.SWEEP_ORDER)):
        while await finding_service.sweep(session, cursor, batch) == batch:
            pass


def test_long_subject_keys_are_cut_and_stay_distinct():
    long_a, long_b = "A" * 199 + "x", "A" * 199 + "y"  # they differ past the cut
    key_a, key_b = subject_key("log", long_a, "B"), subject_key("log", long_b, "B")
    assert len(key_a) == len(key_b) == 200
    assert key_a != key_b
    assert subject_key("log", "A", "B") == "log/A -> B"


async def test_a_log_is_judged_and_forgotten_a_batch_of_arcs_at_a_time(
    client, keys, session, monkeypatch
):
    monkeypatch.setattr(finding_service, "ARC_BATCH", 1)
    await import_log(client, keys, key="desk", body=ping_pong_log(20, 6))

    stored = await stored_open(session)
    assert len(stored) == 4 + 1  # four unregistered arcs, one of them ping-pongs
    assert stored == await evaluated(session)

    response = await client.delete("/v1/event-logs/desk", headers=await keys.writer())
    assert response.status_code == 204, response.text
    assert await stored_open(session) == set()
