"""Scores, conflicts, findings and case paths."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Path, Query

from service.alignment import conflict_service, finding_service
from service.alignment import service as alignment_service
from service.alignment.constants import Bucket, ConflictStatus, FindingStatusFilter
from service.alignment.findings import RULES
from service.alignment.repository import Window
from service.alignment.schemas import (
    CaseRead,
    ConflictRead,
    ConflictResolve,
    FindingRead,
    ScoreRead,
)
from service.api.deps import KeyPath, PageDep, ReadSessionDep, SessionDep, allow
from service.api.problems import problem_responses
from service.core.fields import EXTERNAL_ID_PATTERN, LocalTimestamp, Page, Timestamp
from service.core.permissions import Action, Principal

scores = APIRouter(prefix="/v1/scores", tags=["scores"])
conflicts = APIRouter(prefix="/v1/conflicts", tags=["conflicts"])
findings = APIRouter(prefix="/v1/findings", tags=["findings"])
cases = APIRouter(prefix="/v1/cases", tags=["cases"])

ScoresReader = Annotated[Principal, allow(Action.scores_read)]


def window_params(
    start: Annotated[
        LocalTimestamp | None,
        Query(
            alias="from",
            description="Window start (inclusive); default `to` − 90 days. Buckets follow "
            "the calendar of its UTC offset.",
        ),
    ] = None,
    end: Annotated[
        Timestamp | None, Query(alias="to", description="Window end (exclusive); default `as_of`.")
    ] = None,
    as_of: Annotated[
        Timestamp | None, Query(description="The moment the score is taken at; default now.")
    ] = None,
    bucket: Annotated[
        Bucket | None, Query(description="Also score each day, week or month of the window.")
    ] = None,
) -> Window:
    return alignment_service.make_window(start, end, as_of, bucket)


def flat_window_params(
    start: Annotated[Timestamp | None, Query(alias="from")] = None,
    end: Annotated[Timestamp | None, Query(alias="to")] = None,
    as_of: Annotated[Timestamp | None, Query()] = None,
) -> Window:
    return alignment_service.make_window(start, end, as_of)


WindowDep = Annotated[Window, Depends(window_params)]
FlatWindowDep = Annotated[Window, Depends(flat_window_params)]


@scores.get("/company", responses=problem_responses(404))
async def score_company(session: ReadSessionDep, principal: ScoresReader, window: WindowDep) -> ScoreRead:
    """The company score: touchpoint scores weighted by priority (method v1)."""
    return await alignment_service.score_company(session, principal, window)


@scores.get("/units/{key}", responses=problem_responses(404))
async def score_unit(
    key: KeyPath, session: ReadSessionDep, principal: ScoresReader, window: WindowDep
) -> ScoreRead:
    """Unit alignment: the health of the handoffs it provides and how its goals point at
    the customer."""
    return await alignment_service.score_unit(session, principal, key, window)


@scores.get("/handoffs", responses=problem_responses())
async def list_handoff_scores(
    session: ReadSessionDep, principal: ScoresReader, page: PageDep, window: FlatWindowDep
) -> Page[ScoreRead]:
    """The health of every handoff (a partner key: its own), a page at a time."""
    items, next_cursor = await alignment_service.score_handoffs(session, principal, page, window)
    return Page(items=items, next_cursor=next_cursor)


@scores.get("/handoffs/{key}", responses=problem_responses(404))
async def score_handoff(
    key: KeyPath, session: ReadSessionDep, principal: ScoresReader, window: WindowDep
) -> ScoreRead:
    """Handoff health: timeliness, quality, rework and the recipient's reviews."""
    return await alignment_service.score_handoff(session, principal, key, window)


@scores.get("/touchpoints/{key}", responses=problem_responses(404))
async def score_touchpoint(
    key: KeyPath, session: ReadSessionDep, principal: ScoresReader, window: WindowDep
) -> ScoreRead:
    """The health of the chain behind a touchpoint and its customers' satisfaction."""
    return await alignment_service.score_touchpoint(session, principal, key, window)


@scores.get("/journeys/{key}", responses=problem_responses(404))
async def score_journey(
    key: KeyPath, session: ReadSessionDep, principal: ScoresReader, window: WindowDep
) -> ScoreRead:
    return await alignment_service.score_journey(session, principal, key, window)


