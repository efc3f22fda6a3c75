"""Scoring, method v1 (docs/method.md §2–§7), on plain numbers: no HTTP, no database.

Every expected value is worked by hand from the method, and written as the hand computation
(or copied from the worked examples of docs/method.md, which are tests here so that the
document and the code cannot drift apart). The worked examples round for reading, so they
are compared after rounding to the digits the document shows.
"""

from __future__ import annotations

import math

import pytest

from service.alignment.scoring import (
    KDA_MIN_RECORDS,
    METHOD,
    WEIGHTS,
    Component,
    DriverWeight,
    EventStats,
    FeedbackStats,
    ReviewStats,
    Score,
    customer_linked,
    driver_weight,
    goal_alignment,
    handoff_health,
    handoff_weight,
    incentive_coverage,
    mean,
    median,
    normalised,
    partner_score,
    pearson,
    priority,
    priority_weighted,
    touchpoint_score,
    unit_alignment,
    weighted_mean,
)
from tests.unit.builders import component, goal, score


def quality(*ratings: int) -> float:
    """Σ (quality − 1) / 4 over rated events, as EventStats carries it."""
    return sum((r - 1) / 4 for r in ratings)


def satisfaction(*reviews: tuple[int, int]) -> float:
    """Σ ((timeliness + quality) / 2 − 1) / 4 over reviews, as ReviewStats carries it."""
    return sum(((t + q) / 2 - 1) / 4 for t, q in reviews)


def feedback(records: list[tuple[float, float | None]]) -> FeedbackStats:
    """The sums the service aggregates in SQL, over (normalised score, loyalty) records."""
    paired = [(x, y) for x, y in records if y is not None]
    return FeedbackStats(
        count=len(records),
        score_sum=sum(x for x, _ in records),
        paired=len(paired),
        x_sum=sum(x for x, _ in paired),
        y_sum=sum(y for _, y in paired),
        xx_sum=sum(x * x for x, _ in paired),
        yy_sum=sum(y * y for _, y in paired),
        xy_sum=sum(x * y for x, y in paired),
    )


def test_the_method_is_v1():
    assert METHOD == "v1"


def test_weights_are_those_of_the_method_and_add_up_to_one():
    assert WEIGHTS == {
        "timeliness": 0.35,
        "quality": 0.35,
        "rework_free": 0.15,
        "recipient_satisfaction": 0.15,
    }
    assert sum(WEIGHTS.values()) == pytest.approx(1)


# §2 Handoff health H ---------------------------------------------------------------------------

# docs/method.md §2, handoff `dispute-outcome`: e1–e8 and the reviews r1, r2.
DISPUTE_OUTCOME = EventStats(
    events=8,  # |E|
    due=6,  # e1–e6
    on_time=4,  # e1–e4
    overdue=1,  # e6
    delivered=6,  # e1–e5, e7
    reworked=1,  # e2
    rated=5,  # e1–e5
    quality_sum=quality(5, 4, 4, 3, 2),
    customer_impact=2,  # e5, e6
)
DISPUTE_REVIEWS = ReviewStats(count=2, satisfaction_sum=satisfaction((4, 3), (2, 4)))


