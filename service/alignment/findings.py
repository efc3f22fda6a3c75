"""Goal-silo gotchas (docs/method.md §9), and the two discovery rules of §10, over a snapshot
of the company.

Pure: the service loads the facts, these functions decide what fires. Every finding names
its rule, severity (1–3), subject, a plain explanation and the remedy, with the evidence.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from service.alignment.scoring import (
    GoalFacts,
    contributors,
    customer_linked,
    linked_by_itself,
    reaching,
)
from service.core.fields import format_duration

BUFFER_RATE = 0.10
BUFFER_MIN_EVENTS = 10
SURVEY_FATIGUE_UNITS = 3
# Discovery (§10), as integer percentages so a share is compared exactly.
UNREGISTERED_SHARE_PERCENT = 5
UNREGISTERED_MIN_TRANSFERS = 50
PING_PONG_SHARE_PERCENT = 10
PING_PONG_MIN = 5


@dataclass(frozen=True)
class UnitFacts:
    key: str
    name: str
    kind: str


@dataclass(frozen=True)
class TouchpointFacts:
    key: str
    name: str
    journey: str
    owner: str
    moment_of_truth: bool
    promise_within: timedelta | None


@dataclass(frozen=True)
class HandoffFacts:
    key: str
    from_unit: str
    to_unit: str
    touchpoint: str | None
    expected_within: timedelta | None
    status: str
    events: int = 0  # in the window
    customer_impact: int = 0


@dataclass(frozen=True)
class AgreementFacts:
    key: str
    title: str
    partner: str
    status: str


@dataclass(frozen=True)
class ConflictFacts:
    id: str
    goal_a: str
    goal_b: str
    status: str
    incentive_a: float
    incentive_b: float


@dataclass(frozen=True)
class ArcFacts:
    """An arc A -> B discovered in an event log, with the registered unit keys its two unit
    names map to (whether or not such units exist yet)."""

    key: str  # the finding's subject key: "<log>/<A> -> <B>", at most 200 characters
    log: str
    source: str
    target: str
    from_unit: str
    to_unit: str
    transfers: int
    cases: int
    ping_pongs: int
    log_transfers: int


def carries_enough(transfers: int, log_transfers: int) -> bool:
    """unregistered-handoff's threshold: 5% of the log's transfers, or 50 transfers."""
    return (
        transfers >= UNREGISTERED_MIN_TRANSFERS
        or transfers * 100 >= UNREGISTERED_SHARE_PERCENT * log_transfers
    )


def returns_enough(ping_pongs: int, cases: int) -> bool:
    """ping-pong's threshold: 5 ping-pongs, and 10% of the cases through the arc."""
    return ping_pongs >= PING_PONG_MIN and ping_pongs * 100 >= PING_PONG_SHARE_PERCENT * cases


def is_discovery_candidate(
    transfers: int, cases: int, ping_pongs: int, log_transfers: int
) -> bool:
    """Whether either discovery rule could fire on an arc with these counts, whatever is
    registered: the arcs worth loading (the SQL in arc_subjects.py says the same)."""
    return carries_enough(transfers, log_transfers) or returns_enough(ping_pongs, cases)


@dataclass
class Snapshot:
    units: Sequence[UnitFacts]
    touchpoints: Sequence[TouchpointFacts]
    handoffs: Sequence[HandoffFacts]
    goals: Sequence[GoalFacts]
    agreements: Sequence[AgreementFacts]
    conflicts: Sequence[ConflictFacts]
    journeys: dict[str, str] = field(default_factory=dict)  # key → name
    arcs: Sequence[ArcFacts] = ()


@dataclass(frozen=True)
class Finding:
    rule: str
    severity: int
    subject_type: str
    subject: str
    explanation: str
    remedy: str
    evidence: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "severity": self.severity,
            "subject": {"type": self.subject_type, "key": self.subject},
            "explanation": self.explanation,
            "remedy": self.remedy,
            "evidence": self.evidence,
        }


RULES: dict[str, Callable[[Snapshot], Iterable[Finding]]] = {}


def rule(name: str) -> Callable[[Callable[[Snapshot], Iterable[Finding]]], Any]:
    def register(check: Callable[[Snapshot], Iterable[Finding]]) -> Any:
        RULES[name] = check
        return check

    return register


