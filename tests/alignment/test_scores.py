"""REST: /v1/scores/*, end to end, against values computed by hand from docs/method.md (method v1).

Every request passes an explicit window (``from``, ``to``, ``as_of``) so the numbers do not
depend on the clock. Each expected value is written as the arithmetic of the spec.
"""

from __future__ import annotations

import statistics
from datetime import UTC, datetime, timedelta, timezone

import pytest

from service.api_keys.service import SYSTEM
from service.goals import service as goals_service
from tests.factories import (
    make_agreement,
    make_event,
    make_feedback,
    make_goal,
    make_handoff,
    make_joint_goal,
    make_journey,
    make_metric,
    make_review,
    make_touchpoint,
    make_unit,
)
from tests.problems import assert_problem

# The default window of these tests: March 2026, scored as of the 20th.
FROM = "2026-03-01T00:00:00+00:00"
TO = "2026-04-01T00:00:00+00:00"
AS_OF = "2026-03-20T00:00:00+00:00"

CEST = timezone(timedelta(hours=2))
HOUR = timedelta(hours=1)


def march(day: int, hour: int = 9, minute: int = 0, tz: timezone = UTC) -> datetime:
    return datetime(2026, 3, day, hour, minute, tzinfo=tz)


def window(**overrides: str) -> dict[str, str]:
    return {"from": FROM, "to": TO, "as_of": AS_OF, **overrides}


def score(expected: float | None):
    """Scores (0–100) come rounded to 4 decimals."""
    return pytest.approx(expected, abs=1e-4)


def part(expected: float | None):
    """Components (0–1) come rounded to 6 decimals."""
    return pytest.approx(expected, abs=1e-6)


def instant(value: str) -> datetime:
    return datetime.fromisoformat(value)


def health(t=None, q=None, f=None, s=None) -> float:
    """H = 100 × Σ wᵢcᵢ / Σ wᵢ over the components given (the ones with data)."""
    pairs = [(0.35, t), (0.35, q), (0.15, f), (0.15, s)]
    present = [(w, c) for w, c in pairs if c is not None]
    return 100 * sum(w * c for w, c in present) / sum(w for w, _ in present)


