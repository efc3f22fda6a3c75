"""index for the conflict listing: most severe first, then oldest

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03 09:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # GET /v1/conflicts pages by (severity DESC, detected_at, id): without this index every
    # page sorted all the company's conflicts to keep the first fifty.
    op.create_index(
        "ix_conflicts_listing",
        "conflicts",
        [sa.text("severity DESC"), "detected_at", "id"],
    )


def downgrade() -> None:
    op.drop_index("ix_conflicts_listing", table_name="conflicts")