def evaluate(snapshot: Snapshot, rules: Iterable[str] | None = None) -> list[Finding]:
    selected = list(RULES) if rules is None else list(rules)
    found = [finding for name in selected for finding in RULES[name](snapshot)]
    return sorted(found, key=lambda f: (-f.severity, f.rule, f.subject))


def _active(goals: Iterable[GoalFacts]) -> list[GoalFacts]:
    return [g for g in goals if g.status == "active"]


@rule("upstream-unlinked")
def _upstream_unlinked(s: Snapshot) -> Iterable[Finding]:
    owners = {t.owner for t in s.touchpoints}
    providers = {h.from_unit for h in s.handoffs if h.status == "active"}
    linked = customer_linked(s.goals)
    customer_goal_owners = {g.owner for g in _active(s.goals) if linked[g.key]}
    for unit in s.units:
        if unit.key in owners or unit.key not in providers or unit.key in customer_goal_owners:
            continue
        provides = sorted(
            h.key for h in s.handoffs if h.from_unit == unit.key and h.status == "active"
        )
        yield Finding(
            "upstream-unlinked",
            2,
            "unit",
            unit.key,
            f"{unit.name} owns no touchpoint and none of its goals is linked to the customer, "
            "yet its handoffs ripple out to customers. Work far from the customer is then "
            "measured on productivity and other internal criteria only.",
            f"Ask of each of {unit.name}'s responsibilities 'why should customers pay for this "
            "work?'; give it a goal on a touchpoint its handoffs serve, and peel the onion "
            "from that touchpoint back to its work.",
            {"provides": provides},
        )


@rule("buffering")
def _buffering(s: Snapshot) -> Iterable[Finding]:
    for h in s.handoffs:
        if h.events < BUFFER_MIN_EVENTS:
            continue
        rate = h.customer_impact / h.events
        if rate < BUFFER_RATE:
            continue
        yield Finding(
            "buffering",
            3 if rate >= 0.25 else 2,
            "handoff",
            h.key,
            f"{h.customer_impact} of {h.events} occurrences of {h.key} ({rate:.0%}) reached the "
            f"customer: staff at {h.to_unit} absorb {h.from_unit}'s misses. Customer-facing staff "
            "act as a buffer for incongruent handoffs upstream, and that recurring cost diverts "
            "them from creating value.",
            f"Make fewer buffer situations a goal {h.from_unit} and {h.to_unit} share; fix the "
            "handoff at its source rather than rewarding the front line for absorbing it.",
            {"buffer_rate": round(rate, 4), "events": h.events, "customer_impact": h.customer_impact},
        )


@rule("ends-without-means")
def _ends_without_means(s: Snapshot) -> Iterable[Finding]:
    active = _active(s.goals)
    fed = {target for g in active if g.kind == "means" for target in g.contributes_to}
    for goal in active:
        if goal.kind != "ends" or goal.key in fed:
            continue
        yield Finding(
            "ends-without-means",
            2,
            "goal",
            goal.key,
            f"{goal.key} sets an end ({goal.metric}) with no means goal contributing to it: a "
            "score target with no lever behind it puts the cart before the horse and can paint "
            "a mirage over what is really happening.",
            f"Name the specific means that lead to {goal.key} and link them to it with "
            "contributes_to, so the means show how they move the end.",
            {"owner": goal.owner, "metric": goal.metric},
        )


@rule("survey-fatigue")
def _survey_fatigue(s: Snapshot) -> Iterable[Finding]:
    journey_of = {t.key: t.journey for t in s.touchpoints}
    surveyors: dict[str, set[str]] = defaultdict(set)
    for goal in _active(s.goals):
        if goal.metric_kind != "survey_score":
            continue
        for touchpoint in goal.touchpoints:
            if touchpoint in journey_of:
                surveyors[journey_of[touchpoint]].add(goal.owner)
    for journey, units in sorted(surveyors.items()):
        if len(units) < SURVEY_FATIGUE_UNITS:
            continue
        name = s.journeys.get(journey, journey)
        yield Finding(
            "survey-fatigue",
            2,
            "journey",
            journey,
            f"{len(units)} units ({', '.join(sorted(units))}) each own a survey-score goal on "
            f"the '{name}' journey: every silo surveys the same customer, who gets overwhelmed "
            "by the asking.",
            "Run one listening programme for the journey and send its results to every unit, "
            "instead of one survey per silo.",
            {"units": sorted(units)},
        )


