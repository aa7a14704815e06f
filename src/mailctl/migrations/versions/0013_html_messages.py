"""html messages: body formats, layouts, test sends

Revision ID: 0013
Revises: 0002
Create Date: 2026-12-01 16:10:00

Existing messages become `text` (they keep sending exactly as before); new ones default to
Markdown in the model, so the column's server default is dropped once the rows are filled.
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes  # the types autogenerate writes as sqlmodel.sql.sqltypes.X
from alembic import op

import mailctl.db

revision: str = "0013"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "layouts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("owner_id", sa.Integer(), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("html", sa.Text(), nullable=False),
        sa.Column("created_at", mailctl.db.UTCDateTime(), nullable=False),
        sa.Column("updated_at", mailctl.db.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["owner_id"], ["users.id"], name=op.f("fk_layouts_owner_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_layouts")),
        sa.UniqueConstraint("owner_id", "name", name="uq_layouts_owner_id_name"),
    )
    with op.batch_alter_table("layouts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_layouts_owner_id"), ["owner_id"], unique=False)

    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "format",
                sqlmodel.sql.sqltypes.AutoString(length=8),
                nullable=False,
                server_default="text",
            )
        )
        batch_op.add_column(sa.Column("layout_id", sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f("ix_messages_layout_id"), ["layout_id"], unique=False)
        batch_op.create_foreign_key(
            batch_op.f("fk_messages_layout_id_layouts"),
            "layouts",
            ["layout_id"],
            ["id"],
            ondelete="RESTRICT",
        )
        batch_op.create_check_constraint(
            "ck_messages_format", "format IN ('markdown', 'html', 'text')"
        )
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.alter_column("format", server_default=None)

    op.create_table(
        "test_sends",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("message_id", sa.Integer(), nullable=True),
        sa.Column("to_address", sqlmodel.sql.sqltypes.AutoString(length=254), nullable=False),
        sa.Column("as_client", sqlmodel.sql.sqltypes.AutoString(length=254), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("response", sqlmodel.sql.sqltypes.AutoString(length=1000), nullable=True),
        sa.Column("sent_at", mailctl.db.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["message_id"],
            ["messages.id"],
            name=op.f("fk_test_sends_message_id_messages"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_test_sends_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_test_sends")),
    )
    with op.batch_alter_table("test_sends", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_test_sends_message_id"), ["message_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_test_sends_sent_at"), ["sent_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_test_sends_user_id"), ["user_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("test_sends", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_test_sends_user_id"))
        batch_op.drop_index(batch_op.f("ix_test_sends_sent_at"))
        batch_op.drop_index(batch_op.f("ix_test_sends_message_id"))
    op.drop_table("test_sends")
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_constraint("ck_messages_format", type_="check")
        batch_op.drop_constraint(batch_op.f("fk_messages_layout_id_layouts"), type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_messages_layout_id"))
        batch_op.drop_column("layout_id")
        batch_op.drop_column("format")
    with op.batch_alter_table("layouts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_layouts_owner_id"))
    op.drop_table("layouts")
