"""Limits on what one GraphQL request may ask, checked before any resolver runs."""

from __future__ import annotations

from typing import Any

from graphql import (
    FieldNode,
    GraphQLError,
    IntValueNode,
    ValidationContext,
    ValidationRule,
    VariableNode,
)

from service.core.errors import DomainError
from service.graphql.arguments import DEFAULT_PAGE, TOP_LEVEL_MAX

#: The most rows nested pages may multiply to (e.g. 100 handoffs × 100 events each).
MAX_PAGE_PRODUCT = 10_000


class NestedPageCost(ValidationRule):
    """Refuses queries whose nested ``first`` arguments multiply beyond MAX_PAGE_PRODUCT.

    A ``first`` given as a variable counts as the largest page allowed, since validation
    runs before variables are known.
    """

    def __init__(self, context: ValidationContext) -> None:
        super().__init__(context)
        self._stack: list[int] = [1]

    def enter_field(self, node: FieldNode, *_: Any) -> None:
        definition = self.context.get_field_def()
        paginated = definition is not None and "first" in definition.args
        size = _first(node) if paginated else 1
        product = self._stack[-1] * size
        if product > MAX_PAGE_PRODUCT:
            self.report_error(
                GraphQLError(
                    f"nested pages under '{node.name.value}' could return {product:,} rows; "
                    f"at most {MAX_PAGE_PRODUCT:,} are allowed: ask for smaller pages",
                    node,
                    extensions={"code": "query_too_costly", "cost": product},
                )
            )
        self._stack.append(product)

    def leave_field(self, *_: Any) -> None:
        self._stack.pop()


def _first(node: FieldNode) -> int:
    for argument in node.arguments or ():
        if argument.name.value != "first":
            continue
        if isinstance(argument.value, IntValueNode):
            return max(1, int(argument.value.value))
        if isinstance(argument.value, VariableNode):
            return TOP_LEVEL_MAX
    return DEFAULT_PAGE


def should_mask(error: GraphQLError) -> bool:
    """Hide everything but domain errors and GraphQL's own (syntax, validation, limits)."""
    original = error.original_error
    if original is None or isinstance(original, GraphQLError):
        return False
    return not isinstance(original, DomainError)