def _disconnected(kind: str, s: Snapshot) -> Iterable[GoalFacts]:
    """Active goals of this metric kind cut off from every customer goal: no chain of
    contributes_to from the goal reaches a customer-linked goal, and no customer-linked goal
    reaches it (the investor-only remedy asks for such a contributor). A contributor's
    linkage is judged without the goal's own touchpoints, or it would count only through the
    goal judged.

    Linear in the goals and their links, then one walk up from each candidate: judging every
    goal anew for each candidate was cubic in a company's goals."""
    by_key = {g.key: g for g in s.goals}
    callers = contributors(by_key)
    linked = customer_linked(s.goals)
    reaching_linked = reaching(callers, [key for key in by_key if linked[key]])
    touched = _touchpoint_goals_reached(by_key, callers)
    for goal in _active(s.goals):
        if goal.metric_kind != kind or goal.key in reaching_linked:
            continue
        if not _linked_contributor(goal.key, by_key, callers, touched):
            yield goal


def _touchpoint_goals_reached(
    by_key: Mapping[str, GoalFacts], callers: Mapping[str, list[str]]
) -> dict[str, frozenset[str]]:
    """For each goal, up to two goals naming a touchpoint that a chain of one or more
    contributes_to from it reaches: two are enough to know that one remains whichever goal
    is set aside. Each goal's set grows at most twice, so the work is linear in the links."""
    reached: dict[str, set[str]] = defaultdict(set)
    pending: list[tuple[str, frozenset[str]]] = [
        (key, frozenset([key])) for key, goal in by_key.items() if goal.touchpoints
    ]
    while pending:
        key, news = pending.pop()
        for caller in callers.get(key, ()):
            held = reached[caller]
            added = {n for n in news if n not in held}
            added = set(sorted(added)[: 2 - len(held)])
            if added:
                held |= added
                pending.append((caller, frozenset(held)))
    return {key: frozenset(keys) for key, keys in reached.items()}


def _linked_contributor(
    judged: str,
    by_key: Mapping[str, GoalFacts],
    callers: Mapping[str, list[str]],
    touched: Mapping[str, frozenset[str]],
) -> bool:
    """Whether a goal other than ``judged`` with a chain to it is customer-linked once
    ``judged``'s touchpoints are set aside. ``judged`` reaches no customer-linked goal (the
    caller checked), so a contributor's chains through it reach no touchpoint either: only
    the contributor's own linkage and the touchpoint goals other than ``judged`` count."""
    seen: set[str] = set()
    pending = [judged]
    while pending:
        for key in callers.get(pending.pop(), ()):
            if key in seen:
                continue
            seen.add(key)
            if key != judged and (
                linked_by_itself(by_key[key]) or touched.get(key, frozenset()) - {judged}
            ):
                return True
            pending.append(key)
    return False


@rule("enticement-only")
def _enticement_only(s: Snapshot) -> Iterable[Finding]:
    for goal in _disconnected("loyalty_program", s):
        yield Finding(
            "enticement-only",
            2,
            "goal",
            goal.key,
            f"{goal.key} pursues loyalty through a programme, and no customer experience goal "
            "stands behind it. Loyalty bought with enticements is fleeting; relationship length "
            "and brand preference must be earned.",
            f"Connect {goal.key} with contributes_to to the customer-linked goals that make the "
            "company easy to do business with, or shift the effort to them.",
            {"owner": goal.owner, "metric": goal.metric},
        )


@rule("investor-only")
def _investor_only(s: Snapshot) -> Iterable[Finding]:
    for goal in _disconnected("financial", s):
        yield Finding(
            "investor-only",
            2,
            "goal",
            goal.key,
            f"{goal.key} caters to investors' expectations and is cut off from every customer "
            "goal. Customers are the primary source of money: investors leave when customers "
            "leave, not the other way round.",
            f"Connect the dots between cause and effect: make a customer experience goal "
            f"contribute to {goal.key}.",
            {"owner": goal.owner, "metric": goal.metric},
        )