class TestHandoffHealthWorkedExample:
    """docs/method.md §2, verbatim."""

    def test_components(self):
        health = handoff_health(DISPUTE_OUTCOME, DISPUTE_REVIEWS)
        c = health.components
        assert c["timeliness"].value == pytest.approx(4 / 6)
        assert c["quality"].value == pytest.approx(3.25 / 5) == pytest.approx(0.65)
        assert c["rework_free"].value == pytest.approx(1 - 1 / 6)
        assert c["recipient_satisfaction"].value == pytest.approx((0.625 + 0.5) / 2)

    def test_h_is_67_02(self):
        health = handoff_health(DISPUTE_OUTCOME, DISPUTE_REVIEWS)
        expected = 100 * (0.35 * 4 / 6 + 0.35 * 0.65 + 0.15 * 5 / 6 + 0.15 * 0.5625)
        assert health.value == pytest.approx(expected)
        assert round(health.value, 2) == 67.02
        assert round(health.value, 4) == 67.0208  # the response's "value"

    def test_the_abridged_response_components(self):
        c = handoff_health(DISPUTE_OUTCOME, DISPUTE_REVIEWS).components
        assert c["timeliness"].as_dict() == {
            "value": 0.666667, "count": 6, "weight": 0.35, "on_time": 4, "late": 2,
        }
        assert c["quality"].as_dict() == {"value": 0.65, "count": 5, "weight": 0.35}
        assert c["rework_free"].as_dict() == {
            "value": 0.833333, "count": 6, "weight": 0.15, "reworked": 1,
        }
        assert c["recipient_satisfaction"].as_dict() == {
            "value": 0.5625, "count": 2, "weight": 0.15,
        }

    def test_reported_beside_h(self):
        details = handoff_health(DISPUTE_OUTCOME, DISPUTE_REVIEWS).details
        assert details["counts"] == {
            "events": 8, "due": 6, "on_time": 4, "overdue": 1, "undated": 0, "rated": 5,
            "delivered": 6, "reviews": 2,
        }
        assert details["buffer_rate"] == 2 / 8 == 0.25

    def test_without_the_reviews_the_other_three_share_the_weight(self):
        health = handoff_health(DISPUTE_OUTCOME, ReviewStats())
        expected = 100 * (0.35 * 4 / 6 + 0.35 * 0.65 + 0.15 * 5 / 6) / 0.85
        assert health.value == pytest.approx(expected)
        assert round(health.value, 2) == 68.92
        assert health.components["recipient_satisfaction"].value is None

    def test_median_cycle_time_and_lateness(self):
        # Cycle times of the six deliveries (h), and the lateness of the one late delivery.
        assert median([20, 22, 24, 18, 40, 6]) == (20 + 22) / 2 == 21
        assert median([16]) == 16


class TestHandoffHealthTrendBuckets:
    """docs/method.md §6: the §2 handoff by month, each bucket a window of its own."""

    def test_january(self):
        # e1, e2: both on time, rated 5 and 4, e2 reworked; no review.
        january = EventStats(
            events=2, due=2, on_time=2, delivered=2, reworked=1, rated=2, quality_sum=quality(5, 4)
        )
        health = handoff_health(january, ReviewStats())
        assert health.value == pytest.approx(100 * (0.35 * 1 + 0.35 * 0.875 + 0.15 * 0.5) / 0.85)
        assert round(health.value, 2) == 86.03

    def test_february(self):
        # e3, e4: on time, rated 4 and 3; r1 (4, 3).
        february = EventStats(
            events=2, due=2, on_time=2, delivered=2, rated=2, quality_sum=quality(4, 3)
        )
        health = handoff_health(february, ReviewStats(1, satisfaction((4, 3))))
        assert health.value == pytest.approx(100 * (0.35 + 0.21875 + 0.15 + 0.09375))
        assert round(health.value, 2) == 81.25

    def test_march(self):
        # e5–e8: D = {e5, e6}, neither on time; e5 rated 2; delivered e5, e7; r2 (2, 4).
        march = EventStats(
            events=4, due=2, on_time=0, overdue=1, delivered=2, rated=1, quality_sum=quality(2),
            customer_impact=2,
        )
        health = handoff_health(march, ReviewStats(1, satisfaction((2, 4))))
        assert health.value == pytest.approx(100 * (0 + 0.35 * 0.25 + 0.15 * 1 + 0.15 * 0.5))
        assert round(health.value, 2) == 31.25
        assert health.components["timeliness"].value == 0  # data, and all late: 0, not null


