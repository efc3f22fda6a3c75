"""webhooks: overdue occurrences announced once, and handoff health thresholds

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03 15:40:00
"""

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OVERDUE_UNANNOUNCED = "delivered_at IS NULL AND overdue_notified_at IS NULL"


def upgrade() -> None:
    op.add_column(
        "handoff_events",
        sa.Column("overdue_notified_at", sa.DateTime(timezone=True), nullable=True),
    )
    # Occurrences already overdue before webhooks announced any count as announced: an
    # upgrade must not send every subscriber the whole backlog of the past.
    events = sa.table(
        "handoff_events",
        sa.column("due_at", sa.DateTime(timezone=True)),
        sa.column("delivered_at", sa.DateTime(timezone=True)),
        sa.column("overdue_notified_at", sa.DateTime(timezone=True)),
    )
    now = datetime.now(UTC)
    op.execute(
        events.update()
        .where(events.c.delivered_at.is_(None), events.c.due_at < now)
        .values(overdue_notified_at=now)
    )
    op.create_index(
        "ix_handoff_events_overdue",
        "handoff_events",
        ["due_at"],
        sqlite_where=sa.text(OVERDUE_UNANNOUNCED),
        postgresql_where=sa.text(OVERDUE_UNANNOUNCED),
    )
    with op.batch_alter_table("webhook_subscriptions") as batch:
        batch.add_column(sa.Column("health_below", sa.Float(), server_default="60", nullable=False))
        batch.create_check_constraint(
            op.f("ck_webhook_subscriptions_health_below_range"),
            "health_below >= 0 AND health_below <= 100",
        )
    op.create_table(
        "webhook_handoff_health",
        sa.Column("handoff_id", sa.Uuid(), nullable=False),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["handoff_id"],
            ["handoffs.id"],
            name=op.f("fk_webhook_handoff_health_handoff_id_handoffs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("handoff_id", name=op.f("pk_webhook_handoff_health")),
    )


def downgrade() -> None:
    op.drop_table("webhook_handoff_health")
    with op.batch_alter_table("webhook_subscriptions") as batch:
        batch.drop_constraint(op.f("ck_webhook_subscriptions_health_below_range"), type_="check")
        batch.drop_column("health_below")
    op.drop_index("ix_handoff_events_overdue", table_name="handoff_events")
    op.drop_column("handoff_events", "overdue_notified_at")
