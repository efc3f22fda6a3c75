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
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLField,
    GraphQLInterfaceType,
    GraphQLNamedType,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    IntValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    StringValueNode,
    TypeInfo,
    TypeInfoVisitor,
    ValidationContext,
    ValidationRule,
    VariableNode,
    Visitor,
    get_named_type,
    get_operation_ast,
    type_from_ast,
    visit,
)
from pydantic import ValidationError
from strawberry.extensions import SchemaExtension
from strawberry.schema.schema_converter import GraphQLCoreConverter

from service.core.errors import DomainError, Invalid
from service.graphql.arguments import DEFAULT_PAGE, RULE, TOP_LEVEL_MAX

#: The most rows nested pages may multiply to (e.g. 100 handoffs × 100 events each).
MAX_PAGE_PRODUCT = 10_000
#: The most fields a document may select once its fragments are spread in place, and how
#: deep fragments may spread fragments. The token limit bounds what a document spells
#: out, not what it expands to: 40 fragments each spreading the next twice select 2^40.
MAX_EXPANDED_FIELDS = 5_000
MAX_FRAGMENT_DEPTH = 20


class FragmentExpansion(SchemaExtension):
    """Refuses a document whose fragments expand beyond the limits, before validation.

    Strawberry's depth and alias limiters (and the cost rule) walk every fragment where it
    is spread, so a fragment fan-out costs them exponential time. This check counts the
    expanded fields once per fragment and, over the limit, answers the error in place of
    validation, so none of them runs.
    """

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        if context.graphql_document is not None and context.pre_execution_errors is None:
            error = expansion_error(context.graphql_document)
            if error is not None:
                context.pre_execution_errors = [error]
        yield


def expansion_error(document: DocumentNode) -> GraphQLError | None:
    """Why the document expands too far, or None. Linear in its size (no recursion)."""
    own: dict[str, tuple[int, list[str]]] = {}
    operations: list[tuple[int, list[str]]] = []
    for definition in document.definitions:
        if isinstance(definition, FragmentDefinitionNode):
            own[definition.name.value] = _own_selections(definition.selection_set)
        elif isinstance(definition, OperationDefinitionNode):
            operations.append(_own_selections(definition.selection_set))
    size: dict[str, int] = {}
    depth: dict[str, int] = {}
    for name in own:
        _expand(name, own, size, depth)
    fields = sum(count + sum(size.get(s, 0) for s in spreads) for count, spreads in operations)
    deepest = max((depth.get(s, 0) for _, spreads in operations for s in spreads), default=0)
    if deepest > MAX_FRAGMENT_DEPTH:
        return GraphQLError(
            f"fragments spread fragments {deepest} deep; at most {MAX_FRAGMENT_DEPTH} are allowed",
            extensions={"code": "query_too_large", "maximum": MAX_FRAGMENT_DEPTH},
        )
    if fields > MAX_EXPANDED_FIELDS:
        shown = f"{fields:,}" if fields < 10**9 else "more than a billion"
        return GraphQLError(
            f"with its fragments spread, the document selects {shown} fields; at most "
            f"{MAX_EXPANDED_FIELDS:,} are allowed: spread fewer fragments",
            extensions={"code": "query_too_large", "maximum": MAX_EXPANDED_FIELDS},
        )
    return None


def _own_selections(selection_set: SelectionSetNode) -> tuple[int, list[str]]:
    """The fields a selection set spells out, and the fragments it spreads (repeats kept)."""
    fields, spreads, pending = 0, [], [selection_set]
    while pending:
        for selection in pending.pop().selections:
            if isinstance(selection, FragmentSpreadNode):
                spreads.append(selection.name.value)
                continue
            fields += isinstance(selection, FieldNode)
            if selection.selection_set is not None:
                pending.append(selection.selection_set)
    return fields, spreads


