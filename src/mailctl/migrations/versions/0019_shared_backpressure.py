"""relay scale, finished: the slow-down rate shared by every sender, a quota pause of its own

Revision ID: 0019
Revises: 0017
Create Date: 2026-12-01 20:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes  # the types autogenerate writes as sqlmodel.sql.sqltypes.X
from alembic import op

import mailctl.db

revision: str = "0019"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("smtp_server_state") as batch:
        batch.add_column(sa.Column("throttle_rate", sa.Float(), nullable=True))
        batch.add_column(sa.Column("throttle_peak", sa.Float(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("throttled_at", sa.Float(), nullable=False, server_default="0"))
    with op.batch_alter_table("mailings") as batch:
        batch.add_column(
            sa.Column("quota_server", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True)
        )
        batch.add_column(
            sa.Column("quota_until", mailctl.db.UTCDateTime(timezone=True), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("mailings") as batch:
        batch.drop_column("quota_until")
        batch.drop_column("quota_server")
    with op.batch_alter_table("smtp_server_state") as batch:
        batch.drop_column("throttled_at")
        batch.drop_column("throttle_peak")
        batch.drop_column("throttle_rate")