async def get_score(client, headers, path: str, **params: str) -> dict:
    response = await client.get(f"/v1/scores/{path}", params=window(**params), headers=headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["method"] == "v1"
    return body


async def units(session, *unit_keys: str, kind: str = "department") -> None:
    for key in unit_keys:
        await make_unit(session, key=key, kind=kind)


async def event(session, handoff: str, due: datetime, delivered: datetime | None = None, **fields):
    """An occurrence due at ``due``, started 4 hours before the earlier of due and delivery
    unless ``started_at`` is given."""
    fields.setdefault("started_at", min(due, delivered or due) - 4 * HOUR)
    return await make_event(session, handoff, due_at=due, delivered_at=delivered, **fields)


async def on_time(session, handoff: str, due: datetime, **fields):
    return await event(session, handoff, due, due - HOUR, **fields)


async def late(session, handoff: str, due: datetime, **fields):
    return await event(session, handoff, due, due + 2 * HOUR, **fields)


async def feedback(session, touchpoint: str, scale: str, value: float, **fields):
    fields.setdefault("at", march(10))
    return await make_feedback(session, touchpoint=touchpoint, scale=scale, score=value, **fields)


# Handoff health H(h) ---------------------------------------------------------------------------


class TestHandoffScore:
    async def test_every_component_with_its_count(self, client, keys, session):
        await units(session, "ops", "branch")
        await make_handoff(session, key="kyc", from_unit="ops", to_unit="branch")
        # In the window, due by as_of: on time (q5), late and reworked (q3), overdue.
        await event(session, "kyc", march(2, 13), march(2, 12), quality=5)
        await event(
            session, "kyc", march(3, 13), march(3, 15), quality=3, rework=True, customer_impact=True
        )
        await event(session, "kyc", march(4, 13))
        # In the window but due after as_of: in E (quality, rework), not in D.
        await event(session, "kyc", march(25), march(19, 12), started_at=march(19), quality=4)
        # Outside the window: ignored entirely.
        await event(session, "kyc", datetime(2026, 2, 28, 13, tzinfo=UTC), quality=1, rework=True)
        await make_review(session, "kyc", at=march(10), timeliness=3, quality=4)
        await make_review(session, "kyc", at=march(15), timeliness=5, quality=5)
        await make_review(
            session, "kyc", at=datetime(2026, 2, 20, tzinfo=UTC), timeliness=1, quality=1
        )

        body = await get_score(client, await keys.reader(), "handoffs/kyc")

        t = 1 / 3  # on time in D / |D|: 1 of 3
        q = ((5 - 1) / 4 + (3 - 1) / 4 + (4 - 1) / 4) / 3  # 0.75
        f = 1 - 1 / 3  # one of three delivered events reworked
        s = (((3 + 4) / 2 - 1) / 4 + ((5 + 5) / 2 - 1) / 4) / 2  # (0.625 + 1) / 2
        assert body["value"] == score(100 * (0.35 * t + 0.35 * q + 0.15 * f + 0.15 * s))
        assert body["reason"] is None
        assert body["subject"] == {"type": "handoff", "key": "kyc"}
        c = body["components"]
        assert c["timeliness"]["value"] == part(t)
        assert c["timeliness"]["count"] == 3
        assert (c["timeliness"]["on_time"], c["timeliness"]["late"]) == (1, 2)
        assert c["timeliness"]["weight"] == 0.35
        assert c["quality"]["value"] == part(q)
        assert c["quality"]["count"] == 3
        assert c["quality"]["weight"] == 0.35
        assert c["rework_free"]["value"] == part(f)
        assert c["rework_free"]["count"] == 3
        assert c["rework_free"]["weight"] == 0.15
        assert c["recipient_satisfaction"]["value"] == part(s)
        assert c["recipient_satisfaction"]["count"] == 2
        assert c["recipient_satisfaction"]["weight"] == 0.15
        counts = body["details"]["counts"]
        assert counts["events"] == 4
        assert counts["due"] == 3
        assert counts["on_time"] == 1
        assert counts["overdue"] == 1
        assert counts["rated"] == 3
        assert counts["reviews"] == 2
        assert body["details"]["buffer_rate"] == part(1 / 4)
        window_read = body["window"]
        assert instant(window_read["from"]) == instant(FROM)
        assert instant(window_read["to"]) == instant(TO)
        assert instant(window_read["as_of"]) == instant(AS_OF)
        assert body["series"] is None

    async def test_weights_renormalised_over_components_with_data(self, client, keys, session):
        await units(session, "ops", "branch")
        await make_handoff(session, key="kyc", from_unit="ops", to_unit="branch")
        await on_time(session, "kyc", march(2, 13), quality=4)
        await late(session, "kyc", march(3, 13), quality=4)

        body = await get_score(client, await keys.reader(), "handoffs/kyc")

        # No review: S has no data, T, Q and F share the weight.
        assert body["value"] == score(100 * (0.35 * 0.5 + 0.35 * 0.75 + 0.15 * 1.0) / 0.85)
        satisfaction = body["components"]["recipient_satisfaction"]
        assert satisfaction["value"] is None
        assert satisfaction["count"] == 0
        assert satisfaction["reason"]

    async def test_only_timeliness_and_quality(self, client, keys, session):
        await units(session, "ops", "branch")
        await make_handoff(session, key="kyc", from_unit="ops", to_unit="branch")
        # Rated but never delivered: T and Q have data, F (delivered events) has none.
        await event(session, "kyc", march(2, 13), quality=2)
        await event(session, "kyc", march(3, 13), quality=5)

        body = await get_score(client, await keys.reader(), "handoffs/kyc")

        q = ((2 - 1) / 4 + (5 - 1) / 4) / 2
        assert body["value"] == score(100 * (0.35 * 0.0 + 0.35 * q) / 0.70)
        assert body["components"]["rework_free"]["value"] is None
        assert body["components"]["rework_free"]["reason"]
        assert body["details"]["counts"]["overdue"] == 2

    async def test_reviews_only(self, client, keys, session):
        await units(session, "ops", "branch")
        await make_handoff(session, key="kyc", from_unit="ops", to_unit="branch")
        await make_review(session, "kyc", at=march(5), timeliness=2, quality=4)

        body = await get_score(client, await keys.reader(), "handoffs/kyc")

        assert body["value"] == score(100 * ((2 + 4) / 2 - 1) / 4)
        for name in ("timeliness", "quality", "rework_free"):
            assert body["components"][name]["value"] is None
            assert body["components"][name]["reason"]
        assert body["details"]["counts"]["events"] == 0
        assert body["details"]["buffer_rate"] is None

    async def test_null_with_a_reason_without_data(self, client, keys, session):
        await units(session, "ops", "branch")
        await make_handoff(session, key="kyc", from_unit="ops", to_unit="branch")
        # Data only outside the window.
        await on_time(session, "kyc", datetime(2026, 2, 10, 13, tzinfo=UTC), quality=5)
        await make_review(
            session, "kyc", at=datetime(2026, 4, 2, tzinfo=UTC), timeliness=5, quality=5
        )

        body = await get_score(client, await keys.reader(), "handoffs/kyc")

        assert body["value"] is None
        assert body["reason"]
        assert all(c["value"] is None and c["count"] == 0 for c in body["components"].values())
        assert body["details"]["counts"]["events"] == 0

    async def test_overdue_events_count_late_once_due_by_as_of(self, client, keys, session):
        await units(session, "ops", "branch")
        await make_handoff(session, key="kyc", from_unit="ops", to_unit="branch")
        await on_time(session, "kyc", march(2, 13))
        # Due exactly at as_of and not delivered: due by now, overdue, late.
        await event(session, "kyc", instant(AS_OF))
        # Due after as_of and not delivered: pending, not in D.
        await event(session, "kyc", march(22))

        body = await get_score(client, await keys.reader(), "handoffs/kyc")

        timeliness = body["components"]["timeliness"]
        assert timeliness["value"] == part(1 / 2)
        assert timeliness["count"] == 2
        assert (timeliness["on_time"], timeliness["late"]) == (1, 1)
        counts = body["details"]["counts"]
        assert (counts["events"], counts["due"], counts["overdue"]) == (3, 2, 1)
        # F: one delivered event, not reworked.
        assert body["value"] == score(100 * (0.35 * 0.5 + 0.15 * 1.0) / 0.50)

    async def test_events_due_after_as_of_count_for_quality_and_rework(self, client, keys, session):
        await units(session, "ops", "branch")
        await make_handoff(session, key="kyc", from_unit="ops", to_unit="branch")
        await on_time(session, "kyc", march(2, 13), quality=5)
        # Delivered early, before as_of, but due after it.
        await event(
            session, "kyc", march(28), march(19), started_at=march(18), quality=2, rework=True
        )

        body = await get_score(client, await keys.reader(), "handoffs/kyc")

        c = body["components"]
        assert (c["timeliness"]["value"], c["timeliness"]["count"]) == (part(1.0), 1)
        q = ((5 - 1) / 4 + (2 - 1) / 4) / 2
        assert (c["quality"]["value"], c["quality"]["count"]) == (part(q), 2)
        assert (c["rework_free"]["value"], c["rework_free"]["count"]) == (part(1 - 1 / 2), 2)
        assert body["value"] == score(100 * (0.35 * 1.0 + 0.35 * q + 0.15 * 0.5) / 0.85)

    async def test_window_includes_from_and_excludes_to(self, client, keys, session):
        await units(session, "ops", "branch")
        await make_handoff(session, key="kyc", from_unit="ops", to_unit="branch")
        start, end = instant(FROM), instant(TO)
        await event(session, "kyc", start, start - HOUR, quality=5)  # due_at == from: in
        await event(session, "kyc", end, quality=1)  # due_at == to: out (else an overdue q1)
        await make_review(session, "kyc", at=start, timeliness=1, quality=1)  # at == from: in
        await make_review(session, "kyc", at=end, timeliness=5, quality=5)  # at == to: out

        # as_of after the window, so the event due at `to` would be overdue if counted.
        body = await get_score(
            client, await keys.reader(), "handoffs/kyc", as_of="2026-04-02T00:00:00Z"
        )

        assert body["details"]["counts"]["events"] == 1
        assert body["components"]["recipient_satisfaction"]["count"] == 1
        assert body["value"] == score(100 * (0.35 * 1.0 + 0.35 * 1.0 + 0.15 * 1.0 + 0.15 * 0.0))

    async def test_only_reviews_in_the_window_count(self, client, keys, session):
        await units(session, "ops", "branch")
        await make_handoff(session, key="kyc", from_unit="ops", to_unit="branch")
        await make_review(
            session, "kyc", at=datetime(2026, 2, 28, 23, 59, tzinfo=UTC), timeliness=5, quality=5
        )
        await make_review(session, "kyc", at=march(12), timeliness=4, quality=2)
        await make_review(
            session, "kyc", at=datetime(2026, 4, 3, tzinfo=UTC), timeliness=5, quality=5
        )

        body = await get_score(client, await keys.reader(), "handoffs/kyc")

        s = ((4 + 2) / 2 - 1) / 4
        satisfaction = body["components"]["recipient_satisfaction"]
        assert (satisfaction["value"], satisfaction["count"]) == (part(s), 1)
        assert body["value"] == score(100 * s)

    async def test_reported_extras(self, client, keys, session):
        await units(session, "ops", "branch")
        await make_handoff(session, key="kyc", from_unit="ops", to_unit="branch")
        # Cycle times 2h, 3h, 5h and 8h; due 4h after the start, so 5h is 1h late, 8h 4h late.
        for day, hours in ((2, 2), (3, 3), (4, 5), (5, 8)):
            start = march(day)
            await event(
                session,
                "kyc",
                start + 4 * HOUR,
                start + hours * HOUR,
                started_at=start,
                customer_impact=hours == 8,
            )
        await event(session, "kyc", march(6, 13), started_at=march(6))  # overdue

        body = await get_score(client, await keys.reader(), "handoffs/kyc")

        details = body["details"]
        assert details["counts"]["events"] == 5
        assert details["counts"]["due"] == 5
        assert details["counts"]["on_time"] == 2
        assert details["counts"]["overdue"] == 1
        assert details["counts"]["rated"] == 0
        assert details["buffer_rate"] == part(1 / 5)
        assert details["median_cycle_time"] == "PT4H"  # (3h + 5h) / 2
        assert details["median_lateness"] == "PT2H30M"  # (1h + 4h) / 2
        assert body["value"] == score(100 * (0.35 * 2 / 5 + 0.15 * 1.0) / 0.50)

    async def test_unknown_handoff_is_404(self, client, keys):
        response = await client.get(
            "/v1/scores/handoffs/nope", params=window(), headers=await keys.reader()
        )
        assert_problem(response, 404, "not_found")


class TestEventsWithoutDueDate:
    """A handoff with no timing standard: its events belong to the window by ``started_at``
    and count everywhere but in timeliness (method §1)."""

    async def test_counted_everywhere_but_timeliness(self, client, keys, session):
        await units(session, "ops", "branch")
        await make_handoff(
            session, key="adhoc", from_unit="ops", to_unit="branch", expected_within=None
        )
        # In the window by their start; cycle times 3h and 8h.
        await make_event(
            session, "adhoc", started_at=march(2), delivered_at=march(2, 12), quality=5
        )
        await make_event(
            session,
            "adhoc",
            started_at=march(3),
            delivered_at=march(3, 17),
            quality=2,
            rework=True,
            customer_impact=True,
        )
        await make_event(session, "adhoc", started_at=march(4))  # open: never overdue
        await make_event(session, "adhoc", started_at=march(31, 23))  # after as_of, in window
        # Started before `from`: out, though delivered inside the window.
        await make_event(
            session,
            "adhoc",
            started_at=datetime(2026, 2, 28, 23, tzinfo=UTC),
            delivered_at=march(1, 2),
            quality=1,
        )

        body = await get_score(client, await keys.reader(), "handoffs/adhoc")

        counts = body["details"]["counts"]
        assert (counts["events"], counts["undated"], counts["due"], counts["overdue"]) == (
            4, 4, 0, 0,
        )
        timeliness = body["components"]["timeliness"]
        assert timeliness["value"] is None
        assert timeliness["reason"] == (
            "no event has a due time (the handoff has no timing standard)"
        )
        q = ((5 - 1) / 4 + (2 - 1) / 4) / 2
        f = 1 - 1 / 2
        assert body["components"]["quality"]["value"] == part(q)
        assert body["components"]["rework_free"]["value"] == part(f)
        assert body["details"]["buffer_rate"] == part(1 / 4)
        assert body["details"]["median_cycle_time"] == "PT5H30M"  # (3h + 8h) / 2
        assert body["details"]["median_lateness"] is None
        assert body["value"] == score(health(q=q, f=f))

    async def test_dated_and_undated_events_of_one_handoff(self, client, keys, session):
        await units(session, "ops", "branch")
        await make_handoff(
            session, key="adhoc", from_unit="ops", to_unit="branch", expected_within=None
        )
        await late(session, "adhoc", march(5))  # a due time given by the sender
        await make_event(session, "adhoc", started_at=march(6), delivered_at=march(6, 10))

        body = await get_score(client, await keys.reader(), "handoffs/adhoc")

        counts = body["details"]["counts"]
        assert (counts["events"], counts["due"], counts["undated"]) == (2, 1, 1)
        timeliness = body["components"]["timeliness"]
        assert (timeliness["value"], timeliness["count"], timeliness["late"]) == (0.0, 1, 1)
        assert body["details"]["median_lateness"] == "PT2H"
        assert body["value"] == score(health(t=0.0, f=1.0))

    async def test_day_buckets_place_them_by_start(self, client, keys, session):
        await units(session, "ops", "branch")
        await make_handoff(
            session, key="adhoc", from_unit="ops", to_unit="branch", expected_within=None
        )
        await make_event(session, "adhoc", started_at=march(2, 23), delivered_at=march(3, 8))
        await make_event(session, "adhoc", started_at=march(3, 1), quality=3)

        body = await get_score(
            client,
            await keys.reader(),
            "handoffs/adhoc",
            **{"from": "2026-03-02T00:00:00Z", "to": "2026-03-04T00:00:00Z", "bucket": "day"},
        )

        # Day 1: the delivered event (rework-free counts it); day 2: the rated one.
        days = [
            (b["components"]["rework_free"]["count"], b["components"]["quality"]["count"])
            for b in body["series"]
        ]
        assert days == [(1, 0), (0, 1)]


class TestDefaultWindow:
    async def test_the_90_days_before_as_of(self, client, keys, session):
        await units(session, "ops", "branch")
        await make_handoff(session, key="kyc", from_unit="ops", to_unit="branch")
        as_of = instant(AS_OF)
        await on_time(session, "kyc", as_of - timedelta(days=90))  # exactly `from`: in
        await late(session, "kyc", as_of - timedelta(days=90, seconds=1))  # just before: out

        response = await client.get(
            "/v1/scores/handoffs/kyc", params={"as_of": AS_OF}, headers=await keys.reader()
        )

        assert response.status_code == 200, response.text
        body = response.json()
        assert instant(body["window"]["from"]) == as_of - timedelta(days=90)
        assert instant(body["window"]["to"]) == as_of
        assert body["details"]["counts"]["events"] == 1
        assert body["value"] == score(100.0)

    async def test_from_defaults_to_90_days_before_to(self, client, keys, session):
        await units(session, "ops", "branch")
        await make_handoff(session, key="kyc", from_unit="ops", to_unit="branch")

        response = await client.get(
            "/v1/scores/handoffs/kyc",
            params={"to": "2026-03-01T00:00:00Z", "as_of": AS_OF},
            headers=await keys.reader(),
        )

        assert response.status_code == 200, response.text
        window_read = response.json()["window"]
        assert instant(window_read["from"]) == datetime(2025, 12, 1, tzinfo=UTC)
        assert instant(window_read["to"]) == datetime(2026, 3, 1, tzinfo=UTC)


class TestTimezones:
    async def test_offsets_land_in_the_right_window(self, client, keys, session):
        await units(session, "ops", "branch")
        await make_handoff(session, key="kyc", from_unit="ops", to_unit="branch")
        # Window: 2026-03-10 00:00Z to 2026-03-11 00:00Z, given at +05:00.
        # 01:30+02:00 on the 10th is 23:30Z on the 9th: before the window.
        await on_time(session, "kyc", march(10, 1, 30, CEST), quality=1)
        # 02:00+02:00 on the 10th is 00:00Z: exactly `from`, in. Delivered on time.
        await on_time(session, "kyc", march(10, 2, 0, CEST), quality=5)
        # 01:30+02:00 on the 11th is 23:30Z on the 10th: in. Delivered at 23:45Z, which
        # reads earlier than 01:30 as text but is 15 minutes late.
        await event(
            session,
            "kyc",
            march(11, 1, 30, CEST),
            march(10, 23, 45),
            started_at=march(10, 20),
            quality=5,
        )
        # 02:00+02:00 on the 11th is 00:00Z: exactly `to`, out.
        await event(session, "kyc", march(11, 2, 0, CEST), quality=1)

        body = await get_score(
            client,
            await keys.reader(),
            "handoffs/kyc",
            **{
                "from": "2026-03-10T05:00:00+05:00",
                "to": "2026-03-11T05:00:00+05:00",
                "as_of": "2026-03-19T19:00:00-05:00",
            },
        )

        assert body["details"]["counts"]["events"] == 2
        assert body["components"]["timeliness"]["on_time"] == 1
        assert body["components"]["quality"]["value"] == part(1.0)
        assert body["value"] == score(100 * (0.35 * 0.5 + 0.35 * 1.0 + 0.15 * 1.0) / 0.85)
        assert instant(body["window"]["from"]) == march(10, 0)
        assert instant(body["window"]["to"]) == march(11, 0)
        assert instant(body["window"]["as_of"]) == instant(AS_OF)

    async def test_feedback_and_reviews_by_instant(self, client, keys, session):
        await units(session, "front", "mid")
        await make_journey(session, key="j", stages=["buy"])
        await make_touchpoint(session, key="desk", journey="j", stage="buy", owner="front")
        await make_handoff(session, key="prep", from_unit="mid", to_unit="front")
        # Both at 01:00+02:00 on the 10th = 23:00Z on the 9th: before the window.
        await feedback(session, "desk", "csat", 1, at=march(10, 1, 0, CEST))
        await make_review(session, "prep", at=march(10, 1, 0, CEST), timeliness=1, quality=1)
        # 03:00+02:00 on the 10th = 01:00Z: inside.
        await feedback(session, "desk", "csat", 5, at=march(10, 3, 0, CEST))
        await make_review(session, "prep", at=march(10, 3, 0, CEST), timeliness=5, quality=5)
        params = {"from": "2026-03-10T00:00:00Z", "to": "2026-03-11T00:00:00Z"}
        reader = await keys.reader()

        tp = await get_score(client, reader, "touchpoints/desk", **params)
        h = await get_score(client, reader, "handoffs/prep", **params)

        satisfaction = tp["components"]["customer_satisfaction"]
        assert (satisfaction["value"], satisfaction["count"]) == (part(1.0), 1)
        assert tp["value"] == score(100.0)
        assert h["components"]["recipient_satisfaction"]["count"] == 1
        assert h["value"] == score(100.0)

    async def test_day_buckets_follow_the_offset_of_from(self, client, keys, session):
        await units(session, "ops", "branch")
        await make_handoff(session, key="kyc", from_unit="ops", to_unit="branch")
        # Local days at +02:00: the 10th runs 22:00Z (9th) to 22:00Z (10th).
        await on_time(session, "kyc", march(10, 23, 0, CEST))  # 21:00Z on the 10th: day 1
        await late(session, "kyc", march(11, 0, 30, CEST))  # 22:30Z on the 10th: day 2

        body = await get_score(
            client,
            await keys.reader(),
            "handoffs/kyc",
            **{
                "from": "2026-03-10T00:00:00+02:00",
                "to": "2026-03-12T00:00:00+02:00",
                "bucket": "day",
            },
        )

        series = body["series"]
        assert [instant(b["window"]["from"]) for b in series] == [
            march(10, 0, 0, CEST),
            march(11, 0, 0, CEST),
        ]
        assert [instant(b["window"]["to"]) for b in series] == [
            march(11, 0, 0, CEST),
            march(12, 0, 0, CEST),
        ]
        # T and F only: on time → 100; late → 100 × (0.35 × 0 + 0.15 × 1) / 0.5.
        assert [b["value"] for b in series] == [score(100.0), score(100 * 0.15 / 0.50)]


# Trends -----------------------------------------------------------------------------------------


class TestBuckets:
    async def test_day_buckets_each_scored_as_their_own_window(self, client, keys, session):
        await units(session, "ops", "branch")
        await make_handoff(session, key="kyc", from_unit="ops", to_unit="branch")
        await on_time(session, "kyc", march(10, 13), quality=5)  # day 1
        await late(session, "kyc", march(11, 0), quality=1)  # exactly the day-2 boundary
        await make_review(session, "kyc", at=march(11, 23, 59), timeliness=3, quality=3)  # day 2
        # Day 3: nothing.

        body = await get_score(
            client,
            await keys.reader(),
            "handoffs/kyc",
            **{"from": "2026-03-10T00:00:00Z", "to": "2026-03-13T00:00:00Z", "bucket": "day"},
        )

        series = body["series"]
        assert len(series) == 3
        assert [(instant(b["window"]["from"]), instant(b["window"]["to"])) for b in series] == [
            (march(10, 0), march(11, 0)),
            (march(11, 0), march(12, 0)),
            (march(12, 0), march(13, 0)),
        ]
        assert all(instant(b["window"]["as_of"]) == instant(AS_OF) for b in series)
        s = ((3 + 3) / 2 - 1) / 4
        assert series[0]["value"] == score(100.0)
        assert series[0]["components"]["timeliness"]["count"] == 1
        assert series[1]["value"] == score(
            100 * (0.35 * 0.0 + 0.35 * 0.0 + 0.15 * 1.0 + 0.15 * s) / 1.0
        )
        assert series[1]["components"]["recipient_satisfaction"]["count"] == 1
        assert series[2]["value"] is None
        assert series[2]["reason"]
        # The whole window: T = 1/2, Q = (1 + 0) / 2, F = 1, S = 0.5.
        assert body["value"] == score(100 * (0.35 * 0.5 + 0.35 * 0.5 + 0.15 * 1.0 + 0.15 * s))
        assert body["components"]["timeliness"]["count"] == 2

    async def test_week_buckets_end_with_a_partial_week(self, client, keys, session):
        await units(session, "front")
        await make_journey(session, key="j", stages=["buy"])
        await make_touchpoint(session, key="desk", journey="j", stage="buy", owner="front")
        await feedback(session, "desk", "csat", 5, at=march(3))
        await feedback(session, "desk", "csat", 3, at=march(8))  # the 8th starts week 2
        await feedback(session, "desk", "nps", 7, at=march(10, 23))

        body = await get_score(
            client,
            await keys.reader(),
            "touchpoints/desk",
            **{"from": "2026-03-01T00:00:00Z", "to": "2026-03-11T00:00:00Z", "bucket": "week"},
        )

        series = body["series"]
        assert [(instant(b["window"]["from"]), instant(b["window"]["to"])) for b in series] == [
            (march(1, 0), march(8, 0)),
            (march(8, 0), march(11, 0)),
        ]
        assert series[0]["value"] == score(100 * (5 - 1) / 4)
        assert series[1]["value"] == score(100 * ((3 - 1) / 4 + 7 / 10) / 2)
        assert body["value"] == score(100 * ((5 - 1) / 4 + (3 - 1) / 4 + 7 / 10) / 3)

    async def test_month_buckets_count_from_the_start(self, client, keys, session):
        await units(session, "ops", "branch")
        await make_handoff(session, key="kyc", from_unit="ops", to_unit="branch")
        await on_time(session, "kyc", datetime(2026, 2, 27, 13, tzinfo=UTC))  # month 1
        await late(session, "kyc", datetime(2026, 3, 30, 13, tzinfo=UTC))  # month 2
        await event(session, "kyc", datetime(2026, 4, 29, 13, tzinfo=UTC))  # month 3, overdue

        body = await get_score(
            client,
            await keys.reader(),
            "handoffs/kyc",
            **{
                "from": "2026-01-31T00:00:00Z",
                "to": "2026-04-30T00:00:00Z",
                "as_of": "2026-05-01T00:00:00Z",
                "bucket": "month",
            },
        )

        # Calendar months from Jan 31: Feb 28 (clamped), then Mar 31 and Apr 30 again.
        def utc(month: int, day: int) -> datetime:
            return datetime(2026, month, day, tzinfo=UTC)

        series = body["series"]
        assert [(instant(b["window"]["from"]), instant(b["window"]["to"])) for b in series] == [
            (utc(1, 31), utc(2, 28)),
            (utc(2, 28), utc(3, 31)),
            (utc(3, 31), utc(4, 30)),
        ]
        assert [b["components"]["timeliness"]["count"] for b in series] == [1, 1, 1]
        assert [b["value"] for b in series] == [
            score(100.0),
            score(100 * (0.35 * 0.0 + 0.15 * 1.0) / 0.50),
            score(0.0),
        ]

    async def test_month_buckets_follow_the_calendar_of_froms_offset(self, client, keys, session):
        await units(session, "ops", "branch")
        await make_handoff(session, key="kyc", from_unit="ops", to_unit="branch")
        # 23:30 on March 31 in +02:00 is still March there (21:30Z), not April.
        await on_time(session, "kyc", datetime(2026, 3, 31, 21, 30, tzinfo=UTC))

        body = await get_score(
            client,
            await keys.reader(),
            "handoffs/kyc",
            **{
                "from": "2026-03-01T00:00:00+02:00",
                "to": "2026-05-01T00:00:00+02:00",
                "as_of": "2026-05-01T00:00:00Z",
                "bucket": "month",
            },
        )

        series = body["series"]
        assert [(instant(b["window"]["from"]), instant(b["window"]["to"])) for b in series] == [
            (march(1, 0, 0, CEST), datetime(2026, 4, 1, tzinfo=CEST)),
            (datetime(2026, 4, 1, tzinfo=CEST), datetime(2026, 5, 1, tzinfo=CEST)),
        ]
        assert [b["components"]["timeliness"]["count"] for b in series] == [1, 0]

    async def test_too_many_buckets(self, client, keys, session):
        await units(session, "ops", "branch")
        await make_handoff(session, key="kyc", from_unit="ops", to_unit="branch")

        response = await client.get(
            "/v1/scores/handoffs/kyc",
            params=window(**{"from": "2025-01-01T00:00:00Z", "bucket": "day"}),
            headers=await keys.reader(),
        )

        body = assert_problem(response, 422, "invalid")
        assert body["errors"][0]["loc"] == ["query", "bucket"]

    async def test_no_series_without_bucket(self, client, keys, session):
        await units(session, "ops", "branch")
        await make_handoff(session, key="kyc", from_unit="ops", to_unit="branch")

        body = await get_score(client, await keys.reader(), "handoffs/kyc")

        assert body["series"] is None


# Unit alignment U(u) ---------------------------------------------------------------------------


async def unit_handoffs(session) -> dict[str, float]:
    """ops provides kyc (4 events) and brief (reviews only) and idle (no data); it receives
    back (1 event). Returns the hand-computed health of each."""
    await units(session, "ops", "branch", "front")
    await make_handoff(session, key="kyc", from_unit="ops", to_unit="branch")
    await make_handoff(session, key="brief", from_unit="ops", to_unit="front")
    await make_handoff(session, key="idle", from_unit="ops", to_unit="front")
    await make_handoff(session, key="back", from_unit="branch", to_unit="ops")
    for day in (2, 3):
        await on_time(session, "kyc", march(day, 13))
    for day in (4, 5):
        await late(session, "kyc", march(day, 13))
    await make_review(session, "brief", at=march(6), timeliness=5, quality=5)
    await on_time(session, "brief", datetime(2026, 2, 3, 13, tzinfo=UTC))  # outside: |E| = 0
    await late(session, "back", march(7, 13), quality=1)
    return {
        "kyc": health(t=2 / 4, f=1.0),  # 65
        "brief": health(s=1.0),  # 100
        "back": health(t=0.0, q=0.0, f=1.0),
    }


async def goal_world(session) -> None:
    """The goals of ops (see TestUnitScore.test_goal_alignment) and their counterparts."""
    await units(session, "ops", "branch", "front")
    await make_journey(session, key="j", stages=["buy"])
    await make_touchpoint(session, key="desk", journey="j", stage="buy", owner="front")
    await make_metric(session, key="nps", kind="survey_score")
    await make_metric(session, key="effort", kind="customer_effort")
    await make_metric(session, key="cost", kind="financial")
    await make_metric(session, key="speed", kind="operational")
    # Linked: a survey score, customer effort, naming a touchpoint, a chain to one.
    await make_goal(session, key="ops-nps", owner="ops", metric="nps")
    await make_goal(session, key="ops-effort", owner="ops", metric="effort", direction="decrease")
    await make_goal(session, key="ops-desk", owner="ops", touchpoints=["desk"])
    await make_goal(session, key="front-desk", owner="front", touchpoints=["desk"])
    await make_goal(session, key="branch-mid", owner="branch", contributes_to=["front-desk"])
    await make_goal(
        session, key="ops-chain", owner="ops", kind="means", contributes_to=["branch-mid"]
    )
    # Unlinked and in an open conflict (ops raises cost, branch lowers it): 0.
    await make_goal(session, key="ops-cost", owner="ops", metric="cost", direction="increase")
    await make_goal(session, key="branch-cost", owner="branch", metric="cost", direction="decrease")
    # Linked and in an open conflict at the desk: 0.5.
    await make_goal(session, key="ops-speed", owner="ops", metric="speed", touchpoints=["desk"])
    await make_goal(session, key="front-speed", owner="front", metric="speed", direction="decrease")
    # Unlinked, no conflict: 0.5.
    await make_goal(session, key="ops-plain", owner="ops")
    # Retired: not counted.
    await make_goal(session, key="ops-old", owner="ops", status="retired")


class TestUnitScore:
    async def test_provider_health_weighted_by_events(self, client, keys, session):
        h = await unit_handoffs(session)

        body = await get_score(client, await keys.reader(), "units/ops")

        # |E|-weighted: kyc weighs 4, brief (reviews only) 1, idle (no data) nothing.
        p = (4 * h["kyc"] + 1 * h["brief"]) / (4 + 1)  # 72
        assert body["subject"] == {"type": "unit", "key": "ops"}
        provider = body["components"]["provider_health"]
        assert provider["value"] == part(p / 100)
        assert provider["count"] == 2
        goals = body["components"]["goal_alignment"]
        assert goals["value"] is None
        assert goals["reason"]
        # No goals: U = P.
        assert body["value"] == score(p)

    async def test_received_health_reported_not_scored(self, client, keys, session):
        h = await unit_handoffs(session)

        body = await get_score(client, await keys.reader(), "units/ops")

        received = body["details"]["received_health"]
        assert received["value"] == part(h["back"] / 100)
        assert received["count"] == 1
        assert body["value"] == score((4 * h["kyc"] + h["brief"]) / 5)
        # branch provides back and receives kyc: only back counts for it.
        branch = await get_score(client, await keys.reader(), "units/branch")
        assert branch["value"] == score(h["back"])
        assert branch["details"]["received_health"]["value"] == part(h["kyc"] / 100)

    async def test_goal_alignment(self, client, keys, session):
        await goal_world(session)

        body = await get_score(client, await keys.reader(), "units/ops")

        parts = {
            "ops-nps": (1 + 1 - 0) / 2,
            "ops-effort": (1 + 1 - 0) / 2,
            "ops-desk": (1 + 1 - 0) / 2,
            "ops-chain": (1 + 1 - 0) / 2,
            "ops-cost": (0 + 1 - 1) / 2,
            "ops-speed": (1 + 1 - 1) / 2,
            "ops-plain": (0 + 1 - 0) / 2,
        }
        g = sum(parts.values()) / len(parts)  # 5 / 7
        goals = body["components"]["goal_alignment"]
        assert goals["value"] == part(g)
        assert goals["count"] == 7
        assert goals["linked"] == 5
        assert goals["conflicted"] == 2
        assert body["components"]["provider_health"]["value"] is None
        assert body["value"] == score(100 * g)

    async def test_resolved_conflict_no_longer_counts(self, client, keys, session):
        await units(session, "ops", "branch")
        await make_metric(session, key="cost", kind="financial")
        await make_goal(session, key="ops-cost", owner="ops", metric="cost", direction="increase")
        await make_goal(
            session, key="branch-cost", owner="branch", metric="cost", direction="decrease"
        )
        reader, writer = await keys.reader(), await keys.writer()

        before = await get_score(client, reader, "units/ops")
        (conflict,) = (await client.get("/v1/conflicts", headers=reader)).json()["items"]
        response = await client.post(
            f"/v1/conflicts/{conflict['id']}/resolve", json={"note": "agreed a cap"}, headers=writer
        )
        assert response.status_code == 200, response.text
        after = await get_score(client, reader, "units/ops")

        assert before["value"] == score(100 * (0 + 1 - 1) / 2)
        assert before["components"]["goal_alignment"]["conflicted"] == 1
        assert after["value"] == score(100 * (0 + 1 - 0) / 2)
        assert after["components"]["goal_alignment"]["conflicted"] == 0

    async def test_mean_of_provider_health_and_goal_alignment(self, client, keys, session):
        h = await unit_handoffs(session)
        await make_metric(session, key="nps", kind="survey_score")
        await make_goal(session, key="ops-nps", owner="ops", metric="nps")  # 1
        await make_goal(session, key="ops-plain", owner="ops")  # 0.5

        body = await get_score(client, await keys.reader(), "units/ops")

        p = (4 * h["kyc"] + h["brief"]) / 5
        g = (1 + 0.5) / 2
        assert body["value"] == score((p + 100 * g) / 2)

    async def test_null_with_a_reason_without_data(self, client, keys, session):
        await units(session, "ops", "branch")
        await make_handoff(session, key="kyc", from_unit="ops", to_unit="branch")
        await make_goal(session, owner="ops", status="retired")

        body = await get_score(client, await keys.reader(), "units/ops")

        assert body["value"] is None
        assert body["reason"]

    async def test_unknown_unit_is_404(self, client, keys):
        response = await client.get(
            "/v1/scores/units/nope", params=window(), headers=await keys.reader()
        )
        assert_problem(response, 404, "not_found")


# Touchpoint score TP(t) ------------------------------------------------------------------------


async def desk_chain(session) -> dict[str, float]:
    """The desk (owned by front, declared driver weight 0.4), served by prep (mid → front,
    3 events), pick (back → mid, 1 overdue event) and spare (other → front, no data); plus
    side (mid → front) which serves no touchpoint."""
    await units(session, "front", "mid", "back", "other")
    await make_journey(session, key="j", stages=["buy"])
    await make_touchpoint(
        session, key="desk", journey="j", stage="buy", owner="front", driver_weight=0.4
    )
    await make_handoff(session, key="prep", from_unit="mid", to_unit="front", touchpoint="desk")
    await make_handoff(session, key="pick", from_unit="back", to_unit="mid", touchpoint="desk")
    await make_handoff(session, key="spare", from_unit="other", to_unit="front", touchpoint="desk")
    await make_handoff(session, key="side", from_unit="mid", to_unit="front")
    await on_time(session, "prep", march(2, 13), quality=5)
    await on_time(session, "prep", march(3, 13), quality=3)
    await late(session, "prep", march(4, 13), quality=4, rework=True)
    await event(session, "pick", march(5, 13))
    await late(session, "side", march(5, 13), quality=1)
    return {
        "prep": health(t=2 / 3, q=(1 + 0.5 + 0.75) / 3, f=1 - 1 / 3),
        "pick": health(t=0.0),
    }


def kda_records() -> list[tuple[str, float, float]]:
    """32 (scale, score, loyalty) records, csat and nps mixed, loosely positively related."""
    csat_loyalty = [2, 3, 5, 6, 9, 1, 4, 4, 7, 8, 3, 3, 6, 5, 10, 0, 5, 8, 9, 9]
    csat = list(zip([1, 2, 3, 4, 5] * 4, csat_loyalty, strict=True))
    nps_scores = [0, 2, 4, 6, 8, 10, 3, 5, 7, 9, 10, 1]
    nps = list(zip(nps_scores, [1, 2, 6, 4, 7, 9, 5, 3, 8, 6, 10, 4], strict=True))
    return [("csat", s, y) for s, y in csat] + [("nps", s, y) for s, y in nps]


def normalise(scale: str, value: float) -> float:
    return {"csat": (value - 1) / 4, "ces": (7 - value) / 6, "nps": value / 10}[scale]


class TestTouchpointScore:
    async def test_chain_health_and_customer_satisfaction(self, client, keys, session):
        h = await desk_chain(session)
        await feedback(session, "desk", "csat", 4)
        await feedback(session, "desk", "ces", 2)
        await feedback(session, "desk", "nps", 9)
        await feedback(session, "desk", "csat", 1, at=datetime(2026, 2, 27, tzinfo=UTC))  # outside

        body = await get_score(client, await keys.reader(), "touchpoints/desk")

        c = (3 * h["prep"] + 1 * h["pick"]) / (3 + 1)
        x = ((4 - 1) / 4 + (7 - 2) / 6 + 9 / 10) / 3
        assert body["subject"] == {"type": "touchpoint", "key": "desk"}
        assert body["components"]["chain_health"]["value"] == part(c / 100)
        assert body["components"]["chain_health"]["count"] == 2
        assert body["components"]["customer_satisfaction"]["value"] == part(x)
        assert body["components"]["customer_satisfaction"]["count"] == 3
        assert body["value"] == score((c + 100 * x) / 2)
        upstream = {u["handoff"]: u for u in body["details"]["upstream"]}
        assert set(upstream) == {"prep", "pick", "spare"}
        assert (upstream["prep"]["depth"], upstream["prep"]["weight"]) == (1, 3)
        assert upstream["prep"]["health"] == score(h["prep"])
        assert (upstream["pick"]["depth"], upstream["pick"]["weight"]) == (2, 1)
        assert upstream["pick"]["health"] == score(0.0)
        assert (upstream["spare"]["depth"], upstream["spare"]["health"]) == (1, None)
        assert [u["handoff"] for u in body["details"]["upstream"]][-1] == "pick"

    async def test_declared_driver_weight_below_30_records(self, client, keys, session):
        await desk_chain(session)
        for scale, value, loyalty in kda_records()[:29]:
            await feedback(session, "desk", scale, value, loyalty=loyalty)
        await feedback(session, "desk", "csat", 5)  # no loyalty: the 30th record, not paired

        body = await get_score(client, await keys.reader(), "touchpoints/desk")

        weight = body["details"]["driver_weight"]
        assert weight["source"] == "declared"
        assert weight["value"] == part(0.4)
        assert weight["n"] == 29
        assert weight["r"] is None
        assert body["details"]["priority"] == part(1 + 0.4)
        assert body["details"]["moment_of_truth"] is False

    async def test_derived_driver_weight_from_30_records(self, client, keys, session):
        await desk_chain(session)
        records = kda_records()
        for scale, value, loyalty in records:
            await feedback(session, "desk", scale, value, loyalty=loyalty)
        await feedback(session, "desk", "ces", 1)  # no loyalty: in X, not in the analysis

        body = await get_score(client, await keys.reader(), "touchpoints/desk")

        r = statistics.correlation(
            [normalise(scale, value) for scale, value, _ in records],
            [loyalty for _, _, loyalty in records],
        )
        assert r > 0
        weight = body["details"]["driver_weight"]
        assert weight["source"] == "derived"
        assert weight["n"] == 32
        assert weight["r"] == part(r)
        assert weight["value"] == part(max(0.0, r))
        assert body["details"]["priority"] == part(1 + r)
        x = (sum(normalise(s, v) for s, v, _ in records) + (7 - 1) / 6) / 33
        assert body["components"]["customer_satisfaction"]["value"] == part(x)
        assert body["components"]["customer_satisfaction"]["count"] == 33

    async def test_negative_correlation_weighs_zero(self, client, keys, session):
        await units(session, "front")
        await make_journey(session, key="j", stages=["buy"])
        await make_touchpoint(
            session,
            key="desk",
            journey="j",
            stage="buy",
            owner="front",
            driver_weight=0.9,
            moment_of_truth=True,
        )
        records = [(scale, value, 10 - loyalty) for scale, value, loyalty in kda_records()]
        for scale, value, loyalty in records:
            await feedback(session, "desk", scale, value, loyalty=loyalty)

        body = await get_score(client, await keys.reader(), "touchpoints/desk")

        r = statistics.correlation(
            [normalise(scale, value) for scale, value, _ in records],
            [loyalty for _, _, loyalty in records],
        )
        assert r < 0
        weight = body["details"]["driver_weight"]
        assert weight["source"] == "derived"
        assert weight["r"] == part(r)
        assert weight["value"] == part(0.0)
        assert body["details"]["priority"] == part(1 + 0 + 1)

    async def test_zero_variance_falls_back_to_declared(self, client, keys, session):
        await desk_chain(session)
        for index in range(30):
            await feedback(session, "desk", "csat", 5, loyalty=index % 11)  # score constant

        body = await get_score(client, await keys.reader(), "touchpoints/desk")

        weight = body["details"]["driver_weight"]
        assert weight["source"] == "declared"
        assert weight["value"] == part(0.4)
        assert weight["n"] == 30
        assert weight["r"] is None
        assert weight["reason"]

    async def test_constant_loyalty_falls_back_to_declared(self, client, keys, session):
        await desk_chain(session)
        for scale, value, _ in kda_records():
            await feedback(session, "desk", scale, value, loyalty=7)

        body = await get_score(client, await keys.reader(), "touchpoints/desk")

        weight = body["details"]["driver_weight"]
        assert (weight["source"], weight["value"], weight["r"]) == ("declared", part(0.4), None)

    async def test_feedback_only(self, client, keys, session):
        await units(session, "front")
        await make_journey(session, key="j", stages=["buy"])
        await make_touchpoint(session, key="desk", journey="j", stage="buy", owner="front")
        await feedback(session, "desk", "ces", 7)  # the most effort: 0
        await feedback(session, "desk", "ces", 1)  # the least: 1
        await feedback(session, "desk", "nps", 0)

        body = await get_score(client, await keys.reader(), "touchpoints/desk")

        x = ((7 - 7) / 6 + (7 - 1) / 6 + 0 / 10) / 3
        assert body["value"] == score(100 * x)
        assert body["components"]["chain_health"]["value"] is None
        assert body["components"]["chain_health"]["reason"]

    async def test_null_with_a_reason_without_data(self, client, keys, session):
        await units(session, "front", "mid")
        await make_journey(session, key="j", stages=["buy"])
        await make_touchpoint(session, key="desk", journey="j", stage="buy", owner="front")
        await make_handoff(session, key="prep", from_unit="mid", to_unit="front", touchpoint="desk")

        body = await get_score(client, await keys.reader(), "touchpoints/desk")

        assert body["value"] is None
        assert body["reason"]
        assert body["components"]["customer_satisfaction"]["value"] is None
        assert body["details"]["priority"] == part(1.0)

    async def test_unknown_touchpoint_is_404(self, client, keys):
        response = await client.get(
            "/v1/scores/touchpoints/nope", params=window(), headers=await keys.reader()
        )
        assert_problem(response, 404, "not_found")


# Journeys and the company ----------------------------------------------------------------------


async def two_journeys(session) -> None:
    """j1: t1 (moment of truth, declared 0.5, csat 5), t2 (declared 0, csat 2), t3 (no
    data); j2: t4 (declared 0.2, nps 6)."""
    await units(session, "front")
    await make_journey(session, key="j1", stages=["buy", "use"])
    await make_journey(session, key="j2", stages=["leave"])
    await make_touchpoint(
        session,
        key="t1",
        journey="j1",
        stage="buy",
        owner="front",
        moment_of_truth=True,
        driver_weight=0.5,
    )
    await make_touchpoint(session, key="t2", journey="j1", stage="use", owner="front")
    await make_touchpoint(
        session, key="t3", journey="j1", stage="use", owner="front", driver_weight=1
    )
    await make_touchpoint(
        session, key="t4", journey="j2", stage="leave", owner="front", driver_weight=0.2
    )
    await feedback(session, "t1", "csat", 5)
    await feedback(session, "t2", "csat", 2)
    await feedback(session, "t4", "nps", 6)


class TestJourneyScore:
    async def test_priority_weighted_mean_over_scored_touchpoints(self, client, keys, session):
        await two_journeys(session)

        body = await get_score(client, await keys.reader(), "journeys/j1")

        # π(t1) = 1 + 0.5 + 1, π(t2) = 1; t3 has no TP and does not count.
        tp1, tp2 = 100 * (5 - 1) / 4, 100 * (2 - 1) / 4
        expected = ((1 + 0.5 + 1) * tp1 + 1 * tp2) / ((1 + 0.5 + 1) + 1)
        assert body["value"] == score(expected)
        assert body["subject"] == {"type": "journey", "key": "j1"}
        assert body["components"]["touchpoints"]["count"] == 2
        listed = {t["touchpoint"]: t for t in body["details"]["touchpoints"]}
        assert listed["t1"]["priority"] == part(2.5)
        assert listed["t1"]["score"] == score(tp1)
        assert listed["t3"]["score"] is None
        assert "t4" not in listed

    async def test_null_with_a_reason_when_no_touchpoint_has_a_score(self, client, keys, session):
        await units(session, "front")
        await make_journey(session, key="j1", stages=["buy"])
        await make_touchpoint(session, key="t1", journey="j1", stage="buy", owner="front")
        await feedback(session, "t1", "csat", 5, at=datetime(2026, 4, 5, tzinfo=UTC))  # outside

        body = await get_score(client, await keys.reader(), "journeys/j1")

        assert body["value"] is None
        assert body["reason"]

    async def test_day_buckets(self, client, keys, session):
        await two_journeys(session)
        await feedback(session, "t2", "csat", 4, at=march(11))

        body = await get_score(
            client,
            await keys.reader(),
            "journeys/j1",
            **{"from": "2026-03-10T00:00:00Z", "to": "2026-03-12T00:00:00Z", "bucket": "day"},
        )

        day1 = (2.5 * 100 + 1 * 25) / 3.5
        assert [b["value"] for b in body["series"]] == [score(day1), score(100 * (4 - 1) / 4)]
        assert body["value"] == score((2.5 * 100 + 1 * (25 + 75) / 2) / 3.5)

    async def test_unknown_journey_is_404(self, client, keys):
        response = await client.get(
            "/v1/scores/journeys/nope", params=window(), headers=await keys.reader()
        )
        assert_problem(response, 404, "not_found")


class TestCompanyScore:
    async def test_priority_weighted_over_every_touchpoint(self, client, keys, session):
        await two_journeys(session)

        body = await get_score(client, await keys.reader(), "company")

        expected = (2.5 * 100 + 1 * 25 + (1 + 0.2) * 60) / (2.5 + 1 + 1.2)
        assert body["value"] == score(expected)
        assert body["subject"] == {"type": "company", "key": None}
        assert body["components"]["touchpoints"]["count"] == 3

    async def test_falls_back_to_handoff_health(self, client, keys, session):
        await units(session, "ops", "branch", "front")
        await make_journey(session, key="j1", stages=["buy"])
        await make_touchpoint(session, key="t1", journey="j1", stage="buy", owner="front")
        await make_handoff(session, key="kyc", from_unit="ops", to_unit="branch")
        await make_handoff(session, key="brief", from_unit="ops", to_unit="front")
        await make_handoff(session, key="idle", from_unit="branch", to_unit="front")
        await on_time(session, "kyc", march(2, 13))
        await on_time(session, "kyc", march(3, 13))
        await late(session, "kyc", march(4, 13))
        await make_review(session, "brief", at=march(5), timeliness=2, quality=3)

        body = await get_score(client, await keys.reader(), "company")

        kyc = health(t=2 / 3, f=1.0)
        brief = health(s=((2 + 3) / 2 - 1) / 4)
        assert body["value"] == score((3 * kyc + 1 * brief) / (3 + 1))
        assert body["components"]["handoff_health"]["count"] == 2
        assert "handoffs" in body["details"]["basis"]

    async def test_null_with_a_reason_without_data(self, client, keys, session):
        await units(session, "ops", "branch")
        await make_handoff(session, key="kyc", from_unit="ops", to_unit="branch")

        body = await get_score(client, await keys.reader(), "company")

        assert body["value"] is None
        assert body["reason"]

    async def test_incentive_coverage(self, client, keys, session):
        await two_journeys(session)
        await units(session, "ops", "sales")
        await make_metric(session, key="nps", kind="survey_score")
        await make_metric(session, key="revenue", kind="financial")
        await make_goal(session, key="g-nps", owner="front", metric="nps", incentive_weight=3)
        await make_goal(
            session, key="g-revenue", owner="sales", metric="revenue", incentive_weight=1
        )
        await make_goal(session, key="g-t1", owner="front", touchpoints=["t1"])
        await make_goal(
            session, key="g-chain", owner="ops", contributes_to=["g-t1"], incentive_weight=2
        )
        await make_goal(
            session, key="g-old", owner="front", metric="nps", incentive_weight=10, status="retired"
        )

        body = await get_score(client, await keys.reader(), "company")

        coverage = body["details"]["incentive_coverage"]
        # Customer-linked: g-nps (3), g-chain (2); all active: 3 + 1 + 0 + 2.
        assert coverage["value"] == part((3 + 2) / (3 + 1 + 0 + 2))
        assert coverage["incentive_total"] == pytest.approx(6)
        # Reported beside the score, not in it.
        assert body["value"] == score((2.5 * 100 + 1 * 25 + 1.2 * 60) / 4.7)

    async def test_incentive_coverage_null_without_incentives(self, client, keys, session):
        await two_journeys(session)
        await make_goal(session, owner="front")

        body = await get_score(client, await keys.reader(), "company")

        coverage = body["details"]["incentive_coverage"]
        assert coverage["value"] is None
        assert coverage["reason"]


# Partner score --------------------------------------------------------------------------------


async def courier_world(session) -> dict[str, float]:
    """courier (a partner) provides parcel (2 events) and receives returns (1 event);
    rival (a supplier) provides rival-run; ops → branch has nothing to do with either."""
    await units(session, "ops", "branch", "front")
    await units(session, "courier", kind="partner")
    await units(session, "rival", kind="supplier")
    await make_journey(session, key="j", stages=["buy"])
    await make_touchpoint(session, key="desk", journey="j", stage="buy", owner="front")
    await make_handoff(session, key="parcel", from_unit="courier", to_unit="branch")
    await make_handoff(session, key="returns", from_unit="branch", to_unit="courier")
    await make_handoff(session, key="rival-run", from_unit="rival", to_unit="ops")
    await make_handoff(session, key="inside", from_unit="ops", to_unit="branch")
    await on_time(session, "parcel", march(2, 13))
    await late(session, "parcel", march(3, 13))
    await on_time(session, "returns", march(4, 13), quality=5)
    await late(session, "rival-run", march(4, 13))
    await late(session, "inside", march(4, 13), quality=1)
    return {"parcel": health(t=0.5, f=1.0), "returns": health(t=1.0, q=1.0, f=1.0)}


async def accepted_joint_goal(session, agreement: str, **fields) -> None:
    goal = await make_joint_goal(session, agreement, **fields)
    await goals_service.accept_joint_goal(session, SYSTEM, agreement, goal.key)


class TestPartnerScore:
    async def test_handoff_health_and_cx_coverage(self, client, keys, session):
        h = await courier_world(session)
        await make_metric(session, key="nps", kind="survey_score")
        await make_goal(session, key="front-desk", owner="front", touchpoints=["desk"])
        agreement = {"partner": "courier", "internal_owner": "branch"}
        # a1: an accepted customer-linked joint goal (a survey score): covered.
        await make_agreement(session, key="a1", status="active", **agreement)
        await accepted_joint_goal(session, "a1", metric="nps")
        # a2: accepted but internal only; a linked one only proposed: not covered.
        await make_agreement(session, key="a2", status="active", **agreement)
        await accepted_joint_goal(session, "a2")
        await make_joint_goal(session, "a2", metric="nps")
        # a3: accepted, linked through contributes_to to a goal naming the desk: covered.
        await make_agreement(session, key="a3", status="active", **agreement)
        await accepted_joint_goal(session, "a3", contributes_to=["front-desk"])
        # a4: not active: not counted at all.
        await make_agreement(session, key="a4", status="draft", **agreement)
        await accepted_joint_goal(session, "a4", metric="nps")
        await make_agreement(session, key="a5", status="expired", **agreement)

        body = await get_score(client, await keys.reader(), "partners/courier")

        health_value = (2 * h["parcel"] + 1 * h["returns"]) / (2 + 1)
        k = 2 / 3
        assert body["subject"] == {"type": "partner", "key": "courier"}
        assert body["components"]["handoff_health"]["value"] == part(health_value / 100)
        assert body["components"]["handoff_health"]["count"] == 2
        coverage = body["components"]["cx_coverage"]
        assert coverage["value"] == part(k)
        assert coverage["count"] == 3
        assert sorted(coverage["covered_agreements"]) == ["a1", "a3"]
        assert body["value"] == score((health_value + 100 * k) / 2)

    async def test_handoffs_only(self, client, keys, session):
        await courier_world(session)

        body = await get_score(client, await keys.reader(), "partners/rival")

        # Only rival-run (rival → ops, one late event), none of courier's handoffs.
        assert body["value"] == score(health(t=0.0, f=1.0))
        assert body["components"]["cx_coverage"]["value"] is None
        assert body["components"]["cx_coverage"]["reason"]

    async def test_coverage_only(self, client, keys, session):
        await units(session, "branch")
        await units(session, "shop", kind="channel")
        await make_agreement(
            session, key="a1", partner="shop", internal_owner="branch", status="active"
        )
        await accepted_joint_goal(session, "a1")

        body = await get_score(client, await keys.reader(), "partners/shop")

        assert body["components"]["handoff_health"]["value"] is None
        assert body["components"]["cx_coverage"]["value"] == part(0.0)
        assert body["value"] == score(0.0)

    async def test_null_with_a_reason_without_data(self, client, keys, session):
        await units(session, "allies", kind="alliance")

        body = await get_score(client, await keys.reader(), "partners/allies")

        assert body["value"] is None
        assert body["reason"]

    async def test_internal_unit_is_not_a_partner(self, client, keys, session):
        await courier_world(session)

        response = await client.get(
            "/v1/scores/partners/ops", params=window(), headers=await keys.reader()
        )

        assert_problem(response, 404, "not_found")

    async def test_unknown_partner_is_404(self, client, keys):
        response = await client.get(
            "/v1/scores/partners/nope", params=window(), headers=await keys.reader()
        )
        assert_problem(response, 404, "not_found")


class TestPartnerScoping:
    async def test_partner_sees_its_own_scores(self, client, keys, session):
        h = await courier_world(session)
        courier = await keys.partner("courier")

        partner = await get_score(client, courier, "partners/courier")
        parcel = await get_score(client, courier, "handoffs/parcel")
        returns = await get_score(client, courier, "handoffs/returns")

        assert partner["value"] == score((2 * h["parcel"] + h["returns"]) / 3)
        assert parcel["value"] == score(h["parcel"])
        assert returns["value"] == score(h["returns"])

    async def test_partner_lists_only_its_handoff_scores(self, client, keys, session):
        h = await courier_world(session)

        response = await client.get(
            "/v1/scores/handoffs", params=window(), headers=await keys.partner("courier")
        )

        assert response.status_code == 200, response.text
        items = {item["subject"]["key"]: item["value"] for item in response.json()["items"]}
        assert items == {"parcel": score(h["parcel"]), "returns": score(h["returns"])}

    @pytest.mark.parametrize(
        "path",
        [
            "partners/rival",
            "handoffs/rival-run",
            "handoffs/inside",
            "company",
            "units/branch",
            "units/courier",
            "touchpoints/desk",
            "journeys/j",
        ],
    )
    async def test_everything_else_is_404_for_a_partner(self, client, keys, session, path):
        await courier_world(session)

        response = await client.get(
            f"/v1/scores/{path}", params=window(), headers=await keys.partner("courier")
        )

        assert_problem(response, 404, "not_found")

    async def test_reader_sees_every_score(self, client, keys, session):
        await courier_world(session)
        reader = await keys.reader()

        for path in (
            "partners/courier",
            "partners/rival",
            "handoffs/parcel",
            "handoffs/rival-run",
            "company",
            "units/branch",
            "touchpoints/desk",
            "journeys/j",
        ):
            await get_score(client, reader, path)


# Bad input -------------------------------------------------------------------------------------


PATHS = [
    "company",
    "units/ops",
    "handoffs/kyc",
    "touchpoints/desk",
    "journeys/j",
    "partners/courier",
]


@pytest.fixture
async def scored(session) -> None:
    """One subject for each score endpoint."""
    await courier_world(session)
    await units(session, "mid")
    await make_handoff(session, key="kyc", from_unit="mid", to_unit="ops")


class TestBadInput:
    @pytest.mark.parametrize("path", PATHS)
    @pytest.mark.parametrize("start", [FROM, "2026-03-02T00:00:00+00:00"])
    async def test_from_not_before_to(self, client, keys, scored, path, start):
        response = await client.get(
            f"/v1/scores/{path}",
            params=window(**{"from": start, "to": FROM}),
            headers=await keys.reader(),
        )

        body = assert_problem(response, 422, "invalid")
        assert body["errors"][0]["loc"] == ["query", "from"]

    @pytest.mark.parametrize("name", ["from", "to", "as_of"])
    async def test_timestamp_without_offset(self, client, keys, scored, name):
        response = await client.get(
            "/v1/scores/handoffs/kyc",
            params=window(**{name: "2026-03-05T00:00:00"}),
            headers=await keys.reader(),
        )

        body = assert_problem(response, 422, "validation_failed")
        assert ["query", name] in [e["loc"] for e in body["errors"]]

    async def test_unknown_bucket(self, client, keys, scored):
        response = await client.get(
            "/v1/scores/company", params=window(bucket="year"), headers=await keys.reader()
        )

        body = assert_problem(response, 422, "validation_failed")
        assert body["errors"][0]["loc"] == ["query", "bucket"]

    async def test_offset_plus_sign_must_be_encoded(self, client, keys, scored):
        # A raw '+' in a query string is a space: the timestamp is malformed, not guessed.
        response = await client.get(
            "/v1/scores/handoffs/kyc?from=2026-03-01T00:00:00+00:00&to=2026-04-01T00:00:00Z"
            "&as_of=2026-03-20T00:00:00Z",
            headers=await keys.reader(),
        )
        assert_problem(response, 422, "validation_failed")
        response = await client.get(
            "/v1/scores/handoffs/kyc?from=2026-03-01T00:00:00%2B00:00&to=2026-04-01T00:00:00Z"
            "&as_of=2026-03-20T00:00:00Z",
            headers=await keys.reader(),
        )
        assert response.status_code == 200, response.text

    @pytest.mark.parametrize("path", ["scores/company", "scores/handoffs"])
    @pytest.mark.parametrize(
        ("name", "value"),
        [
            ("as_of", "0001-01-01T00:00:00Z"),
            ("as_of", "9999-12-31T23:59:59Z"),
            ("to", "0001-01-01T00:00:00Z"),
            ("to", "1899-12-31T23:59:59Z"),
            ("from", "9999-12-31T00:00:00Z"),
            ("as_of", "1900-01-01T00:00:00+00:01"),
            ("as_of", "9000-01-01T00:00:00.000001Z"),
        ],
    )
    async def test_an_instant_outside_the_supported_years_is_422_naming_it(
        self, client, keys, scored, path, name, value
    ):
        # A 90-day default window or a bucket step from such a moment leaves the calendar.
        params = {name: value}
        if name == "from":
            params["to"] = "9999-12-31T23:59:59Z"
        response = await client.get(f"/v1/{path}", params=params, headers=await keys.reader())

        body = assert_problem(response, 422, "validation_failed")
        assert ["query", name] in [e["loc"] for e in body["errors"]]
        assert "1900-01-01" in response.text

    @pytest.mark.parametrize("bucket", ["day", "month"])
    async def test_buckets_up_to_the_last_supported_instant(self, client, keys, scored, bucket):
        response = await client.get(
            "/v1/scores/company",
            params={
                "from": "8999-12-25T00:00:00-05:00",
                "to": "9000-01-01T00:00:00Z",
                "as_of": "9000-01-01T00:00:00Z",
                "bucket": bucket,
            },
            headers=await keys.reader(),
        )

        assert response.status_code == 200, response.text
        assert instant(response.json()["window"]["to"]) == datetime(9000, 1, 1, tzinfo=UTC)

    async def test_the_first_supported_instant_may_be_as_of(self, client, keys, scored):
        response = await client.get(
            "/v1/scores/company", params={"as_of": "1900-01-01T00:00:00Z"},
            headers=await keys.reader(),
        )

        assert response.status_code == 200, response.text
        window_read = response.json()["window"]
        assert instant(window_read["to"]) == datetime(1900, 1, 1, tzinfo=UTC)
        assert instant(window_read["from"]) == datetime(1900, 1, 1, tzinfo=UTC) - timedelta(days=90)

    @pytest.mark.parametrize("path", [p for p in PATHS if p != "company"])
    async def test_unknown_key(self, client, keys, scored, path):
        kind = path.split("/")[0]
        response = await client.get(
            f"/v1/scores/{kind}/no-such-key", params=window(), headers=await keys.reader()
        )

        assert_problem(response, 404, "not_found")