def _expand(
    start: str,
    own: dict[str, tuple[int, list[str]]],
    size: dict[str, int],
    depth: dict[str, int],
) -> None:
    """Fills size (expanded fields) and depth (spread nesting) of ``start`` and what it spreads.

    Post-order with an explicit stack; a cycle or an unknown fragment counts as empty
    (validation reports both).
    """
    stack, open_ = [(start, False)], set()
    while stack:
        name, children_done = stack.pop()
        if name in size or name not in own:
            continue
        count, spreads = own[name]
        if children_done:
            open_.discard(name)
            # Saturate: the exact size of a fan-out does not matter past the limit.
            size[name] = min(count + sum(size.get(s, 0) for s in spreads), 10**9)
            depth[name] = 1 + max((depth.get(s, 0) for s in spreads), default=0)
            continue
        if name in open_:
            continue
        open_.add(name)
        stack.append((name, True))
        stack.extend((s, False) for s in spreads if s not in size and s not in open_)


class NestedPageCost(ValidationRule):
    """Refuses operations whose nested ``first`` arguments multiply beyond MAX_PAGE_PRODUCT.

    Each operation is walked as it will run, fragments spread in place, so a page inside
    a fragment multiplies with the pages around the spread. A ``first`` given as a
    variable counts as the largest page allowed, since validation runs before variables
    are known. The error is reported once, at the page that crosses the limit (the
    fields under it are not reported again); one error per such page.
    """

    def __init__(self, context: ValidationContext) -> None:
        super().__init__(context)
        self._reported: set[int] = set()

    def enter_operation_definition(self, node: OperationDefinitionNode, *_: Any) -> Any:
        root = self.context.schema.get_root_type(node.operation)
        if root is not None:
            self._walk(node.selection_set, root, 1, (), frozenset())
        return SKIP

    def enter_fragment_definition(self, *_: Any) -> Any:
        return SKIP  # walked where it is spread

    def _walk(
        self,
        selection_set: SelectionSetNode,
        parent: GraphQLNamedType,
        product: int,
        pages: tuple[str, ...],
        spread: frozenset[str],
    ) -> None:
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                definition = _field_definition(parent, selection.name.value)
                if definition is None:
                    continue  # an unknown field: another rule reports it
                total, path = product, pages
                if "first" in definition.args:
                    size, shown = _first(selection)
                    total, path = product * size, (*pages, f"{selection.name.value}({shown})")
                    if total > MAX_PAGE_PRODUCT:
                        self._report(selection, path, total)
                        continue
                if selection.selection_set is not None:
                    field_type = get_named_type(definition.type)
                    self._walk(selection.selection_set, field_type, total, path, spread)
            elif isinstance(selection, InlineFragmentNode):
                condition = selection.type_condition
                inner = type_from_ast(self.context.schema, condition) if condition else parent
                self._walk(selection.selection_set, inner or parent, product, pages, spread)
            elif isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                fragment = self.context.get_fragment(name)
                if fragment is None or name in spread:
                    continue  # unknown or cyclic: other rules report it
                inner = type_from_ast(self.context.schema, fragment.type_condition)
                self._walk(fragment.selection_set, inner or parent, product, pages, spread | {name})

    def _report(self, node: FieldNode, pages: tuple[str, ...], total: int) -> None:
        if id(node) in self._reported:
            return  # the same page reached again through another spread
        self._reported.add(id(node))
        self.report_error(
            GraphQLError(
                f"{' × '.join(pages)} could return up to {total:,} rows; at most "
                f"{MAX_PAGE_PRODUCT:,} are allowed: ask for smaller pages",
                node,
                extensions={"code": "query_too_costly", "cost": total, "maximum": MAX_PAGE_PRODUCT},
            )
        )


def _field_definition(parent: GraphQLNamedType, name: str) -> GraphQLField | None:
    if isinstance(parent, (GraphQLObjectType, GraphQLInterfaceType)):
        return parent.fields.get(name)
    return None


def _first(node: FieldNode) -> tuple[int, str]:
    """The page size a field asks for, and how to show it."""
    for argument in node.arguments or ():
        if argument.name.value != "first":
            continue
        if isinstance(argument.value, IntValueNode):
            size = max(1, int(argument.value.value))
            return size, f"first: {size}"
        if isinstance(argument.value, VariableNode):
            return TOP_LEVEL_MAX, f"first: ${argument.value.name.value}, counted as {TOP_LEVEL_MAX}"
    return DEFAULT_PAGE, f"{DEFAULT_PAGE} by default"


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
