"""Small logs whose numbers are worked out by hand (see each one's comments)."""

from __future__ import annotations

# Line 1 is the header. Unit names with spaces, a comma and parentheses are quoted.
#   c1: Front Desk (x2, an A -> A repeat), V5, Front Desk, V5
#       transfers FD->V5 09:10->10:10 (1h), V5->FD (2h), FD->V5 (1h); ping-pongs: FD->V5->FD
#       (first step FD->V5) and V5->FD->V5 (first step V5->FD)
#   c2: FD, Billing (status "waiting on customer"), FD
#       transfers FD->Billing (30m), Billing->FD (2h, or 0 when that status pauses the clock);
#       ping-pong FD->Billing->FD
#   c3: one event, no transfer
#   c4: listed out of time order; Billing and FD tie at 08:00Z, Billing first in the file:
#       Billing -> FD (0s), then FD at 09:00Z (10:00+01:00): a repeat
#   lines 14-18: rejected (no unit, no case, no offset, no time, not a timestamp)
LOG = """case,unit,time,activity,status,resource
c1,Front Desk,2026-11-02T09:00:00Z,open,new,ann
c1,Front Desk,2026-11-02T09:10:00Z,triage,open,ann
c1,"V5 3rd, (Ops)",2026-11-02T10:10:00Z,fix,open,bob
c1,Front Desk,2026-11-02T12:10:00Z,reply,open,ann
c1,"V5 3rd, (Ops)",2026-11-02T13:10:00Z,fix,open,bob
c2,Front Desk,2026-11-02T09:00:00Z,open,new,ann
c2,Billing,2026-11-02T09:30:00Z,bill,waiting on customer,cy
c2,Front Desk,2026-11-02T11:30:00Z,close,closed,ann
c3,Billing,2026-11-03T08:00:00Z,only,new,cy
c4,Front Desk,2026-11-02T10:00:00+01:00,close,closed,ann
c4,Billing,2026-11-02T08:00:00Z,open,new,cy
c4,Front Desk,2026-11-02T08:00:00Z,triage,open,ann
c5,,2026-11-02T08:00:00Z,x,,
,Billing,2026-11-02T08:00:00Z,x,,
c5,Billing,2026-11-02 08:00:00,x,,
c5,Billing,,x,,
c5,Billing,yesterday,x,,
"""

REJECTIONS = [
    (14, "no unit"),
    (15, "no case"),
    (16, "no offset"),
    (17, "no time"),
    (18, "not an ISO 8601 timestamp"),
]

V5 = "V5 3rd, (Ops)"
FD = "Front Desk"

SUMMARY = {
    "cases": 4,
    "events": 12,
    "units": 3,
    "transfers": 6,
    "cases_with_transfer": 3,
    "ping_pongs": 3,
    "cases_with_ping_pong": 2,
    # per case, sorted: 0 (c3), 1 (c4), 2 (c2), 3 (c1): median (1 + 2) / 2, p90 rank 4
    "transfers_per_case": {"median": 1.5, "p90": 3, "max": 3},
}

# Most transfers first, then by names (code points): "Billing" < "Front Desk" < "V5 ...".
ARCS = [
    {
        "from": "Billing",
        "to": FD,
        "count": 2,
        "cases": 2,
        "ping_pongs": 0,
        # waits 0s (c4) and 2h (c2): median 1h, p90 rank ceil(1.8) = 2
        "wait": {"median": "PT1H", "p90": "PT2H", "max": "PT2H"},
    },
    {
        "from": FD,
        "to": V5,
        "count": 2,
        "cases": 1,
        "ping_pongs": 1,
        "wait": {"median": "PT1H", "p90": "PT1H", "max": "PT1H"},
    },
    {
        "from": FD,
        "to": "Billing",
        "count": 1,
        "cases": 1,
        "ping_pongs": 1,
        "wait": {"median": "PT30M", "p90": "PT30M", "max": "PT30M"},
    },
    {
        "from": V5,
        "to": FD,
        "count": 1,
        "cases": 1,
        "ping_pongs": 1,
        "wait": {"median": "PT2H", "p90": "PT2H", "max": "PT2H"},
    },
]


def _event(unit: str | None, time: str | None, activity: str, status: str = "complete") -> str:
    parts = [f'<string key="concept:name" value="{activity}"/>']
    if unit is not None:
        parts.append(f'<string key="org:group" value="{unit}"/>')
    if time is not None:
        parts.append(f'<date key="time:timestamp" value="{time}"/>')
    parts.append(f'<string key="lifecycle:transition" value="{status}"/>')
    return f"    <event>{''.join(parts)}</event>\n"


def _trace(case: str | None, events: list[str]) -> str:
    name = f'    <string key="concept:name" value="{case}"/>\n' if case is not None else ""
    return f"  <trace>\n{name}{''.join(events)}  </trace>\n"


# The same cases as LOG, as XES (one event per line): the same summary and arcs.
LOG_XES = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    '<log xes.version="1.0" xmlns="http://www.xes-standard.org/">\n'
    '  <global scope="event"><string key="org:group" value="UNKNOWN"/></global>\n'
    + _trace(
        "c1",
        [
            _event(FD, "2026-11-02T09:00:00Z", "open"),
            _event(FD, "2026-11-02T09:10:00Z", "triage"),
            _event(V5, "2026-11-02T10:10:00Z", "fix"),
            _event(FD, "2026-11-02T12:10:00Z", "reply"),
            _event(V5, "2026-11-02T13:10:00Z", "fix"),
        ],
    )
    + _trace(
        "c2",
        [
            _event(FD, "2026-11-02T09:00:00.000+00:00", "open"),
            _event("Billing", "2026-11-02T09:30:00Z", "bill", "waiting on customer"),
            _event(FD, "2026-11-02T11:30:00Z", "close"),
        ],
    )
    + _trace("c3", [_event("Billing", "2026-11-03T08:00:00Z", "only")])
    + _trace(
        "c4",
        [
            _event(FD, "2026-11-02T10:00:00+01:00", "close"),
            _event("Billing", "2026-11-02T08:00:00Z", "open"),
            _event(FD, "2026-11-02T08:00:00Z", "triage"),
        ],
    )
    + _trace(
        "c5",
        [
            _event(None, "2026-11-02T08:00:00Z", "x"),  # no unit
            _event("Billing", "2026-11-02T08:00:00", "x"),  # no offset
            _event("Billing", None, "x"),  # no time
        ],
    )
    + _trace(None, [_event("Billing", "2026-11-02T08:00:00Z", "x")])  # no case
    + "</log>\n"
)
# Lines of the rejected events: the line each <event> starts on.
XES_REJECTIONS = [(30, "no unit"), (31, "no offset"), (32, "no time"), (35, "no case")]
