"""findings kept with stable ids

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03 13:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Empty at first: `silospan serve` fills it by its background sweep (and writes keep it
    # current), or `POST /v1/findings/refresh` fills it at once.
    op.create_table(
        "findings",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("rule", sa.String(length=64), nullable=False),
        sa.Column("subject_type", sa.String(length=16), nullable=False),
        sa.Column("subject_id", sa.Uuid(), nullable=False),
        sa.Column("subject_key", sa.String(length=200), nullable=False),
        sa.Column("severity", sa.Integer(), nullable=False),
        sa.Column("explanation", sa.Text(), nullable=False),
        sa.Column("remedy", sa.Text(), nullable=False),
        sa.Column("evidence", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("cleared_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("status IN ('open', 'cleared')", name=op.f("ck_findings_status")),
        sa.CheckConstraint(
            "subject_type IN ('unit', 'handoff', 'goal', 'journey', 'touchpoint', 'agreement', "
            "'conflict')",
            name=op.f("ck_findings_subject_type"),
        ),
        sa.CheckConstraint(
            "severity >= 1 AND severity <= 3", name=op.f("ck_findings_severity_range")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_findings")),
        sa.UniqueConstraint(
            "rule", "subject_type", "subject_id", name=op.f("uq_findings_rule_subject_type_subject_id")
        ),
    )
    op.create_index("ix_findings_subject_id", "findings", ["subject_id"])
    op.create_index(
        "ix_findings_listing",
        "findings",
        ["status", sa.text("severity DESC"), "rule", "subject_key", "id"],
    )


def downgrade() -> None:
    op.drop_index("ix_findings_listing", table_name="findings")
    op.drop_index("ix_findings_subject_id", table_name="findings")
    op.drop_table("findings")
