"""service.goals.service: goals, joint goals, cycles and check-ins, called directly."""

from __future__ import annotations

import itertools
import uuid
from datetime import UTC, date, datetime

import pytest
from sqlalchemy import func, select

from service.alignment.models import Conflict
from service.api_keys import service as api_keys_service
from service.api_keys.schemas import ApiKeyCreate
from service.api_keys.service import SYSTEM
from service.core.errors import (
    Forbidden,
    Invalid,
    KeyExists,
    NotFound,
    StillReferenced,
    UnknownReference,
    VersionMismatch,
)
from service.core.pagination import PageRequest
from service.core.permissions import Principal, Role
from service.goals import service as goals_service
from service.goals.constants import GoalStatus, ProposedBy
from service.goals.models import Goal, GoalCheckIn, GoalContribution, GoalTouchpoint
from service.goals.schemas import CheckInCreate, GoalCreate, GoalUpdate, JointGoalCreate
from service.goals.service import GoalCycle, NotProposed, _path_back
from tests.factories import (
    make_agreement,
    make_goal,
    make_joint_goal,
    make_journey,
    make_metric,
    make_touchpoint,
    make_unit,
)

PAGE = PageRequest(limit=50)


async def principal(session, role: Role, partner: str | None = None) -> Principal:
    """The caller of a real API key of this role, as a request would authenticate it."""
    data = ApiKeyCreate(name=f"test {role}", role=role, partner=partner)
    _, secret = await api_keys_service.create(session, SYSTEM, data)
    return await api_keys_service.authenticate(session, secret)


async def count(session, model, **where) -> int:
    statement = select(func.count()).select_from(model)
    for column, value in where.items():
        statement = statement.where(getattr(model, column) == value)
    return await session.scalar(statement)


def create(**overrides) -> GoalCreate:
    data = {
        "key": "swift",
        "title": "Swift calls",
        "owner": "marketing",
        "metric": "handle-time",
        "direction": "decrease",
        "kind": "means",
        **overrides,
    }
    return GoalCreate(**data)


def joint(**overrides) -> JointGoalCreate:
    data = {
        "key": "on-time",
        "title": "On time",
        "owner": "courier",
        "metric": "on-time",
        "direction": "increase",
        "kind": "ends",
        **overrides,
    }
    return JointGoalCreate(**data)


@pytest.fixture
async def world(session):
    """Units marketing, service (internal), courier, rival (external); metrics handle-time
    and on-time; touchpoints call and chat; agreements courier-sla and rival-sla."""
    await make_unit(session, key="marketing")
    await make_unit(session, key="service")
    await make_unit(session, key="courier", kind="partner")
    await make_unit(session, key="rival", kind="partner")
    await make_metric(session, key="handle-time")
    await make_metric(session, key="on-time")
    await make_journey(session, key="calls", stages=["call"])
    for key in ("call", "chat"):
        await make_touchpoint(session, key=key, journey="calls", stage="call", owner="service")
    await make_agreement(session, key="courier-sla", partner="courier", internal_owner="service")
    await make_agreement(session, key="rival-sla", partner="rival", internal_owner="marketing")


PROPOSED = "courier.on-time"  # the key the courier's proposal "on-time" is stored under


async def agreed(session) -> Goal:
    """A goal the company proposed on courier-sla: its metric on-time is one the courier
    then sees and may name."""
    return await make_joint_goal(session, "courier-sla", key="agreed", metric="on-time")


@pytest.fixture
async def courier(session, world) -> Principal:
    return await principal(session, Role.partner, "courier")


@pytest.fixture
async def reader(session) -> Principal:
    return await principal(session, Role.reader)


# The cycle search ----------------------------------------------------------------------------