@rule("heroics")
def _heroics(s: Snapshot) -> Iterable[Finding]:
    active = _active(s.goals)
    for goal in active:
        if goal.metric_kind != "recovery":
            continue
        prevention = [
            g.key
            for g in active
            # another goal: a rescue is not its own prevention, even when it is a means goal
            if g.key != goal.key and g.kind == "means" and g.touchpoints & goal.touchpoints
        ]
        if prevention:
            continue
        yield Finding(
            "heroics",
            2,
            "goal",
            goal.key,
            f"{goal.key} rewards rescuing customers, and no means goal works on the same "
            "touchpoints to prevent what needs rescuing. Heroics save the day for a few while "
            "many customers meet the same glitch.",
            "Add a means goal on the same touchpoints that prevents the failures the rescues "
            "repair, and reward the teamwork that keeps the experience reliable.",
            {"owner": goal.owner, "touchpoints": sorted(goal.touchpoints)},
        )


@rule("partner-financial-only")
def _partner_financial_only(s: Snapshot) -> Iterable[Finding]:
    linked = customer_linked(s.goals)
    for agreement in s.agreements:
        if agreement.status != "active":
            continue
        joint = [g for g in _active(s.goals) if g.agreement == agreement.key]
        if not joint or any(linked[g.key] for g in joint):
            continue
        yield Finding(
            "partner-financial-only",
            3,
            "agreement",
            agreement.key,
            f"{agreement.partner} is judged on price and dates alone: none of the accepted joint "
            f"goals of '{agreement.title}' ({', '.join(sorted(g.key for g in joint))}) is linked "
            "to the customer, while the customer lives with the partner's misses.",
            f"Create a joint goal with {agreement.partner} on a touchpoint its work reaches, "
            "emphasising the means it contributes toward the customer experience goals.",
            {"partner": agreement.partner, "joint_goals": sorted(g.key for g in joint)},
        )


@rule("unfunded-counterweight")
def _unfunded_counterweight(s: Snapshot) -> Iterable[Finding]:
    for conflict in s.conflicts:
        if conflict.status != "open":
            continue
        if (conflict.incentive_a > 0) == (conflict.incentive_b > 0):
            continue
        funded, unfunded = (
            (conflict.goal_a, conflict.goal_b)
            if conflict.incentive_a > 0
            else (conflict.goal_b, conflict.goal_a)
        )
        yield Finding(
            "unfunded-counterweight",
            3,
            "conflict",
            conflict.id,
            f"{funded} carries an incentive and {unfunded}, which it works against, does not: "
            "the paid goal crowds out the unpaid one, as when phone reps paid per offer cut "
            "short the rapport nobody paid them to build.",
            f"Fund both sides or reconcile {funded} and {unfunded} before the next period; "
            "then resolve the conflict.",
            {
                "funded": funded,
                "unfunded": unfunded,
                "incentive_weight": max(conflict.incentive_a, conflict.incentive_b),
            },
        )


def upstream_depths(touchpoint: TouchpointFacts, handoffs: Sequence[HandoffFacts]) -> dict[str, int]:
    """Peeling the onion: depth 1 delivers to the owner, depth 2 to a depth-1 provider, …"""
    upstream = [h for h in handoffs if h.touchpoint == touchpoint.key]
    depth: dict[str, int] = {}
    frontier = {touchpoint.owner}
    level = 1
    while frontier:
        reached = [h for h in upstream if h.key not in depth and h.to_unit in frontier]
        for h in reached:
            depth[h.key] = level
        frontier = {h.from_unit for h in reached}
        level += 1
    return depth


def longest_chain(
    touchpoint: TouchpointFacts, handoffs: Sequence[HandoffFacts]
) -> tuple[timedelta, list[str]]:
    """The largest sum of expected_within along a path of upstream handoffs, each delivering
    one step closer to the touchpoint's owner, and that path (outermost first)."""
    depth = upstream_depths(touchpoint, handoffs)
    by_key = {h.key: h for h in handoffs if h.key in depth}
    best: dict[str, tuple[timedelta, list[str]]] = {}
    for key in sorted(by_key, key=lambda k: depth[k]):
        h = by_key[key]
        own = h.expected_within or timedelta(0)
        if depth[key] == 1:
            best[key] = (own, [key])
            continue
        closer = [
            best[n.key]
            for n in by_key.values()
            if depth[n.key] == depth[key] - 1 and n.from_unit == h.to_unit
        ]
        total, path = max(closer, key=lambda item: item[0])
        best[key] = (own + total, [key, *path])
    if not best:
        return timedelta(0), []
    return max(best.values(), key=lambda item: item[0])