class TestHandoffHealthNullRules:
    def test_no_events_and_no_reviews_is_null_with_a_reason_never_0(self):
        health = handoff_health(EventStats(), ReviewStats())
        assert health.value is None
        assert health.reason
        for name, c in health.components.items():
            assert c.value is None, name
            assert c.reason, name
            assert c.count == 0
        assert health.details["buffer_rate"] is None

    def test_events_not_yet_due_leave_t_null_not_0(self):
        # Two events of E, neither due by as_of, one delivered early and rated 5.
        events = EventStats(events=2, due=0, delivered=1, rated=1, quality_sum=quality(5))
        health = handoff_health(events, ReviewStats())
        assert health.components["timeliness"].value is None
        assert health.components["timeliness"].reason
        # Q = 1 and F = 1 share the weight 0.35 + 0.15: H = 100, not dragged down by T.
        assert health.value == pytest.approx(100 * (0.35 * 1 + 0.15 * 1) / (0.35 + 0.15))

    def test_no_rated_event_leaves_q_null(self):
        events = EventStats(events=1, due=1, on_time=1, delivered=1)
        health = handoff_health(events, ReviewStats())
        assert health.components["quality"].value is None
        assert health.value == pytest.approx(100 * (0.35 * 1 + 0.15 * 1) / 0.5)

    def test_nothing_delivered_leaves_f_null(self):
        # One overdue event: T = 0 ÷ 1, F has no delivered event.
        events = EventStats(events=1, due=1, overdue=1)
        health = handoff_health(events, ReviewStats())
        assert health.components["rework_free"].value is None
        assert health.components["timeliness"].value == 0
        assert health.value == 0  # T has data and is 0: H is 0, not null

    def test_reviews_only(self):
        health = handoff_health(EventStats(), ReviewStats(1, satisfaction((5, 3))))
        # ((5 + 3) / 2 − 1) / 4 = 0.75, the only component: H = 75.
        assert health.value == pytest.approx(100 * ((5 + 3) / 2 - 1) / 4) == pytest.approx(75)

    @pytest.mark.parametrize(
        "events, reviews, expected",
        [
            # each component alone carries all the weight: H = 100 × that component
            (EventStats(events=4, due=4, on_time=3), ReviewStats(), 100 * 3 / 4),
            (EventStats(events=2, rated=2, quality_sum=quality(2, 3)), ReviewStats(), 100 * 0.375),
            (EventStats(events=5, delivered=5, reworked=2), ReviewStats(), 100 * (1 - 2 / 5)),
            (EventStats(), ReviewStats(2, satisfaction((1, 1), (5, 5))), 100 * (0 + 1) / 2),
        ],
        ids=["T", "Q", "F", "S"],
    )
    def test_a_single_component_carries_all_the_weight(self, events, reviews, expected):
        assert handoff_health(events, reviews).value == pytest.approx(expected)

    def test_extremes_of_the_scales(self):
        best = EventStats(events=1, due=1, on_time=1, delivered=1, rated=1, quality_sum=quality(5))
        assert handoff_health(best, ReviewStats(1, satisfaction((5, 5)))).value == pytest.approx(100)
        worst = EventStats(
            events=1, due=1, on_time=0, delivered=1, reworked=1, rated=1, quality_sum=quality(1)
        )
        assert handoff_health(worst, ReviewStats(1, satisfaction((1, 1)))).value == 0

    def test_buffer_rate_is_reported_not_scored(self):
        calm = EventStats(events=4, due=4, on_time=4, delivered=4)
        noisy = EventStats(events=4, due=4, on_time=4, delivered=4, customer_impact=3)
        assert handoff_health(noisy, ReviewStats()).details["buffer_rate"] == 3 / 4
        assert handoff_health(noisy, ReviewStats()).value == handoff_health(calm, ReviewStats()).value

    def test_buffer_rate_rounds_to_6_digits(self):
        events = EventStats(events=3, due=3, on_time=3, delivered=3, customer_impact=1)
        assert handoff_health(events, ReviewStats()).details["buffer_rate"] == 0.333333

    def test_a_null_score_must_say_why(self):
        with pytest.raises(ValueError):
            Score(value=None, components={})


