"""REST: GET /v1/cases/{case_ref}, the customer's horizontal path across silos.

Every expected value is worked out by hand from the steps a test registers. Timestamps are in
January 2026, long past, so a step is overdue or on time regardless of the clock; where the
answer does depend on the clock (an open step's lateness, an open case's elapsed time) the test
brackets it between the clock read just before and just after the request.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone

from tests.factories import make_event, make_handoff, make_unit
from tests.problems import assert_problem

CASE = "case-4711"
HIDDEN = "(another unit)"

CEST = timezone(timedelta(hours=2))
MINUTE = timedelta(minutes=1)
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)

# The form durations are written in: the largest exact units, seconds to the microsecond.
DURATION = re.compile(
    r"^P(?:(?P<days>\d+)D)?(?:T(?:(?P<hours>\d+)H)?(?:(?P<minutes>\d+)M)?"
    r"(?:(?P<seconds>\d+)(?:\.(?P<micros>\d{1,6}))?S)?)?$"
)


def jan(day: int, hour: int = 9, minute: int = 0, tz: timezone = UTC) -> datetime:
    return datetime(2026, 1, day, hour, minute, tzinfo=tz)


def instant(value: str) -> datetime:
    parsed = datetime.fromisoformat(value)
    assert parsed.tzinfo is not None, f"{value} has no offset"
    return parsed


def duration(value: str) -> timedelta:
    """An ISO 8601 duration as the service writes it (checked), as a timedelta."""
    match = DURATION.match(value)
    assert match is not None and value not in ("P", "PT"), f"{value!r} is not an ISO 8601 duration"
    parts = match.groupdict()
    return timedelta(
        days=int(parts["days"] or 0),
        hours=int(parts["hours"] or 0),
        minutes=int(parts["minutes"] or 0),
        seconds=int(parts["seconds"] or 0),
        microseconds=int((parts["micros"] or "0").ljust(6, "0")),
    )


def now() -> datetime:
    return datetime.now(UTC)


async def units(session, *unit_keys: str, kind: str = "department") -> None:
    for key in unit_keys:
        await make_unit(session, key=key, kind=kind)


async def handoffs(session, *arcs: tuple[str, str, str]) -> None:
    """Handoffs (key, from_unit, to_unit), each expected within PT4H."""
    for key, from_unit, to_unit in arcs:
        await make_handoff(session, key=key, from_unit=from_unit, to_unit=to_unit)


async def step(
    session,
    handoff: str,
    start: datetime,
    took: timedelta | None = None,
    *,
    case: str | None = CASE,
    **fields,
):
    """An occurrence of ``handoff`` in the case, started at ``start`` and delivered ``took``
    later (open when ``took`` is None); due 4 hours after the start unless ``due_at`` is given."""
    delivered = None if took is None else start + took
    return await make_event(
        session, handoff, started_at=start, delivered_at=delivered, case_ref=case, **fields
    )


async def get_case(client, headers, ref: str = CASE) -> dict:
    response = await client.get(f"/v1/cases/{ref}", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert body["case_ref"] == ref
    assert [s["index"] for s in body["steps"]] == list(range(len(body["steps"])))
    return body


async def a_chain(session) -> None:
    """branch → cards → mortgage: two handoffs that follow on from each other."""
    await units(session, "branch", "cards", "mortgage")
    await handoffs(session, ("dispute", "branch", "cards"), ("block", "cards", "mortgage"))


# Steps -----------------------------------------------------------------------------------------


class TestStepOrder:
    async def test_steps_in_time_order_when_registered_out_of_order(self, client, keys, session):
        await a_chain(session)
        await handoffs(session, ("debit", "mortgage", "branch"))
        await step(session, "debit", jan(7), HOUR, external_id="third")
        await step(session, "dispute", jan(5), HOUR, external_id="first")
        await step(session, "block", jan(6), HOUR, external_id="second")

        body = await get_case(client, await keys.reader())

        assert [(s["external_id"], s["handoff"]) for s in body["steps"]] == [
            ("first", "dispute"),
            ("second", "block"),
            ("third", "debit"),
        ]
        assert [instant(s["started_at"]) for s in body["steps"]] == [jan(5), jan(6), jan(7)]

    async def test_offsets_are_compared_as_instants(self, client, keys, session):
        await a_chain(session)
        # 10:30 in CEST is 08:30 UTC: before the 09:00 UTC step although it reads later.
        await step(session, "block", jan(5, 9), HOUR, external_id="utc")
        await step(session, "dispute", jan(5, 10, 30, tz=CEST), 15 * MINUTE, external_id="cest")

        body = await get_case(client, await keys.reader())

        first, second = body["steps"]
        assert first["external_id"] == "cest"
        assert instant(first["started_at"]) == jan(5, 8, 30)
        assert instant(first["delivered_at"]) == jan(5, 8, 45)
        assert second["external_id"] == "utc"
        # 08:45 UTC delivered, 09:00 UTC started.
        assert second["wait_before"] == "PT15M"

    async def test_events_of_another_case_are_not_mixed_in(self, client, keys, session):
        await a_chain(session)
        await step(session, "dispute", jan(5), HOUR, external_id="mine-1")
        await step(session, "dispute", jan(5, 10), HOUR, case="case-other", external_id="other")
        await step(session, "block", jan(5, 11), HOUR, case=None, external_id="no-case")
        await step(session, "block", jan(5, 12), HOUR, case="case-47", external_id="prefix")
        await step(session, "block", jan(5, 13), HOUR, external_id="mine-2")

        body = await get_case(client, await keys.reader())

        assert [s["external_id"] for s in body["steps"]] == ["mine-1", "mine-2"]
        # The other cases' steps are not in the path, the waits or the totals either.
        assert body["steps"][1]["wait_before"] == "PT3H"
        assert body["path"] == ["branch", "cards", "mortgage"]
        assert body["elapsed"] == "PT5H"
        other = await get_case(client, await keys.reader(), "case-other")
        assert [s["external_id"] for s in other["steps"]] == ["other"]


class TestStepFields:
    async def test_every_field_of_a_step(self, client, keys, session):
        await a_chain(session)
        await step(
            session,
            "dispute",
            jan(5, 9),
            6 * HOUR + 15 * MINUTE,
            external_id="dispute-1",
            quality=2,
            rework=True,
            customer_impact=True,
            note="Outcome letter unclear",
        )

        body = await get_case(client, await keys.reader())

        (only,) = body["steps"]
        moments = [instant(only.pop(k)) for k in ("started_at", "due_at", "delivered_at")]
        assert moments == [jan(5, 9), jan(5, 13), jan(5, 15, 15)]
        assert only == {
            "index": 0,
            "visible": True,
            "handoff": "dispute",
            "external_id": "dispute-1",
            "from_unit": "branch",
            "to_unit": "cards",
            "wait_before": None,
            # Due 13:00 (started + the handoff's PT4H), delivered 15:15.
            "late_by": "PT2H15M",
            "quality": 2,
            "rework": True,
            "customer_impact": True,
            "note": "Outcome letter unclear",
        }

    async def test_timestamps_of_a_step(self, client, keys, session):
        await a_chain(session)
        await step(session, "dispute", jan(5, 9, tz=CEST), 3 * HOUR, due_at=jan(5, 10, tz=CEST))

        (only,) = (await get_case(client, await keys.reader()))["steps"]

        assert instant(only["started_at"]) == jan(5, 7)
        assert instant(only["due_at"]) == jan(5, 8)
        assert instant(only["delivered_at"]) == jan(5, 10)
        assert only["late_by"] == "PT2H"

    async def test_an_open_step(self, client, keys, session):
        await a_chain(session)
        await step(session, "dispute", jan(5), external_id="open", due_at=jan(5, 11))

        (only,) = (await get_case(client, await keys.reader()))["steps"]

        assert only["external_id"] == "open"
        assert only["delivered_at"] is None
        assert instant(only["due_at"]) == jan(5, 11)
        assert (only["quality"], only["rework"], only["customer_impact"], only["note"]) == (
            None,
            False,
            False,
            None,
        )


class TestWaitBefore:
    async def test_none_before_the_first_step(self, client, keys, session):
        await a_chain(session)
        await step(session, "dispute", jan(5), HOUR)

        (only,) = (await get_case(client, await keys.reader()))["steps"]

        assert only["wait_before"] is None

    async def test_gap_between_the_previous_delivery_and_this_start(self, client, keys, session):
        await a_chain(session)
        await step(session, "dispute", jan(5, 9), 90 * MINUTE)  # delivered 10:30
        await step(session, "block", jan(5, 12), HOUR)  # started 12:00

        body = await get_case(client, await keys.reader())

        assert [s["wait_before"] for s in body["steps"]] == [None, "PT1H30M"]

    async def test_gap_of_days(self, client, keys, session):
        await a_chain(session)
        await step(session, "dispute", jan(5, 9), HOUR)  # delivered 5 Jan 10:00
        await step(session, "block", jan(7, 12, 45), HOUR)  # started 7 Jan 12:45

        body = await get_case(client, await keys.reader())

        assert body["steps"][1]["wait_before"] == "P2DT2H45M"
        assert duration(body["steps"][1]["wait_before"]) == 2 * DAY + 2 * HOUR + 45 * MINUTE

    async def test_zero_when_the_next_step_starts_at_the_delivery(self, client, keys, session):
        await a_chain(session)
        await step(session, "dispute", jan(5, 9), HOUR)
        await step(session, "block", jan(5, 10), HOUR)

        body = await get_case(client, await keys.reader())

        assert body["steps"][1]["wait_before"] == "PT0S"

    async def test_none_for_a_step_that_starts_before_the_previous_delivery(
        self, client, keys, session
    ):
        await a_chain(session)
        await step(session, "dispute", jan(5, 9), 3 * HOUR)  # delivered 12:00
        await step(session, "block", jan(5, 11), HOUR)  # started 11:00: overlaps

        body = await get_case(client, await keys.reader())

        assert [s["wait_before"] for s in body["steps"]] == [None, None]

    async def test_measured_from_the_latest_delivery_so_far(self, client, keys, session):
        await a_chain(session)
        await handoffs(session, ("debit", "mortgage", "branch"))
        await step(session, "dispute", jan(5, 9), 6 * HOUR)  # 09:00–15:00
        await step(session, "block", jan(5, 10), HOUR)  # 10:00–11:00, inside the first
        await step(session, "debit", jan(5, 16), HOUR)  # 16:00

        body = await get_case(client, await keys.reader())

        # The case was still being worked on (the first step) until 15:00, not idle since 11:00.
        assert [s["wait_before"] for s in body["steps"]] == [None, None, "PT1H"]

    async def test_none_while_an_earlier_step_is_still_open(self, client, keys, session):
        await a_chain(session)
        await handoffs(session, ("debit", "mortgage", "branch"))
        await step(session, "dispute", jan(5, 9), HOUR)  # delivered 10:00
        await step(session, "block", jan(5, 11))  # started 11:00, never delivered
        await step(session, "debit", jan(8, 9), HOUR)  # started three days later

        body = await get_case(client, await keys.reader())

        # The second step waited an hour after the first delivery; the third started while
        # the second was still open: no idle gap before it.
        assert [s["wait_before"] for s in body["steps"]] == [None, "PT1H", None]


class TestLateBy:
    async def test_none_when_delivered_before_due(self, client, keys, session):
        await a_chain(session)
        await step(session, "dispute", jan(5, 9), 3 * HOUR + 59 * MINUTE)

        (only,) = (await get_case(client, await keys.reader()))["steps"]

        assert only["late_by"] is None

    async def test_none_when_delivered_exactly_at_due(self, client, keys, session):
        await a_chain(session)
        await step(session, "dispute", jan(5, 9), 4 * HOUR)

        (only,) = (await get_case(client, await keys.reader()))["steps"]

        assert instant(only["delivered_at"]) == instant(only["due_at"]) == jan(5, 13)
        assert only["late_by"] is None

    async def test_delivered_after_due(self, client, keys, session):
        await a_chain(session)
        await step(session, "dispute", jan(5, 9), 2 * HOUR, due_at=jan(5, 9, 30))
        await step(session, "block", jan(6, 9), 2 * DAY + 5 * HOUR + 30 * MINUTE)

        body = await get_case(client, await keys.reader())

        # 11:00 − 09:30; then 8 Jan 14:30 − 6 Jan 13:00.
        assert [s["late_by"] for s in body["steps"]] == ["PT1H30M", "P2DT1H30M"]

    async def test_an_undelivered_step_past_due_is_late_until_now(self, client, keys, session):
        await a_chain(session)
        await step(session, "dispute", jan(5, 9))  # due 13:00, long past

        before = now()
        (only,) = (await get_case(client, await keys.reader()))["steps"]
        after = now()

        late_by = duration(only["late_by"])
        assert before - jan(5, 13) <= late_by <= after - jan(5, 13)

    async def test_none_for_an_undelivered_step_not_yet_due(self, client, keys, session):
        await a_chain(session)
        await step(session, "dispute", jan(5, 9), due_at=datetime(2099, 1, 1, tzinfo=UTC))

        (only,) = (await get_case(client, await keys.reader()))["steps"]

        assert only["delivered_at"] is None
        assert only["late_by"] is None


# The path, transfers and ping-pongs ------------------------------------------------------------


class TestPath:
    async def test_one_step_is_one_transfer(self, client, keys, session):
        await a_chain(session)
        await step(session, "dispute", jan(5), HOUR)

        body = await get_case(client, await keys.reader())

        assert body["path"] == ["branch", "cards"]
        assert body["transfers"] == 1

    async def test_a_unit_handing_on_what_it_received_appears_once(self, client, keys, session):
        await a_chain(session)
        await step(session, "dispute", jan(5), HOUR)  # branch → cards
        await step(session, "block", jan(6), HOUR)  # cards → mortgage

        body = await get_case(client, await keys.reader())

        assert body["path"] == ["branch", "cards", "mortgage"]
        assert body["transfers"] == 2

    async def test_steps_that_do_not_follow_on_are_joined_by_a_transfer(
        self, client, keys, session
    ):
        await units(session, "branch", "cards", "fraud", "mortgage")
        await handoffs(session, ("dispute", "branch", "cards"), ("check", "fraud", "mortgage"))
        await step(session, "dispute", jan(5), HOUR)
        await step(session, "check", jan(6), HOUR)

        body = await get_case(client, await keys.reader())

        # The case moved from cards to fraud between the two steps.
        assert body["path"] == ["branch", "cards", "fraud", "mortgage"]
        assert body["transfers"] == 3

    async def test_the_same_handoff_twice_in_a_row_sends_the_case_back(self, client, keys, session):
        await a_chain(session)
        await step(session, "dispute", jan(5), HOUR)
        await step(session, "dispute", jan(6), HOUR)

        body = await get_case(client, await keys.reader())

        # branch → cards, then branch again (the case came back to it) → cards.
        assert body["path"] == ["branch", "cards", "branch", "cards"]
        assert body["transfers"] == 3
        assert body["ping_pongs"] == 2


class TestPingPong:
    async def test_a_return_to_the_unit_just_left(self, client, keys, session):
        await units(session, "branch", "cards")
        await handoffs(session, ("dispute", "branch", "cards"), ("outcome", "cards", "branch"))
        await step(session, "dispute", jan(5), HOUR)
        await step(session, "outcome", jan(6), HOUR)

        body = await get_case(client, await keys.reader())

        assert body["path"] == ["branch", "cards", "branch"]
        assert body["transfers"] == 2
        assert body["ping_pongs"] == 1
        assert body["ping_pong_units"] == [["branch", "cards", "branch"]]

    async def test_none_along_a_straight_path(self, client, keys, session):
        await a_chain(session)
        await step(session, "dispute", jan(5), HOUR)
        await step(session, "block", jan(6), HOUR)

        body = await get_case(client, await keys.reader())

        assert body["path"] == ["branch", "cards", "mortgage"]
        assert body["ping_pongs"] == 0
        assert body["ping_pong_units"] == []

    async def test_none_for_a_return_after_a_detour(self, client, keys, session):
        await a_chain(session)
        await handoffs(session, ("debit", "mortgage", "branch"))
        await step(session, "dispute", jan(5), HOUR)
        await step(session, "block", jan(6), HOUR)
        await step(session, "debit", jan(7), HOUR)

        body = await get_case(client, await keys.reader())

        # branch → cards → mortgage → branch: a loop, but no unit got the case straight back.
        assert body["path"] == ["branch", "cards", "mortgage", "branch"]
        assert body["transfers"] == 3
        assert body["ping_pongs"] == 0
        assert body["ping_pong_units"] == []

    async def test_several_returns_to_the_same_hub(self, client, keys, session):
        await units(session, "branch", "cards", "fraud")
        await handoffs(
            session,
            ("dispute", "branch", "cards"),
            ("outcome", "cards", "branch"),
            ("check", "branch", "fraud"),
            ("verdict", "fraud", "branch"),
        )
        await step(session, "dispute", jan(5), HOUR)
        await step(session, "outcome", jan(6), HOUR)
        await step(session, "check", jan(7), HOUR)
        await step(session, "verdict", jan(8), HOUR)

        body = await get_case(client, await keys.reader())

        assert body["path"] == ["branch", "cards", "branch", "fraud", "branch"]
        assert body["transfers"] == 4
        assert body["ping_pongs"] == 2
        assert body["ping_pong_units"] == [
            ["branch", "cards", "branch"],
            ["branch", "fraud", "branch"],
        ]

    async def test_back_and_forth_counts_every_return(self, client, keys, session):
        await units(session, "branch", "cards")
        await handoffs(session, ("dispute", "branch", "cards"), ("outcome", "cards", "branch"))
        await step(session, "dispute", jan(5), HOUR)
        await step(session, "outcome", jan(6), HOUR)
        await step(session, "dispute", jan(7), HOUR)

        body = await get_case(client, await keys.reader())

        assert body["path"] == ["branch", "cards", "branch", "cards"]
        assert body["transfers"] == 3
        assert body["ping_pongs"] == 2
        assert body["ping_pong_units"] == [
            ["branch", "cards", "branch"],
            ["cards", "branch", "cards"],
        ]


# Totals ----------------------------------------------------------------------------------------


class TestElapsed:
    async def test_first_start_to_last_delivery(self, client, keys, session):
        await a_chain(session)
        await step(session, "dispute", jan(5, 9), HOUR)
        await step(session, "block", jan(7, 11), 90 * MINUTE)  # delivered 7 Jan 12:30

        body = await get_case(client, await keys.reader())

        assert body["elapsed"] == "P2DT3H30M"
        assert duration(body["elapsed"]) == jan(7, 12, 30) - jan(5, 9)
        assert body["open_steps"] == 0

    async def test_to_the_latest_delivery_not_the_last_steps(self, client, keys, session):
        await a_chain(session)
        await step(session, "dispute", jan(5, 9), 2 * DAY)  # delivered 7 Jan 09:00
        await step(session, "block", jan(5, 10), HOUR)  # delivered 5 Jan 11:00

        body = await get_case(client, await keys.reader())

        assert body["elapsed"] == "P2D"
        assert body["open_steps"] == 0

    async def test_in_hours_and_minutes_within_a_day(self, client, keys, session):
        await a_chain(session)
        await step(session, "dispute", jan(5, 9), 45 * MINUTE)

        body = await get_case(client, await keys.reader())

        assert body["elapsed"] == "PT45M"

    async def test_an_open_case_runs_until_now(self, client, keys, session):
        await a_chain(session)
        await handoffs(session, ("debit", "mortgage", "branch"))
        await step(session, "dispute", jan(5, 9), HOUR)
        await step(session, "block", jan(5, 11))
        await step(session, "debit", jan(6, 9), due_at=datetime(2099, 1, 1, tzinfo=UTC))

        before = now()
        body = await get_case(client, await keys.reader())
        after = now()

        assert body["open_steps"] == 2
        assert before - jan(5, 9) <= duration(body["elapsed"]) <= after - jan(5, 9)


# Errors and access -----------------------------------------------------------------------------


class TestUnknownCase:
    async def test_unknown_case_ref_is_404(self, client, keys, session):
        await a_chain(session)
        await step(session, "dispute", jan(5), HOUR, case="case-other")
        await step(session, "dispute", jan(6), HOUR, case=None)

        response = await client.get(f"/v1/cases/{CASE}", headers=await keys.reader())

        body = assert_problem(response, 404, "not_found")
        assert body["resource"] == "case"
        assert body["key"] == CASE
        assert CASE in body["detail"]

    async def test_a_malformed_case_ref_is_422(self, client, keys):
        response = await client.get("/v1/cases/-leading-dash", headers=await keys.reader())

        body = assert_problem(response, 422, "validation_failed")
        assert ["path", "case_ref"] in [e["loc"] for e in body["errors"]]


class TestAccess:
    async def test_reader_can_read(self, client, keys, session):
        await a_chain(session)
        await step(session, "dispute", jan(5), HOUR, external_id="d1")

        body = await get_case(client, await keys.reader())

        assert [s["external_id"] for s in body["steps"]] == ["d1"]

    async def test_no_key_is_401(self, client, keys, session):
        await a_chain(session)
        await step(session, "dispute", jan(5), HOUR)

        response = await client.get(f"/v1/cases/{CASE}")

        assert_problem(response, 401, "unauthenticated")
        assert response.headers["www-authenticate"].startswith("Bearer")

    async def test_a_bad_key_is_401(self, client, keys, session):
        await a_chain(session)
        await step(session, "dispute", jan(5), HOUR)

        response = await client.get(
            f"/v1/cases/{CASE}", headers={"Authorization": "Bearer not-a-key"}
        )

        assert_problem(response, 401, "unauthenticated")


# Partner keys ----------------------------------------------------------------------------------


async def a_parcel_case(session) -> None:
    """A parcel case on 5 Jan through the courier (a partner), every step delivered:

    0  order       branch → warehouse   09–10  due 13
    1  pickup      warehouse → courier  11–13  due 12 (late 1h)
    2  delivery    courier → branch     14–19  due 18 (late 1h)
    3  redelivery  branch → courier     20–21  due 00 (next day)
    4  complaint   branch → warehouse   22–23  due 02 (next day)
    """
    await units(session, "branch", "warehouse")
    await units(session, "courier", kind="partner")
    await handoffs(
        session,
        ("order", "branch", "warehouse"),
        ("pickup", "warehouse", "courier"),
        ("delivery", "courier", "branch"),
        ("redelivery", "branch", "courier"),
        ("complaint", "branch", "warehouse"),
    )
    await step(session, "order", jan(5, 9), HOUR, external_id="o1", quality=4)
    await step(session, "pickup", jan(5, 11), 2 * HOUR, external_id="p1", due_at=jan(5, 12))
    await step(
        session,
        "delivery",
        jan(5, 14),
        5 * HOUR,
        external_id="d1",
        quality=2,
        customer_impact=True,
        note="Left at the wrong door",
    )
    await step(session, "redelivery", jan(5, 20), HOUR, external_id="r1", quality=5)
    await step(
        session, "complaint", jan(5, 22), HOUR, external_id="c1", rework=True, note="Internal"
    )


PARCEL_PATH = ["branch", "warehouse", "courier", "branch", "courier", "branch", "warehouse"]


class TestParcelCaseForStaff:
    async def test_the_whole_path_with_names(self, client, keys, session):
        await a_parcel_case(session)

        body = await get_case(client, await keys.reader())

        assert [s["handoff"] for s in body["steps"]] == [
            "order",
            "pickup",
            "delivery",
            "redelivery",
            "complaint",
        ]
        assert all(s["visible"] for s in body["steps"])
        assert [s["wait_before"] for s in body["steps"]] == [None, "PT1H", "PT1H", "PT1H", "PT1H"]
        assert [s["late_by"] for s in body["steps"]] == [None, "PT1H", "PT1H", None, None]
        assert body["path"] == PARCEL_PATH
        assert body["transfers"] == 6
        assert body["ping_pongs"] == 2
        assert body["ping_pong_units"] == [
            ["courier", "branch", "courier"],
            ["branch", "courier", "branch"],
        ]
        assert body["elapsed"] == "PT14H"
        assert body["open_steps"] == 0


class TestPartnerInTheCase:
    async def test_sees_its_own_steps_in_full(self, client, keys, session):
        await a_parcel_case(session)

        body = await get_case(client, await keys.partner("courier"))

        own = {s["index"]: s for s in body["steps"] if s["visible"]}
        assert sorted(own) == [1, 2, 3]
        assert [(own[i]["handoff"], own[i]["from_unit"], own[i]["to_unit"]) for i in own] == [
            ("pickup", "warehouse", "courier"),
            ("delivery", "courier", "branch"),
            ("redelivery", "branch", "courier"),
        ]
        delivery = own[2]
        assert delivery["external_id"] == "d1"
        assert instant(delivery["started_at"]) == jan(5, 14)
        assert instant(delivery["due_at"]) == jan(5, 18)
        assert instant(delivery["delivered_at"]) == jan(5, 19)
        assert delivery["wait_before"] == "PT1H"
        assert delivery["late_by"] == "PT1H"
        assert (delivery["quality"], delivery["rework"], delivery["customer_impact"]) == (
            2,
            False,
            True,
        )
        assert delivery["note"] == "Left at the wrong door"
        assert own[1]["late_by"] == "PT1H"
        assert own[3]["quality"] == 5

    async def test_sees_other_units_steps_without_detail(self, client, keys, session):
        await a_parcel_case(session)

        body = await get_case(client, await keys.partner("courier"))

        hidden = [s for s in body["steps"] if not s["visible"]]
        assert [s["index"] for s in hidden] == [0, 4]
        for s, start, wait in zip(hidden, [jan(5, 9), jan(5, 22)], [None, "PT1H"], strict=True):
            moments = (instant(s.pop("started_at")), instant(s.pop("delivered_at")))
            assert moments == (start, start + HOUR)
            assert s == {
                "index": s["index"],
                "visible": False,
                "handoff": None,
                "external_id": None,
                "from_unit": None,
                "to_unit": None,
                "due_at": None,
                "wait_before": wait,
                "late_by": None,
                "quality": None,
                "rework": None,
                "customer_impact": None,
                "note": None,
            }

    async def test_other_units_names_are_hidden_in_the_path(self, client, keys, session):
        await a_parcel_case(session)

        body = await get_case(client, await keys.partner("courier"))

        assert body["path"] == [HIDDEN, HIDDEN, "courier", HIDDEN, "courier", HIDDEN, HIDDEN]
        assert body["transfers"] == 6
        assert body["ping_pongs"] == 2
        assert body["ping_pong_units"] == []  # they would name the other units
        # Nothing of the hidden steps leaks anywhere in the answer (the courier's own steps
        # do name branch and warehouse, as the other end of its handoffs).
        assert not {"order", "complaint", "o1", "c1", "Internal"} & set(_strings(body))

    async def test_sees_the_totals(self, client, keys, session):
        await a_parcel_case(session)

        body = await get_case(client, await keys.partner("courier"))

        assert body["case_ref"] == CASE
        assert len(body["steps"]) == 5
        assert body["elapsed"] == "PT14H"
        assert body["open_steps"] == 0

    async def test_a_unit_that_only_receives_takes_part(self, client, keys, session):
        await units(session, "warehouse")
        await units(session, "supplier", kind="supplier")
        await handoffs(session, ("restock", "warehouse", "supplier"))
        await step(session, "restock", jan(5), HOUR, external_id="s1")

        body = await get_case(client, await keys.partner("supplier"))

        (only,) = body["steps"]
        assert only["visible"] is True
        assert (only["handoff"], only["from_unit"], only["to_unit"]) == (
            "restock",
            "warehouse",
            "supplier",
        )
        assert body["path"] == [HIDDEN, "supplier"]


class TestPartnerNotInTheCase:
    async def test_is_404_exactly_like_an_unknown_case(self, client, keys, session):
        await a_parcel_case(session)
        await units(session, "rival", kind="partner")

        response = await client.get(f"/v1/cases/{CASE}", headers=await keys.partner("rival"))
        unknown = await client.get("/v1/cases/case-nope", headers=await keys.reader())

        body = assert_problem(response, 404, "not_found")
        expected = assert_problem(unknown, 404, "not_found")
        assert body == _replaced(expected, "case-nope", CASE)

    async def test_is_404_even_with_steps_in_another_case(self, client, keys, session):
        await a_parcel_case(session)
        await units(session, "rival", kind="channel")
        await handoffs(session, ("resale", "warehouse", "rival"))
        await step(session, "resale", jan(5, 12), HOUR, case="case-rival", external_id="x1")

        response = await client.get(f"/v1/cases/{CASE}", headers=await keys.partner("rival"))
        own = await get_case(client, await keys.partner("rival"), "case-rival")

        body = assert_problem(response, 404, "not_found")
        assert (body["resource"], body["key"]) == ("case", CASE)
        assert [s["external_id"] for s in own["steps"]] == ["x1"]

    async def test_an_unknown_case_is_404_too(self, client, keys, session):
        await units(session, "allies", kind="alliance")

        response = await client.get("/v1/cases/case-nope", headers=await keys.partner("allies"))

        body = assert_problem(response, 404, "not_found")
        assert (body["resource"], body["key"]) == ("case", "case-nope")


def _strings(value) -> list[str]:
    """Every string anywhere in a JSON value (keys excluded)."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


def _replaced(value, old: str, new: str):
    if isinstance(value, str):
        return value.replace(old, new)
    if isinstance(value, dict):
        return {k: _replaced(v, old, new) for k, v in value.items()}
    if isinstance(value, list):
        return [_replaced(v, old, new) for v in value]
    return value
