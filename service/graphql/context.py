"""The per-request GraphQL context: who is asking, one read session, the loaders."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from strawberry.fastapi import BaseContext

from service.alignment.structure import SNAPSHOT
from service.core.config import Settings
from service.core.db import transaction
from service.core.permissions import Principal
from service.core.types import utcnow
from service.graphql.loaders import Loaders


class Context(BaseContext):
    """Resolvers reach the database only through ``db()`` (queries) or ``write()``.

    Strawberry resolves sibling fields concurrently and one AsyncSession cannot run two
    statements at once, so ``db()`` holds a lock around each use. Never await a loader
    while holding it: the loader needs the same lock.
    """

    def __init__(
        self,
        *,
        principal: Principal,
        read_sessions: async_sessionmaker[AsyncSession],
        write_sessions: async_sessionmaker[AsyncSession],
        settings: Settings,
    ) -> None:
        super().__init__()
        self.principal = principal
        self.settings = settings
        self.now = utcnow()  # the default as_of of every score in the request
        self._read_sessions = read_sessions
        self._write_sessions = write_sessions
        self._session: AsyncSession | None = None
        self._lock = asyncio.Lock()
        self.loaders: Loaders = Loaders(self)

    @asynccontextmanager
    async def db(self) -> AsyncIterator[AsyncSession]:
        async with self._lock:
            if self._session is None:
                self._session = self._read_sessions()
                # Queries never write: the alignment structure is loaded once per request.
                self._session.info[SNAPSHOT] = True
            yield self._session

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncSession]:
        """One mutation, one transaction, committed before the mutation returns."""
        async with transaction(self._write_sessions) as session:
            yield session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
