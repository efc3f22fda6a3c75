"""Score windows over GraphQL: the same window rules as REST, refused as a domain error."""

from __future__ import annotations

import pytest

from tests.factories import make_handoff, make_unit


@pytest.fixture
async def kyc(session):
    await make_unit(session, key="ops")
    await make_unit(session, key="branch")
    await make_handoff(session, key="kyc", from_unit="ops", to_unit="branch")


FIELDS = {
    "company": "{{ scores {{ company({args}) {{ value }} }} }}",
    "handoff": '{{ scores {{ handoff(key: "kyc", {args}) {{ value }} }} }}',
}


class TestWindowBounds:
    @pytest.mark.parametrize("field", FIELDS)
    @pytest.mark.parametrize(
        ("args", "name"),
        [
            ('asOf: "0001-01-01T00:00:00Z"', "as_of"),
            ('asOf: "9999-12-31T23:59:59Z"', "as_of"),
            ('to: "0001-01-01T00:00:00Z"', "to"),
            ('from: "9999-12-31T00:00:00Z", to: "9999-12-31T23:59:59Z"', "from"),
        ],
    )
    async def test_an_instant_outside_the_supported_years_is_refused(
        self, gql, keys, kyc, field, args, name
    ):
        body = (await gql(FIELDS[field].format(args=args), await keys.reader())).json()

        (error,) = body["errors"]
        assert error["extensions"]["code"] == "invalid", error
        assert error["extensions"]["errors"][0]["loc"] == ["query", name]
        assert "1900-01-01" in error["message"]

    async def test_the_last_supported_instant_with_month_buckets(self, gql, keys, kyc):
        args = 'from: "8999-12-01T00:00:00Z", to: "9000-01-01T00:00:00Z", bucket: month'
        body = (await gql(FIELDS["company"].format(args=args), await keys.reader())).json()

        assert "errors" not in body, body
        assert body["data"]["scores"]["company"] is not None

    async def test_a_moment_without_an_offset_is_refused(self, gql, keys, kyc):
        query = FIELDS["company"].format(args='asOf: "2026-03-01T00:00:00"')
        body = (await gql(query, await keys.reader())).json()

        (error,) = body["errors"]
        assert error["extensions"]["code"] == "invalid", error
        assert error["extensions"]["errors"][0]["loc"] == ["query", "as_of"]
