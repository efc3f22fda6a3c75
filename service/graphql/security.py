"""Limits on what one GraphQL request may ask, checked before any resolver runs."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from graphql import (
    BREAK,
    SKIP,
    ArgumentNode,
    DocumentNode,
    ExecutionResult,
    FieldNode,
    GraphQLError,
    GraphQLSchema,
    IntValueNode,
    OperationDefinitionNode,
    StringValueNode,
    TypeInfo,
    TypeInfoVisitor,
    ValidationContext,
    ValidationRule,
    VariableNode,
    Visitor,
    get_operation_ast,
    visit,
)
from pydantic import ValidationError
from strawberry.extensions import SchemaExtension
from strawberry.schema.schema_converter import GraphQLCoreConverter

from service.core.errors import DomainError, Invalid
from service.graphql.arguments import DEFAULT_PAGE, RULE, TOP_LEVEL_MAX

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


class CheckedArguments(SchemaExtension):
    """Arguments declared with a rule (``KeyArg``, ``ExternalIdArg``) must pass it.

    Checked once per operation, on literals and variables alike, before any resolver runs:
    a key REST would refuse in a path (a NUL byte, which PostgreSQL cannot even compare,
    an upper-case letter, 65 characters) refuses the whole operation with an ``invalid``
    error naming the argument, as a GraphQL validation error would, and nothing is read
    or written.
    """

    def on_execute(self) -> Iterator[None]:
        context = self.execution_context
        if context.graphql_document is not None and context.result is None:
            errors = argument_errors(
                context.schema._schema,
                context.graphql_document,
                context.variables or {},
                context.operation_name,
            )
            if errors:
                context.result = ExecutionResult(data=None, errors=errors)
        yield


def argument_errors(
    schema: GraphQLSchema,
    document: DocumentNode,
    variables: dict[str, Any],
    operation_name: str | None,
) -> list[GraphQLError]:
    """Every argument of the operation (and its fragments) whose value breaks its rule."""
    operation = get_operation_ast(document, operation_name)
    if operation is None:
        return []  # execution reports the missing or ambiguous operation
    defaults = {
        definition.variable.name.value: definition.default_value
        for definition in operation.variable_definitions or ()
    }
    type_info = TypeInfo(schema)
    errors: list[GraphQLError] = []

    def value_of(node: ArgumentNode) -> Any:
        value = node.value
        if isinstance(value, VariableNode):
            name = value.name.value
            if name in variables:
                return variables[name]
            value = defaults.get(name)
        return value.value if isinstance(value, StringValueNode) else None

    class Arguments(Visitor):
        def enter_operation_definition(self, node: OperationDefinitionNode, *_: Any) -> Any:
            return None if node is operation else SKIP

        def enter_argument(self, node: ArgumentNode, *_: Any) -> Any:
            argument = type_info.get_argument()
            backref = GraphQLCoreConverter.DEFINITION_BACKREF
            definition = argument and argument.extensions.get(backref)
            rule = definition.metadata.get(RULE) if definition else None
            value = value_of(node)
            if rule is None or not isinstance(value, str):
                return  # no rule, or null or a wrong type: GraphQL itself answers those
            try:
                rule.validate_python(value)
            except ValidationError as exc:
                name = node.name.value
                refusal = Invalid(f"{name}: {exc.errors()[0]['msg']}", loc=(name,))
                errors.append(
                    GraphQLError(
                        refusal.detail,
                        node,
                        original_error=refusal,
                        extensions=refusal.extensions,
                    )
                )
                if len(errors) >= MAX_ARGUMENT_ERRORS:
                    return BREAK
            return None

    visit(document, TypeInfoVisitor(type_info, Arguments()))
    return errors


#: Enough refused arguments to fix a request by; the rest are left out.
MAX_ARGUMENT_ERRORS = 20


def should_mask(error: GraphQLError) -> bool:
    """Hide everything but domain errors and GraphQL's own (syntax, validation, limits)."""
    original = error.original_error
    if original is None or isinstance(original, GraphQLError):
        return False
    return not isinstance(original, DomainError)
