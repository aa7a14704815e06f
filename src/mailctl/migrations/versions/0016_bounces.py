"""bounces and complaints: the bounce log, the mailbox state, webhook receipts, bounced rows

Revision ID: 0016
Revises: 0019
Create Date: 2026-12-01 19:50:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes  # the types autogenerate writes as sqlmodel.sql.sqltypes.X
from alembic import op

import mailctl.db

revision: str = "0016"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

AutoString = sqlmodel.sql.sqltypes.AutoString


def upgrade() -> None:
    op.create_table(
        "bounces",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("owner_id", sa.Integer(), nullable=False),
        sa.Column("delivery_id", sa.Integer(), nullable=True),
        sa.Column("mailing_id", sa.Integer(), nullable=True),
        sa.Column("run_id", sa.Integer(), nullable=True),
        sa.Column("email_hash", AutoString(length=64), nullable=False),
        sa.Column("kind", AutoString(length=16), nullable=False),
        sa.Column("status", AutoString(length=16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("source", AutoString(length=32), nullable=False),
        sa.Column("ref", AutoString(length=200), nullable=False),
        sa.Column("received_at", mailctl.db.UTCDateTime(), nullable=False),
        sa.CheckConstraint("kind IN ('hard', 'soft', 'complaint')", name="ck_bounces_kind"),
        sa.ForeignKeyConstraint(
            ["delivery_id"],
            ["deliveries.id"],
            name=op.f("fk_bounces_delivery_id_deliveries"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["mailing_id"],
            ["mailings.id"],
            name=op.f("fk_bounces_mailing_id_mailings"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["owner_id"], ["users.id"], name=op.f("fk_bounces_owner_id_users"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["mailing_runs.id"],
            name=op.f("fk_bounces_run_id_mailing_runs"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bounces")),
        sa.UniqueConstraint("ref", name="uq_bounces_ref"),
    )
    op.create_index(
        "ix_bounces_owner_hash_time", "bounces", ["owner_id", "email_hash", "received_at"]
    )
    op.create_index(op.f("ix_bounces_delivery_id"), "bounces", ["delivery_id"])
    op.create_table(
        "bounce_mailboxes",
        sa.Column("name", AutoString(length=300), nullable=False),
        sa.Column("last_fetch_at", mailctl.db.UTCDateTime(), nullable=True),
        sa.Column("last_ok_at", mailctl.db.UTCDateTime(), nullable=True),
        sa.Column("last_error", AutoString(length=1000), nullable=True),
        sa.Column("last_summary", AutoString(length=300), nullable=False),
        sa.Column("processed_total", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_bounce_mailboxes")),
    )
    op.create_table(
        "hook_receipts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("provider", AutoString(length=32), nullable=False),
        sa.Column("key", AutoString(length=200), nullable=False),
        sa.Column("received_at", mailctl.db.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_hook_receipts")),
        sa.UniqueConstraint("provider", "key", name="uq_hook_receipts_key"),
    )
    op.create_index(op.f("ix_hook_receipts_received_at"), "hook_receipts", ["received_at"])
    op.add_column("deliveries", sa.Column("bounce", AutoString(length=16), nullable=True))
    op.add_column(
        "deliveries",
        sa.Column("bounced_at", mailctl.db.UTCDateTime(), nullable=True),
    )


def downgrade() -> None:
    with op.batch_alter_table("deliveries") as batch:
        batch.drop_column("bounced_at")
        batch.drop_column("bounce")
    op.drop_index(op.f("ix_hook_receipts_received_at"), table_name="hook_receipts")
    op.drop_table("hook_receipts")
    op.drop_table("bounce_mailboxes")
    op.drop_index(op.f("ix_bounces_delivery_id"), table_name="bounces")
    op.drop_index("ix_bounces_owner_hash_time", table_name="bounces")
    op.drop_table("bounces")