class TestHandoffWeight:
    def test_a_handoff_weighs_its_events(self):
        assert handoff_weight(DISPUTE_OUTCOME, score(67.02)) == 8

    def test_reviews_only_weighs_1(self):
        assert handoff_weight(EventStats(), score(50)) == 1

    def test_a_null_h_takes_no_part(self):
        assert handoff_weight(EventStats(), score(None)) == 0


# §3 Unit alignment U ---------------------------------------------------------------------------


class TestCustomerLinked:
    def test_names_a_touchpoint(self):
        assert customer_linked([goal("g", touchpoints=("tp",))]) == {"g": True}

    @pytest.mark.parametrize("kind", ["survey_score", "customer_effort"])
    def test_customer_metric_kinds(self, kind):
        assert customer_linked([goal("g", metric_kind=kind)]) == {"g": True}

    @pytest.mark.parametrize(
        "kind", ["operational", "financial", "loyalty_program", "recovery", "other"]
    )
    def test_other_metric_kinds_alone_are_not(self, kind):
        assert customer_linked([goal("g", metric_kind=kind)]) == {"g": False}

    def test_through_a_chain_of_contributes_to(self):
        goals = [
            goal("g1", touchpoints=("tp",)),
            goal("g2", contributes_to=("g1",)),
            goal("g3", contributes_to=("g2",)),
        ]
        assert customer_linked(goals) == {"g1": True, "g2": True, "g3": True}

    def test_a_chain_must_reach_a_goal_naming_a_touchpoint(self):
        # g3 contributes to a survey-score goal without a touchpoint: linked(g2) holds by its
        # kind, but the chain rule asks for a goal that *names a touchpoint*.
        goals = [goal("g2", metric_kind="survey_score"), goal("g3", contributes_to=("g2",))]
        assert customer_linked(goals) == {"g2": True, "g3": False}

    def test_contributing_upward_is_not_linking_downward(self):
        goals = [goal("g1", touchpoints=("tp",), contributes_to=("g2",)), goal("g2")]
        assert customer_linked(goals) == {"g1": True, "g2": False}

    def test_a_cycle_without_a_touchpoint_ends_unlinked(self):
        goals = [goal("a", contributes_to=("b",)), goal("b", contributes_to=("a",))]
        assert customer_linked(goals) == {"a": False, "b": False}

    def test_an_unknown_target_is_ignored(self):
        assert customer_linked([goal("a", contributes_to=("gone",))]) == {"a": False}


# docs/method.md §3: the four active goals of `disputes`, and a retired one.
DISPUTES_GOALS = [
    goal("g1", owner="disputes", touchpoints=("dispute-resolution",)),
    goal("g2", owner="disputes", contributes_to=("g1",)),
    goal("g3", owner="disputes"),
    goal("g4", owner="disputes"),
    goal("g5", owner="disputes", touchpoints=("dispute-resolution",), status="retired"),
]
DISPUTES_CONFLICTED = {"g2", "g4"}


class TestGoalAlignment:
    def test_worked_example(self):
        """docs/method.md §3: G = 100 × (1 + 0.5 + 0.5 + 0) ÷ 4 = 50."""
        linked = customer_linked(DISPUTES_GOALS)
        assert [linked[k] for k in ("g1", "g2", "g3", "g4")] == [True, True, False, False]
        g = goal_alignment(DISPUTES_GOALS, linked, DISPUTES_CONFLICTED)
        assert g.value == (1 + 0.5 + 0.5 + 0) / 4
        assert g.count == 4  # the retired goal does not count
        assert g.extra == {"linked": 2, "conflicted": 2}

    @pytest.mark.parametrize(
        "linked, conflicted, expected",
        [
            (True, False, (1 + 1 - 0) / 2),
            (True, True, (1 + 1 - 1) / 2),
            (False, False, (0 + 1 - 0) / 2),
            (False, True, (0 + 1 - 1) / 2),
        ],
    )
    def test_one_goal(self, linked, conflicted, expected):
        g = goal("g")
        part = goal_alignment([g], {"g": linked}, {"g"} if conflicted else set())
        assert part.value == expected

    def test_no_active_goal_is_null_with_a_reason(self):
        retired = [goal("g", status="retired"), goal("h", status="proposed")]
        g = goal_alignment(retired, customer_linked(retired), set())
        assert g.value is None
        assert g.reason
        assert g.count == 0