class TestPathBack:
    """_path_back(edges, start): a path start → … → start, if the edges have one."""

    A, B, C, D = (uuid.UUID(int=n) for n in range(1, 5))

    def test_no_targets_no_path(self):
        assert _path_back({self.A: []}, self.A) is None

    def test_a_self_loop(self):
        assert _path_back({self.A: [self.A]}, self.A) == [self.A, self.A]

    def test_a_direct_cycle(self):
        assert _path_back({self.A: [self.B], self.B: [self.A]}, self.A) == [self.A, self.B, self.A]

    def test_a_cycle_through_three(self):
        edges = {self.A: [self.B], self.B: [self.C], self.C: [self.A]}
        assert _path_back(edges, self.A) == [self.A, self.B, self.C, self.A]

    def test_a_diamond_has_no_path_back(self):
        edges = {self.A: [self.B, self.C], self.B: [self.D], self.C: [self.D]}
        assert _path_back(edges, self.A) is None

    def test_a_loop_that_does_not_return_to_start_is_not_reported(self):
        edges = {self.A: [self.B], self.B: [self.C], self.C: [self.B]}
        assert _path_back(edges, self.A) is None

    def test_dead_ends_are_skipped(self):
        edges = {self.A: [self.B, self.C], self.B: [self.D], self.C: [self.A]}
        assert _path_back(edges, self.A) == [self.A, self.C, self.A]

    def test_a_long_chain_needs_no_recursion(self):
        nodes = [uuid.UUID(int=n) for n in range(1, 5002)]
        edges = {a: [b] for a, b in itertools.pairwise(nodes)}
        edges[nodes[-1]] = [nodes[0]]
        path = _path_back(edges, nodes[0])
        assert path == [*nodes, nodes[0]]


# Goals -------------------------------------------------------------------------------------


class TestCreate:
    async def test_creates_with_links(self, session, world):
        await make_goal(session, key="loyal", owner="service", metric="on-time")
        goal = await goals_service.create(
            session, SYSTEM, create(touchpoints=["call", "chat"], contributes_to=["loyal"])
        )
        assert (goal.status, goal.proposed_by, goal.accepted_at) == ("active", "internal", None)
        assert await count(session, GoalTouchpoint, goal_id=goal.id) == 2
        assert await count(session, GoalContribution, goal_id=goal.id) == 1
        (read,) = await goals_service.to_read(session, [goal])
        assert (read.owner, read.metric, read.touchpoints, read.contributes_to) == (
            "marketing",
            "handle-time",
            ["call", "chat"],
            ["loyal"],
        )

    async def test_lists_come_back_sorted_by_key(self, session, world):
        goal = await goals_service.create(session, SYSTEM, create(touchpoints=["chat", "call"]))
        (read,) = await goals_service.to_read(session, [goal])
        assert read.touchpoints == ["call", "chat"]

    @pytest.mark.parametrize("role", [Role.reader, Role.partner])
    async def test_only_writers_create(self, session, world, role):
        caller = await principal(session, role, "courier" if role is Role.partner else None)
        with pytest.raises(Forbidden):
            await goals_service.create(
                session, caller, create(owner="courier", agreement="courier-sla")
            )
        assert await count(session, Goal) == 0

    async def test_its_own_key_in_contributes_to_is_a_cycle(self, session, world):
        with pytest.raises(GoalCycle) as raised:
            await goals_service.create(session, SYSTEM, create(contributes_to=["swift"]))
        assert raised.value.extensions["cycle"] == ["swift", "swift"]
        assert raised.value.extensions["errors"][0]["loc"] == ["body", "contributes_to"]
        assert isinstance(raised.value, Invalid)
        assert await count(session, Goal) == 0

    async def test_a_duplicate_key_raises_key_exists(self, session, world):
        await make_goal(session, key="swift", owner="service", metric="on-time")
        with pytest.raises(KeyExists):
            await goals_service.create(session, SYSTEM, create())

    async def test_an_owner_outside_the_agreement_is_invalid(self, session, world):
        with pytest.raises(Invalid) as raised:
            await goals_service.create(session, SYSTEM, create(agreement="courier-sla"))
        assert raised.value.extensions["errors"][0]["loc"] == ["body", "owner"]
        assert await count(session, Goal) == 0

    async def test_an_active_joint_goal_is_accepted_at_creation(self, session, world):
        before = datetime.now(UTC)
        goal = await goals_service.create(
            session, SYSTEM, create(owner="courier", agreement="courier-sla")
        )
        assert goal.accepted_at is not None
        assert before <= goal.accepted_at <= datetime.now(UTC)

    async def test_dueling_goals_store_a_conflict(self, session, world):
        await goals_service.create(session, SYSTEM, create())
        assert await count(session, Conflict) == 0
        await goals_service.create(
            session, SYSTEM, create(key="thorough", owner="service", direction="increase")
        )
        assert await count(session, Conflict) == 1


