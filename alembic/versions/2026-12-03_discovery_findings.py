"""discovery findings: discovered arcs as finding subjects, log units mapped to unit keys

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03 21:45:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# The key derivation is the product's contract with the units adopt creates: the same
# function, not a copy that could drift from it.
from service.event_logs.keys import derive_key

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SUBJECTS_BEFORE = ("unit", "handoff", "goal", "journey", "touchpoint", "agreement", "conflict")
SUBJECTS_AFTER = (*SUBJECTS_BEFORE, "discovered_arc")


def _subject_check(values: Sequence[str]) -> str:
    return "subject_type IN ({})".format(", ".join(f"'{v}'" for v in values))


def upgrade() -> None:
    with op.batch_alter_table("findings") as batch:
        batch.drop_constraint(op.f("ck_findings_subject_type"), type_="check")
        batch.create_check_constraint(
            op.f("ck_findings_subject_type"), _subject_check(SUBJECTS_AFTER)
        )
    op.add_column("event_logs", sa.Column("transfers", sa.BigInteger(), nullable=True))
    # Left empty: the findings sweep judges the arcs of logs that have none.
    op.add_column(
        "event_logs", sa.Column("arcs_judged_at", sa.DateTime(timezone=True), nullable=True)
    )
    op.create_table(
        "event_log_units",
        sa.Column("log_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("unit_key", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["log_id"],
            ["event_logs.id"],
            name=op.f("fk_event_log_units_log_id_event_logs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("log_id", "name", name=op.f("pk_event_log_units")),
    )
    op.create_index("ix_event_log_units_unit_key", "event_log_units", ["unit_key"])
    op.create_index("ix_event_log_arcs_dst", "event_log_arcs", ["log_id", "dst"])
    _backfill_ready_logs()


def _backfill_ready_logs() -> None:
    """Logs made ready before this revision: their transfers and their units' keys. The
    findings sweep then judges their arcs (or POST /v1/findings/refresh does)."""
    bind = op.get_bind()
    logs = sa.table(
        "event_logs",
        sa.column("id", sa.Uuid()),
        sa.column("status", sa.String()),
        sa.column("mapping", sa.JSON()),
        sa.column("discovered", sa.JSON()),
        sa.column("transfers", sa.BigInteger()),
    )
    arcs = sa.table("event_log_arcs", sa.column("log_id", sa.Uuid()), sa.column("src"))
    arcs_dst = sa.table("event_log_arcs", sa.column("log_id", sa.Uuid()), sa.column("dst"))
    units = sa.table(
        "event_log_units",
        sa.column("log_id", sa.Uuid()),
        sa.column("name", sa.String()),
        sa.column("unit_key", sa.String()),
    )
    ready = bind.execute(
        sa.select(logs.c.id, logs.c.mapping, logs.c.discovered).where(logs.c.status == "ready")
    ).all()
    for log_id, mapping, discovered in ready:
        bind.execute(
            logs.update()
            .where(logs.c.id == log_id)
            .values(transfers=(discovered or {}).get("transfers", 0))
        )
        names = sa.union(
            sa.select(arcs.c.src).where(arcs.c.log_id == log_id),
            sa.select(arcs_dst.c.dst).where(arcs_dst.c.log_id == log_id),
        )
        chosen = (mapping or {}).get("units", {})
        rows = [
            {"log_id": log_id, "name": name, "unit_key": chosen.get(name) or derive_key(name)}
            for (name,) in bind.execute(names).all()
        ]
        if rows:
            bind.execute(units.insert(), rows)


def downgrade() -> None:
    op.execute("DELETE FROM findings WHERE subject_type = 'discovered_arc'")
    op.drop_index("ix_event_log_arcs_dst", table_name="event_log_arcs")
    op.drop_index("ix_event_log_units_unit_key", table_name="event_log_units")
    op.drop_table("event_log_units")
    with op.batch_alter_table("event_logs") as batch:
        batch.drop_column("arcs_judged_at")
        batch.drop_column("transfers")
    with op.batch_alter_table("findings") as batch:
        batch.drop_constraint(op.f("ck_findings_subject_type"), type_="check")
        batch.create_check_constraint(
            op.f("ck_findings_subject_type"), _subject_check(SUBJECTS_BEFORE)
        )
