"""Goal-silo gotchas (docs/method.md §9) on small hand-built snapshots: no HTTP, no database.

Each rule fires exactly on its documented threshold, not just below it, with the documented
severity.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from service.alignment.findings import (
    RULES,
    AgreementFacts,
    ArcFacts,
    ConflictFacts,
    HandoffFacts,
    Snapshot,
    TouchpointFacts,
    UnitFacts,
    evaluate,
    is_discovery_candidate,
    longest_chain,
    upstream_depths,
)
from tests.unit.builders import goal

DAY = timedelta(days=1)
HOUR = timedelta(hours=1)


def snapshot(
    units=(), touchpoints=(), handoffs=(), goals=(), agreements=(), conflicts=(), journeys=None,
    arcs=(),
) -> Snapshot:
    return Snapshot(
        units=list(units),
        touchpoints=list(touchpoints),
        handoffs=list(handoffs),
        goals=list(goals),
        agreements=list(agreements),
        conflicts=list(conflicts),
        journeys=journeys or {},
        arcs=list(arcs),
    )


def unit(key: str, kind: str = "department") -> UnitFacts:
    return UnitFacts(key=key, name=key.title(), kind=kind)


def touchpoint(
    key: str, *, owner: str = "front", journey: str = "j", moment: bool = False, promise=None
) -> TouchpointFacts:
    return TouchpointFacts(
        key=key, name=key, journey=journey, owner=owner, moment_of_truth=moment,
        promise_within=promise,
    )


def handoff(
    key: str,
    from_unit: str = "back",
    to_unit: str = "front",
    *,
    touchpoint: str | None = None,
    within: timedelta | None = 4 * HOUR,
    status: str = "active",
    events: int = 0,
    customer_impact: int = 0,
) -> HandoffFacts:
    return HandoffFacts(
        key=key, from_unit=from_unit, to_unit=to_unit, touchpoint=touchpoint,
        expected_within=within, status=status, events=events, customer_impact=customer_impact,
    )


def fired(rule: str, s: Snapshot) -> dict[str, int]:
    """subject → severity of the findings ``rule`` gives on ``s``."""
    findings = evaluate(s, [rule])
    assert all(f.rule == rule for f in findings)
    for f in findings:
        assert f.explanation and f.remedy
    return {f.subject: f.severity for f in findings}


def test_the_eleven_rules_of_the_method_and_the_two_of_discovery():
    assert set(RULES) == {
        "upstream-unlinked", "buffering", "ends-without-means", "survey-fatigue",
        "enticement-only", "investor-only", "heroics", "partner-financial-only",
        "unfunded-counterweight", "promise-overrun", "no-timing-standard",
        "unregistered-handoff", "ping-pong",
    }


# upstream-unlinked ----------------------------------------------------------------------------


class TestUpstreamUnlinked:
    RULE = "upstream-unlinked"

    def test_fires_with_severity_2(self):
        s = snapshot(units=[unit("back"), unit("front")], handoffs=[handoff("h")])
        assert fired(self.RULE, s) == {"back": 2}
        [finding] = evaluate(s, [self.RULE])
        assert (finding.subject_type, finding.evidence) == ("unit", {"provides": ["h"]})

    def test_not_when_the_unit_owns_a_touchpoint(self):
        s = snapshot(
            units=[unit("back")], touchpoints=[touchpoint("tp", owner="back")],
            handoffs=[handoff("h")],
        )
        assert fired(self.RULE, s) == {}

    def test_not_when_it_provides_only_retired_handoffs(self):
        s = snapshot(units=[unit("back")], handoffs=[handoff("h", status="retired")])
        assert fired(self.RULE, s) == {}

    def test_not_when_it_only_receives(self):
        s = snapshot(units=[unit("back")], handoffs=[handoff("h", "front", "back")])
        assert fired(self.RULE, s) == {}

    def test_not_when_it_has_an_active_customer_linked_goal(self):
        s = snapshot(
            units=[unit("back")], handoffs=[handoff("h")],
            goals=[goal("g", owner="back", metric_kind="customer_effort")],
        )
        assert fired(self.RULE, s) == {}

    def test_fires_when_its_only_linked_goal_is_not_active(self):
        s = snapshot(
            units=[unit("back")], handoffs=[handoff("h")],
            goals=[
                goal("g", owner="back", touchpoints=("tp",), status="retired"),
                goal("i", owner="back"),  # active, internal
            ],
        )
        assert fired(self.RULE, s) == {"back": 2}


# buffering --------------------------------------------------------------------------------------


class TestBuffering:
    RULE = "buffering"

    @pytest.mark.parametrize(
        "events, impact, severity",
        [
            (10, 1, 2),  # B = 10% over 10 events: exactly on both thresholds
            (9, 9, None),  # B = 100%, but below the 10-event floor
            (10, 0, None),
            (100, 9, None),  # 9% < 10%
            (100, 10, 2),  # 10%
            (30, 3, 2),  # 10%, as 3 ÷ 30
            (100, 24, 2),  # 24% < 25%
            (100, 25, 3),  # 25%: severity 3
            (12, 3, 3),  # 25%, as 3 ÷ 12
            (10, 10, 3),
            (0, 0, None),  # no event
        ],
    )
    def test_thresholds(self, events, impact, severity):
        s = snapshot(handoffs=[handoff("h", events=events, customer_impact=impact)])
        assert fired(self.RULE, s) == ({} if severity is None else {"h": severity})

    def test_worked_example(self):
        """docs/method.md §9: 2 of 8 is 25% but under the 10-event floor; 46 of 251 = 18.3%
        fires with severity 2."""
        s = snapshot(handoffs=[handoff("dispute-outcome", events=8, customer_impact=2)])
        assert fired(self.RULE, s) == {}
        s = snapshot(handoffs=[handoff("dispute-outcome", events=251, customer_impact=46)])
        [finding] = evaluate(s, [self.RULE])
        assert finding.severity == 2
        assert finding.evidence == {
            "buffer_rate": round(46 / 251, 4), "events": 251, "customer_impact": 46,
        }
        assert round(46 / 251, 3) == 0.183


# ends-without-means -----------------------------------------------------------------------------


class TestEndsWithoutMeans:
    RULE = "ends-without-means"

    def test_fires_with_severity_2(self):
        s = snapshot(goals=[goal("end", kind="ends")])
        assert fired(self.RULE, s) == {"end": 2}

    def test_not_when_an_active_means_goal_contributes(self):
        s = snapshot(goals=[goal("end", kind="ends"), goal("lever", contributes_to=("end",))])
        assert fired(self.RULE, s) == {}

    def test_a_means_goal_of_another_owner_counts(self):
        s = snapshot(
            goals=[
                goal("end", owner="a", kind="ends"),
                goal("lever", owner="b", contributes_to=("end",)),
            ]
        )
        assert fired(self.RULE, s) == {}

    @pytest.mark.parametrize("status", ["proposed", "retired"])
    def test_a_means_goal_that_is_not_active_does_not_count(self, status):
        s = snapshot(
            goals=[goal("end", kind="ends"), goal("lever", contributes_to=("end",), status=status)]
        )
        assert fired(self.RULE, s) == {"end": 2}

    def test_an_ends_goal_contributing_is_not_a_means(self):
        s = snapshot(
            goals=[goal("end", kind="ends"), goal("other", kind="ends", contributes_to=("end",))]
        )
        assert fired(self.RULE, s) == {"end": 2, "other": 2}

    def test_means_goals_and_inactive_ends_goals_are_not_judged(self):
        s = snapshot(goals=[goal("lever"), goal("end", kind="ends", status="retired")])
        assert fired(self.RULE, s) == {}


# survey-fatigue ---------------------------------------------------------------------------------


class TestSurveyFatigue:
    RULE = "survey-fatigue"
    TOUCHPOINTS = (
        touchpoint("t1", journey="j"),
        touchpoint("t2", journey="j"),
        touchpoint("t3", journey="k"),
    )

    def survey(self, key, owner, tp, **kwargs):
        return goal(key, owner=owner, metric_kind="survey_score", touchpoints=(tp,), **kwargs)

    def test_three_units_on_one_journey_fire_with_severity_2(self):
        goals = [self.survey("a", "u1", "t1"), self.survey("b", "u2", "t2"),
                 self.survey("c", "u3", "t1")]
        s = snapshot(touchpoints=self.TOUCHPOINTS, goals=goals, journeys={"j": "Journey"})
        assert fired(self.RULE, s) == {"j": 2}
        [finding] = evaluate(s, [self.RULE])
        assert finding.evidence == {"units": ["u1", "u2", "u3"]}

    def test_two_units_do_not(self):
        goals = [self.survey("a", "u1", "t1"), self.survey("b", "u2", "t2"),
                 self.survey("c", "u2", "t1")]
        assert fired(self.RULE, snapshot(touchpoints=self.TOUCHPOINTS, goals=goals)) == {}

    def test_units_on_different_journeys_do_not_add_up(self):
        goals = [self.survey("a", "u1", "t1"), self.survey("b", "u2", "t2"),
                 self.survey("c", "u3", "t3")]
        assert fired(self.RULE, snapshot(touchpoints=self.TOUCHPOINTS, goals=goals)) == {}

    def test_only_active_survey_score_goals_count(self):
        goals = [self.survey("a", "u1", "t1"), self.survey("b", "u2", "t2"),
                 self.survey("c", "u3", "t1", status="retired"),
                 goal("d", owner="u4", metric_kind="customer_effort", touchpoints=("t1",))]
        assert fired(self.RULE, snapshot(touchpoints=self.TOUCHPOINTS, goals=goals)) == {}


# enticement-only and investor-only --------------------------------------------------------------


@pytest.mark.parametrize(
    "rule, kind", [("enticement-only", "loyalty_program"), ("investor-only", "financial")]
)
class TestDisconnected:
    def test_fires_with_severity_2(self, rule, kind):
        s = snapshot(goals=[goal("g", metric_kind=kind), goal("cx", touchpoints=("tp",))])
        assert fired(rule, s) == {"g": 2}

    def test_not_when_it_contributes_to_a_customer_linked_goal(self, rule, kind):
        s = snapshot(
            goals=[goal("g", metric_kind=kind, contributes_to=("cx",)),
                   goal("cx", metric_kind="survey_score")]
        )
        assert fired(rule, s) == {}

    def test_not_when_a_chain_reaches_one(self, rule, kind):
        s = snapshot(
            goals=[goal("g", metric_kind=kind, contributes_to=("mid",)),
                   goal("mid", contributes_to=("cx",)), goal("cx", touchpoints=("tp",))]
        )
        assert fired(rule, s) == {}

    def test_not_when_a_customer_linked_goal_contributes_to_it(self, rule, kind):
        s = snapshot(
            goals=[goal("g", metric_kind=kind),
                   goal("cx", touchpoints=("tp",), contributes_to=("g",))]
        )
        assert fired(rule, s) == {}

    def test_merely_naming_a_touchpoint_is_not_connected(self, rule, kind):
        s = snapshot(goals=[goal("g", metric_kind=kind, touchpoints=("tp",))])
        assert fired(rule, s) == {"g": 2}

    def test_a_contributor_linked_only_through_the_goal_itself_does_not_connect_it(
        self, rule, kind
    ):
        # `helper` is customer-linked only because it contributes to g, which names a
        # touchpoint: no chain joins g to a customer goal other than itself.
        s = snapshot(
            goals=[goal("g", metric_kind=kind, touchpoints=("tp",)),
                   goal("helper", contributes_to=("g",))]
        )
        assert fired(rule, s) == {"g": 2}

    def test_a_link_to_a_goal_that_is_not_linked_does_not_count(self, rule, kind):
        s = snapshot(goals=[goal("g", metric_kind=kind, contributes_to=("x",)), goal("x")])
        assert fired(rule, s) == {"g": 2}

    def test_only_active_goals_of_the_kind_are_judged(self, rule, kind):
        s = snapshot(goals=[goal("g", metric_kind=kind, status="retired"), goal("o")])
        assert fired(rule, s) == {}


# heroics ----------------------------------------------------------------------------------------


class TestHeroics:
    RULE = "heroics"

    def test_fires_with_severity_2(self):
        s = snapshot(goals=[goal("rescue", metric_kind="recovery", touchpoints=("tp",))])
        assert fired(self.RULE, s) == {"rescue": 2}

    def test_not_with_a_means_goal_on_one_of_its_touchpoints(self):
        s = snapshot(
            goals=[goal("rescue", metric_kind="recovery", touchpoints=("tp", "other")),
                   goal("prevent", owner="b", touchpoints=("tp",))]
        )
        assert fired(self.RULE, s) == {}

    def test_a_means_goal_on_other_touchpoints_does_not_prevent(self):
        s = snapshot(
            goals=[goal("rescue", metric_kind="recovery", touchpoints=("tp",)),
                   goal("prevent", touchpoints=("elsewhere",))]
        )
        assert fired(self.RULE, s) == {"rescue": 2}

    def test_an_ends_goal_or_an_inactive_means_goal_does_not_prevent(self):
        s = snapshot(
            goals=[goal("rescue", metric_kind="recovery", touchpoints=("tp",)),
                   goal("end", kind="ends", touchpoints=("tp",)),
                   goal("old", touchpoints=("tp",), status="retired")]
        )
        assert fired(self.RULE, s) == {"rescue": 2}

    def test_the_recovery_goal_is_not_its_own_prevention(self):
        s = snapshot(goals=[goal("rescue", metric_kind="recovery", kind="means",
                                 touchpoints=("tp",))])
        assert fired(self.RULE, s) == {"rescue": 2}

    def test_a_recovery_goal_on_no_touchpoint_fires(self):
        s = snapshot(goals=[goal("rescue", metric_kind="recovery"), goal("prevent")])
        assert fired(self.RULE, s) == {"rescue": 2}


# partner-financial-only -------------------------------------------------------------------------


class TestPartnerFinancialOnly:
    RULE = "partner-financial-only"

    def agreement(self, status="active"):
        return AgreementFacts(key="deal", title="Deal", partner="swiftline", status=status)

    def test_fires_with_severity_3(self):
        s = snapshot(
            agreements=[self.agreement()],
            goals=[goal("price", metric_kind="financial", agreement="deal"),
                   goal("dates", agreement="deal")],
        )
        assert fired(self.RULE, s) == {"deal": 3}
        [finding] = evaluate(s, [self.RULE])
        assert finding.evidence == {"partner": "swiftline", "joint_goals": ["dates", "price"]}

    def test_not_when_one_accepted_joint_goal_is_customer_linked(self):
        s = snapshot(
            agreements=[self.agreement()],
            goals=[goal("price", agreement="deal"),
                   goal("cx", touchpoints=("card-delivery",), agreement="deal")],
        )
        assert fired(self.RULE, s) == {}

    def test_a_proposed_joint_goal_on_a_touchpoint_does_not_count(self):
        s = snapshot(
            agreements=[self.agreement()],
            goals=[goal("price", agreement="deal"),
                   goal("cx", touchpoints=("tp",), agreement="deal", status="proposed")],
        )
        assert fired(self.RULE, s) == {"deal": 3}

    def test_not_without_accepted_joint_goals(self):
        s = snapshot(
            agreements=[self.agreement()],
            goals=[goal("price", agreement="deal", status="proposed")],
        )
        assert fired(self.RULE, s) == {}

    @pytest.mark.parametrize("status", ["draft", "expired"])
    def test_only_active_agreements(self, status):
        s = snapshot(agreements=[self.agreement(status)], goals=[goal("p", agreement="deal")])
        assert fired(self.RULE, s) == {}


# unfunded-counterweight -------------------------------------------------------------------------


class TestUnfundedCounterweight:
    RULE = "unfunded-counterweight"

    @pytest.mark.parametrize(
        "a, b, fires",
        [(0.4, 0, True), (0, 0.1, True), (0, 0, False), (0.4, 0.1, False), (0.001, 0, True)],
    )
    def test_exactly_one_incentive(self, a, b, fires):
        conflict = ConflictFacts("c1", "ga", "gb", "open", a, b)
        assert fired(self.RULE, snapshot(conflicts=[conflict])) == ({"c1": 3} if fires else {})

    def test_names_the_funded_side(self):
        conflict = ConflictFacts("c1", "ga", "gb", "open", 0, 0.25)
        [finding] = evaluate(snapshot(conflicts=[conflict]), [self.RULE])
        assert finding.evidence == {"funded": "gb", "unfunded": "ga", "incentive_weight": 0.25}

    def test_not_for_a_resolved_conflict(self):
        conflict = ConflictFacts("c1", "ga", "gb", "resolved", 0.4, 0)
        assert fired(self.RULE, snapshot(conflicts=[conflict])) == {}


# promise-overrun and the onion ------------------------------------------------------------------

# docs/method.md §9: `card-replacement`, owned by `branch`, promises 4 days.
CARD_HANDOFFS = [
    handoff("card-issue", "cards", "branch", touchpoint="card-replacement", within=1 * DAY),
    handoff("card-print", "printer", "cards", touchpoint="card-replacement",
            within=2 * DAY + 12 * HOUR),
    handoff("fraud-clear", "fraud", "cards", touchpoint="card-replacement", within=2 * DAY),
    handoff("bureau-check", "bureau", "fraud", touchpoint="card-replacement",
            within=1 * DAY + 12 * HOUR),
]


def card_replacement(promise: timedelta | None = 4 * DAY) -> TouchpointFacts:
    return touchpoint("card-replacement", owner="branch", promise=promise)


class TestPromiseOverrun:
    RULE = "promise-overrun"

    def test_worked_example(self):
        """The largest path, bureau-check → fraud-clear → card-issue = 1.5 + 2 + 1 = 4.5 days,
        exceeds the 4-day promise: severity 3."""
        s = snapshot(touchpoints=[card_replacement()], handoffs=CARD_HANDOFFS)
        [finding] = evaluate(s, [self.RULE])
        assert (finding.severity, finding.subject_type, finding.subject) == (
            3, "touchpoint", "card-replacement",
        )
        assert finding.evidence == {
            "promise_within": "P4D",
            "chain_within": "P4DT12H",
            "chain": ["bureau-check", "fraud-clear", "card-issue"],
        }

    def test_the_paths_of_the_worked_example(self):
        total, chain = longest_chain(card_replacement(), CARD_HANDOFFS)
        assert total == (1.5 + 2 + 1) * DAY
        assert chain == ["bureau-check", "fraud-clear", "card-issue"]
        assert upstream_depths(card_replacement(), CARD_HANDOFFS) == {
            "card-issue": 1, "card-print": 2, "fraud-clear": 2, "bureau-check": 3,
        }

    def test_a_chain_equal_to_the_promise_does_not_fire(self):
        s = snapshot(touchpoints=[card_replacement(4 * DAY + 12 * HOUR)], handoffs=CARD_HANDOFFS)
        assert fired(self.RULE, s) == {}

    def test_a_chain_one_second_over_the_promise_fires(self):
        promise = 4 * DAY + 12 * HOUR - timedelta(seconds=1)
        s = snapshot(touchpoints=[card_replacement(promise)], handoffs=CARD_HANDOFFS)
        assert fired(self.RULE, s) == {"card-replacement": 3}

    def test_no_promise_no_finding(self):
        s = snapshot(touchpoints=[card_replacement(None)], handoffs=CARD_HANDOFFS)
        assert fired(self.RULE, s) == {}

    def test_a_handoff_without_a_timing_standard_adds_nothing(self):
        # fraud-clear without expected_within: bureau-check → fraud-clear → card-issue is
        # 1.5 + 0 + 1 = 2.5 days; card-print → card-issue = 3.5 days is now the longest.
        handoffs = [
            handoff("fraud-clear", "fraud", "cards", touchpoint="card-replacement", within=None)
            if h.key == "fraud-clear" else h
            for h in CARD_HANDOFFS
        ]
        total, chain = longest_chain(card_replacement(), handoffs)
        assert (total, chain) == (3.5 * DAY, ["card-print", "card-issue"])
        s = snapshot(touchpoints=[card_replacement()], handoffs=handoffs)
        assert fired(self.RULE, s) == {}
        assert fired("no-timing-standard", s) == {"fraud-clear": 1}

    def test_no_upstream_handoff(self):
        assert longest_chain(card_replacement(), []) == (timedelta(0), [])
        s = snapshot(touchpoints=[card_replacement(timedelta(0))])
        assert fired(self.RULE, s) == {}


class TestUpstreamDepths:
    def test_worked_example(self):
        """docs/method.md §4.4: dispute-outcome 1, compliance-review 2, archive-copy 3."""
        tp = touchpoint("dispute-resolution", owner="contact-centre")
        handoffs = [
            handoff("dispute-outcome", "disputes", "contact-centre", touchpoint=tp.key),
            handoff("compliance-review", "compliance", "disputes", touchpoint=tp.key),
            handoff("archive-copy", "records", "compliance", touchpoint=tp.key),
            # serves t but does not connect to the owner: upstream, with no depth
            handoff("side-note", "x", "y", touchpoint=tp.key),
            # connects to the owner but serves another touchpoint
            handoff("other", "disputes", "contact-centre", touchpoint="elsewhere"),
        ]
        assert upstream_depths(tp, handoffs) == {
            "dispute-outcome": 1, "compliance-review": 2, "archive-copy": 3,
        }

    def test_a_handoff_reachable_at_several_depths_takes_the_smallest(self):
        # a and b deliver to the owner (depth 1); b also receives from a (a → b, depth 2);
        # c delivers to a, which is a depth-1 provider (2) and a depth-2 provider (3): 2.
        tp = touchpoint("t", owner="owner")
        handoffs = [
            handoff("a-owner", "a", "owner", touchpoint="t"),
            handoff("b-owner", "b", "owner", touchpoint="t"),
            handoff("a-b", "a", "b", touchpoint="t"),
            handoff("c-a", "c", "a", touchpoint="t"),
        ]
        assert upstream_depths(tp, handoffs) == {"a-owner": 1, "b-owner": 1, "a-b": 2, "c-a": 2}

    def test_a_cycle_ends(self):
        tp = touchpoint("t", owner="owner")
        handoffs = [
            handoff("a-owner", "a", "owner", touchpoint="t"),
            handoff("owner-a", "owner", "a", touchpoint="t"),
        ]
        assert upstream_depths(tp, handoffs) == {"a-owner": 1, "owner-a": 2}


# no-timing-standard -----------------------------------------------------------------------------


class TestNoTimingStandard:
    RULE = "no-timing-standard"

    def test_fires_with_severity_1(self):
        s = snapshot(handoffs=[handoff("h", within=None), handoff("ok", within=HOUR)])
        assert fired(self.RULE, s) == {"h": 1}

    def test_not_for_a_retired_handoff(self):
        s = snapshot(handoffs=[handoff("h", within=None, status="retired")])
        assert fired(self.RULE, s) == {}


# evaluate ---------------------------------------------------------------------------------------


class TestEvaluate:
    SNAPSHOT = snapshot(
        agreements=[AgreementFacts("deal", "Deal", "swiftline", "active")],
        goals=[goal("price", agreement="deal"), goal("zz-end", kind="ends"),
               goal("aa-end", kind="ends")],
        handoffs=[handoff("b", within=None), handoff("a", within=None)],
    )

    def test_most_severe_first_then_by_rule_and_subject(self):
        order = [(f.severity, f.rule, f.subject) for f in evaluate(self.SNAPSHOT)]
        assert order == [
            (3, "partner-financial-only", "deal"),
            (2, "ends-without-means", "aa-end"),
            (2, "ends-without-means", "zz-end"),
            (1, "no-timing-standard", "a"),
            (1, "no-timing-standard", "b"),
        ]

    def test_one_rule(self):
        assert [f.subject for f in evaluate(self.SNAPSHOT, ["no-timing-standard"])] == ["a", "b"]


# Discovery (§10) -----------------------------------------------------------------------------


def arc(
    transfers: int,
    log_transfers: int,
    *,
    cases: int | None = None,
    ping_pongs: int = 0,
    from_unit: str = "desk",
    to_unit: str = "ops",
) -> ArcFacts:
    return ArcFacts(
        key=f"log/{from_unit} -> {to_unit}", log="log", source=from_unit.title(),
        target=to_unit.title(), from_unit=from_unit, to_unit=to_unit, transfers=transfers,
        cases=transfers if cases is None else cases, ping_pongs=ping_pongs,
        log_transfers=log_transfers,
    )


class TestUnregisteredHandoff:
    @pytest.mark.parametrize(
        ("transfers", "log_transfers", "fires"),
        [
            (5, 100, True),  # exactly 5% of the log's transfers
            (5, 101, False),  # 4.95%
            (50, 10_000, True),  # 0.5%, but 50 transfers
            (49, 10_000, False),
            (1, 1, True),
        ],
    )
    def test_a_share_of_five_percent_or_fifty_transfers(self, transfers, log_transfers, fires):
        found = fired("unregistered-handoff", snapshot(arcs=[arc(transfers, log_transfers)]))
        assert found == ({"log/desk -> ops": 2} if fires else {})

    def test_an_active_handoff_between_the_units_registers_the_arc(self):
        s = snapshot(arcs=[arc(10, 10)], handoffs=[handoff("h", "desk", "ops")])
        assert fired("unregistered-handoff", s) == {}

    @pytest.mark.parametrize(
        "registered",
        [
            handoff("h", "desk", "ops", status="retired"),
            handoff("h", "ops", "desk"),  # the other direction
            handoff("h", "desk", "legal"),
        ],
    )
    def test_a_retired_reversed_or_other_handoff_does_not(self, registered):
        s = snapshot(arcs=[arc(10, 10)], handoffs=[registered])
        assert fired("unregistered-handoff", s) == {"log/desk -> ops": 2}

    @pytest.mark.parametrize("owner", ["desk", "ops"])
    def test_severity_three_when_a_unit_of_the_arc_owns_a_moment_of_truth(self, owner):
        s = snapshot(arcs=[arc(10, 10)], touchpoints=[touchpoint("t", owner=owner, moment=True)])
        assert fired("unregistered-handoff", s) == {"log/desk -> ops": 3}

    def test_a_touchpoint_that_is_no_moment_of_truth_or_of_another_unit_keeps_two(self):
        s = snapshot(
            arcs=[arc(10, 10)],
            touchpoints=[
                touchpoint("t", owner="desk"),
                touchpoint("u", owner="legal", moment=True),
            ],
        )
        assert fired("unregistered-handoff", s) == {"log/desk -> ops": 2}


class TestPingPong:
    @pytest.mark.parametrize(
        ("ping_pongs", "cases", "fires"),
        [
            (5, 50, True),  # exactly 10% of the cases through the arc, and 5
            (5, 51, False),  # 9.8%
            (4, 4, False),  # every case, but fewer than 5
            (9, 10, True),
        ],
    )
    def test_ten_percent_of_the_arcs_cases_and_at_least_five(self, ping_pongs, cases, fires):
        s = snapshot(
            arcs=[arc(cases, cases, cases=cases, ping_pongs=ping_pongs)],
            handoffs=[handoff("h", "desk", "ops")],  # registered or not: the rule is the same
        )
        assert fired("ping-pong", s) == ({"log/desk -> ops": 2} if fires else {})

    def test_severity_three_when_a_unit_of_the_arc_owns_a_moment_of_truth(self):
        s = snapshot(
            arcs=[arc(10, 10, ping_pongs=5)],
            touchpoints=[touchpoint("t", owner="ops", moment=True)],
        )
        assert fired("ping-pong", s) == {"log/desk -> ops": 3}


@pytest.mark.parametrize(
    ("transfers", "cases", "ping_pongs", "log_transfers"),
    [(t, c, p, n) for t in (1, 5, 49, 50) for c in (1, 5, 50) for p in (0, 4, 5) for n in (50, 200)
     if c <= t <= n],
)
def test_only_candidates_can_fire_whatever_is_registered(transfers, cases, ping_pongs, log_transfers):
    """The loader reads only arcs ``is_discovery_candidate`` admits: no other arc may fire."""
    a = arc(transfers, log_transfers, cases=cases, ping_pongs=ping_pongs)
    fires = evaluate(snapshot(arcs=[a]), ["unregistered-handoff", "ping-pong"])
    assert bool(fires) == is_discovery_candidate(transfers, cases, ping_pongs, log_transfers)
