"""The bulk fast path (``FastBulkEventItem`` + ``fast_event_check``) never accepts an item the
full ``BulkEventItem`` refuses, and an item it accepts has the same values."""

from __future__ import annotations

import pytest
from pydantic import TypeAdapter, ValidationError

from service.handoffs.schemas import BulkEventItem, FastBulkEventItem, fast_event_check

BASE = {"handoff": "kyc", "external_id": "e1", "started_at": "2026-03-01T09:00:00Z"}
FIELDS = ("handoff", "external_id", "started_at", "due_at", "delivered_at", "quality",
          "rework", "customer_impact", "case_ref", "note")
VARIANTS = [
    {},
    {"started_at": "2026-03-01T09:00:00+01:00", "delivered_at": "2026-03-01T08:30:00Z"},
    {"delivered_at": "2026-03-01T08:59:59Z"},
    {"due_at": "2026-03-01T08:00:00Z"},
    {"due_at": "2026-03-01T09:00:00Z", "delivered_at": "2026-03-01T09:00:00Z"},
    {"started_at": "2026-03-01T09:00:00"},
    {"started_at": "2026-03-01"},
    {"started_at": "1700000000"},
    {"started_at": 1700000000},
    {"started_at": "١٩٩٩-01-01T00:00:00Z"},
    {"started_at": "1900-01-01T00:00:00+01:00"},
    {"started_at": "1900-01-01T00:00:00-01:00"},
    {"started_at": "1901-01-01T00:00:00+14:00"},
    {"started_at": "8999-12-31T23:00:00Z"},
    {"started_at": "9000-01-01T00:00:00Z"},
    {"started_at": "9000-01-01T00:00:00+01:00"},
    {"started_at": "0001-01-01T00:00:00+01:00"},
    {"started_at": "2026-03-01T09:00:00.1234567Z"},
    {"started_at": "2026-03-01 09:00:00Z"},
    {"started_at": "2026-02-30T09:00:00Z"},
    {"quality": 0}, {"quality": 5}, {"quality": 3.0}, {"quality": 3.5}, {"quality": "3"},
    {"quality": True}, {"rework": "yes"}, {"rework": 1}, {"customer_impact": "true"},
    {"case_ref": "case:1~a"}, {"case_ref": "-bad"}, {"case_ref": ""}, {"case_ref": None},
    {"note": "line\nnext\ttab\r"}, {"note": "bell\x07"}, {"note": "nul\x00"}, {"note": "x" * 4000},
    {"note": "x" * 4001}, {"note": "é" * 4000}, {"handoff": "KYC"}, {"handoff": "k" * 65},
    {"external_id": "a" * 129}, {"extra": 1}, {"handoff": None}, {"started_at": None},
]


def outcome(schema: type, document: dict):
    try:
        item = TypeAdapter(schema).validate_python(document)
    except ValidationError:
        return None
    if schema is FastBulkEventItem and not fast_event_check(item):
        return None
    return tuple(getattr(item, name) for name in FIELDS)


@pytest.mark.parametrize("variant", VARIANTS, ids=[str(v)[:40] for v in VARIANTS])
def test_the_fast_path_accepts_only_what_the_full_schema_accepts_with_the_same_values(variant):
    document = BASE | variant
    fast, full = outcome(FastBulkEventItem, document), outcome(BulkEventItem, document)
    if fast is not None:
        assert full == fast  # aware datetimes compare as instants


@pytest.mark.parametrize("variant", VARIANTS[:2] + VARIANTS[4:5], ids=["plain", "offset", "due"])
def test_ordinary_items_take_the_fast_path(variant):
    assert outcome(FastBulkEventItem, BASE | variant) is not None
