"""Forged `after` cursors over GraphQL: refused as `invalid_cursor`, like REST."""

from __future__ import annotations

import base64
import json

import pytest

from tests.factories import make_event, make_handoff, make_unit


def crafted(value) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()


@pytest.fixture
async def kyc(session):
    await make_unit(session, key="ops")
    await make_unit(session, key="branch")
    await make_handoff(session, key="kyc", from_unit="ops", to_unit="branch")
    await make_event(session, "kyc", external_id="e1")


UUID = "0b9d2a3e-6f3c-4d7e-9f5a-1c2b3d4e5f60"


class TestForgedCursors:
    @pytest.mark.parametrize("cursor", [crafted(["\u0000"]), crafted([{"a": 1}]), "!!!"])
    async def test_a_forged_key_cursor_is_refused(self, gql, keys, kyc, cursor):
        query = "query($after: String) { units(after: $after) { items { key } } }"
        body = (await gql(query, await keys.reader(), {"after": cursor})).json()

        (error,) = body["errors"]
        assert error["extensions"]["code"] == "invalid_cursor", error

    @pytest.mark.parametrize(
        "due_at", ["0001-01-01T00:00:00+00:00", "9999-12-31T23:59:59+00:00", "2026-01-01T10:00"]
    )
    async def test_a_forged_time_cursor_on_nested_events_is_refused(self, gql, keys, kyc, due_at):
        query = (
            'query($after: String) { handoff(key: "kyc") '
            "{ events(after: $after) { items { externalId } } } }"
        )
        body = (await gql(query, await keys.reader(), {"after": crafted([due_at, UUID])})).json()

        (error,) = body["errors"]
        assert error["extensions"]["code"] == "invalid_cursor", error
