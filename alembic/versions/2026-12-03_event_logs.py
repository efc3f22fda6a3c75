"""event logs imported from ticketing systems, and their rows

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03 15:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "event_logs",
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("format", sa.String(length=8), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("failure_reason", sa.Text(), nullable=True),
        sa.Column("mapping", sa.JSON(), nullable=False),
        sa.Column("bytes_read", sa.BigInteger(), nullable=False),
        sa.Column("rows_read", sa.BigInteger(), nullable=False),
        sa.Column("events", sa.BigInteger(), nullable=False),
        sa.Column("cases", sa.BigInteger(), nullable=False),
        sa.Column("units", sa.BigInteger(), nullable=False),
        sa.Column("rejected", sa.BigInteger(), nullable=False),
        sa.Column("rejections", sa.JSON(), nullable=False),
        sa.Column("first_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("discovered", sa.JSON(), nullable=True),
        sa.CheckConstraint("format IN ('csv', 'xes')", name=op.f("ck_event_logs_format")),
        sa.CheckConstraint(
            "status IN ('importing', 'ready', 'failed')", name=op.f("ck_event_logs_status")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_event_logs")),
        sa.UniqueConstraint("key", name=op.f("uq_event_logs_key")),
    )
    op.create_index("ix_event_logs_created_at", "event_logs", ["created_at", "id"])
    # The primary key is discovery's index: each case's rows in time order, ties by position.
    op.create_table(
        "event_log_rows",
        sa.Column("log_id", sa.Uuid(), nullable=False),
        sa.Column("case_ref", sa.String(length=200), nullable=False),
        sa.Column("at_us", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("position", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("unit", sa.String(length=200), nullable=False),
        sa.Column("activity", sa.String(length=200), nullable=True),
        sa.Column("status", sa.String(length=200), nullable=True),
        sa.Column("resource", sa.String(length=200), nullable=True),
        sa.ForeignKeyConstraint(
            ["log_id"],
            ["event_logs.id"],
            name=op.f("fk_event_log_rows_log_id_event_logs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "log_id", "case_ref", "at_us", "position", name=op.f("pk_event_log_rows")
        ),
    )

    # The arcs without pause statuses, stored when an import finishes.
    op.create_table(
        "event_log_arcs",
        sa.Column("log_id", sa.Uuid(), nullable=False),
        sa.Column("src", sa.String(length=200), nullable=False),
        sa.Column("dst", sa.String(length=200), nullable=False),
        sa.Column("arc_count", sa.BigInteger(), nullable=False),
        sa.Column("cases", sa.BigInteger(), nullable=False),
        sa.Column("ping_pongs", sa.BigInteger(), nullable=False),
        sa.Column("wait_median_us", sa.BigInteger(), nullable=False),
        sa.Column("wait_p80_us", sa.BigInteger(), nullable=False),
        sa.Column("wait_p90_us", sa.BigInteger(), nullable=False),
        sa.Column("wait_max_us", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["log_id"],
            ["event_logs.id"],
            name=op.f("fk_event_log_arcs_log_id_event_logs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("log_id", "src", "dst", name=op.f("pk_event_log_arcs")),
    )


def downgrade() -> None:
    op.drop_table("event_log_arcs")
    op.drop_table("event_log_rows")
    op.drop_index("ix_event_logs_created_at", table_name="event_logs")
    op.drop_table("event_logs")