class TestUnitAlignment:
    def test_worked_example(self):
        """docs/method.md §3: P = 83.22, G = 50, U = 66.61."""
        provided = [
            (score(67.0208), 8),  # dispute-outcome
            (score(90), 24),  # chargeback-file
            (score(50), 1),  # policy-note, reviews only
            (score(None), 0),  # neither events nor reviews
        ]
        g = goal_alignment(DISPUTES_GOALS, customer_linked(DISPUTES_GOALS), DISPUTES_CONFLICTED)
        u = unit_alignment(provided, [], g)
        p = (67.0208 * 8 + 90 * 24 + 50 * 1) / (8 + 24 + 1)
        assert round(p, 2) == 83.22
        assert u.components["provider_health"].value == pytest.approx(p / 100)
        assert round(u.components["provider_health"].value, 4) == 0.8322
        assert u.components["provider_health"].count == 3
        assert u.value == pytest.approx((p + 50) / 2)
        assert round(u.value, 2) == 66.61

    def test_received_health_is_reported_not_scored(self):
        g = component(None, 0)
        alone = unit_alignment([(score(80), 10)], [], g)
        with_received = unit_alignment([(score(80), 10)], [(score(20), 5), (score(40), 15)], g)
        assert alone.value == with_received.value == 80
        received = with_received.details["received_health"]
        assert received["value"] == pytest.approx((20 * 5 + 40 * 15) / 20 / 100)
        assert received["count"] == 2

    def test_goals_only(self):
        u = unit_alignment([], [], component(0.75, 2))
        assert u.value == 75
        assert u.components["provider_health"].value is None
        assert u.components["provider_health"].reason

    def test_handoffs_only(self):
        assert unit_alignment([(score(60), 3)], [], component(None, 0)).value == 60

    def test_nothing_is_null_with_a_reason(self):
        u = unit_alignment([(score(None), 0)], [(score(70), 2)], component(None, 0))
        assert u.value is None
        assert u.reason


# §4 Touchpoint score TP, priority π ---------------------------------------------------------


class TestNormalised:
    @pytest.mark.parametrize(
        "scale, s, expected",
        [
            ("csat", 1, 0),
            ("csat", 4, (4 - 1) / 4),
            ("csat", 5, 1),
            ("ces", 1, 1),  # least effort is best
            ("ces", 3, (7 - 3) / 6),
            ("ces", 7, 0),
            ("nps", 0, 0),
            ("nps", 8, 8 / 10),
            ("nps", 10, 1),
        ],
    )
    def test_scales(self, scale, s, expected):
        assert normalised(scale, s) == pytest.approx(expected)


# docs/method.md §4.4: f1 csat 4, f2 csat 5, f3 ces 3, f4 nps 8; only 3 carry loyalty (§4.5).
DISPUTE_RESOLUTION_FEEDBACK = feedback(
    [
        (normalised("csat", 4), 8),
        (normalised("csat", 5), 9),
        (normalised("ces", 3), 7),
        (normalised("nps", 8), None),
    ]
)


