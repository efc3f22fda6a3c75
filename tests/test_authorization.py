"""The authorization matrix: every REST operation × every kind of caller.

One row per operation says what success looks like and what a partner key gets for this
partner's objects and for another partner's. Roles the policy (core.permissions.POLICY)
does not allow get 403; no key or a revoked key gets 401. A route missing from the table
fails the test, so a new endpoint cannot ship without a decision about who may call it.
Calls that must be refused are also checked to leave the database unchanged.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from service.api.openapi import route_action
from service.api.rest import api_routes
from service.api_keys import service as api_keys_service
from service.api_keys.schemas import ApiKeyCreate
from service.api_keys.service import SYSTEM
from service.core.config import Settings
from service.core.db import metadata
from service.core.permissions import POLICY, Role
from service.event_logs import importer
from service.goals import service as goals_service
from service.goals.schemas import GoalCreate, JointGoalCreate
from service.metrics import service as metrics_service
from service.metrics.schemas import MetricCreate, MetricRelationCreate
from service.partner_agreements import service as agreements_service
from service.partner_agreements.schemas import AgreementCreate
from service.webhooks import service as webhooks_service
from service.webhooks.schemas import WebhookCreate
from tests.factories import (
    make_event,
    make_feedback,
    make_handoff,
    make_journey,
    make_review,
    make_touchpoint,
    make_unit,
)

OWN, OTHER = "courier-p", "courier-q"
EVENT = {"started_at": "2026-11-01T09:00:00Z", "delivered_at": "2026-11-01T10:00:00Z"}


@dataclass(frozen=True)
class Op:
    method: str
    path: str  # with this partner's objects filled in
    ok: int  # what admin, writer and reader get when their role may call it
    partner_own: int | None = None  # the partner of this unit (when partners may call it)
    partner_other: int | None = None  # another partner asking for the same thing
    body: Any = None
    content: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)


NDJSON = {"Content-Type": "application/x-ndjson"}
# A public address needs no DNS to check: webhooks refuse private ones by default.
PUBLIC_HOOK = "https://93.184.216.34/hooks"


def operations(ids: dict[str, str]) -> dict[tuple[str, str], Op]:
    """Keyed by (method, route template); ``ids`` holds server ids made by the scenario."""
    new_unit = {"key": "new-unit", "name": "New", "kind": "team"}
    return {
        op_key: op
        for op_key, op in [
            (("GET", "/v1/units"), Op("GET", "/v1/units", 200, 200, 200)),
            (("POST", "/v1/units"), Op("POST", "/v1/units", 201, body=new_unit)),
            (("GET", "/v1/units/{key}"), Op("GET", f"/v1/units/{OWN}", 200, 200, 404)),
            (("PATCH", "/v1/units/{key}"), Op("PATCH", f"/v1/units/{OWN}", 200, body={"name": "P"})),
            (("DELETE", "/v1/units/{key}"), Op("DELETE", "/v1/units/lonely", 204)),
            (("GET", "/v1/journeys"), Op("GET", "/v1/journeys", 200, 200, 200)),
            (
                ("POST", "/v1/journeys"),
                Op("POST", "/v1/journeys", 201, body={"key": "j2", "name": "J", "stages": ["a"]}),
            ),
            (("GET", "/v1/journeys/{key}"), Op("GET", "/v1/journeys/j", 200, 404, 404)),
            (("PATCH", "/v1/journeys/{key}"), Op("PATCH", "/v1/journeys/j", 200, body={"name": "J"})),
            (("DELETE", "/v1/journeys/{key}"), Op("DELETE", "/v1/journeys/empty", 204)),
            (("GET", "/v1/touchpoints"), Op("GET", "/v1/touchpoints", 200, 200, 200)),
            (
                ("POST", "/v1/touchpoints"),
                Op(
                    "POST",
                    "/v1/touchpoints",
                    201,
                    body={"key": "tp2", "journey": "j", "stage": "a", "name": "T", "owner": "front"},
                ),
            ),
            (("GET", "/v1/touchpoints/{key}"), Op("GET", "/v1/touchpoints/tp", 200, 404, 404)),
            (
                ("PATCH", "/v1/touchpoints/{key}"),
                Op("PATCH", "/v1/touchpoints/tp", 200, body={"name": "T"}),
            ),
            (("DELETE", "/v1/touchpoints/{key}"), Op("DELETE", "/v1/touchpoints/unused", 204)),
            (
                ("PUT", "/v1/touchpoints/{key}/feedback/{external_id}"),
                Op(
                    "PUT",
                    "/v1/touchpoints/tp/feedback/f-new",
                    201,
                    body={"at": "2026-11-01T09:00:00Z", "scale": "csat", "score": 4},
                ),
            ),
            (
                ("GET", "/v1/touchpoints/{key}/feedback"),
                Op("GET", "/v1/touchpoints/tp/feedback", 200, 404, 404),
            ),
            (
                ("POST", "/v1/feedback/bulk"),
                Op(
                    "POST",
                    "/v1/feedback/bulk",
                    200,
                    body=[
                        {"touchpoint": "tp", "external_id": "fb-1", "at": "2026-11-01T09:00:00Z",
                         "scale": "nps", "score": 9}
                    ],
                ),
            ),
            (("GET", "/v1/handoffs"), Op("GET", "/v1/handoffs", 200, 200, 200)),
            (
                ("POST", "/v1/handoffs"),
                Op(
                    "POST",
                    "/v1/handoffs",
                    201,
                    body={"key": "h-new", "from_unit": "ops", "to_unit": "front", "deliverable": "D"},
                ),
            ),
            (("GET", "/v1/handoffs/{key}"), Op("GET", "/v1/handoffs/h-own", 200, 200, 404)),
            (
                ("PATCH", "/v1/handoffs/{key}"),
                Op("PATCH", "/v1/handoffs/h-own", 200, body={"deliverable": "D2"}),
            ),
            (("DELETE", "/v1/handoffs/{key}"), Op("DELETE", "/v1/handoffs/h-unused", 204)),
            (
                ("PUT", "/v1/handoffs/{key}/events/{external_id}"),
                Op("PUT", "/v1/handoffs/h-own/events/e-new", 201, 201, 404, body=EVENT),
            ),
            (
                ("GET", "/v1/handoffs/{key}/events"),
                Op("GET", "/v1/handoffs/h-own/events", 200, 200, 404),
            ),
            (
                ("POST", "/v1/handoffs/{key}/reviews"),
                Op(
                    "POST",
                    "/v1/handoffs/h-own/reviews",
                    201,
                    201,  # the partner receives h-own
                    404,
                    body={"timeliness": 3, "quality": 4},
                ),
            ),
            (
                ("GET", "/v1/handoffs/{key}/reviews"),
                Op("GET", "/v1/handoffs/h-own/reviews", 200, 200, 404),
            ),
            (
                ("POST", "/v1/handoff-events/bulk"),
                Op(
                    "POST",
                    "/v1/handoff-events/bulk",
                    200,
                    200,
                    422,  # another partner's handoff is an unknown handoff: the item is rejected
                    content=b'{"handoff": "h-own", "external_id": "b-1", '
                    b'"started_at": "2026-11-01T09:00:00Z"}\n',
                    headers=NDJSON,
                ),
            ),
            (
                ("POST", "/v1/event-logs"),
                Op(
                    "POST",
                    "/v1/event-logs?key=new-log",
                    201,
                    404,
                    404,
                    content=b"case,unit,time\nc,A,2026-11-01T09:00:00Z\n",
                    headers={"Content-Type": "text/csv"},
                ),
            ),
            (("GET", "/v1/event-logs"), Op("GET", "/v1/event-logs", 200, 404, 404)),
            (("GET", "/v1/event-logs/{key}"), Op("GET", "/v1/event-logs/log", 200, 404, 404)),
            (("DELETE", "/v1/event-logs/{key}"), Op("DELETE", "/v1/event-logs/log", 204, 404, 404)),
            (
                ("GET", "/v1/event-logs/{key}/summary"),
                Op("GET", "/v1/event-logs/log/summary", 200, 404, 404),
            ),
            (
                ("GET", "/v1/event-logs/{key}/handoffs"),
                Op("GET", "/v1/event-logs/log/handoffs", 200, 404, 404),
            ),
            (
                ("GET", "/v1/event-logs/{key}/conformance"),
                Op("GET", "/v1/event-logs/log/conformance", 200, 404, 404),
            ),
            (
                ("POST", "/v1/event-logs/{key}/handoffs/adopt"),
                Op(
                    "POST",
                    "/v1/event-logs/log/handoffs/adopt",
                    200,
                    404,
                    404,
                    body={"from": "ops", "to": "front", "key": "adopted"},
                ),
            ),
            (("GET", "/v1/metrics"), Op("GET", "/v1/metrics", 200, 200, 200)),
            (
                ("POST", "/v1/metrics"),
                Op("POST", "/v1/metrics", 201, body={"key": "m-new", "name": "M", "kind": "other"}),
            ),
            # (not m1: a-own's goals use it, so its partner sees it)
            (("GET", "/v1/metrics/{key}"), Op("GET", "/v1/metrics/m2", 200, 404, 404)),
            (("PATCH", "/v1/metrics/{key}"), Op("PATCH", "/v1/metrics/m1", 200, body={"name": "M"})),
            (("DELETE", "/v1/metrics/{key}"), Op("DELETE", "/v1/metrics/m-unused", 204)),
            (("GET", "/v1/metric-relations"), Op("GET", "/v1/metric-relations", 200, 200, 200)),
            (
                ("POST", "/v1/metric-relations"),
                Op(
                    "POST",
                    "/v1/metric-relations",
                    201,
                    body={"from_metric": "m1", "to_metric": "m-unused", "effect": -1},
                ),
            ),
            (
                ("GET", "/v1/metric-relations/{key}"),
                Op("GET", "/v1/metric-relations/m1--m2", 200, 404, 404),
            ),
            (
                ("PATCH", "/v1/metric-relations/{key}"),
                Op("PATCH", "/v1/metric-relations/m1--m2", 200, body={"note": "n"}),
            ),
            (
                ("DELETE", "/v1/metric-relations/{key}"),
                Op("DELETE", "/v1/metric-relations/m1--m2", 204),
            ),
            (("GET", "/v1/goals"), Op("GET", "/v1/goals", 200, 200, 200)),
            (
                ("POST", "/v1/goals"),
                Op(
                    "POST",
                    "/v1/goals",
                    201,
                    body={"key": "g-new", "title": "G", "owner": "ops", "metric": "m1",
                          "direction": "maintain", "kind": "means"},
                ),
            ),
            (("GET", "/v1/goals/{key}"), Op("GET", "/v1/goals/jg-own", 200, 200, 404)),
            (("PATCH", "/v1/goals/{key}"), Op("PATCH", "/v1/goals/jg-own", 200, body={"title": "T"})),
            (("DELETE", "/v1/goals/{key}"), Op("DELETE", "/v1/goals/jg-own", 204)),
            (
                ("POST", "/v1/goals/{key}/check-ins"),
                Op("POST", "/v1/goals/jg-own/check-ins", 201, body={"value": 0.9}),
            ),
            (
                ("GET", "/v1/goals/{key}/check-ins"),
                Op("GET", "/v1/goals/jg-own/check-ins", 200, 200, 404),
            ),
            (("GET", "/v1/partner-agreements"), Op("GET", "/v1/partner-agreements", 200, 200, 200)),
            (
                ("POST", "/v1/partner-agreements"),
                Op(
                    "POST",
                    "/v1/partner-agreements",
                    201,
                    body={"key": "a-new", "title": "A", "partner": OWN, "internal_owner": "ops",
                          "starts_on": "2026-01-01"},
                ),
            ),
            (
                ("GET", "/v1/partner-agreements/{key}"),
                Op("GET", "/v1/partner-agreements/a-own", 200, 200, 404),
            ),
            (
                ("PATCH", "/v1/partner-agreements/{key}"),
                Op("PATCH", "/v1/partner-agreements/a-own", 200, body={"title": "A2"}),
            ),
            (
                ("DELETE", "/v1/partner-agreements/{key}"),
                Op("DELETE", "/v1/partner-agreements/a-unused", 204),
            ),
            (
                ("GET", "/v1/partner-agreements/{key}/joint-goals"),
                Op("GET", "/v1/partner-agreements/a-own/joint-goals", 200, 200, 404),
            ),
            (
                ("POST", "/v1/partner-agreements/{key}/joint-goals"),
                Op(
                    "POST",
                    "/v1/partner-agreements/a-own/joint-goals",
                    201,
                    201,
                    404,
                    body={"key": "jg-new", "title": "On time", "owner": OWN, "metric": "m1",
                          "direction": "increase", "kind": "means"},
                ),
            ),
            (
                ("POST", "/v1/partner-agreements/{key}/joint-goals/{goal_key}/accept"),
                Op("POST", "/v1/partner-agreements/a-own/joint-goals/jg-own/accept", 200),
            ),
            (("GET", "/v1/scores/company"), Op("GET", "/v1/scores/company", 200, 404, 404)),
            (("GET", "/v1/scores/units/{key}"), Op("GET", "/v1/scores/units/ops", 200, 404, 404)),
            (("GET", "/v1/scores/handoffs"), Op("GET", "/v1/scores/handoffs", 200, 200, 200)),
            (
                ("GET", "/v1/scores/handoffs/{key}"),
                Op("GET", "/v1/scores/handoffs/h-own", 200, 200, 404),
            ),
            (
                ("GET", "/v1/scores/touchpoints/{key}"),
                Op("GET", "/v1/scores/touchpoints/tp", 200, 404, 404),
            ),
            (
                ("GET", "/v1/scores/journeys/{key}"),
                Op("GET", "/v1/scores/journeys/j", 200, 404, 404),
            ),
            (
                ("GET", "/v1/scores/partners/{key}"),
                Op("GET", f"/v1/scores/partners/{OWN}", 200, 200, 404),
            ),
            (("GET", "/v1/conflicts"), Op("GET", "/v1/conflicts", 200, 200, 200)),
            (("POST", "/v1/conflicts/detect"), Op("POST", "/v1/conflicts/detect", 200)),
            (
                ("GET", "/v1/conflicts/{conflict_id}"),
                Op("GET", f"/v1/conflicts/{ids['conflict']}", 200, 404, 404),
            ),
            (
                ("POST", "/v1/conflicts/{conflict_id}/resolve"),
                Op("POST", f"/v1/conflicts/{ids['conflict']}/resolve", 200, body={"note": "ok"}),
            ),
            (("GET", "/v1/findings"), Op("GET", "/v1/findings", 200, 200, 200)),
            (("POST", "/v1/findings/refresh"), Op("POST", "/v1/findings/refresh", 200)),
            (
                ("GET", "/v1/findings/{finding_id}"),
                Op("GET", f"/v1/findings/{ids['finding']}", 200, 404, 404),
            ),
            (("GET", "/v1/webhooks"), Op("GET", "/v1/webhooks", 200, 200, 200)),
            (("POST", "/v1/webhooks"), Op("POST", "/v1/webhooks", 201, body={"url": PUBLIC_HOOK})),
            (
                ("GET", "/v1/webhooks/{webhook_id}"),
                Op("GET", f"/v1/webhooks/{ids['webhook']}", 200, 404, 404),
            ),
            (
                ("PATCH", "/v1/webhooks/{webhook_id}"),
                Op("PATCH", f"/v1/webhooks/{ids['webhook']}", 200, 404, 404, body={"description": "d"}),
            ),
            (
                ("DELETE", "/v1/webhooks/{webhook_id}"),
                Op("DELETE", f"/v1/webhooks/{ids['webhook']}", 204, 404, 404),
            ),
            (
                ("POST", "/v1/webhooks/{webhook_id}/rotate-secret"),
                Op("POST", f"/v1/webhooks/{ids['webhook']}/rotate-secret", 200, 404, 404),
            ),
            (
                ("POST", "/v1/webhooks/{webhook_id}/test"),
                Op("POST", f"/v1/webhooks/{ids['webhook']}/test", 202, 404, 404),
            ),
            (
                ("GET", "/v1/webhooks/{webhook_id}/deliveries"),
                Op("GET", f"/v1/webhooks/{ids['webhook']}/deliveries", 200, 404, 404),
            ),
            (
                ("POST", "/v1/webhooks/{webhook_id}/deliveries/{delivery_id}/retry"),
                Op(
                    "POST",
                    f"/v1/webhooks/{ids['webhook']}/deliveries/{ids['delivery']}/retry",
                    200, 404, 404,
                ),
            ),
            (("GET", "/v1/cases/{case_ref}"), Op("GET", "/v1/cases/case-own", 200, 200, 404)),
            (("GET", "/v1/api-keys"), Op("GET", "/v1/api-keys", 200)),
            (
                ("POST", "/v1/api-keys"),
                Op("POST", "/v1/api-keys", 201, body={"name": "k", "role": "reader"}),
            ),
            (("GET", "/v1/api-keys/{key_id}"), Op("GET", f"/v1/api-keys/{ids['api_key']}", 200)),
            (
                ("POST", "/v1/api-keys/{key_id}/revoke"),
                Op("POST", f"/v1/api-keys/{ids['api_key']}/revoke", 200),
            ),
            (
                ("DELETE", "/v1/api-keys/{key_id}"),
                Op("DELETE", f"/v1/api-keys/{ids['api_key']}", 204),
            ),
        ]
    }


def _v1_routes() -> list[tuple[str, str]]:
    return sorted(
        (method, route.path_format)
        for route in api_routes()
        if route.path_format.startswith("/v1/")
        for method in route.methods
    )


CALLERS = ["admin", "writer", "reader", "partner-own", "partner-other", "no-key", "revoked"]


async def _log_body() -> AsyncIterator[bytes]:
    yield b"case,unit,time\nc1,ops,2026-11-01T09:00:00Z\nc1,front,2026-11-01T10:00:00Z\n"


async def _scenario(session) -> dict[str, str]:
    """This partner (courier-p) and another (courier-q), with handoffs, events and a case."""
    for key, kind in (("ops", "department"), ("front", "department"), ("lonely", "team"),
                      (OWN, "partner"), (OTHER, "partner")):
        await make_unit(session, key=key, kind=kind)
    await make_journey(session, key="j", stages=["a"])
    await make_journey(session, key="empty", stages=["a"])
    await make_touchpoint(session, key="tp", journey="j", stage="a", owner="front")
    await make_touchpoint(session, key="unused", journey="j", stage="a", owner="front")
    await make_handoff(session, key="h-own", from_unit="ops", to_unit=OWN)
    await make_handoff(session, key="h-other", from_unit="ops", to_unit=OTHER)
    await make_handoff(session, key="h-unused", from_unit="ops", to_unit="front")
    await make_event(session, handoff="h-own", external_id="e1", case_ref="case-own")
    await make_event(session, handoff="h-other", external_id="e1", case_ref="case-other")
    await make_review(session, handoff="h-own")
    await make_feedback(session, touchpoint="tp", external_id="f1")
    for key in ("m1", "m2", "m-unused"):
        await metrics_service.create(session, SYSTEM, MetricCreate(key=key, name=key, kind="other"))
    await metrics_service.create_relation(
        session, SYSTEM, MetricRelationCreate(from_metric="m1", to_metric="m2", effect=1)
    )
    for key, owner, direction in (("g-up", "ops", "increase"), ("g-down", "front", "decrease")):
        await goals_service.create(
            session,
            SYSTEM,
            GoalCreate(key=key, title=key, owner=owner, metric="m1", direction=direction, kind="means"),
        )
    for key, partner in (("a-own", OWN), ("a-other", OTHER), ("a-unused", OTHER)):
        await agreements_service.create(
            session,
            SYSTEM,
            AgreementCreate(key=key, title=key, partner=partner, internal_owner="ops",
                            status="active", starts_on="2026-01-01"),
        )
    for key, agreement, partner in (("jg-own", "a-own", OWN), ("jg-other", "a-other", OTHER)):
        await goals_service.propose_joint_goal(
            session,
            SYSTEM,
            agreement,
            JointGoalCreate(key=key, title=key, owner=partner, metric="m1", direction="increase",
                            kind="means"),
        )
    conflict_id = await session.scalar(text("SELECT id FROM conflicts"))
    finding_id = await session.scalar(text("SELECT id FROM findings WHERE status = 'open'"))
    managed, _ = await api_keys_service.create(
        session, SYSTEM, ApiKeyCreate(name="managed", role=Role.reader)
    )
    await session.commit()
    hook, _ = await webhooks_service.create(
        session, SYSTEM, WebhookCreate(url=PUBLIC_HOOK), Settings()
    )
    delivery = await webhooks_service.send_test(session, SYSTEM, hook.id)
    await session.commit()
    # An event log between two internal units ("ops" hands to "front" in case c1)
    await importer.import_log(
        lambda: AsyncSession(
            bind=session.bind, join_transaction_mode="create_savepoint", expire_on_commit=False
        ),
        SYSTEM,
        importer.ImportOptions(key="log"),
        _log_body(),
    )
    return {
        "webhook": str(hook.id),
        "delivery": str(delivery.id),
        "conflict": str(_uuid(conflict_id)),
        "finding": str(_uuid(finding_id)),
        "api_key": str(managed.id),
    }


def _uuid(value: Any):
    from uuid import UUID

    return value if isinstance(value, UUID) else UUID(str(value))


async def _fingerprint(connection) -> dict[str, int]:
    counts = {}
    for table in metadata.sorted_tables:
        counts[table.name] = await connection.scalar(select(func.count()).select_from(table))
        if "version" in table.c:
            counts[f"{table.name}.version"] = await connection.scalar(
                select(func.coalesce(func.sum(table.c.version), 0))
            )
    return counts


async def _headers(session, caller: str) -> dict[str, str]:
    if caller == "no-key":
        return {}
    role = {"partner-own": Role.partner, "partner-other": Role.partner}.get(caller)
    partner = {"partner-own": OWN, "partner-other": OTHER}.get(caller)
    data = ApiKeyCreate(name=caller, role=role or Role(caller if caller != "revoked" else "admin"),
                        partner=partner)
    key, secret = await api_keys_service.create(session, SYSTEM, data)
    if caller == "revoked":
        await api_keys_service.revoke(session, SYSTEM, key.id)
    await session.commit()
    return {"Authorization": f"Bearer {secret}"}


def expected_status(op: Op, action, caller: str) -> int:
    if caller in ("no-key", "revoked"):
        return 401
    role = Role.partner if caller.startswith("partner") else Role(caller)
    if role not in POLICY[action]:
        return 403
    if caller == "partner-own":
        return op.partner_own if op.partner_own is not None else op.ok
    if caller == "partner-other":
        return op.partner_other if op.partner_other is not None else op.ok
    return op.ok


def test_every_route_has_a_row_in_the_matrix():
    nil = "00000000-0000-0000-0000-000000000000"
    table = operations(
        {"conflict": nil, "finding": nil, "webhook": nil, "delivery": nil, "api_key": "x"}
    )
    missing = [route for route in _v1_routes() if route not in table]
    assert missing == [], f"routes without a row in the authorization matrix: {missing}"
    stale = [route for route in table if route not in _v1_routes()]
    assert stale == [], f"rows for routes that no longer exist: {stale}"
    actions = {(m, r.path_format): route_action(r) for r in api_routes() for m in r.methods}
    assert all(actions[route] is not None for route in _v1_routes())


@pytest.mark.parametrize("route", _v1_routes(), ids=lambda r: f"{r[0]} {r[1]}")
async def test_each_caller_gets_the_documented_status(route, client, session, connection):
    ids = await _scenario(session)
    op = operations(ids)[route]
    action = next(
        route_action(r) for r in api_routes() if r.path_format == route[1] and route[0] in r.methods
    )
    headers = {caller: await _headers(session, caller) for caller in CALLERS}
    for caller in CALLERS:
        expected = expected_status(op, action, caller)
        savepoint = await connection.begin_nested()
        before = await _fingerprint(connection)
        response = await client.request(
            op.method,
            op.path,
            json=op.body if op.content is None else None,
            content=op.content,
            headers={**op.headers, **headers[caller]},
        )
        assert response.status_code == expected, (
            f"{caller}: {op.method} {op.path} gave {response.status_code}, expected {expected}: "
            f"{response.text[:300]}"
        )
        if expected >= 400:
            assert response.headers["content-type"] == "application/problem+json"
            assert await _fingerprint(connection) == before, f"{caller} changed the database"
        elif caller == "partner-other":
            # Whatever it may list, nothing of this partner's reaches another partner.
            leaked = [
                word for word in ("h-own", OWN, "case-own", "a-own", "jg-own")
                if word in response.text
            ]
            assert leaked == [], f"{op.method} {op.path} shows {leaked} to another partner"
        await savepoint.rollback()