@rule("promise-overrun")
def _promise_overrun(s: Snapshot) -> Iterable[Finding]:
    for touchpoint in s.touchpoints:
        if touchpoint.promise_within is None:
            continue
        total, path = longest_chain(touchpoint, s.handoffs)
        if total <= touchpoint.promise_within:
            continue
        yield Finding(
            "promise-overrun",
            3,
            "touchpoint",
            touchpoint.key,
            f"Customers at '{touchpoint.name}' are promised {format_duration(touchpoint.promise_within)}, "
            f"but the handoffs behind it ({' → '.join(path)}) allow {format_duration(total)} "
            "between them: the internal agreements cannot add up to what the customer was promised.",
            "Tighten the expected_within of the handoffs on that chain with their recipients, "
            "or promise the customer what the chain can deliver.",
            {
                "promise_within": format_duration(touchpoint.promise_within),
                "chain_within": format_duration(total),
                "chain": path,
            },
        )


@rule("no-timing-standard")
def _no_timing_standard(s: Snapshot) -> Iterable[Finding]:
    for h in s.handoffs:
        if h.status != "active" or h.expected_within is not None:
            continue
        yield Finding(
            "no-timing-standard",
            1,
            "handoff",
            h.key,
            f"{h.key} from {h.from_unit} to {h.to_unit} has no timing standard, so none of its "
            "occurrences can ever be late: timing gaps cannot even be seen.",
            f"Agree with {h.to_unit} how soon it needs {h.key}, and set expected_within.",
            {"from_unit": h.from_unit, "to_unit": h.to_unit},
        )


def _arc_severity(arc: ArcFacts, s: Snapshot) -> int:
    """3 when one of the arc's units owns a touchpoint that is a moment of truth."""
    ends = {arc.from_unit, arc.to_unit}
    return 3 if any(t.moment_of_truth and t.owner in ends for t in s.touchpoints) else 2


def _arc_evidence(arc: ArcFacts) -> dict[str, Any]:
    return {
        "log": arc.log,
        "source": arc.source,
        "target": arc.target,
        "from_unit": arc.from_unit,
        "to_unit": arc.to_unit,
        "transfers": arc.transfers,
        "log_transfers": arc.log_transfers,
        "cases": arc.cases,
        "ping_pongs": arc.ping_pongs,
    }


@rule("unregistered-handoff")
def _unregistered_handoff(s: Snapshot) -> Iterable[Finding]:
    registered = {(h.from_unit, h.to_unit) for h in s.handoffs if h.status == "active"}
    for arc in s.arcs:
        if (arc.from_unit, arc.to_unit) in registered:
            continue
        if not carries_enough(arc.transfers, arc.log_transfers):
            continue
        share = arc.transfers / arc.log_transfers
        yield Finding(
            "unregistered-handoff",
            _arc_severity(arc, s),
            "discovered_arc",
            arc.key,
            f"In the log {arc.log}, cases pass from {arc.source} to {arc.target} "
            f"{arc.transfers} times ({share:.0%} of the log's transfers, in {arc.cases} cases), "
            f"yet no active handoff is registered from {arc.from_unit} to {arc.to_unit}. Nobody "
            "has agreed what the receiving unit needs or how soon: the seam the customer "
            "crosses is invisible to both silos.",
            f"Adopt the arc as a handoff (POST /v1/event-logs/{arc.log}/handoffs/adopt), or "
            f"register one from {arc.from_unit} to {arc.to_unit}, and agree its timing "
            "standard with the receiving unit.",
            {**_arc_evidence(arc), "share": round(share, 4)},
        )


@rule("ping-pong")
def _ping_pong(s: Snapshot) -> Iterable[Finding]:
    for arc in s.arcs:
        if not returns_enough(arc.ping_pongs, arc.cases):
            continue
        share = arc.ping_pongs / arc.cases
        yield Finding(
            "ping-pong",
            _arc_severity(arc, s),
            "discovered_arc",
            arc.key,
            f"In the log {arc.log}, {arc.ping_pongs} times a case went from {arc.source} to "
            f"{arc.target} and straight back ({share:.0%} of the {arc.cases} cases through "
            f"the arc). Work that returns was not what {arc.target} needed, and the customer "
            "waits through every round trip.",
            f"Agree with {arc.target} what a complete handoff from {arc.source} contains, "
            "review the returned cases together, and measure the returns as a goal both "
            "units share.",
            {**_arc_evidence(arc), "ping_pong_share": round(share, 4)},
        )
