"""Root queries: cross-silo views start here. Each resolver is one service call."""

from __future__ import annotations

from uuid import UUID

import strawberry

from service.alignment import conflict_service, finding_service
from service.alignment import service as alignment_service
from service.core.errors import NotFoundFor
from service.goals import service as goals_service
from service.graphql import event_logs as event_log_types
from service.graphql.arguments import (
    After,
    AsOf,
    BucketArg,
    ExternalIdArg,
    First,
    From,
    KeyArg,
    To,
    page,
    window,
)
from service.graphql.enums import ConflictStatus, FindingStatusFilter
from service.graphql.types import (
    Agreement,
    Case,
    Conflict,
    Ctx,
    Finding,
    Goal,
    Handoff,
    Journey,
    Metric,
    Page,
    Score,
    Touchpoint,
    Unit,
    Webhook,
    WebhookDelivery,
)
from service.handoffs import service as handoffs_service
from service.journeys import service as journeys_service
from service.metrics import service as metrics_service
from service.org_units import service as units_service
from service.org_units.constants import EXTERNAL_KINDS, UnitKind
from service.partner_agreements import service as agreements_service
from service.webhooks import service as webhooks_service


def _uuid_or_404(resource: str, value: str) -> UUID:
    try:
        return UUID(value)
    except ValueError:
        raise NotFoundFor(resource, value) from None


@strawberry.type(description="Scores (method v1) by subject; each takes from/to/asOf/bucket.")
class Scores:
    @strawberry.field(description="The company score: touchpoints weighted by priority.")
    async def company(
        self, info: Ctx, start: From = None, end: To = None, as_of: AsOf = None,
        bucket: BucketArg = None,
    ) -> Score:
        async with info.context.db() as session:
            read = await alignment_service.score_company(
                session, info.context.principal, window(info, start, end, as_of, bucket)
            )
        return Score.from_read(read)

    @strawberry.field
    async def unit(
        self, info: Ctx, key: KeyArg, start: From = None, end: To = None, as_of: AsOf = None,
        bucket: BucketArg = None,
    ) -> Score | None:
        async with info.context.db() as session:
            read = await alignment_service.score_unit(
                session, info.context.principal, key, window(info, start, end, as_of, bucket)
            )
        return Score.from_read(read)

    @strawberry.field
    async def handoff(
        self, info: Ctx, key: KeyArg, start: From = None, end: To = None, as_of: AsOf = None,
        bucket: BucketArg = None,
    ) -> Score | None:
        async with info.context.db() as session:
            read = await alignment_service.score_handoff(
                session, info.context.principal, key, window(info, start, end, as_of, bucket)
            )
        return Score.from_read(read)

    @strawberry.field
    async def touchpoint(
        self, info: Ctx, key: KeyArg, start: From = None, end: To = None, as_of: AsOf = None,
        bucket: BucketArg = None,
    ) -> Score | None:
        async with info.context.db() as session:
            read = await alignment_service.score_touchpoint(
                session, info.context.principal, key, window(info, start, end, as_of, bucket)
            )
        return Score.from_read(read)

    @strawberry.field
    async def journey(
        self, info: Ctx, key: KeyArg, start: From = None, end: To = None, as_of: AsOf = None,
        bucket: BucketArg = None,
    ) -> Score | None:
        async with info.context.db() as session:
            read = await alignment_service.score_journey(
                session, info.context.principal, key, window(info, start, end, as_of, bucket)
            )
        return Score.from_read(read)

    @strawberry.field
    async def partner(
        self, info: Ctx, key: KeyArg, start: From = None, end: To = None, as_of: AsOf = None,
        bucket: BucketArg = None,
    ) -> Score | None:
        async with info.context.db() as session:
            read = await alignment_service.score_partner(
                session, info.context.principal, key, window(info, start, end, as_of, bucket)
            )
        return Score.from_read(read)


