"""Signed webhooks: subscriptions, the transactional outbox, and the dispatcher delivering to a
real HTTP receiver on loopback, every delivery verified with the ``standardwebhooks`` package."""

from __future__ import annotations

import asyncio
import contextlib

import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, select

from service.api_keys.service import SYSTEM
from service.core.db import transaction
from service.core.permissions import Role
from service.webhooks import dispatcher
from service.webhooks import service as webhooks_service
from service.webhooks.constants import EventType
from service.webhooks.models import WebhookDelivery, WebhookMessage
from tests.factories import make_agreement, make_unit
from tests.problems import assert_problem
from tests.webhooks.support import dispatch, no_timing_standard_handoff, subscribe


class TestDelivery:
    async def test_a_finding_arrives_once_signed(self, hooks, receiver):
        hook = await subscribe(hooks, receiver.url, event_types=["finding.opened"])
        assert hook["secret"].startswith("whsec_")

        await no_timing_standard_handoff(hooks)
        # Two findings open: kyc has no timing standard, and ops (owning no touchpoint, with
        # no customer-linked goal) now provides it.
        assert await dispatch(hooks) == 2
        assert await dispatch(hooks) == 0

        events = receiver.bodies(hook["secret"])
        assert {(e["type"], e["data"]["rule"]) for e in events} == {
            ("finding.opened", "no-timing-standard"),
            ("finding.opened", "upstream-unlinked"),
        }
        (event,) = [e for e in events if e["data"]["rule"] == "no-timing-standard"]
        assert len({headers["webhook-id"] for headers, _ in receiver.received}) == 2
        assert event["data"]["subject"] == {"type": "handoff", "key": "kyc"}
        assert event["data"]["link"] == f"/v1/findings/{event['data']['id']}"
        finding = await hooks.http.get(event["data"]["link"], headers=hooks.admin)
        assert finding.json()["rule"] == "no-timing-standard"

    async def test_a_failure_is_retried_with_the_same_id_then_never_again(self, hooks, receiver):
        hook = await subscribe(hooks, receiver.url)
        receiver.codes = [500]
        response = await hooks.http.post(f"/v1/webhooks/{hook['id']}/test", headers=hooks.admin)
        assert response.status_code == 202, response.text

        assert await dispatch(hooks) == 1
        await asyncio.sleep(0.1)  # the first retry waits 0.05 s, with jitter
        assert await dispatch(hooks) == 1
        await asyncio.sleep(0.1)
        assert await dispatch(hooks) == 0

        first, second = receiver.received
        assert first[0]["webhook-id"] == second[0]["webhook-id"]
        assert [e["type"] for e in receiver.bodies(hook["secret"])] == ["webhook.test"] * 2
        listed = await hooks.http.get(f"/v1/webhooks/{hook['id']}/deliveries", headers=hooks.admin)
        (delivery,) = listed.json()["items"]
        assert (delivery["status"], delivery["attempts"], delivery["last_status_code"]) == (
            "succeeded",
            2,
            200,
        )

    async def test_after_the_last_retry_the_delivery_fails(self, hooks, receiver):
        hook = await subscribe(hooks, receiver.url)
        receiver.codes = [503, 503, 503]
        await hooks.http.post(f"/v1/webhooks/{hook['id']}/test", headers=hooks.admin)

        for _ in range(3):
            await dispatch(hooks)
            await asyncio.sleep(0.1)

        assert await dispatch(hooks) == 0
        listed = await hooks.http.get(f"/v1/webhooks/{hook['id']}/deliveries", headers=hooks.admin)
        (delivery,) = listed.json()["items"]
        assert (delivery["status"], delivery["attempts"], delivery["last_error"]) == (
            "failed",
            3,
            "HTTP 503",
        )
        assert delivery["next_attempt_at"] is None

        retried = await hooks.http.post(
            f"/v1/webhooks/{hook['id']}/deliveries/{delivery['id']}/retry", headers=hooks.admin
        )
        assert retried.json()["status"] == "pending"
        assert await dispatch(hooks) == 1
        assert len(receiver.received) == 4

    async def test_a_dispatcher_that_dies_leaves_the_delivery_to_the_next(self, hooks, receiver):
        hook = await subscribe(hooks, receiver.url)
        await hooks.http.post(f"/v1/webhooks/{hook['id']}/test", headers=hooks.admin)

        # Claimed (attempt counted, leased), then the dispatcher is gone before sending.
        (claimed,) = await dispatcher._claim(hooks.database, hooks.settings)
        assert await dispatch(hooks) == 0  # still leased
        await asyncio.sleep(1.1)  # the lease (1 s) ends

        assert await dispatch(hooks) == 1
        (event,) = receiver.bodies(hook["secret"])
        assert receiver.received[0][0]["webhook-id"] == claimed.message_id
        assert event["type"] == "webhook.test"

    async def test_a_rotated_secret_signs_beside_the_old_one(self, hooks, receiver):
        hook = await subscribe(hooks, receiver.url)
        rotated = await hooks.http.post(
            f"/v1/webhooks/{hook['id']}/rotate-secret", headers=hooks.admin
        )
        new_secret = rotated.json()["secret"]
        assert new_secret != hook["secret"]

        await hooks.http.post(f"/v1/webhooks/{hook['id']}/test", headers=hooks.admin)
        await dispatch(hooks)

        assert receiver.bodies(new_secret) == receiver.bodies(hook["secret"])
        assert len(receiver.received[0][0]["webhook-signature"].split(" ")) == 2

    async def test_a_rolled_back_write_emits_nothing(self, hooks, receiver):
        await subscribe(hooks, receiver.url)

        with pytest.raises(RuntimeError):
            async with transaction(hooks.database.write_sessions) as session:
                await webhooks_service.emit(session, EventType.webhook_test, {"n": 1})
                raise RuntimeError("the change fails after the event was queued")

        async with hooks.database.read_sessions() as session:
            assert await session.scalar(select(func.count()).select_from(WebhookMessage)) == 0
            assert await session.scalar(select(func.count()).select_from(WebhookDelivery)) == 0
        assert await dispatch(hooks) == 0

    async def test_event_types_filter_what_a_subscription_hears(self, hooks, receiver):
        await subscribe(hooks, receiver.url, event_types=["conflict.opened"])

        await no_timing_standard_handoff(hooks)

        assert await dispatch(hooks) == 0
        assert receiver.received == []