class TestUpdate:
    async def test_a_stale_version_changes_nothing(self, session, world):
        goal = await make_goal(session, key="swift", owner="marketing", metric="handle-time")
        with pytest.raises(VersionMismatch):
            await goals_service.update(
                session, SYSTEM, "swift", GoalUpdate(title="Late"), expected_version=7
            )
        assert (goal.title, goal.version) == ("A goal", 1)

    async def test_a_cycle_is_refused_and_nothing_changes(self, session, world):
        await make_goal(session, key="c", owner="service", metric="on-time")
        await make_goal(session, key="b", owner="service", metric="on-time", contributes_to=["c"])
        await make_goal(session, key="a", owner="service", metric="on-time", contributes_to=["b"])
        with pytest.raises(GoalCycle) as raised:
            await goals_service.update(
                session,
                SYSTEM,
                "c",
                GoalUpdate(title="Changed", touchpoints=["call"], contributes_to=["a"]),
            )
        assert raised.value.extensions["cycle"] == ["c", "a", "b", "c"]
        assert "c → a → b → c" in raised.value.detail
        c = await goals_service.get(session, SYSTEM, "c")
        assert (c.title, c.version) == ("A goal", 1)
        assert await count(session, GoalContribution) == 2
        assert await count(session, GoalTouchpoint) == 0

    async def test_replacing_contributes_to_drops_the_old_edges(self, session, world):
        await make_goal(session, key="x", owner="service", metric="on-time")
        await make_goal(session, key="y", owner="service", metric="on-time")
        goal = await make_goal(
            session, key="a", owner="service", metric="on-time", contributes_to=["x", "y"]
        )
        await goals_service.update(session, SYSTEM, "a", GoalUpdate(contributes_to=["y"]))
        (read,) = await goals_service.to_read(session, [goal])
        assert read.contributes_to == ["y"]
        assert await count(session, GoalContribution) == 1

    async def test_activating_a_proposal_records_the_acceptance(self, session, world):
        await make_goal(session, key="idea", owner="service", metric="on-time", status="proposed")
        goal = await goals_service.update(
            session, SYSTEM, "idea", GoalUpdate(status=GoalStatus.active)
        )
        assert goal.status == "active"
        assert goal.accepted_at is not None
        assert goal.version == 2

    async def test_retiring_keeps_the_acceptance(self, session, world):
        goal = await make_goal(
            session, key="shared", owner="courier", metric="on-time", agreement="courier-sla"
        )
        accepted = goal.accepted_at
        await goals_service.update(session, SYSTEM, "shared", GoalUpdate(status=GoalStatus.retired))
        assert (goal.status, goal.accepted_at) == ("retired", accepted)

    @pytest.mark.parametrize("role", [Role.reader, Role.partner])
    async def test_only_writers_update(self, session, world, role):
        await make_joint_goal(session, "courier-sla", key="on-time", metric="on-time")
        caller = await principal(session, role, "courier" if role is Role.partner else None)
        with pytest.raises(Forbidden):
            await goals_service.update(
                session, caller, "on-time", GoalUpdate(status=GoalStatus.active)
            )
        goal = await goals_service.get(session, SYSTEM, "on-time")
        assert (goal.status, goal.version) == ("proposed", 1)

    async def test_retiring_a_dueling_goal_drops_the_conflict(self, session, world):
        await goals_service.create(session, SYSTEM, create())
        await goals_service.create(
            session, SYSTEM, create(key="thorough", owner="service", direction="increase")
        )
        await goals_service.update(
            session, SYSTEM, "thorough", GoalUpdate(status=GoalStatus.retired)
        )
        assert await count(session, Conflict) == 0

    async def test_separating_the_periods_drops_the_conflict(self, session, world):
        await goals_service.create(session, SYSTEM, create(period_end=date(2026, 3, 31)))
        await goals_service.create(
            session, SYSTEM, create(key="thorough", owner="service", direction="increase")
        )
        assert await count(session, Conflict) == 1
        await goals_service.update(
            session, SYSTEM, "thorough", GoalUpdate(period_start=date(2026, 4, 1))
        )
        assert await count(session, Conflict) == 0


