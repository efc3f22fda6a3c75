"""CSV records to rows: the fast reading of plain records gives what the full checks give."""

from __future__ import annotations

import csv
import io
from zoneinfo import ZoneInfo

from hypothesis import given
from hypothesis import strategies as st

from service.event_logs.constants import MAX_VALUE_LENGTH
from service.event_logs.parsing import CsvRecords, CsvRows, Mapping, Row, make_row

HEADER = ["time", "case", "note", "unit", "activity", "status"]  # no resource column

values = st.one_of(
    st.sampled_from(
        ["", " ", "A", " V5 3rd ", "x\x01y", "tab\there", "a" * (MAX_VALUE_LENGTH + 1)]
    ),
    st.text(max_size=8),
)
times = st.sampled_from(
    [
        "2026-01-01T10:00:00Z",
        " 2026-01-01T10:00:00+02:00 ",
        "2026-01-01T10:00:00",  # no offset
        "yesterday",
        "",
        "1800-01-01T00:00:00Z",
    ]
)


def rows(assume_tz=None) -> CsvRows:
    reader = CsvRows(Mapping(), assume_tz)
    reader.header(HEADER)
    return reader


def by_the_full_checks(line: int, fields: list[str], assume_tz=None) -> Row | str:
    named = dict(zip(HEADER, fields, strict=False))
    return make_row(line, {name: named.get(name) for name in Mapping().as_dict()}, assume_tz)


@given(
    time=times,
    case=values,
    note=values,
    unit=values,
    activity=values,
    status=values,
    width=st.integers(min_value=0, max_value=len(HEADER)),
    zoned=st.booleans(),
)
def test_every_record_reads_as_the_full_checks_read_it(
    time, case, note, unit, activity, status, width, zoned
):
    fields = [time, case, note, unit, activity, status][:width]
    zone = ZoneInfo("Europe/Paris") if zoned else None
    assert rows(zone).row(7, fields) == by_the_full_checks(7, fields, zone)


def test_a_plain_record_is_stripped_and_its_empty_fields_are_none():
    row = rows().row(3, ["2026-01-01T10:00:00+01:00", " C1 ", "-", "V5 3rd", "", "  "])
    assert row == Row(3, "C1", "V5 3rd", 1767258000000000, None, None, None)


cells = st.sampled_from(["a", "", "V5 3rd", '"quoted, with comma"', '"two\nlines"', '"say ""hi"""'])
csv_lines = st.lists(st.lists(cells, min_size=1, max_size=3).map(",".join), max_size=8)


@given(lines=csv_lines, cut=st.integers(min_value=1, max_value=12), crlf=st.booleans())
def test_records_fed_in_pieces_are_the_records_of_the_whole_text(lines, cut, crlf):
    text = "".join(line + ("\r\n" if crlf else "\n") for line in lines)
    expected, start = [], 1
    reader = csv.reader(io.StringIO(text, newline=""))
    for record in reader:
        expected.append((start, record))
        start = reader.line_num + 1
    records = CsvRecords(",")
    got = []
    for at in range(0, len(text), cut):
        got += records.feed(text[at : at + cut])
    got += records.finish()
    assert got == expected