class TestTouchpointScore:
    def test_worked_example(self):
        """docs/method.md §4.4: C = 74.81, X = 0.8042, TP = 77.61."""
        upstream = [(score(67.0208), 8), (score(80), 12), (score(None), 0)]
        tp = touchpoint_score(upstream, DISPUTE_RESOLUTION_FEEDBACK)
        c = (67.0208 * 8 + 80 * 12) / (8 + 12)
        x = (0.75 + 1.00 + (7 - 3) / 6 + 0.80) / 4
        assert round(c, 2) == 74.81 and round(x, 4) == 0.8042
        assert tp.components["chain_health"].value == pytest.approx(c / 100)
        assert tp.components["chain_health"].count == 2
        assert tp.components["customer_satisfaction"].value == pytest.approx(x)
        assert tp.components["customer_satisfaction"].count == 4
        assert tp.value == pytest.approx((c + 100 * x) / 2)
        assert round(tp.value, 2) == 77.61
        assert round(tp.value, 4) == 77.6125  # as §5.1 quotes it

    def test_feedback_only(self):
        tp = touchpoint_score([], feedback([(1.0, None), (0.5, None)]))
        assert tp.value == pytest.approx(100 * (1.0 + 0.5) / 2)
        assert tp.components["chain_health"].value is None
        assert tp.components["chain_health"].reason

    def test_chain_only(self):
        tp = touchpoint_score([(score(40), 2), (score(70), 1)], FeedbackStats())
        assert tp.value == pytest.approx((40 * 2 + 70 * 1) / 3)
        assert tp.components["customer_satisfaction"].value is None
        assert tp.components["customer_satisfaction"].reason

    def test_nothing_is_null_with_a_reason(self):
        tp = touchpoint_score([(score(None), 0)], FeedbackStats())
        assert tp.value is None
        assert tp.reason

    def test_feedback_all_at_the_bottom_is_0_not_null(self):
        tp = touchpoint_score([], feedback([(normalised("csat", 1), None)]))
        assert tp.value == 0


class TestPearson:
    def test_fewer_than_two_records_is_undefined(self):
        assert pearson(FeedbackStats()) is None
        assert pearson(feedback([(0.5, 7)])) is None  # one record

    def test_zero_variance_in_the_score_is_undefined(self):
        assert pearson(feedback([(1.0, y) for y in (3, 7, 9, 10)])) is None

    def test_zero_variance_in_loyalty_is_undefined(self):
        assert pearson(feedback([(x, 8) for x in (0.0, 0.25, 0.75, 1.0)])) is None

    def test_perfect_correlation_is_clamped_to_1(self):
        r = pearson(feedback([(y / 10, y) for y in (0, 1, 3, 7, 9, 10)] * 5))
        assert r == pytest.approx(1)
        assert -1 <= r <= 1

    def test_perfect_anticorrelation(self):
        r = pearson(feedback([(1 - y / 10, y) for y in (0, 2, 5, 10)]))
        assert r == pytest.approx(-1)
        assert -1 <= r <= 1

    def test_two_points(self):
        # Any two distinct points lie on a line: r = ±1.
        assert pearson(feedback([(0.25, 3), (0.75, 9)])) == pytest.approx(1)

    def test_hand_computed(self):
        # x = 0, 0.5, 1; y = 2, 1, 6: x̄ = 0.5, ȳ = 3;
        # Σ(x−x̄)(y−ȳ) = (−0.5)(−1) + 0 + (0.5)(3) = 2; Σ(x−x̄)² = 0.5; Σ(y−ȳ)² = 1 + 4 + 9 = 14.
        r = pearson(feedback([(0, 2), (0.5, 1), (1, 6)]))
        assert r == pytest.approx(2 / math.sqrt(0.5 * 14))


# docs/method.md §4.5, `dispute-form`: thirty csat records with loyalty.
DISPUTE_FORM_RECORDS = (
    [(normalised("csat", 5), 9)] * 10
    + [(normalised("csat", 4), 9)] * 6
    + [(normalised("csat", 4), 6)] * 6
    + [(normalised("csat", 2), 7)] * 4
    + [(normalised("csat", 2), 3)] * 4
)


