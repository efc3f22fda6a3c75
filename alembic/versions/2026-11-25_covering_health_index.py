"""covering index for handoff health aggregates

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25 06:10:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

HEALTH_COLUMNS = ["handoff_id", "due_at", "delivered_at", "quality", "rework", "customer_impact"]


def upgrade() -> None:
    # The wider index starts with the same two columns, so it replaces the old one.
    op.create_index("ix_handoff_events_health", "handoff_events", HEALTH_COLUMNS)
    op.drop_index("ix_handoff_events_handoff_id_due_at", table_name="handoff_events")


def downgrade() -> None:
    op.create_index(
        "ix_handoff_events_handoff_id_due_at", "handoff_events", ["handoff_id", "due_at"]
    )
    op.drop_index("ix_handoff_events_health", table_name="handoff_events")