class TestLifecycleEvents:
    async def test_resolved_cleared_and_accepted_each_arrive_once_signed(self, hooks, receiver):
        types = ["conflict.opened", "conflict.resolved", "finding.cleared", "joint_goal.accepted"]
        hook = await subscribe(hooks, receiver.url, event_types=types)

        async def post(path: str, body: dict | None = None) -> dict:
            response = await hooks.http.post(path, json=body, headers=hooks.admin)
            assert response.status_code in (200, 201), response.text
            return response.json()

        # Two goals on one metric pulling in opposite directions: a conflict opens, then is
        # resolved.
        await no_timing_standard_handoff(hooks)  # units ops and branch; its finding opens
        await post("/v1/metrics", {"key": "m", "name": "M", "kind": "operational"})
        for key, owner, direction in (("g-up", "ops", "increase"), ("g-down", "branch", "decrease")):
            await post(
                "/v1/goals",
                {"key": key, "title": key, "owner": owner, "metric": "m",
                 "direction": direction, "kind": "means"},
            )
        (conflict,) = (await hooks.http.get("/v1/conflicts", headers=hooks.admin)).json()["items"]
        await post(f"/v1/conflicts/{conflict['id']}/resolve", {"note": "Agreed a shared target"})
        # kyc gets a timing standard: its no-timing-standard finding clears.
        response = await hooks.http.patch(
            "/v1/handoffs/kyc", json={"expected_within": "PT4H"}, headers=hooks.admin
        )
        assert response.status_code == 200, response.text
        # A joint goal proposed to a partner, then accepted.
        async with transaction(hooks.database.write_sessions) as session:
            await make_unit(session, key="courier", kind="partner")
            await make_agreement(
                session, key="a-courier", partner="courier", internal_owner="ops", status="active"
            )
        # (on a metric of its own: on "m" it would open a second conflict)
        await post("/v1/metrics", {"key": "on-time", "name": "On time", "kind": "operational"})
        goal = await post(
            "/v1/partner-agreements/a-courier/joint-goals",
            {"key": "first", "title": "First", "owner": "courier", "metric": "on-time",
             "direction": "increase", "kind": "means"},
        )
        await post(f"/v1/partner-agreements/a-courier/joint-goals/{goal['key']}/accept")

        await dispatch(hooks)
        assert await dispatch(hooks) == 0

        events = receiver.bodies(hook["secret"])  # every one verified
        assert sorted(e["type"] for e in events) == sorted(types)
        by_type = {e["type"]: e["data"] for e in events}
        assert by_type["conflict.opened"]["id"] == conflict["id"]
        assert by_type["conflict.resolved"]["id"] == conflict["id"]
        assert by_type["conflict.resolved"]["status"] == "resolved"
        assert by_type["finding.cleared"]["rule"] == "no-timing-standard"
        assert by_type["finding.cleared"]["subject"] == {"type": "handoff", "key": "kyc"}
        assert by_type["joint_goal.accepted"] == {
            "agreement": "a-courier",
            "goal": goal["key"],
            "status": "active",
            "proposed_by": "internal",
            "link": f"/v1/goals/{goal['key']}",
        }
        assert len({headers["webhook-id"] for headers, _ in receiver.received}) == len(types)


