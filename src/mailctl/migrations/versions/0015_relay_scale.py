"""relay scale: shared SMTP limits and health, the server of each attempt

Revision ID: 0015
Revises: 0013
Create Date: 2026-12-01 16:45:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes  # the types autogenerate writes as sqlmodel.sql.sqltypes.X
from alembic import op

import mailctl.db

revision: str = "0015"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "smtp_server_state",
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("next_slot", sa.Float(), nullable=False),
        sa.Column("minute_start", sa.Float(), nullable=False),
        sa.Column("minute_count", sa.Integer(), nullable=False),
        sa.Column("hour_start", sa.Float(), nullable=False),
        sa.Column("hour_count", sa.Integer(), nullable=False),
        sa.Column("day_start", sa.Float(), nullable=False),
        sa.Column("day_count", sa.Integer(), nullable=False),
        sa.Column("health", sqlmodel.sql.sqltypes.AutoString(length=1000), nullable=True),
        sa.Column("health_at", mailctl.db.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_smtp_server_state")),
    )
    op.add_column(
        "delivery_attempts",
        sa.Column("server", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
    )


def downgrade() -> None:
    with op.batch_alter_table("delivery_attempts") as batch:
        batch.drop_column("server")
    op.drop_table("smtp_server_state")
