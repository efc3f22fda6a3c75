"""events without a due date: due_at may be empty; placed_at says where an event sits in time

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-04 07:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

HEALTH_BEFORE = ["handoff_id", "due_at", "delivered_at", "quality", "rework", "customer_impact"]
HEALTH_AFTER = [
    "handoff_id", "placed_at", "due_at", "delivered_at", "quality", "rework", "customer_impact"
]
OVERDUE_UNANNOUNCED = "delivered_at IS NULL AND overdue_notified_at IS NULL"

_events = sa.table(
    "handoff_events",
    sa.column("started_at", sa.DateTime(timezone=True)),
    sa.column("due_at", sa.DateTime(timezone=True)),
    sa.column("placed_at", sa.DateTime(timezone=True)),
)


def upgrade() -> None:
    op.add_column(
        "handoff_events", sa.Column("placed_at", sa.DateTime(timezone=True), nullable=True)
    )
    # Every event so far has a due time: it is placed by it.
    op.execute(_events.update().values(placed_at=_events.c.due_at))
    # On SQLite the batch rebuilds the table; the partial index is dropped first and made
    # again after, so its WHERE clause never depends on what reflection preserves.
    op.drop_index("ix_handoff_events_overdue", table_name="handoff_events")
    op.drop_index("ix_handoff_events_health", table_name="handoff_events")
    with op.batch_alter_table("handoff_events") as batch:
        batch.alter_column("placed_at", existing_type=sa.DateTime(timezone=True), nullable=False)
        batch.alter_column("due_at", existing_type=sa.DateTime(timezone=True), nullable=True)
    op.create_index("ix_handoff_events_health", "handoff_events", HEALTH_AFTER)
    _overdue_index()


def downgrade() -> None:
    # Before this revision every event had a due time: those without one take their start.
    op.execute(
        _events.update().where(_events.c.due_at.is_(None)).values(due_at=_events.c.started_at)
    )
    op.drop_index("ix_handoff_events_overdue", table_name="handoff_events")
    op.drop_index("ix_handoff_events_health", table_name="handoff_events")
    with op.batch_alter_table("handoff_events") as batch:
        batch.alter_column("due_at", existing_type=sa.DateTime(timezone=True), nullable=False)
        batch.drop_column("placed_at")
    op.create_index("ix_handoff_events_health", "handoff_events", HEALTH_BEFORE)
    _overdue_index()


def _overdue_index() -> None:
    op.create_index(
        "ix_handoff_events_overdue",
        "handoff_events",
        ["due_at"],
        sqlite_where=sa.text(OVERDUE_UNANNOUNCED),
        postgresql_where=sa.text(OVERDUE_UNANNOUNCED),
    )