class TestPartners:
    async def test_a_partner_hears_only_of_its_own_agreements(self, hooks, receiver):
        async with transaction(hooks.database.write_sessions) as session:
            for key in ("courier", "printer"):
                await make_unit(session, key=key, kind="partner")
            await make_unit(session, key="ops")
            for partner in ("courier", "printer"):
                await make_agreement(
                    session,
                    key=f"a-{partner}",
                    partner=partner,
                    internal_owner="ops",
                    status="active",
                )
        courier = {"Authorization": f"Bearer {await hooks.secret(Role.partner, 'courier')}"}
        hook = await subscribe(hooks, receiver.url, headers=courier)
        assert hook["partner"] == "courier"
        metric = {"key": "m", "name": "M", "kind": "operational"}
        await hooks.http.post("/v1/metrics", json=metric, headers=hooks.admin)
        for partner in ("courier", "printer"):
            body = {
                "key": f"{partner}-goal",
                "title": "Joint",
                "owner": partner,
                "metric": "m",
                "direction": "increase",
                "kind": "means",
            }
            response = await hooks.http.post(
                f"/v1/partner-agreements/a-{partner}/joint-goals", json=body, headers=hooks.admin
            )
            assert response.status_code == 201, response.text

        await dispatch(hooks)

        events = receiver.bodies(hook["secret"])
        assert [(e["type"], e["data"]["agreement"]) for e in events] == [
            ("joint_goal.proposed", "a-courier")
        ]
        others = await hooks.http.get("/v1/webhooks", headers=courier)
        assert [w["id"] for w in others.json()["items"]] == [hook["id"]]


# Refusals (no delivery needed) -------------------------------------------------------------------


class TestUrls:
    @pytest.mark.parametrize(
        ("url", "says"),
        [
            ("https://127.0.0.1/hooks", "loopback"),
            ("https://10.1.2.3/hooks", "private"),
            ("https://169.254.169.254/latest/meta-data", "link-local"),
            ("https://[::1]/hooks", "loopback"),
            ("http://example.com/hooks", "https"),
            ("ftp://example.com/hooks", "https"),
            ("https://user:pw@example.com/hooks", "credentials"),
        ],
    )
    async def test_an_unsafe_url_is_422_saying_why(self, client, keys, url, says):
        response = await client.post("/v1/webhooks", json={"url": url}, headers=await keys.writer())
        body = assert_problem(response, 422, "invalid")
        assert body["errors"][0]["loc"] == ["body", "url"]
        assert says in body["detail"]

    async def test_a_reader_may_not_manage_webhooks(self, client, keys):
        response = await client.get("/v1/webhooks", headers=await keys.reader())
        assert_problem(response, 403, "forbidden")

    async def test_an_unknown_event_type_is_422(self, client, keys):
        response = await client.post(
            "/v1/webhooks",
            json={"url": "https://127.0.0.1/x", "event_types": ["goal.exploded"]},
            headers=await keys.writer(),
        )
        body = assert_problem(response, 422, "validation_failed")
        assert body["errors"][0]["loc"][:2] == ["body", "event_types"]