class TestDelete:
    async def test_a_goal_others_contribute_to_is_still_referenced(self, session, world):
        await make_goal(session, key="end", owner="service", metric="on-time")
        await make_goal(
            session, key="means", owner="service", metric="on-time", contributes_to=["end"]
        )
        with pytest.raises(StillReferenced) as raised:
            await goals_service.delete(session, SYSTEM, "end")
        assert raised.value.extensions["referenced_by"] == {"goal_contributions": 1}
        assert await count(session, Goal) == 2

    async def test_check_ins_go_with_the_goal(self, session, world):
        goal = await make_goal(session, key="g", owner="service", metric="on-time")
        await goals_service.add_check_in(session, SYSTEM, "g", CheckInCreate(value=1))
        await goals_service.delete(session, SYSTEM, "g")
        assert await count(session, GoalCheckIn, goal_id=goal.id) == 0
        with pytest.raises(NotFound):
            await goals_service.get(session, SYSTEM, "g")

    async def test_a_partner_may_not_delete(self, session, courier):
        await make_joint_goal(session, "courier-sla", key="on-time", metric="on-time")
        with pytest.raises(Forbidden):
            await goals_service.delete(session, courier, "on-time")
        assert await count(session, Goal) == 1


# Scope -------------------------------------------------------------------------------------


class TestPartnerScope:
    @pytest.fixture
    async def goals(self, session, world):
        await make_goal(session, key="internal", owner="service", metric="on-time")
        await make_joint_goal(session, "courier-sla", key="mine", metric="on-time")
        await make_goal(
            session, key="mine-active", owner="courier", metric="on-time", agreement="courier-sla"
        )
        await make_joint_goal(session, "rival-sla", key="theirs", metric="on-time")

    async def test_get_sees_only_its_agreements_goals(self, session, courier, goals):
        assert (await goals_service.get(session, courier, "mine")).key == "mine"
        for key in ("internal", "theirs"):
            with pytest.raises(NotFound):
                await goals_service.get(session, courier, key)

    async def test_get_many_leaves_the_rest_out(self, session, courier, goals):
        ids = [
            (await goals_service.get(session, SYSTEM, k)).id for k in ("internal", "mine", "theirs")
        ]
        found = await goals_service.get_many(session, courier, ids)
        assert [g.key if g else None for g in found] == [None, "mine", None]

    @pytest.mark.parametrize(
        "filters",
        [
            {},
            {"owner": "rival"},
            {"agreement": "rival-sla"},
            {"metric": "on-time"},
            {"owner": "service"},
        ],
    )
    async def test_list_page_never_widens(self, session, courier, goals, filters):
        rows, _ = await goals_service.list_page(session, courier, PAGE, **filters)
        assert {g.key for g in rows} <= {"mine", "mine-active"}

    async def test_list_by_agreement_ids_leaves_the_rest_out(self, session, courier, goals):
        agreements = [
            (await goals_service.get(session, SYSTEM, k)).agreement_id for k in ("mine", "theirs")
        ]
        rows = await goals_service.list_by_agreement_ids(session, courier, agreements)
        assert [g.key for g in rows] == ["mine", "mine-active"]

    async def test_list_by_owner_ids_leaves_the_rest_out(self, session, courier, goals):
        owners = [
            (await goals_service.get(session, SYSTEM, k)).owner_id for k in ("internal", "theirs")
        ]
        assert await goals_service.list_by_owner_ids(session, courier, owners) == []

    async def test_a_reader_sees_everything(self, session, reader, goals):
        rows, _ = await goals_service.list_page(session, reader, PAGE)
        assert [g.key for g in rows] == ["internal", "mine", "mine-active", "theirs"]


