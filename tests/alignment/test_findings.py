"""REST: GET /v1/findings, the eleven goal-silo gotchas of docs/method.md §9.

For every rule there is a test where it fires, asserting the whole finding (rule, severity,
subject, a plain-text explanation and remedy, the evidence), and a test for each boundary of
its docs/method.md wording where it does not. Rule tests ask for their rule only (``?rule=``), so
the other rules the same data trips do not get in the way. Findings are stored and kept
current by the writes; buffering judges the 90 days before now, so its tests place
occurrences relative to the clock.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

import pytest

from service.alignment import finding_service
from service.api_keys.service import SYSTEM
from service.goals import service as goals_service
from tests.factories import (
    make_agreement,
    make_event,
    make_goal,
    make_handoff,
    make_joint_goal,
    make_journey,
    make_metric,
    make_touchpoint,
    make_unit,
)
from tests.problems import assert_problem

HOUR = timedelta(hours=1)
DAY = timedelta(days=1)

RULES = [
    "upstream-unlinked",
    "buffering",
    "ends-without-means",
    "survey-fatigue",
    "enticement-only",
    "investor-only",
    "heroics",
    "partner-financial-only",
    "unfunded-counterweight",
    "promise-overrun",
    "no-timing-standard",
]


def days_ago(days: float) -> datetime:
    """A moment ``days`` before now, to the second (buffering's window ends now)."""
    return (datetime.now(UTC) - days * DAY).replace(microsecond=0)


# Requests and assertions ---------------------------------------------------------------------


async def list_findings(client, headers, **params) -> dict:
    response = await client.get("/v1/findings", params=params, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


async def findings(client, keys, rule: str) -> list[dict]:
    """Every finding of one rule, read with a reader key (one page: the tests make few)."""
    body = await list_findings(client, await keys.reader(), rule=rule)
    assert body["next_cursor"] is None
    assert all(f["rule"] == rule for f in body["items"])
    return body["items"]


async def sweep_everything(session) -> None:
    """One full turn of the background sweep, in the test's transaction."""
    cursor = finding_service.SweepCursor()
    for _ in finding_service.SWEEP_ORDER:
        while await finding_service.sweep(session, cursor, batch=50) == 50:
            pass


def subjects(items: list[dict]) -> list[str]:
    return [f["subject"]["key"] for f in items]


def assert_plain(text: str) -> None:
    """A sentence or two for a person: no markup, no line breaks, no template holes."""
    assert isinstance(text, str)
    assert len(text) > 20
    assert text == text.strip()
    assert "\n" not in text
    assert not set(text) & set("`*#<>{}[]")


def assert_finding(
    finding: dict,
    *,
    rule: str,
    severity: int,
    subject: str,
    key: str,
    evidence: dict,
    mentions: tuple[str, ...] = (),
) -> None:
    assert finding["rule"] == rule
    assert finding["severity"] == severity
    assert finding["subject"] == {"type": subject, "key": key}
    assert finding["evidence"] == evidence
    assert_plain(finding["explanation"])
    assert_plain(finding["remedy"])
    assert finding["explanation"] != finding["remedy"]
    for word in mentions:
        assert word in finding["explanation"]


# Building blocks -----------------------------------------------------------------------------


async def units(session, *unit_keys: str, kind: str = "department") -> None:
    for key in unit_keys:
        await make_unit(session, key=key, name=key.title(), kind=kind)


async def touchpoint(session, key: str, owner: str, journey: str | None = None, **fields):
    """A touchpoint owned by ``owner``, on a new journey unless ``journey`` (a key) is given."""
    journey = journey or (await make_journey(session)).key
    return await make_touchpoint(
        session, key=key, owner=owner, journey=journey, stage="discover", **fields
    )


async def metric(session, kind: str, key: str | None = None) -> str:
    return (await make_metric(session, kind=kind, **({"key": key} if key else {}))).key


async def occurrences(session, handoff: str, count: int, impacted: int, first: datetime) -> None:
    """``count`` occurrences due an hour apart from ``first``; the first ``impacted`` of them
    reached the customer."""
    for n in range(count):
        due = first + n * HOUR
        await make_event(
            session, handoff, started_at=due - 4 * HOUR, due_at=due, customer_impact=n < impacted
        )


# Ways a goal of ``owner`` is customer-linked (docs/method.md §3, linked(g)); each needs a
# touchpoint "desk" owned by "front".


async def names_a_touchpoint(session, owner: str) -> None:
    await make_goal(session, owner=owner, touchpoints=["desk"])


async def measures_a_survey_score(session, owner: str) -> None:
    await make_goal(session, owner=owner, metric=await metric(session, "survey_score"))


async def measures_customer_effort(session, owner: str) -> None:
    await make_goal(
        session, owner=owner, metric=await metric(session, "customer_effort"), direction="decrease"
    )


async def contributes_to_a_touchpoint_goal(session, owner: str) -> None:
    await make_goal(session, key="front-desk", owner="front", touchpoints=["desk"])
    await make_goal(session, owner=owner, kind="means", contributes_to=["front-desk"])


async def contributes_through_two_hops(session, owner: str) -> None:
    await make_goal(session, key="front-desk", owner="front", touchpoints=["desk"])
    await make_goal(session, key="front-mid", owner="front", contributes_to=["front-desk"])
    await make_goal(session, owner=owner, kind="means", contributes_to=["front-mid"])


LINKS: dict[str, Callable[..., Awaitable[None]]] = {
    "names-a-touchpoint": names_a_touchpoint,
    "survey-score": measures_a_survey_score,
    "customer-effort": measures_customer_effort,
    "contributes-to-a-touchpoint-goal": contributes_to_a_touchpoint_goal,
    "two-hops-to-a-touchpoint-goal": contributes_through_two_hops,
}


# upstream-unlinked ---------------------------------------------------------------------------


async def far_from_the_customer(session) -> None:
    """front owns the desk; ops provides kyc to it and owns no touchpoint."""
    await make_unit(session, key="ops", name="Operations")
    await units(session, "front")
    await touchpoint(session, "desk", "front")
    await make_handoff(session, key="kyc", from_unit="ops", to_unit="front", touchpoint="desk")


class TestUpstreamUnlinked:
    RULE = "upstream-unlinked"

    async def test_fires_for_a_provider_with_internal_goals_only(self, client, keys, session):
        await far_from_the_customer(session)
        await make_handoff(session, key="reports", from_unit="ops", to_unit="front")
        # Retired: no longer something ops provides, so not in the evidence.
        await make_handoff(
            session, key="old-feed", from_unit="ops", to_unit="front", status="retired"
        )
        await make_goal(session, key="ops-internal", owner="ops")
        # A chain to a goal that names no touchpoint is no customer link.
        await make_goal(session, key="ops-target", owner="ops")
        await make_goal(session, owner="ops", kind="means", contributes_to=["ops-target"])

        (finding,) = await findings(client, keys, self.RULE)

        assert_finding(
            finding,
            rule=self.RULE,
            severity=2,
            subject="unit",
            key="ops",
            evidence={"provides": ["kyc", "reports"]},
            mentions=("Operations",),
        )

    async def test_fires_for_a_provider_without_goals(self, client, keys, session):
        await far_from_the_customer(session)

        assert subjects(await findings(client, keys, self.RULE)) == ["ops"]

    async def test_not_for_a_touchpoint_owner(self, client, keys, session):
        await far_from_the_customer(session)
        await touchpoint(session, "portal", "ops")

        assert await findings(client, keys, self.RULE) == []

    async def test_not_for_a_unit_that_provides_no_handoffs(self, client, keys, session):
        await far_from_the_customer(session)
        # branch only receives; legal has no handoffs at all. Only ops fires.
        await units(session, "branch", "legal")
        await make_handoff(session, key="prep", from_unit="ops", to_unit="branch")

        (finding,) = await findings(client, keys, self.RULE)

        assert finding["subject"] == {"type": "unit", "key": "ops"}
        assert finding["evidence"] == {"provides": ["kyc", "prep"]}

    async def test_not_for_a_unit_whose_handoffs_are_all_retired(self, client, keys, session):
        await units(session, "ops", "front")
        await touchpoint(session, "desk", "front")
        await make_handoff(session, key="kyc", from_unit="ops", to_unit="front", status="retired")

        assert await findings(client, keys, self.RULE) == []

    @pytest.mark.parametrize("link", LINKS.values(), ids=LINKS.keys())
    async def test_not_for_a_unit_with_a_customer_linked_goal(self, client, keys, session, link):
        await far_from_the_customer(session)
        await make_goal(session, owner="ops")  # an internal goal beside it changes nothing
        await link(session, "ops")

        assert await findings(client, keys, self.RULE) == []

    async def test_a_linked_goal_that_is_not_active_does_not_count(self, client, keys, session):
        await far_from_the_customer(session)
        await make_goal(session, owner="ops", touchpoints=["desk"], status="retired")
        await make_goal(
            session, owner="ops", metric=await metric(session, "survey_score"), status="proposed"
        )

        assert subjects(await findings(client, keys, self.RULE)) == ["ops"]


# buffering -----------------------------------------------------------------------------------


async def kyc(session) -> None:
    await units(session, "ops", "branch")
    await make_handoff(session, key="kyc", from_unit="ops", to_unit="branch")


class TestBuffering:
    RULE = "buffering"

    async def test_fires_at_exactly_ten_percent_over_exactly_ten_events(
        self, client, keys, session
    ):
        await kyc(session)
        await occurrences(session, "kyc", count=10, impacted=1, first=days_ago(30))

        (finding,) = await findings(client, keys, self.RULE)

        assert_finding(
            finding,
            rule=self.RULE,
            severity=2,
            subject="handoff",
            key="kyc",
            evidence={"buffer_rate": 0.1, "events": 10, "customer_impact": 1},
            mentions=("1 of 10", "10%", "branch", "ops"),
        )

    async def test_a_quarter_or_more_is_most_severe(self, client, keys, session):
        await kyc(session)
        await occurrences(session, "kyc", count=12, impacted=3, first=days_ago(30))

        (finding,) = await findings(client, keys, self.RULE)

        assert finding["severity"] == 3
        assert finding["evidence"] == {"buffer_rate": 0.25, "events": 12, "customer_impact": 3}

    async def test_not_over_nine_events(self, client, keys, session):
        await kyc(session)
        await occurrences(session, "kyc", count=9, impacted=1, first=days_ago(30))  # 11%

        assert await findings(client, keys, self.RULE) == []

    async def test_not_below_ten_percent(self, client, keys, session):
        await kyc(session)
        await occurrences(session, "kyc", count=11, impacted=1, first=days_ago(30))  # 9.1%

        assert await findings(client, keys, self.RULE) == []

    async def test_only_events_due_in_the_last_90_days_count(self, client, keys, session):
        await kyc(session)
        await occurrences(session, "kyc", count=9, impacted=1, first=days_ago(30))
        # Due after now and more than 90 days ago: outside, though they would make 11 events
        # with 3 reaching the customer.
        await occurrences(session, "kyc", count=1, impacted=1, first=days_ago(-1))
        await occurrences(session, "kyc", count=1, impacted=1, first=days_ago(91))

        assert await findings(client, keys, self.RULE) == []

    async def test_an_event_due_just_inside_the_window_counts(self, client, keys, session):
        await kyc(session)
        await occurrences(session, "kyc", count=9, impacted=0, first=days_ago(30))
        await occurrences(session, "kyc", count=1, impacted=1, first=days_ago(89.9))

        (finding,) = await findings(client, keys, self.RULE)

        assert finding["evidence"] == {"buffer_rate": 0.1, "events": 10, "customer_impact": 1}

    async def test_the_window_moves_with_the_clock(self, client, keys, session, monkeypatch):
        await kyc(session)
        await occurrences(session, "kyc", count=10, impacted=1, first=days_ago(80))
        (opened,) = await findings(client, keys, self.RULE)

        # Eleven days on, those occurrences are older than 90 days: the next full turn of
        # the sweep clears the finding, keeping its id.
        later = datetime.now(UTC) + 11 * DAY
        monkeypatch.setattr(finding_service, "utcnow", lambda: later)
        await sweep_everything(session)

        assert await findings(client, keys, self.RULE) == []
        body = await list_findings(client, await keys.reader(), rule=self.RULE, status="cleared")
        (cleared,) = body["items"]
        assert cleared["id"] == opened["id"]
        assert cleared["status"] == "cleared"
        assert cleared["cleared_at"] is not None

    async def test_each_handoff_is_judged_on_its_own_events(self, client, keys, session):
        await kyc(session)
        await make_handoff(session, key="brief", from_unit="ops", to_unit="branch")
        await occurrences(session, "kyc", count=5, impacted=1, first=days_ago(30))
        await occurrences(session, "brief", count=5, impacted=1, first=days_ago(30))

        assert await findings(client, keys, self.RULE) == []


# ends-without-means --------------------------------------------------------------------------


class TestEndsWithoutMeans:
    RULE = "ends-without-means"

    async def test_fires_for_an_end_with_no_lever(self, client, keys, session):
        await units(session, "sales")
        await make_metric(session, key="revenue", kind="operational")
        await make_goal(session, key="sales-revenue", owner="sales", metric="revenue", kind="ends")

        (finding,) = await findings(client, keys, self.RULE)

        assert_finding(
            finding,
            rule=self.RULE,
            severity=2,
            subject="goal",
            key="sales-revenue",
            evidence={"owner": "sales", "metric": "revenue"},
            mentions=("sales-revenue", "revenue"),
        )

    async def test_cleared_by_a_means_goal_contributing_to_it(self, client, keys, session):
        await make_goal(session, key="end", kind="ends")
        await make_goal(session, key="lever", kind="means", contributes_to=["end"])

        assert await findings(client, keys, self.RULE) == []

    async def test_an_ends_goal_contributing_is_no_means(self, client, keys, session):
        await make_goal(session, key="end", kind="ends")
        await make_goal(session, key="mid", kind="ends", contributes_to=["end"])

        assert subjects(await findings(client, keys, self.RULE)) == ["end", "mid"]

    async def test_a_retired_means_goal_is_no_lever(self, client, keys, session):
        await make_goal(session, key="end", kind="ends")
        await make_goal(
            session, key="lever", kind="means", contributes_to=["end"], status="retired"
        )

        assert subjects(await findings(client, keys, self.RULE)) == ["end"]

    async def test_a_means_goal_contributing_elsewhere_does_not_help(self, client, keys, session):
        await make_goal(session, key="end-a", kind="ends")
        await make_goal(session, key="end-b", kind="ends")
        await make_goal(session, key="lever", kind="means", contributes_to=["end-b"])

        assert subjects(await findings(client, keys, self.RULE)) == ["end-a"]

    async def test_not_for_means_or_retired_goals(self, client, keys, session):
        await make_goal(session, kind="means")
        await make_goal(session, kind="ends", status="retired")

        assert await findings(client, keys, self.RULE) == []


# survey-fatigue ------------------------------------------------------------------------------


async def mortgage_journey(session) -> None:
    """The mortgage journey with touchpoints apply, sign and pay; a card journey with swipe;
    units a, b, c, d; a survey-score metric csat."""
    await units(session, "a", "b", "c", "d", "front")
    await make_journey(session, key="mortgage", name="Mortgage")
    for key in ("apply", "sign", "pay"):
        await touchpoint(session, key, "front", journey="mortgage")
    await touchpoint(session, "swipe", "front")
    await make_metric(session, key="csat", kind="survey_score")


async def survey_goal(session, owner: str, *touchpoints: str, **fields) -> None:
    fields.setdefault("metric", "csat")
    await make_goal(session, owner=owner, touchpoints=list(touchpoints), **fields)


class TestSurveyFatigue:
    RULE = "survey-fatigue"

    async def test_fires_for_three_units_surveying_one_journey(self, client, keys, session):
        await mortgage_journey(session)
        await survey_goal(session, "a", "apply")
        await survey_goal(session, "b", "sign")
        await survey_goal(session, "c", "pay", "swipe")

        (finding,) = await findings(client, keys, self.RULE)

        assert_finding(
            finding,
            rule=self.RULE,
            severity=2,
            subject="journey",
            key="mortgage",
            evidence={"units": ["a", "b", "c"]},
            mentions=("Mortgage", "3 units"),
        )

    async def test_not_for_two_units(self, client, keys, session):
        await mortgage_journey(session)
        await survey_goal(session, "a", "apply")
        await survey_goal(session, "b", "sign", "pay")

        assert await findings(client, keys, self.RULE) == []

    async def test_not_for_three_goals_of_the_same_unit(self, client, keys, session):
        await mortgage_journey(session)
        for key in ("apply", "sign", "pay"):
            await survey_goal(session, "a", key)
        await survey_goal(session, "b", "apply")

        assert await findings(client, keys, self.RULE) == []

    @pytest.mark.parametrize(
        "third",
        [
            {"touchpoints": ["swipe"]},  # another journey
            {"touchpoints": ["pay"], "status": "retired"},
            {"touchpoints": ["pay"], "metric": "effort"},  # customer effort, not a survey score
            {"touchpoints": []},  # on no touchpoint
        ],
        ids=["other-journey", "retired", "not-a-survey-score", "no-touchpoint"],
    )
    async def test_a_third_goal_that_does_not_count(self, client, keys, session, third):
        await mortgage_journey(session)
        await make_metric(session, key="effort", kind="customer_effort")
        await survey_goal(session, "a", "apply")
        await survey_goal(session, "b", "sign")
        fields = dict(third)  # a copy: the parameters are shared by both backends
        await survey_goal(session, "c", *fields.pop("touchpoints"), **fields)

        assert await findings(client, keys, self.RULE) == []


# enticement-only and investor-only -------------------------------------------------------------


class _DisconnectedGoalRule:
    """A goal of metric kind KIND not connected by contributes_to to any customer-linked goal.
    Not collected itself: the two rule classes below run it."""

    RULE: str
    KIND: str
    OTHER_KIND: str  # the metric kind of the other rule: never this rule's business

    async def world(self, session) -> str:
        """Units owner and front, a touchpoint desk of front's; returns KIND's metric."""
        await units(session, "owner", "front")
        await touchpoint(session, "desk", "front")
        return await metric(session, self.KIND, key="kind-metric")

    async def test_fires_for_a_lone_goal(self, client, keys, session):
        kind_metric = await self.world(session)
        await make_goal(session, key="lone", owner="owner", metric=kind_metric)

        (finding,) = await findings(client, keys, self.RULE)

        assert_finding(
            finding,
            rule=self.RULE,
            severity=2,
            subject="goal",
            key="lone",
            evidence={"owner": "owner", "metric": "kind-metric"},
            mentions=("lone",),
        )

    async def test_fires_when_its_chain_reaches_internal_goals_only(self, client, keys, session):
        kind_metric = await self.world(session)
        await make_goal(session, key="far", owner="front")
        await make_goal(session, key="near", owner="front", contributes_to=["far"])
        await make_goal(
            session, key="goal", owner="owner", metric=kind_metric, contributes_to=["near"]
        )

        assert subjects(await findings(client, keys, self.RULE)) == ["goal"]

    async def test_fires_even_when_the_goal_itself_names_a_touchpoint(self, client, keys, session):
        # The rule asks for a connection to a customer-linked goal, not for the goal to be one.
        kind_metric = await self.world(session)
        await make_goal(
            session, key="goal", owner="owner", metric=kind_metric, touchpoints=["desk"]
        )

        assert subjects(await findings(client, keys, self.RULE)) == ["goal"]

    async def test_cleared_by_contributing_to_a_goal_on_a_touchpoint(self, client, keys, session):
        kind_metric = await self.world(session)
        await make_goal(session, key="front-desk", owner="front", touchpoints=["desk"])
        await make_goal(session, owner="owner", metric=kind_metric, contributes_to=["front-desk"])

        assert await findings(client, keys, self.RULE) == []

    async def test_cleared_by_contributing_to_a_survey_score_goal(self, client, keys, session):
        kind_metric = await self.world(session)
        await make_goal(
            session, key="nps", owner="front", metric=await metric(session, "survey_score")
        )
        await make_goal(session, owner="owner", metric=kind_metric, contributes_to=["nps"])

        assert await findings(client, keys, self.RULE) == []

    async def test_cleared_by_a_chain_of_two_hops(self, client, keys, session):
        # goal → mid → nps: mid is not linked itself (its chain names no touchpoint), so only
        # following the chain to nps, a survey score, connects goal to the customer.
        kind_metric = await self.world(session)
        await make_goal(
            session, key="nps", owner="front", metric=await metric(session, "survey_score")
        )
        await make_goal(session, key="mid", owner="front", contributes_to=["nps"])
        await make_goal(session, owner="owner", metric=kind_metric, contributes_to=["mid"])

        assert await findings(client, keys, self.RULE) == []

    async def test_cleared_by_a_customer_goal_contributing_to_it(self, client, keys, session):
        # Connected the other way round: what the investor-only remedy asks for.
        kind_metric = await self.world(session)
        await make_goal(session, key="goal", owner="owner", metric=kind_metric)
        await make_goal(session, key="mid", owner="front", contributes_to=["goal"])
        await make_goal(session, owner="front", touchpoints=["desk"], contributes_to=["mid"])

        assert await findings(client, keys, self.RULE) == []

    async def test_a_contributor_linked_only_through_the_goal_does_not_clear_it(
        self, client, keys, session
    ):
        # helper counts as linked only because goal names the desk: no customer goal behind it.
        kind_metric = await self.world(session)
        await make_goal(
            session, key="goal", owner="owner", metric=kind_metric, touchpoints=["desk"]
        )
        await make_goal(session, key="helper", owner="front", contributes_to=["goal"])

        assert subjects(await findings(client, keys, self.RULE)) == ["goal"]

    async def test_not_for_a_retired_goal(self, client, keys, session):
        kind_metric = await self.world(session)
        await make_goal(session, owner="owner", metric=kind_metric, status="retired")

        assert await findings(client, keys, self.RULE) == []

    async def test_not_for_other_kinds_of_goal(self, client, keys, session):
        await self.world(session)
        await make_goal(session, owner="owner", metric=await metric(session, self.OTHER_KIND))

        assert await findings(client, keys, self.RULE) == []


class TestEnticementOnly(_DisconnectedGoalRule):
    RULE = "enticement-only"
    KIND = "loyalty_program"
    OTHER_KIND = "financial"


class TestInvestorOnly(_DisconnectedGoalRule):
    RULE = "investor-only"
    KIND = "financial"
    OTHER_KIND = "loyalty_program"


# heroics -------------------------------------------------------------------------------------


async def rescue_world(session) -> str:
    """Units care and ops; touchpoints desk, phone and web of front's; a recovery metric."""
    await units(session, "care", "ops", "front")
    for key in ("desk", "phone", "web"):
        await touchpoint(session, key, "front")
    return await metric(session, "recovery", key="saves")


class TestHeroics:
    RULE = "heroics"

    async def test_fires_for_rescues_with_no_prevention(self, client, keys, session):
        saves = await rescue_world(session)
        await make_goal(
            session, key="rescue", owner="care", metric=saves, touchpoints=["phone", "desk"]
        )

        (finding,) = await findings(client, keys, self.RULE)

        assert_finding(
            finding,
            rule=self.RULE,
            severity=2,
            subject="goal",
            key="rescue",
            evidence={"owner": "care", "touchpoints": ["desk", "phone"]},
            mentions=("rescue",),
        )

    async def test_cleared_by_a_means_goal_on_one_of_its_touchpoints(self, client, keys, session):
        saves = await rescue_world(session)
        await make_goal(session, owner="care", metric=saves, touchpoints=["desk", "phone"])
        await make_goal(session, owner="ops", kind="means", touchpoints=["phone", "web"])

        assert await findings(client, keys, self.RULE) == []

    @pytest.mark.parametrize(
        "other",
        [
            {"kind": "means", "touchpoints": ["web"]},
            {"kind": "ends", "touchpoints": ["desk"]},
            {"kind": "means", "touchpoints": ["desk"], "status": "retired"},
            {"kind": "means", "touchpoints": []},
        ],
        ids=["means-elsewhere", "ends-on-its-touchpoint", "retired-means", "means-on-none"],
    )
    async def test_not_cleared_by(self, client, keys, session, other):
        saves = await rescue_world(session)
        await make_goal(session, key="rescue", owner="care", metric=saves, touchpoints=["desk"])
        await make_goal(session, owner="ops", **other)

        assert subjects(await findings(client, keys, self.RULE)) == ["rescue"]

    async def test_a_recovery_goal_is_not_its_own_prevention(self, client, keys, session):
        saves = await rescue_world(session)
        await make_goal(
            session, key="rescue", owner="care", metric=saves, kind="means", touchpoints=["desk"]
        )

        assert subjects(await findings(client, keys, self.RULE)) == ["rescue"]

    async def test_not_for_a_retired_recovery_goal(self, client, keys, session):
        saves = await rescue_world(session)
        await make_goal(session, owner="care", metric=saves, touchpoints=["desk"], status="retired")

        assert await findings(client, keys, self.RULE) == []


# partner-financial-only ----------------------------------------------------------------------


async def courier(session) -> None:
    """The partner courier works for branch; front owns a touchpoint desk."""
    await units(session, "courier", kind="partner")
    await units(session, "branch", "front")
    await touchpoint(session, "desk", "front")


async def agreement(session, key: str = "cards", status: str = "active") -> None:
    await make_agreement(
        session,
        key=key,
        title="Card delivery",
        partner="courier",
        internal_owner="branch",
        status=status,
    )


async def courier_agreement(session, status: str = "active") -> None:
    await courier(session)
    await agreement(session, status=status)


async def accepted(session, agreement: str, **fields) -> None:
    goal = await make_joint_goal(session, agreement, **fields)
    await goals_service.accept_joint_goal(session, SYSTEM, agreement, goal.key)


class TestPartnerFinancialOnly:
    RULE = "partner-financial-only"

    async def test_fires_when_no_accepted_joint_goal_reaches_the_customer(
        self, client, keys, session
    ):
        await courier_agreement(session)
        await accepted(session, "cards", key="on-time")
        await accepted(session, "cards", key="price", metric=await metric(session, "financial"))

        (finding,) = await findings(client, keys, self.RULE)

        assert_finding(
            finding,
            rule=self.RULE,
            severity=3,
            subject="agreement",
            key="cards",
            evidence={"partner": "courier", "joint_goals": ["on-time", "price"]},
            mentions=("courier", "Card delivery", "on-time, price"),
        )

    async def test_a_proposed_customer_goal_does_not_clear_it(self, client, keys, session):
        await courier_agreement(session)
        await accepted(session, "cards", key="on-time")
        await make_joint_goal(session, "cards", key="desk-csat", touchpoints=["desk"])

        (finding,) = await findings(client, keys, self.RULE)

        assert finding["evidence"] == {"partner": "courier", "joint_goals": ["on-time"]}

    async def test_not_with_proposed_goals_only(self, client, keys, session):
        await courier_agreement(session)
        await make_joint_goal(session, "cards", key="on-time")

        assert await findings(client, keys, self.RULE) == []

    async def test_not_without_joint_goals(self, client, keys, session):
        await courier_agreement(session)

        assert await findings(client, keys, self.RULE) == []

    @pytest.mark.parametrize(
        "linked",
        ["touchpoint", "survey_score", "customer_effort", "contributes_to"],
    )
    async def test_cleared_by_one_customer_linked_accepted_goal(
        self, client, keys, session, linked
    ):
        await courier_agreement(session)
        await accepted(session, "cards", key="on-time")
        if linked == "touchpoint":
            await accepted(session, "cards", touchpoints=["desk"])
        elif linked == "contributes_to":
            await make_goal(session, key="front-desk", owner="front", touchpoints=["desk"])
            await accepted(session, "cards", kind="means", contributes_to=["front-desk"])
        else:
            await accepted(session, "cards", metric=await metric(session, linked))

        assert await findings(client, keys, self.RULE) == []

    async def test_a_linked_goal_outside_the_agreement_does_not_clear_it(
        self, client, keys, session
    ):
        await courier_agreement(session)
        await accepted(session, "cards", key="on-time")
        await make_goal(session, owner="courier", touchpoints=["desk"])  # not joint

        assert subjects(await findings(client, keys, self.RULE)) == ["cards"]

    @pytest.mark.parametrize("status", ["draft", "expired"])
    async def test_not_for_an_agreement_that_is_not_active(self, client, keys, session, status):
        await courier_agreement(session, status=status)
        await accepted(session, "cards", key="on-time")

        assert await findings(client, keys, self.RULE) == []

    async def test_each_active_agreement_is_judged_on_its_own_goals(self, client, keys, session):
        await courier(session)
        await agreement(session, "cards")
        await agreement(session, "returns")
        await accepted(session, "cards", key="on-time")
        await accepted(session, "returns", key="returns-desk", touchpoints=["desk"])

        assert subjects(await findings(client, keys, self.RULE)) == ["cards"]


# unfunded-counterweight ----------------------------------------------------------------------


async def dueling_cost_goals(session, ops_incentive: float, branch_incentive: float) -> None:
    """ops raises cost, branch lowers it: an open conflict."""
    await units(session, "ops", "branch")
    await make_metric(session, key="cost", kind="operational")
    await make_goal(
        session,
        key="ops-cost",
        owner="ops",
        metric="cost",
        direction="increase",
        kind="means",
        incentive_weight=ops_incentive,
    )
    await make_goal(
        session,
        key="branch-cost",
        owner="branch",
        metric="cost",
        direction="decrease",
        kind="means",
        incentive_weight=branch_incentive,
    )


async def the_conflict(client, keys) -> dict:
    (conflict,) = (await client.get("/v1/conflicts", headers=await keys.reader())).json()["items"]
    return conflict


class TestUnfundedCounterweight:
    RULE = "unfunded-counterweight"

    @pytest.mark.parametrize(
        ("ops", "branch", "funded", "unfunded"),
        [(0.2, 0.0, "ops-cost", "branch-cost"), (0.0, 0.5, "branch-cost", "ops-cost")],
    )
    async def test_fires_when_exactly_one_goal_is_funded(
        self, client, keys, session, ops, branch, funded, unfunded
    ):
        await dueling_cost_goals(session, ops, branch)
        conflict = await the_conflict(client, keys)

        (finding,) = await findings(client, keys, self.RULE)

        assert_finding(
            finding,
            rule=self.RULE,
            severity=3,
            subject="conflict",
            key=conflict["id"],
            evidence={"funded": funded, "unfunded": unfunded, "incentive_weight": max(ops, branch)},
            mentions=(funded, unfunded),
        )

    @pytest.mark.parametrize(("ops", "branch"), [(0.2, 0.1), (0.0, 0.0)], ids=["both", "neither"])
    async def test_not_when_both_or_neither_is_funded(self, client, keys, session, ops, branch):
        await dueling_cost_goals(session, ops, branch)
        assert (await the_conflict(client, keys))["status"] == "open"  # the conflict is there

        assert await findings(client, keys, self.RULE) == []

    async def test_not_once_the_conflict_is_resolved(self, client, keys, session):
        await dueling_cost_goals(session, 0.2, 0.0)
        conflict = await the_conflict(client, keys)
        before = await findings(client, keys, self.RULE)

        response = await client.post(
            f"/v1/conflicts/{conflict['id']}/resolve",
            json={"note": "branch gets the same bonus next quarter"},
            headers=await keys.writer(),
        )
        assert response.status_code == 200, response.text

        assert subjects(before) == [conflict["id"]]
        assert await findings(client, keys, self.RULE) == []


# promise-overrun -----------------------------------------------------------------------------


async def desk_promise(session, promise: str | None = "PT8H") -> None:
    """front owns the desk, promised within ``promise``; branch, ops and legal sit upstream."""
    await units(session, "front", "branch", "ops", "legal")
    await touchpoint(session, "desk", "front", name="Card desk", promise_within=promise)


async def step(session, key: str, from_unit: str, to_unit: str, within: str, **fields) -> None:
    fields.setdefault("touchpoint", "desk")
    await make_handoff(
        session, key=key, from_unit=from_unit, to_unit=to_unit, expected_within=within, **fields
    )


class TestPromiseOverrun:
    RULE = "promise-overrun"

    async def test_fires_when_a_two_level_chain_exceeds_the_promise(self, client, keys, session):
        await desk_promise(session)
        await step(session, "check", "branch", "front", "PT3H")  # depth 1
        await step(session, "file", "ops", "branch", "PT6H")  # depth 2

        (finding,) = await findings(client, keys, self.RULE)

        assert_finding(
            finding,
            rule=self.RULE,
            severity=3,
            subject="touchpoint",
            key="desk",
            evidence={"promise_within": "PT8H", "chain_within": "PT9H", "chain": ["file", "check"]},
            mentions=("Card desk", "file → check"),
        )

    async def test_not_when_the_chain_equals_the_promise(self, client, keys, session):
        await desk_promise(session)
        await step(session, "check", "branch", "front", "PT3H")
        await step(session, "file", "ops", "branch", "PT5H")

        assert await findings(client, keys, self.RULE) == []

    async def test_a_parallel_shorter_branch_does_not_matter(self, client, keys, session):
        await desk_promise(session)
        await step(session, "check", "branch", "front", "PT3H")
        await step(session, "file", "ops", "branch", "PT6H")
        await step(session, "memo", "legal", "branch", "PT1H")  # beside file, shorter

        (finding,) = await findings(client, keys, self.RULE)

        assert finding["evidence"] == {
            "promise_within": "PT8H",
            "chain_within": "PT9H",
            "chain": ["file", "check"],
        }

    async def test_parallel_branches_are_not_added_up(self, client, keys, session):
        # 3h + 4h + 4h = 11h of handoffs, but no single path is longer than 7h.
        await desk_promise(session)
        await step(session, "check", "branch", "front", "PT3H")
        await step(session, "file", "ops", "branch", "PT4H")
        await step(session, "memo", "legal", "branch", "PT4H")

        assert await findings(client, keys, self.RULE) == []

    async def test_the_longest_path_over_three_levels(self, client, keys, session):
        await desk_promise(session, promise="P1D")
        await step(session, "check", "branch", "front", "PT10H")
        await step(session, "file", "ops", "branch", "PT10H")
        await step(session, "scan", "legal", "ops", "PT10H")

        (finding,) = await findings(client, keys, self.RULE)

        assert finding["evidence"] == {
            "promise_within": "P1D",
            "chain_within": "P1DT6H",
            "chain": ["scan", "file", "check"],
        }

    async def test_only_handoffs_serving_the_touchpoint_count(self, client, keys, session):
        await desk_promise(session)
        await touchpoint(session, "phone", "front")
        await step(session, "check", "branch", "front", "PT3H")
        await step(session, "file", "ops", "branch", "PT20H", touchpoint=None)
        await step(session, "call", "legal", "branch", "PT20H", touchpoint="phone")

        assert await findings(client, keys, self.RULE) == []

    async def test_a_handoff_not_delivering_closer_to_the_owner_is_off_the_path(
        self, client, keys, session
    ):
        # legal provides nothing toward front for the desk: ops → legal leads nowhere.
        await desk_promise(session)
        await step(session, "check", "branch", "front", "PT3H")
        await step(session, "detour", "ops", "legal", "PT20H")

        assert await findings(client, keys, self.RULE) == []

    async def test_not_without_a_promise(self, client, keys, session):
        await desk_promise(session, promise=None)
        await step(session, "check", "branch", "front", "PT30H")

        assert await findings(client, keys, self.RULE) == []


# no-timing-standard --------------------------------------------------------------------------


class TestNoTimingStandard:
    RULE = "no-timing-standard"

    async def test_fires_for_an_active_handoff_without_expected_within(self, client, keys, session):
        await units(session, "ops", "branch")
        await make_handoff(
            session, key="kyc", from_unit="ops", to_unit="branch", expected_within=None
        )

        (finding,) = await findings(client, keys, self.RULE)

        assert_finding(
            finding,
            rule=self.RULE,
            severity=1,
            subject="handoff",
            key="kyc",
            evidence={"from_unit": "ops", "to_unit": "branch"},
            mentions=("kyc", "ops", "branch"),
        )

    async def test_not_for_a_retired_handoff(self, client, keys, session):
        await make_handoff(session, expected_within=None, status="retired")

        assert await findings(client, keys, self.RULE) == []

    async def test_not_with_a_timing_standard(self, client, keys, session):
        await make_handoff(session, expected_within="PT4H")

        assert await findings(client, keys, self.RULE) == []


# The listing ---------------------------------------------------------------------------------


async def one_of_each_severity(session) -> None:
    """unfunded-counterweight (3); upstream-unlinked for branch and ops (2); no-timing-standard
    for kyc (1). Nothing else fires: the goals are means, no events, no touchpoints."""
    await dueling_cost_goals(session, 0.2, 0.0)
    await make_handoff(session, key="kyc", from_unit="ops", to_unit="branch", expected_within=None)
    await make_handoff(session, key="back", from_unit="branch", to_unit="ops")


class TestListing:
    async def test_every_rule_most_severe_first(self, client, keys, session):
        await one_of_each_severity(session)
        conflict = await the_conflict(client, keys)

        body = await list_findings(client, await keys.reader())

        assert [(f["severity"], f["rule"], f["subject"]["key"]) for f in body["items"]] == [
            (3, "unfunded-counterweight", conflict["id"]),
            (2, "upstream-unlinked", "branch"),
            (2, "upstream-unlinked", "ops"),
            (1, "no-timing-standard", "kyc"),
        ]
        assert body["next_cursor"] is None

    async def test_rule_narrows_the_list(self, client, keys, session):
        await one_of_each_severity(session)

        body = await list_findings(client, await keys.reader(), rule="upstream-unlinked")

        assert subjects(body["items"]) == ["branch", "ops"]

    async def test_pages_with_limit_and_next_cursor(self, client, keys, session):
        await one_of_each_severity(session)
        reader = await keys.reader()
        everything = (await list_findings(client, reader))["items"]

        first = await list_findings(client, reader, limit=3)
        second = await list_findings(client, reader, limit=3, cursor=first["next_cursor"])

        assert len(first["items"]) == 3
        assert first["next_cursor"]
        assert len(second["items"]) == 1
        assert second["next_cursor"] is None
        assert first["items"] + second["items"] == everything

    async def test_pages_of_one_rule(self, client, keys, session):
        await units(session, "ops", "branch")
        for key in ("h1", "h2", "h3"):
            await make_handoff(
                session, key=key, from_unit="ops", to_unit="branch", expected_within=None
            )
        reader = await keys.reader()

        first = await list_findings(client, reader, rule="no-timing-standard", limit=2)
        second = await list_findings(
            client, reader, rule="no-timing-standard", limit=2, cursor=first["next_cursor"]
        )

        assert subjects(first["items"]) == ["h1", "h2"]
        assert subjects(second["items"]) == ["h3"]
        assert second["next_cursor"] is None

    async def test_pages_are_cut_by_the_database(self, client, keys, session, count_statements):
        """Seven findings walked two at a time: every statement reading findings carries a
        LIMIT, and the pages joined are the whole listing."""
        await units(session, "ops", "branch")
        for n in range(7):
            await make_handoff(
                session, key=f"h{n}", from_unit="ops", to_unit="branch", expected_within=None
            )
        reader = await keys.reader()
        walked, cursor = [], None
        with count_statements() as statements:
            while True:
                params = {"rule": "no-timing-standard", "limit": 2}
                body = await list_findings(client, reader, **params, **({"cursor": cursor} if cursor else {}))
                walked += body["items"]
                cursor = body["next_cursor"]
                if cursor is None:
                    break
        reading = [s for s in statements if "FROM findings" in s]
        assert len(reading) == 4 and all("LIMIT" in s for s in reading)
        assert subjects(walked) == [f"h{n}" for n in range(7)]

    async def test_subject_and_status_narrow_the_list(self, client, keys, session):
        await one_of_each_severity(session)
        reader = await keys.reader()

        by_key = await list_findings(client, reader, subject="ops")
        by_type = await list_findings(client, reader, subject="unit:ops")
        other_type = await list_findings(client, reader, subject="handoff:ops")
        cleared = await list_findings(client, reader, status="cleared")

        assert [(f["rule"], f["subject"]["key"]) for f in by_key["items"]] == [
            ("upstream-unlinked", "ops")
        ]
        assert by_type == by_key
        assert other_type["items"] == []
        assert cleared["items"] == []

    async def test_an_unknown_subject_type_is_422(self, client, keys):
        response = await client.get(
            "/v1/findings", params={"subject": "planet:earth"}, headers=await keys.reader()
        )

        body = assert_problem(response, 422, "invalid")
        assert body["errors"][0]["loc"] == ["query", "subject"]

    async def test_one_finding_by_id(self, client, keys, session):
        await one_of_each_severity(session)
        reader = await keys.reader()
        (listed,) = (await list_findings(client, reader, rule="no-timing-standard"))["items"]

        response = await client.get(f"/v1/findings/{listed['id']}", headers=reader)

        assert response.status_code == 200
        assert response.json() == listed
        assert listed["status"] == "open"
        assert listed["cleared_at"] is None

    async def test_an_unknown_id_is_404_and_a_partner_sees_none(self, client, keys, session):
        await one_of_each_severity(session)
        (listed,) = (await list_findings(client, await keys.reader(), rule="no-timing-standard"))[
            "items"
        ]
        await units(session, "courier", kind="partner")

        unknown = await client.get(
            "/v1/findings/0b9d2a3e-6f3c-4d7e-9f5a-1c2b3d4e5f60", headers=await keys.reader()
        )
        partner = await client.get(
            f"/v1/findings/{listed['id']}", headers=await keys.partner("courier")
        )

        assert_problem(unknown, 404, "not_found")
        assert_problem(partner, 404, "not_found")

    async def test_unknown_rule_is_422_naming_the_parameter(self, client, keys):
        response = await client.get(
            "/v1/findings", params={"rule": "unknown"}, headers=await keys.reader()
        )

        body = assert_problem(response, 422, "invalid")
        assert body["errors"][0]["loc"] == ["query", "rule"]
        assert "unknown" in body["detail"]
        assert all(name in body["detail"] for name in RULES)

    async def test_every_rule_is_accepted(self, client, keys):
        reader = await keys.reader()
        for name in RULES:
            assert (await list_findings(client, reader, rule=name))["items"] == []

    async def test_a_partner_key_gets_an_empty_list(self, client, keys, session):
        await units(session, "courier", kind="partner")
        await units(session, "branch")
        await make_handoff(
            session, key="parcel", from_unit="courier", to_unit="branch", expected_within=None
        )
        reader_view = await list_findings(client, await keys.reader())

        body = await list_findings(client, await keys.partner("courier"))

        assert {f["rule"] for f in reader_view["items"]} == {
            "upstream-unlinked",
            "no-timing-standard",
        }
        assert body == {"items": [], "next_cursor": None}

    async def test_reader_writer_and_admin_read_the_same(self, client, keys, session):
        await one_of_each_severity(session)

        seen = [
            await list_findings(client, headers)
            for headers in (await keys.reader(), await keys.writer(), await keys.admin())
        ]

        assert len(seen[0]["items"]) == 4
        assert seen[0] == seen[1] == seen[2]

    async def test_no_key_is_401(self, client):
        response = await client.get("/v1/findings")

        assert_problem(response, 401, "unauthenticated")