async def test_system_emits_without_subscribers_write_nothing(session):
    await webhooks_service.emit(session, EventType.webhook_test, {"n": 1})
    assert await session.scalar(select(func.count()).select_from(WebhookMessage)) == 0
    assert SYSTEM.role is Role.admin


class TestMetrics:
    @staticmethod
    async def scrape(live) -> dict[tuple[str, tuple], float]:
        response = await live.http.get("/metrics", headers=live.admin)
        assert response.status_code == 200, response.text
        return {
            (sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(response.text)
            for sample in family.samples
        }

    async def test_deliveries_by_outcome_and_the_queue(self, hooks, receiver):
        hook = await subscribe(hooks, receiver.url)
        succeeded = (
            "silospan_webhook_deliveries_total",
            (("event_type", "webhook.test"), ("outcome", "succeeded")),
        )
        retrying = (
            "silospan_webhook_deliveries_total",
            (("event_type", "webhook.test"), ("outcome", "retrying")),
        )
        depth, oldest = "silospan_webhook_queue_depth", "silospan_webhook_oldest_pending_seconds"
        before = await self.scrape(hooks)

        for _ in range(3):
            await hooks.http.post(f"/v1/webhooks/{hook['id']}/test", headers=hooks.admin)
        await asyncio.sleep(0.2)
        queued = await self.scrape(hooks)
        assert queued[(depth, ())] == 3
        assert 0.2 <= queued[(oldest, ())] < 30

        receiver.codes = [500]
        await dispatch(hooks)  # one of three fails and waits for its retry
        await asyncio.sleep(0.1)
        await dispatch(hooks)
        after = await self.scrape(hooks)
        assert after[(depth, ())] == 0
        assert after[(oldest, ())] == 0
        assert after[succeeded] - before.get(succeeded, 0) == 3
        assert after[retrying] - before.get(retrying, 0) == 1


class TestWakeUp:
    async def test_a_commit_that_queues_wakes_the_dispatcher_of_its_process(self, hooks, receiver):
        hook = await subscribe(hooks, receiver.url)
        # A pause of a minute: only the wake-up can make the delivery arrive in time.
        task = asyncio.create_task(dispatcher.run(hooks.database, hooks.settings, interval=60))
        try:
            await asyncio.sleep(0.5)  # its first round found nothing; it sleeps
            started = asyncio.get_running_loop().time()
            response = await hooks.http.post(f"/v1/webhooks/{hook['id']}/test", headers=hooks.admin)
            assert response.status_code == 202
            while not receiver.received and asyncio.get_running_loop().time() - started < 10:
                await asyncio.sleep(0.02)
            waited = asyncio.get_running_loop().time() - started
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        assert [e["type"] for e in receiver.bodies(hook["secret"])] == ["webhook.test"]
        assert waited < 5

    async def test_a_rolled_back_transaction_wakes_nobody(self, hooks):
        wake = asyncio.Event()
        sleeper = (asyncio.get_running_loop(), wake)
        dispatcher._sleepers.add(sleeper)
        try:
            await subscribe(hooks, "http://127.0.0.1:9/hooks")
            with pytest.raises(RuntimeError):
                async with transaction(hooks.database.write_sessions) as session:
                    await webhooks_service.emit(session, EventType.webhook_test, {"n": 1})
                    raise RuntimeError("rolled back")
            await asyncio.sleep(0.1)
            assert not wake.is_set()
            async with transaction(hooks.database.write_sessions) as session:
                await webhooks_service.emit(session, EventType.webhook_test, {"n": 2})
            await asyncio.sleep(0.1)
            assert wake.is_set()
        finally:
            dispatcher._sleepers.discard(sleeper)