# Joint goals -------------------------------------------------------------------------------


class TestProposeJointGoal:
    async def test_a_partner_proposes_on_its_agreement(self, session, courier):
        await agreed(session)
        goal = await goals_service.propose_joint_goal(session, courier, "courier-sla", joint())
        assert goal.key == "courier.on-time"  # the partner's own key space
        assert (goal.status, goal.proposed_by, goal.accepted_at) == (
            GoalStatus.proposed.value,
            ProposedBy.partner.value,
            None,
        )
        (read,) = await goals_service.to_read(session, [goal])
        assert read.agreement == "courier-sla"

    async def test_the_company_proposes_as_internal(self, session, world):
        goal = await goals_service.propose_joint_goal(session, SYSTEM, "courier-sla", joint())
        assert (goal.status, goal.proposed_by) == ("proposed", "internal")

    async def test_another_partners_agreement_does_not_exist(self, session, courier):
        with pytest.raises(NotFound):
            await goals_service.propose_joint_goal(
                session, courier, "rival-sla", joint(owner="rival")
            )
        assert await count(session, Goal) == 0

    async def test_a_reader_may_not_propose(self, session, reader, world):
        with pytest.raises(Forbidden):
            await goals_service.propose_joint_goal(session, reader, "courier-sla", joint())
        assert await count(session, Goal) == 0

    async def test_the_owner_must_be_a_party(self, session, courier):
        with pytest.raises(Invalid) as raised:
            await goals_service.propose_joint_goal(
                session, courier, "courier-sla", joint(owner="marketing")
            )
        assert raised.value.extensions["errors"][0]["loc"] == ["body", "owner"]
        assert await count(session, Goal) == 0

    @pytest.mark.parametrize("target", ["internal", "theirs"])
    async def test_a_partner_contributes_only_to_goals_it_sees(self, session, courier, target):
        await make_goal(session, key="internal", owner="service", metric="on-time")
        await make_joint_goal(session, "rival-sla", key="theirs", metric="on-time")
        await agreed(session)
        with pytest.raises(UnknownReference) as raised:
            await goals_service.propose_joint_goal(
                session, courier, "courier-sla", joint(contributes_to=[target])
            )
        assert raised.value.extensions["errors"][0]["loc"] == ["body", "contributes_to"]
        assert await count(session, Goal, key="on-time") == 0

    async def test_a_partner_contributes_to_its_own_joint_goals(self, session, courier):
        await make_joint_goal(session, "courier-sla", key="delivered", metric="on-time")
        goal = await goals_service.propose_joint_goal(
            session, courier, "courier-sla", joint(contributes_to=["delivered"])
        )
        (read,) = await goals_service.to_read(session, [goal])
        assert read.contributes_to == ["delivered"]

    async def test_a_proposal_does_not_conflict_until_accepted(self, session, world):
        await make_goal(
            session, key="cheap", owner="service", metric="on-time", direction="decrease"
        )
        await goals_service.propose_joint_goal(session, SYSTEM, "courier-sla", joint())
        assert await count(session, Conflict) == 0
        await goals_service.accept_joint_goal(session, SYSTEM, "courier-sla", "on-time")
        assert await count(session, Conflict) == 1


