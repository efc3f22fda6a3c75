"""events record who wrote them, and partner cases kept apart

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03 08:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Existing events were all written before partners' writes were told apart: NULL
    # (internal) is the only source they can honestly be given. On SQLite the batch copies
    # the table, which is the only way it can add a foreign key.
    with op.batch_alter_table("handoff_events") as batch:
        batch.add_column(sa.Column("written_by_unit_id", sa.Uuid(), nullable=True))
        batch.add_column(
            sa.Column("case_private", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
        batch.create_foreign_key(
            "fk_handoff_events_written_by_unit_id_units",
            "units",
            ["written_by_unit_id"],
            ["id"],
            ondelete="RESTRICT",
        )
        batch.create_index(
            "ix_handoff_events_written_by_unit_id", ["written_by_unit_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("handoff_events") as batch:
        batch.drop_index("ix_handoff_events_written_by_unit_id")
        batch.drop_constraint("fk_handoff_events_written_by_unit_id_units", type_="foreignkey")
        batch.drop_column("case_private")
        batch.drop_column("written_by_unit_id")
