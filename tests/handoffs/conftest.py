"""Fixtures shared by the handoff tests."""

from __future__ import annotations

import pytest

from tests.factories import make_handoff, make_unit


@pytest.fixture
async def kyc(session):
    """The handoff ``kyc`` from ``ops`` to ``branch``."""
    await make_unit(session, key="ops")
    await make_unit(session, key="branch")
    return await make_handoff(session, key="kyc", from_unit="ops", to_unit="branch")