class TestAcceptJointGoal:
    @pytest.fixture
    async def proposal(self, session, courier) -> Goal:
        await agreed(session)
        return await make_joint_goal(
            session, "courier-sla", principal=courier, key="on-time", metric="on-time"
        )

    async def test_activates_and_records_the_acceptance(self, session, proposal):
        before = datetime.now(UTC)
        goal = await goals_service.accept_joint_goal(session, SYSTEM, "courier-sla", PROPOSED)
        assert goal.status == "active"
        assert before <= goal.accepted_at <= datetime.now(UTC)
        assert goal.proposed_by == "partner"
        assert goal.version == 2

    @pytest.mark.parametrize("role", [Role.reader, Role.partner])
    async def test_only_writers_accept(self, session, proposal, role):
        caller = await principal(session, role, "courier" if role is Role.partner else None)
        with pytest.raises(Forbidden):
            await goals_service.accept_joint_goal(session, caller, "courier-sla", PROPOSED)
        assert (proposal.status, proposal.accepted_at) == ("proposed", None)

    async def test_twice_is_not_proposed(self, session, proposal):
        await goals_service.accept_joint_goal(session, SYSTEM, "courier-sla", PROPOSED)
        with pytest.raises(NotProposed) as raised:
            await goals_service.accept_joint_goal(session, SYSTEM, "courier-sla", PROPOSED)
        assert raised.value.extensions["code"] == "not_proposed"
        assert raised.value.extensions["current_status"] == "active"
        assert "status" not in raised.value.extra

    async def test_a_goal_of_another_agreement_is_not_found(self, session, proposal):
        with pytest.raises(NotFound):
            await goals_service.accept_joint_goal(session, SYSTEM, "rival-sla", PROPOSED)
        assert proposal.status == "proposed"


class TestListJointGoals:
    async def test_lists_the_agreements_goals_only(self, session, courier):
        await make_joint_goal(session, "courier-sla", key="a", metric="on-time")
        await make_joint_goal(session, "rival-sla", key="b", metric="on-time")
        rows, cursor = await goals_service.list_joint_goals(session, courier, "courier-sla", PAGE)
        assert ([g.key for g in rows], cursor) == (["a"], None)

    async def test_another_partners_agreement_does_not_exist(self, session, courier):
        await make_joint_goal(session, "rival-sla", key="b", metric="on-time")
        with pytest.raises(NotFound):
            await goals_service.list_joint_goals(session, courier, "rival-sla", PAGE)


# Check-ins ---------------------------------------------------------------------------------


class TestCheckIns:
    async def test_at_defaults_to_now(self, session, world):
        await make_goal(session, key="g", owner="service", metric="on-time")
        before = datetime.now(UTC)
        check_in = await goals_service.add_check_in(session, SYSTEM, "g", CheckInCreate(value=2.5))
        assert before <= check_in.at <= datetime.now(UTC)
        (read,) = await goals_service.check_ins_to_read(session, [check_in])
        assert (read.goal, read.value, read.note) == ("g", 2.5, None)

    async def test_lists_in_time_order(self, session, world):
        await make_goal(session, key="g", owner="service", metric="on-time")
        for day in (3, 1, 2):
            await goals_service.add_check_in(
                session,
                SYSTEM,
                "g",
                CheckInCreate(at=datetime(2026, 1, day, tzinfo=UTC), value=day),
            )
        rows, cursor = await goals_service.list_check_ins(
            session, SYSTEM, "g", PageRequest(limit=2)
        )
        assert [r.value for r in rows] == [1, 2]
        rest, end = await goals_service.list_check_ins(
            session, SYSTEM, "g", PageRequest(limit=2, cursor=cursor)
        )
        assert ([r.value for r in rest], end) == ([3], None)

    async def test_a_partner_may_not_check_in(self, session, courier):
        await make_joint_goal(session, "courier-sla", key="on-time", metric="on-time")
        with pytest.raises(Forbidden):
            await goals_service.add_check_in(session, courier, "on-time", CheckInCreate(value=1))
        assert await count(session, GoalCheckIn) == 0

    async def test_a_partner_reads_only_its_goals_check_ins(self, session, courier):
        await make_joint_goal(session, "courier-sla", key="mine", metric="on-time")
        await make_joint_goal(session, "rival-sla", key="theirs", metric="on-time")
        for key in ("mine", "theirs"):
            await goals_service.add_check_in(session, SYSTEM, key, CheckInCreate(value=1))
        rows, _ = await goals_service.list_check_ins(session, courier, "mine", PAGE)
        assert len(rows) == 1
        with pytest.raises(NotFound):
            await goals_service.list_check_ins(session, courier, "theirs", PAGE)
