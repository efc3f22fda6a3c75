"""The GraphQL schema and its door at /graphql."""

from __future__ import annotations

from collections.abc import AsyncIterator
from functools import partial
from typing import Annotated

import strawberry
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials
from strawberry.extensions import (
    AddValidationRules,
    DisableIntrospection,
    MaskErrors,
    MaxAliasesLimiter,
    MaxTokensLimiter,
    QueryDepthLimiter,
)
from strawberry.schema.config import StrawberryConfig

from service.api.deps import (
    ReadSessionsDep,
    WriteSessionsDep,
    bearer_credentials,
    get_principal,
)
from service.core.config import Environment, Settings, get_settings
from service.graphql.context import Context
from service.graphql.http import SiloSpanGraphQLRouter
from service.graphql.ide import asks_for_ide
from service.graphql.mutations import Mutation
from service.graphql.queries import Query
from service.graphql.security import (
    CheckedArguments,
    FragmentExpansion,
    NestedPageCost,
    should_mask,
)


class Schema(strawberry.Schema):
    def process_errors(self, errors, execution_context=None) -> None:
        # Refusals the client caused (domain errors, invalid queries) are answers, not
        # incidents: only unexpected errors are logged, with their traceback.
        unexpected = [e for e in errors if should_mask(e)]
        if unexpected:
            super().process_errors(unexpected, execution_context)


def build_schema(settings: Settings) -> strawberry.Schema:
    development = settings.environment is Environment.development
    extensions = [
        # Factories, not shared instances: each request gets its own extension objects.
        # FragmentExpansion first: the limiters below walk every fragment where it is spread.
        FragmentExpansion,
        partial(QueryDepthLimiter, max_depth=settings.graphql_max_depth),
        partial(MaxAliasesLimiter, max_alias_count=settings.graphql_max_aliases),
        partial(MaxTokensLimiter, max_token_count=settings.graphql_max_tokens),
        partial(AddValidationRules, [NestedPageCost]),
        CheckedArguments,
        partial(MaskErrors, should_mask_error=should_mask),
    ]
    if not (development or settings.graphql_ide_enabled):
        extensions.append(DisableIntrospection)
    return Schema(
        query=Query,
        mutation=Mutation,
        extensions=extensions,
        config=StrawberryConfig(disable_field_suggestions=not development),
    )


CredentialsDep = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_credentials)]
SettingsDep = Annotated[Settings, Depends(get_settings)]


def graphql_router(settings: Settings) -> SiloSpanGraphQLRouter:
    async def context(
        request: Request,
        credentials: CredentialsDep,
        read_sessions: ReadSessionsDep,
        write_sessions: WriteSessionsDep,
        request_settings: SettingsDep,
    ) -> AsyncIterator[Context | None]:
        if settings.graphql_ide_enabled and asks_for_ide(request):
            # The IDE page holds no data and a browser opening it cannot send a key: it is
            # served without one. The queries it sends are POSTs with the key, as always.
            yield None
            return
        # The same authentication as REST: no key or a bad one is a 401 problem response.
        principal = await get_principal(credentials, read_sessions)
        ctx = Context(
            principal=principal,
            read_sessions=read_sessions,
            write_sessions=write_sessions,
            settings=request_settings,
        )
        try:
            yield ctx
        finally:
            await ctx.close()

    return SiloSpanGraphQLRouter(
        build_schema(settings),
        path="/graphql",
        context_getter=context,
        graphql_ide="graphiql" if settings.graphql_ide_enabled else None,
        allow_queries_via_get=settings.graphql_ide_enabled,
        include_in_schema=False,
    )