@strawberry.type
class Query:
    @strawberry.field(description="An imported event log and what was discovered in it.")
    async def event_log(self, info: Ctx, key: KeyArg) -> event_log_types.EventLog | None:
        return await event_log_types.event_log(info, key)

    @strawberry.field
    async def unit(self, info: Ctx, key: KeyArg) -> Unit | None:
        async with info.context.db() as session:
            return Unit.from_model(await units_service.get(session, info.context.principal, key))

    @strawberry.field
    async def units(self, info: Ctx, first: First = None, after: After = None) -> Page[Unit]:
        request = page(first, after)
        async with info.context.db() as session:
            rows, cursor = await units_service.list_page(session, info.context.principal, request)
        return Page(items=[Unit.from_model(u) for u in rows], next_cursor=cursor)

    @strawberry.field(description="A partner, supplier, channel or alliance unit.")
    async def partner(self, info: Ctx, key: KeyArg) -> Unit | None:
        async with info.context.db() as session:
            unit = await units_service.get(session, info.context.principal, key)
        if UnitKind(unit.kind) not in EXTERNAL_KINDS:
            raise NotFoundFor("partner", key)
        return Unit.from_model(unit)

    @strawberry.field
    async def journey(self, info: Ctx, key: KeyArg) -> Journey | None:
        async with info.context.db() as session:
            found = await journeys_service.get_journey(session, info.context.principal, key)
        return Journey.from_model(found)

    @strawberry.field
    async def journeys(self, info: Ctx, first: First = None, after: After = None) -> Page[Journey]:
        request = page(first, after)
        async with info.context.db() as session:
            rows, cursor = await journeys_service.list_journeys(session, info.context.principal, request)
        return Page(items=[Journey.from_model(j) for j in rows], next_cursor=cursor)

    @strawberry.field
    async def touchpoint(self, info: Ctx, key: KeyArg) -> Touchpoint | None:
        async with info.context.db() as session:
            found = await journeys_service.get_touchpoint(session, info.context.principal, key)
        return Touchpoint.from_model(found)

    @strawberry.field
    async def touchpoints(
        self, info: Ctx, first: First = None, after: After = None
    ) -> Page[Touchpoint]:
        request = page(first, after)
        async with info.context.db() as session:
            rows, cursor = await journeys_service.list_touchpoints(
                session, info.context.principal, request
            )
        return Page(items=[Touchpoint.from_model(t) for t in rows], next_cursor=cursor)

    @strawberry.field
    async def handoff(self, info: Ctx, key: KeyArg) -> Handoff | None:
        async with info.context.db() as session:
            found = await handoffs_service.get(session, info.context.principal, key)
        return Handoff.from_model(found)

    @strawberry.field
    async def handoffs(self, info: Ctx, first: First = None, after: After = None) -> Page[Handoff]:
        request = page(first, after)
        async with info.context.db() as session:
            rows, cursor = await handoffs_service.list_page(session, info.context.principal, request)
        return Page(items=[Handoff.from_model(h) for h in rows], next_cursor=cursor)

    @strawberry.field
    async def goal(self, info: Ctx, key: KeyArg) -> Goal | None:
        async with info.context.db() as session:
            found = await goals_service.get(session, info.context.principal, key)
        return Goal.from_model(found)

    @strawberry.field
    async def goals(self, info: Ctx, first: First = None, after: After = None) -> Page[Goal]:
        request = page(first, after)
        async with info.context.db() as session:
            rows, cursor = await goals_service.list_page(session, info.context.principal, request)
        return Page(items=[Goal.from_model(g) for g in rows], next_cursor=cursor)

    @strawberry.field
    async def metrics(self, info: Ctx, first: First = None, after: After = None) -> Page[Metric]:
        request = page(first, after)
        async with info.context.db() as session:
            rows, cursor = await metrics_service.list_page(session, info.context.principal, request)
        return Page(items=[Metric.from_model(m) for m in rows], next_cursor=cursor)

    @strawberry.field
    async def partner_agreement(self, info: Ctx, key: KeyArg) -> Agreement | None:
        async with info.context.db() as session:
            found = await agreements_service.get(session, info.context.principal, key)
        return Agreement.from_model(found)

    @strawberry.field
    async def partner_agreements(
        self, info: Ctx, first: First = None, after: After = None
    ) -> Page[Agreement]:
        request = page(first, after)
        async with info.context.db() as session:
            rows, cursor = await agreements_service.list_page(
                session, info.context.principal, request
            )
        return Page(items=[Agreement.from_model(a) for a in rows], next_cursor=cursor)

    @strawberry.field(name="case", description="A customer's path across silos.")
    async def case_path(self, info: Ctx, ref: ExternalIdArg) -> Case | None:
        async with info.context.db() as session:
            read = await alignment_service.get_case(session, info.context.principal, ref)
        return Case.from_read(read)

    @strawberry.field(description="Dueling goals, most severe first.")
    async def conflicts(
        self,
        info: Ctx,
        status: ConflictStatus | None = None,
        first: First = None,
        after: After = None,
    ) -> Page[Conflict]:
        request = page(first, after)
        async with info.context.db() as session:
            rows, cursor = await conflict_service.list_conflicts(
                session, info.context.principal, request, status=status
            )
        return Page(items=[Conflict.from_read(c) for c in rows], next_cursor=cursor)

    @strawberry.field(
        description="Goal-silo gotchas, most severe first; open ones unless `status` says "
        "otherwise. `subject` is a key or `<type>:<key>`."
    )
    async def findings(
        self,
        info: Ctx,
        rule: str | None = None,
        status: FindingStatusFilter = FindingStatusFilter.open,
        subject: str | None = None,
        first: First = None,
        after: After = None,
    ) -> Page[Finding]:
        request = page(first, after)
        async with info.context.db() as session:
            rows, cursor = await finding_service.list_findings(
                session,
                info.context.principal,
                request,
                rule=rule,
                status=status.as_status(),
                subject=subject,
            )
        return Page(items=[Finding.from_read(f) for f in rows], next_cursor=cursor)

    @strawberry.field(description="Webhook subscriptions (writers, admins; a partner: its own).")
    async def webhooks(self, info: Ctx, first: First = None, after: After = None) -> Page[Webhook]:
        request = page(first, after)
        async with info.context.db() as session:
            rows, cursor = await webhooks_service.list_page(session, info.context.principal, request)
            reads = await webhooks_service.to_read(session, rows)
        return Page(items=[Webhook.from_read(w) for w in reads], next_cursor=cursor)

    @strawberry.field(description="Delivery attempts of one subscription, newest first.")
    async def webhook_deliveries(
        self, info: Ctx, webhook: strawberry.ID, first: First = None, after: After = None
    ) -> Page[WebhookDelivery]:
        request = page(first, after)
        async with info.context.db() as session:
            rows, cursor = await webhooks_service.list_deliveries(
                session, info.context.principal, _uuid_or_404("webhook", webhook), request
            )
        return Page(items=[WebhookDelivery.from_read(d) for d in rows], next_cursor=cursor)

    @strawberry.field(description="One finding by its id.")
    async def finding(self, info: Ctx, id: strawberry.ID) -> Finding:
        async with info.context.db() as session:
            read = await finding_service.get_finding(
                session, info.context.principal, _uuid_or_404("finding", id)
            )
        return Finding.from_read(read)

    @strawberry.field(description="Scores by subject.")
    def scores(self) -> Scores:
        return Scores()
