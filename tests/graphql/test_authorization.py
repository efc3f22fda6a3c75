"""The authorization matrix through GraphQL: the same callers get the same answers as REST.

Outcomes: "ok" (data, no error), "not_found" (null and extensions.code not_found, as REST's
404), "forbidden" (extensions.code forbidden, as REST's 403), or a specific error code.
Refused operations leave the database unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from tests.test_authorization import OTHER, OWN, _fingerprint, _headers, _scenario

EVENT = '{startedAt: "2026-11-01T09:00:00Z", deliveredAt: "2026-11-01T10:00:00Z"}'


@dataclass(frozen=True)
class GqlOp:
    name: str
    document: str
    staff: str  # admin and writer
    reader: str
    partner_own: str
    partner_other: str
    leak_words: tuple[str, ...] = ()  # never in another partner's answer


OPERATIONS = [
    GqlOp("unit", f'{{ unit(key: "{OWN}") {{ key }} }}', "ok", "ok", "ok", "not_found"),
    GqlOp("units", "{ units { items { key } } }", "ok", "ok", "ok", "ok", (OWN,)),
    GqlOp("partner", f'{{ partner(key: "{OWN}") {{ key agreements {{ key }} }} }}',
          "ok", "ok", "ok", "not_found"),
    GqlOp("handoff", '{ handoff(key: "h-own") { key } }', "ok", "ok", "ok", "not_found"),
    GqlOp("handoffs", "{ handoffs { items { key } } }", "ok", "ok", "ok", "ok", ("h-own",)),
    GqlOp("handoff-units", '{ handoff(key: "h-own") { fromUnit { key } toUnit { key } } }',
          "ok", "ok", "ok", "not_found"),
    GqlOp("handoff-events", '{ handoff(key: "h-own") { events { items { externalId } } } }',
          "ok", "ok", "ok", "not_found"),
    GqlOp("journey", '{ journey(key: "j") { key touchpoints { key } } }',
          "ok", "ok", "not_found", "not_found"),
    GqlOp("touchpoint", '{ touchpoint(key: "tp") { key } }', "ok", "ok", "not_found", "not_found"),
    GqlOp("goal", '{ goal(key: "jg-own") { key } }', "ok", "ok", "ok", "not_found"),
    GqlOp("goals", "{ goals { items { key } } }", "ok", "ok", "ok", "ok", ("jg-own",)),
    GqlOp("agreement", '{ partnerAgreement(key: "a-own") { key jointGoals { key } } }',
          "ok", "ok", "ok", "not_found"),
    GqlOp("agreements", "{ partnerAgreements { items { key } } }",
          "ok", "ok", "ok", "ok", ("a-own",)),
    GqlOp("metrics", "{ metrics { items { key } } }", "ok", "ok", "ok", "ok"),
    GqlOp("case", '{ case(ref: "case-own") { transfers } }', "ok", "ok", "ok", "not_found"),
    GqlOp("conflicts", "{ conflicts { items { severity } } }", "ok", "ok", "ok", "ok"),
    GqlOp("findings", "{ findings { items { rule } } }", "ok", "ok", "ok", "ok", (OWN,)),
    GqlOp("webhooks", "{ webhooks { items { url } } }", "ok", "forbidden", "ok", "ok",
          ("93.184.216.34",)),
    GqlOp("company-score", "{ scores { company { value } } }",
          "ok", "ok", "not_found", "not_found"),
    GqlOp("partner-score", f'{{ scores {{ partner(key: "{OWN}") {{ value }} }} }}',
          "ok", "ok", "ok", "not_found"),
    GqlOp("handoff-score", '{ scores { handoff(key: "h-own") { value } } }',
          "ok", "ok", "ok", "not_found"),
    GqlOp(
        "upsert-event",
        f'mutation {{ upsertHandoffEvent(handoff: "h-own", externalId: "g-1", input: {EVENT})'
        " { created } }",
        "ok", "forbidden", "ok", "not_found",
    ),
    GqlOp(
        "upsert-events",
        'mutation { upsertHandoffEvents(items: [{handoff: "h-own", externalId: "g-2", '
        'startedAt: "2026-11-01T09:00:00Z"}]) { created } }',
        "ok", "forbidden", "ok", "bulk_rejected",
    ),
    GqlOp(
        "review",
        'mutation { addHandoffReview(handoff: "h-own", input: {timeliness: 3, quality: 4}) { id } }',
        "ok", "forbidden", "ok", "not_found",
    ),
    GqlOp(
        "feedback",
        'mutation { upsertFeedback(touchpoint: "tp", externalId: "g-f", input: '
        '{at: "2026-11-01T09:00:00Z", scale: csat, score: 4}) { created } }',
        "ok", "forbidden", "forbidden", "forbidden",
    ),
    GqlOp(
        "propose",
        f'mutation {{ proposeJointGoal(agreement: "a-own", input: {{key: "g-new", title: "T", '
        f'owner: "{OWN}", metric: "m1", direction: increase, kind: means}}) {{ status }} }}',
        "ok", "forbidden", "ok", "not_found",
    ),
    GqlOp(
        "accept",
        'mutation { acceptJointGoal(agreement: "a-own", goal: "jg-own") { status } }',
        "ok", "forbidden", "forbidden", "forbidden",
    ),
]


def _outcome(body: dict) -> str:
    errors = body.get("errors") or []
    if not errors:
        return "ok"
    codes = {e.get("extensions", {}).get("code") for e in errors}
    assert len(codes) == 1, body
    return codes.pop()


CALLERS = {
    "admin": "staff",
    "writer": "staff",
    "reader": "reader",
    "partner-own": "partner_own",
    "partner-other": "partner_other",
}


@pytest.mark.parametrize("op", OPERATIONS, ids=lambda op: op.name)
async def test_each_caller_gets_the_same_answer_as_by_rest(op, gql, session, connection):
    await _scenario(session)
    headers = {caller: await _headers(session, caller) for caller in [*CALLERS, "no-key", "revoked"]}
    for caller, column in CALLERS.items():
        expected = getattr(op, column)
        savepoint = await connection.begin_nested()
        before = await _fingerprint(connection)
        response = await gql(op.document, headers[caller])
        assert response.status_code == 200, response.text
        body = response.json()
        assert _outcome(body) == expected, f"{caller}: {op.name} gave {body}"
        if expected != "ok":
            assert await _fingerprint(connection) == before, f"{caller} changed the database"
        if caller == "partner-other":
            leaked = [w for w in (*op.leak_words, "h-own", "case-own") if w in str(body.get("data"))]
            assert leaked == [], f"{op.name} shows {leaked} to another partner"
        await savepoint.rollback()
    for caller in ("no-key", "revoked"):
        response = await gql(op.document, headers[caller])
        assert response.status_code == 401
        assert response.headers["content-type"] == "application/problem+json"


async def test_nested_fields_follow_the_same_scoping(gql, session):
    """A partner reaches its handoff, but not the internal unit that provides it."""
    await _scenario(session)
    partner = await _headers(session, "partner-own")
    body = (await gql('{ handoff(key: "h-own") { fromUnit { key } toUnit { key } } }', partner)).json()
    assert body["data"]["handoff"] == {"fromUnit": None, "toUnit": {"key": OWN}}
    other = await _headers(session, "partner-other")
    body = (await gql('{ units { items { key } } }', other)).json()
    assert [u["key"] for u in body["data"]["units"]["items"]] == [OTHER]
