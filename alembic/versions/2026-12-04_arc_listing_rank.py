"""arc listing rank: each stored arc's place in GET /handoffs, so a page reads one index range

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-04 17:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("event_log_arcs", sa.Column("listing_rank", sa.BigInteger(), nullable=True))
    # The listing's order: most transfers first, then the names in code-point order.
    collate = ' COLLATE "C"' if op.get_bind().dialect.name == "postgresql" else ""
    op.execute(
        f"""
        UPDATE event_log_arcs SET listing_rank = ranked.listing_rank
        FROM (
            SELECT log_id, src, dst, ROW_NUMBER() OVER (
                PARTITION BY log_id ORDER BY arc_count DESC, src{collate}, dst{collate}
            ) AS listing_rank
            FROM event_log_arcs
        ) AS ranked
        WHERE ranked.log_id = event_log_arcs.log_id AND ranked.src = event_log_arcs.src
          AND ranked.dst = event_log_arcs.dst
        """
    )
    with op.batch_alter_table("event_log_arcs") as batch:
        batch.alter_column("listing_rank", existing_type=sa.BigInteger(), nullable=False)
    op.create_index(
        "ix_event_log_arcs_listing_rank", "event_log_arcs", ["log_id", "listing_rank"], unique=True
    )


def downgrade() -> None:
    op.drop_index("ix_event_log_arcs_listing_rank", table_name="event_log_arcs")
    with op.batch_alter_table("event_log_arcs") as batch:
        batch.drop_column("listing_rank")
