"""Who may do what: the one role × action matrix both transports enforce.

Roles decide which calls a key may make at all (403 otherwise). Which rows a partner key
sees is decided separately, by each repository's scoped ("readable") statements, where a
row that is not the partner's own is simply absent (404).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from uuid import UUID

from service.core.errors import Forbidden


class Role(StrEnum):
    admin = "admin"
    writer = "writer"
    reader = "reader"
    partner = "partner"


class Action(StrEnum):
    api_keys_manage = "api-keys:manage"
    units_read = "units:read"
    units_write = "units:write"
    journeys_read = "journeys:read"
    journeys_write = "journeys:write"
    touchpoints_read = "touchpoints:read"
    touchpoints_write = "touchpoints:write"
    feedback_read = "feedback:read"
    feedback_write = "feedback:write"
    handoffs_read = "handoffs:read"
    handoffs_write = "handoffs:write"
    events_read = "events:read"
    events_write = "events:write"
    reviews_read = "reviews:read"
    reviews_write = "reviews:write"
    metrics_read = "metrics:read"
    metrics_write = "metrics:write"
    goals_read = "goals:read"
    goals_write = "goals:write"
    agreements_read = "agreements:read"
    agreements_write = "agreements:write"
    joint_goals_propose = "joint-goals:propose"
    joint_goals_accept = "joint-goals:accept"
    scores_read = "scores:read"
    conflicts_read = "conflicts:read"
    conflicts_resolve = "conflicts:resolve"
    findings_read = "findings:read"
    cases_read = "cases:read"
    webhooks_manage = "webhooks:manage"


_ALL = frozenset(Role)
_STAFF_WRITE = frozenset({Role.admin, Role.writer})
_STAFF_READ = frozenset({Role.admin, Role.writer, Role.reader})
_WITH_PARTNER_WRITE = frozenset({Role.admin, Role.writer, Role.partner})


def _policy() -> dict[Action, frozenset[Role]]:
    policy: dict[Action, frozenset[Role]] = {}
    for action in Action:
        if action.value.endswith(":read"):
            # Partners may call every read; their repositories show them only their own rows.
            policy[action] = _ALL
        else:
            policy[action] = _STAFF_WRITE
    policy[Action.api_keys_manage] = frozenset({Role.admin})
    policy[Action.events_write] = _WITH_PARTNER_WRITE
    policy[Action.reviews_write] = _WITH_PARTNER_WRITE
    policy[Action.joint_goals_propose] = _WITH_PARTNER_WRITE
    # A partner manages its own subscriptions (service.webhooks scopes them).
    policy[Action.webhooks_manage] = _WITH_PARTNER_WRITE
    return policy


POLICY: dict[Action, frozenset[Role]] = _policy()
assert set(POLICY) == set(Action), "every action needs a row in the policy"
assert _STAFF_READ <= POLICY[Action.units_read]


@dataclass(frozen=True, slots=True)
class Principal:
    """The caller, resolved from its API key."""

    key_id: UUID
    name: str
    role: Role
    partner_unit_id: UUID | None = None

    @property
    def is_partner(self) -> bool:
        return self.role is Role.partner

    def can(self, action: Action) -> bool:
        return self.role in POLICY[action]

    def require(self, action: Action) -> None:
        if not self.can(action):
            raise Forbidden(
                f"role {self.role.value!r} may not {action.value}",
                action=action.value,
                role=self.role.value,
            )