@scores.get("/partners/{key}", responses=problem_responses(404))
async def score_partner(
    key: KeyPath, session: ReadSessionDep, principal: ScoresReader, window: WindowDep
) -> ScoreRead:
    """A partner judged on its handoffs and on whether its joint goals reach the customer."""
    return await alignment_service.score_partner(session, principal, key, window)


@conflicts.get("", responses=problem_responses())
async def list_conflicts(
    session: ReadSessionDep,
    principal: Annotated[Principal, allow(Action.conflicts_read)],
    page: PageDep,
    status: ConflictStatus | None = None,
) -> Page[ConflictRead]:
    """Dueling goals, most severe first."""
    items, next_cursor = await conflict_service.list_conflicts(session, principal, page, status=status)
    return Page(items=items, next_cursor=next_cursor)


@conflicts.post("/detect", responses=problem_responses())
async def detect_conflicts(
    session: SessionDep,
    principal: Annotated[Principal, allow(Action.conflicts_resolve)],
    page: PageDep,
) -> Page[ConflictRead]:
    """Re-detect conflicts now (they are also detected whenever goals, metric relations or
    moments of truth change)."""
    items, next_cursor = await conflict_service.detect_conflicts(session, principal, page)
    return Page(items=items, next_cursor=next_cursor)


@conflicts.get("/{conflict_id:uuid}", responses=problem_responses(404))
async def get_conflict(
    conflict_id: UUID,
    session: ReadSessionDep,
    principal: Annotated[Principal, allow(Action.conflicts_read)],
) -> ConflictRead:
    return await conflict_service.get_conflict(session, principal, conflict_id)


@conflicts.post("/{conflict_id:uuid}/resolve", responses=problem_responses(404, 409))
async def resolve_conflict(
    conflict_id: UUID,
    body: ConflictResolve,
    session: SessionDep,
    principal: Annotated[Principal, allow(Action.conflicts_resolve)],
) -> ConflictRead:
    """Mark a conflict resolved, with a note. It reopens if either goal changes."""
    return await conflict_service.resolve_conflict(session, principal, conflict_id, body.note)


@findings.get("", responses=problem_responses())
async def list_findings(
    session: ReadSessionDep,
    principal: Annotated[Principal, allow(Action.findings_read)],
    page: PageDep,
    rule: Annotated[
        str | None, Query(max_length=64, description=f"One of: {', '.join(RULES)}.")
    ] = None,
    status: Annotated[
        FindingStatusFilter,
        Query(description="`open` (the default), `cleared`, or `all`."),
    ] = FindingStatusFilter.open,
    subject: Annotated[
        str | None,
        Query(
            max_length=220,
            description="A subject's key, or `<type>:<key>` (e.g. `handoff:kyc`); a conflict's "
            "key is its id, a discovered arc's `<log>/<from> -> <to>` (e.g. "
            "`discovered_arc:support/Front Desk -> Billing`).",
        ),
    ] = None,
) -> Page[FindingRead]:
    """Goal-silo gotchas, most severe first, each with its explanation and remedy. Findings
    are kept current: every write that can change one re-evaluates it, and buffering is
    judged over the 90 days before now."""
    items, next_cursor = await finding_service.list_findings(
        session, principal, page, rule=rule, status=status.as_status(), subject=subject
    )
    return Page(items=items, next_cursor=next_cursor)


@findings.post("/refresh", responses=problem_responses())
async def refresh_findings(
    session: SessionDep,
    principal: Annotated[Principal, allow(Action.conflicts_resolve)],
    page: PageDep,
) -> Page[FindingRead]:
    """Evaluate every rule over the whole company now, and answer the first page of open
    findings (writes and the background sweep keep them current without it)."""
    await finding_service.refresh_everything(session, principal)
    items, next_cursor = await finding_service.list_findings(session, principal, page)
    return Page(items=items, next_cursor=next_cursor)


@findings.get("/{finding_id:uuid}", responses=problem_responses(404))
async def get_finding(
    finding_id: UUID,
    session: ReadSessionDep,
    principal: Annotated[Principal, allow(Action.findings_read)],
) -> FindingRead:
    return await finding_service.get_finding(session, principal, finding_id)


@cases.get("/{case_ref}", responses=problem_responses(404))
async def get_case(
    case_ref: Annotated[str, Path(pattern=EXTERNAL_ID_PATTERN)],
    session: ReadSessionDep,
    principal: Annotated[Principal, allow(Action.cases_read)],
) -> CaseRead:
    """A customer's path across silos: steps in time order, waits, transfers, ping-pongs."""
    return await alignment_service.get_case(session, principal, case_ref)