class TestDriverWeightAndPriority:
    def test_worked_example_derived(self):
        """docs/method.md §4.5: r = 13.5 ÷ √(2.55 × 130.6667) = 0.7396, π = 1.7396."""
        records = DISPUTE_FORM_RECORDS
        x_bar = sum(x for x, _ in records) / 30
        y_bar = sum(y for _, y in records) / 30
        assert x_bar == pytest.approx(21 / 30) and y_bar == pytest.approx(220 / 30)
        assert sum((x - x_bar) * (y - y_bar) for x, y in records) == pytest.approx(13.5)
        assert sum((x - x_bar) ** 2 for x, _ in records) == pytest.approx(2.55)
        assert sum((y - y_bar) ** 2 for _, y in records) == pytest.approx(130.6667, abs=1e-4)

        weight = driver_weight(0.2, feedback(records))
        expected_r = 13.5 / math.sqrt(2.55 * (130 + 2 / 3))
        assert weight.source == "derived"
        assert weight.n == 30
        assert weight.r == pytest.approx(expected_r)
        assert round(weight.value, 4) == 0.7396
        assert round(priority(weight, moment_of_truth=False), 4) == 1.7396
        assert weight.as_dict() == {
            "value": round(expected_r, 6), "source": "derived", "n": 30,
            "r": round(expected_r, 6),
        }

    def test_worked_example_with_29_records_uses_the_declared_weight(self):
        weight = driver_weight(0.2, feedback(DISPUTE_FORM_RECORDS[:29]))
        assert (weight.value, weight.source, weight.n, weight.r) == (0.2, "declared", 29, None)
        assert weight.reason
        assert priority(weight, moment_of_truth=False) == 1 + 0.2

    def test_worked_example_with_no_variance_uses_the_declared_weight(self):
        all_fives = [(normalised("csat", 5), y) for _, y in DISPUTE_FORM_RECORDS]
        weight = driver_weight(0.2, feedback(all_fives))
        assert (weight.value, weight.source, weight.n, weight.r) == (0.2, "declared", 30, None)
        assert weight.reason
        assert priority(weight, moment_of_truth=False) == 1 + 0.2

    def test_worked_example_declared(self):
        """docs/method.md §4.5: 3 of 4 records carry loyalty, declared 0.4, a moment of truth:
        π = 1 + 0.4 + 1 = 2.4."""
        weight = driver_weight(0.4, DISPUTE_RESOLUTION_FEEDBACK)
        assert (weight.source, weight.n) == ("declared", 3)
        assert priority(weight, moment_of_truth=True) == pytest.approx(1 + 0.4 + 1)

    def test_the_threshold_is_30(self):
        assert KDA_MIN_RECORDS == 30

    def test_a_negative_correlation_gives_0_not_a_negative_weight(self):
        records = [(1 - y / 10, y) for y in (0, 2, 5, 10)] * 8  # 32 records, r = −1
        weight = driver_weight(0.7, feedback(records))
        assert weight.source == "derived"
        assert weight.r == pytest.approx(-1)
        assert weight.value == 0
        assert priority(weight, moment_of_truth=False) == 1

    def test_records_without_loyalty_do_not_count_towards_30(self):
        records = DISPUTE_FORM_RECORDS[:29] + [(1.0, None)] * 10
        weight = driver_weight(0.2, feedback(records))
        assert (weight.source, weight.n) == ("declared", 29)

    @pytest.mark.parametrize(
        "weight, moment, expected",
        [(0, False, 1), (0, True, 2), (1, True, 3), (0.25, False, 1.25)],
    )
    def test_priority_runs_from_1_to_3(self, weight, moment, expected):
        assert priority(DriverWeight(weight, "declared", 0, None), moment) == expected


# §5 Journey and company ------------------------------------------------------------------------


