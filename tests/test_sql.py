"""service.core.sql: expressions spelled differently on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid

from sqlalchemy import select

from service.core.sql import in_ids
from service.org_units.models import Unit
from tests.factories import make_unit


class TestInIds:
    async def test_matches_exactly_the_ids_given_each_time(self, session):
        units = [await make_unit(session) for _ in range(4)]

        async def matched(ids: list[uuid.UUID]) -> set[uuid.UUID]:
            statement = select(Unit.id).where(in_ids(session, Unit.id, ids))
            return set((await session.scalars(statement)).all())

        # The same statement with other ids: nothing from an earlier call is reused.
        assert await matched([units[0].id]) == {units[0].id}
        assert await matched([units[1].id, units[3].id]) == {units[1].id, units[3].id}
        assert await matched([units[2].id, uuid.uuid4()]) == {units[2].id}

    async def test_no_ids_match_nothing(self, session):
        await make_unit(session)
        statement = select(Unit.id).where(in_ids(session, Unit.id, []))
        assert (await session.scalars(statement)).all() == []

    async def test_many_ids(self, session):
        units = [await make_unit(session) for _ in range(3)]
        ids = [uuid.uuid4() for _ in range(1_000)] + [u.id for u in units]
        statement = select(Unit.id).where(in_ids(session, Unit.id, ids))
        assert set((await session.scalars(statement)).all()) == {u.id for u in units}
