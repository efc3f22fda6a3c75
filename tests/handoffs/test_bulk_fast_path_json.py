"""The bulk fast path on NDJSON lines: each line is validated straight from its bytes
(``validate_json``), so the fast path's guarantee must hold in JSON mode too: it never
accepts a line the full ``BulkEventItem`` refuses (which also reads each bad line with
``validate_json``), and a line it accepts has the same values."""

from __future__ import annotations

import orjson
import pytest
from pydantic import TypeAdapter, ValidationError

from service.handoffs.schemas import BulkEventItem, FastBulkEventItem, fast_event_check
from tests.handoffs.test_bulk_fast_path import BASE, FIELDS, VARIANTS

#: Lines no JSON encoder writes from a dict: duplicate keys, literals, trailing text.
RAW_LINES = [
    b'{"handoff": "kyc", "external_id": "e1", "started_at": "2026-03-01T09:00:00Z"}',
    b'{"handoff": "kyc", "handoff": "KYC", "external_id": "e1", "started_at": "2026-03-01T09:00:00Z"}',
    b'{"handoff": "KYC", "handoff": "kyc", "external_id": "e1", "started_at": "2026-03-01T09:00:00Z"}',
    b'{"handoff": "kyc", "external_id": "e1", "started_at": "2026-03-01T09:00:00Z", "quality": NaN}',
    b'{"handoff": "kyc", "external_id": "e1", "started_at": "2026-03-01T09:00:00Z", "quality": 1e0}',
    b'{"handoff": "kyc", "external_id": "e1", "started_at": "2026-03-01T09:00:00Z"} {}',
    b'{"handoff": "kyc", "external_id": "e1", "started_at": "2026-03-01T09:00:00Z"}, {}',
    b'[{"handoff": "kyc", "external_id": "e1", "started_at": "2026-03-01T09:00:00Z"}]',
    b'{"handoff": "kyc", "external_id": "e\\ud800", "started_at": "2026-03-01T09:00:00Z"}',
    b'{"handoff": "kyc", "external_id": "e1", "started_at": "2026-03-01T09:00:00Z", "note": "\\u0007"}',
    b'{"handoff": "kyc", "external_id": "e1", "started_at": "2026-03-01T09:00:00Z", "note": "\xff"}',
]


def outcome(schema: type, line: bytes):
    try:
        item = TypeAdapter(schema).validate_json(line)
    except ValidationError:
        return None
    if schema is FastBulkEventItem and not fast_event_check(item):
        return None
    return tuple(getattr(item, name) for name in FIELDS)


LINES = [orjson.dumps(BASE | variant) for variant in VARIANTS] + RAW_LINES


@pytest.mark.parametrize("line", LINES, ids=[line.decode(errors="replace")[:60] for line in LINES])
def test_the_fast_path_accepts_only_what_the_full_schema_accepts_with_the_same_values(line):
    fast, full = outcome(FastBulkEventItem, line), outcome(BulkEventItem, line)
    if fast is not None:
        assert full == fast  # aware datetimes compare as instants


def test_ordinary_lines_take_the_fast_path():
    assert outcome(FastBulkEventItem, orjson.dumps(BASE)) is not None
    assert outcome(FastBulkEventItem, RAW_LINES[0]) is not None