class TestJourneyAndCompany:
    def test_journey_worked_example(self):
        """docs/method.md §5.1: J = 290.64 ÷ 4.1396 = 70.21; a plain mean would be 68.81."""
        items = [(score(77.6125), 2.4), (score(60), 1.7396), (score(None), 1)]
        j = priority_weighted(items)
        assert j == pytest.approx((77.6125 * 2.4 + 60 * 1.7396) / (2.4 + 1.7396))
        assert round(j, 2) == 70.21
        assert round(mean([77.6125, 60, None]), 2) == 68.81

    def test_company_worked_example(self):
        """docs/method.md §5.2: Company = 380.64 ÷ 5.1396 = 74.06."""
        items = [(score(77.6125), 2.4), (score(60), 1.7396), (score(None), 1), (score(90), 1)]
        assert round(priority_weighted(items), 2) == 74.06

    def test_company_fallback_worked_example(self):
        """docs/method.md §5.2: the |E|-weighted mean of H: 3706.17 ÷ 45 = 82.36."""
        healths = [(67.0208, 8), (80, 12), (90, 24), (50, 1)]
        assert round(weighted_mean(healths), 2) == 82.36

    def test_no_touchpoint_with_a_score_is_null(self):
        assert priority_weighted([(score(None), 3), (score(None), 1)]) is None
        assert priority_weighted([]) is None


class TestIncentiveCoverage:
    def test_worked_example(self):
        """docs/method.md §5.3: g1 (linked, 0.3), g2 (linked, 0.2), g3 (not, 0.5), g4 (linked,
        0); coverage = 0.5 ÷ 1.0 = 0.5."""
        coverage = incentive_coverage(4, 0.3 + 0.2 + 0.5 + 0, 0.3 + 0.2 + 0)
        assert coverage.value == pytest.approx(0.5)
        assert coverage.count == 4
        assert coverage.extra == {"incentive_total": pytest.approx(1.0)}

    def test_no_incentive_is_null_not_0(self):
        coverage = incentive_coverage(3, 0, 0)
        assert coverage.value is None
        assert coverage.reason
        assert coverage.count == 3

    def test_nothing_on_linked_goals_is_0(self):
        assert incentive_coverage(2, 0.6, 0).value == 0


# §7 Partner score ------------------------------------------------------------------------------


class TestPartnerScore:
    def test_worked_example(self):
        """docs/method.md §7: handoff health 68.6, K = 0.5, partner score 59.3."""
        handoffs = [(score(72), 40), (score(55), 10)]
        partner = partner_score(handoffs, component(1 / 2, 2))
        assert partner.components["handoff_health"].value == pytest.approx(
            (72 * 40 + 55 * 10) / 50 / 100
        )
        assert partner.value == pytest.approx(((72 * 40 + 55 * 10) / 50 + 100 * 0.5) / 2)
        assert round(partner.value, 1) == 59.3

    def test_coverage_only(self):
        partner = partner_score([], component(0, 1))
        assert partner.value == 0  # an agreement without a linked joint goal: 0, not null
        assert partner.components["handoff_health"].reason

    def test_handoffs_only(self):
        assert partner_score([(score(64), 5)], component(None, 0)).value == 64

    def test_nothing_is_null_with_a_reason(self):
        partner = partner_score([(score(None), 0)], component(None, 0))
        assert partner.value is None
        assert partner.reason


# Helpers ---------------------------------------------------------------------------------------


class TestMeans:
    def test_weighted_mean(self):
        assert weighted_mean([(10, 1), (40, 2)]) == (10 * 1 + 40 * 2) / 3

    def test_weighted_mean_leaves_out_nulls_and_non_positive_weights(self):
        assert weighted_mean([(10, 1), (None, 5), (99, 0), (99, -1), (40, 2)]) == 30

    def test_weighted_mean_of_nothing_is_null(self):
        assert weighted_mean([]) is None
        assert weighted_mean([(None, 3)]) is None

    def test_mean_leaves_out_nulls(self):
        assert mean([None, 20, None, 40]) == 30
        assert mean([None]) is None
        assert mean([0]) == 0

    def test_median(self):
        assert median([]) is None
        assert median([5]) == 5
        assert median([9, 1, 5]) == 5
        assert median([4, 1, 3, 2]) == (2 + 3) / 2


class TestRounding:
    def test_components_round_to_6_digits(self):
        assert Component(2 / 3, 3).as_dict() == {"value": 0.666667, "count": 3}

    def test_a_null_component_keeps_its_reason(self):
        assert Component(None, 0, reason="no review").as_dict() == {
            "value": None, "count": 0, "reason": "no review",
        }
