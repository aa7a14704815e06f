"""audiences and consent

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01 16:16:58.274929
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes  # the types autogenerate writes as sqlmodel.sql.sqltypes.X
from alembic import op

import mailctl.db

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "spent_tokens",
        sa.Column("digest", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("spent_at", mailctl.db.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("digest", name=op.f("pk_spent_tokens")),
    )
    with op.batch_alter_table("spent_tokens", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_spent_tokens_spent_at"), ["spent_at"], unique=False)

    op.create_table(
        "client_fields",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("owner_id", sa.Integer(), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("created_at", mailctl.db.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["owner_id"],
            ["users.id"],
            name=op.f("fk_client_fields_owner_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_client_fields")),
        sa.UniqueConstraint("owner_id", "name", name="uq_client_fields_owner_name"),
    )
    with op.batch_alter_table("client_fields", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_client_fields_owner_id"), ["owner_id"], unique=False)

    op.create_table(
        "signup_forms",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("owner_id", sa.Integer(), nullable=False),
        sa.Column("public_id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("title", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("redirect_url", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
        sa.Column("created_at", mailctl.db.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["owner_id"],
            ["users.id"],
            name=op.f("fk_signup_forms_owner_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_signup_forms")),
        sa.UniqueConstraint("public_id", name=op.f("uq_signup_forms_public_id")),
    )
    with op.batch_alter_table("signup_forms", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_signup_forms_owner_id"), ["owner_id"], unique=False)

    op.create_table(
        "suppressions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("owner_id", sa.Integer(), nullable=False),
        sa.Column("email_key", sqlmodel.sql.sqltypes.AutoString(length=254), nullable=True),
        sa.Column("email_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("reason", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("note", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
        sa.Column("created_at", mailctl.db.UTCDateTime(), nullable=False),
        sa.Column("removed_at", mailctl.db.UTCDateTime(), nullable=True),
        sa.Column("removed_note", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
        sa.CheckConstraint(
            "reason IN ('unsubscribed', 'bounce', 'complaint', 'manual')",
            name="ck_suppressions_reason",
        ),
        sa.ForeignKeyConstraint(
            ["owner_id"],
            ["users.id"],
            name=op.f("fk_suppressions_owner_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_suppressions")),
        sa.UniqueConstraint("owner_id", "email_hash", name="uq_suppressions_owner_hash"),
    )
    with op.batch_alter_table("suppressions", schema=None) as batch_op:
        batch_op.create_index(
            "ix_suppressions_owner_email", ["owner_id", "email_key"], unique=False
        )

    op.create_table(
        "tags",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("owner_id", sa.Integer(), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("name_key", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("is_public", sa.Boolean(), nullable=False),
        sa.Column("created_at", mailctl.db.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["owner_id"], ["users.id"], name=op.f("fk_tags_owner_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tags")),
        sa.UniqueConstraint("owner_id", "name_key", name="uq_tags_owner_name"),
    )
    with op.batch_alter_table("tags", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_tags_owner_id"), ["owner_id"], unique=False)

    op.create_table(
        "client_tags",
        sa.Column("client_id", sa.Integer(), nullable=False),
        sa.Column("tag_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["client_id"],
            ["clients.id"],
            name=op.f("fk_client_tags_client_id_clients"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tag_id"], ["tags.id"], name=op.f("fk_client_tags_tag_id_tags"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("client_id", "tag_id", name=op.f("pk_client_tags")),
    )
    with op.batch_alter_table("client_tags", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_client_tags_tag_id"), ["tag_id"], unique=False)

    op.create_table(
        "consents",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("client_id", sa.Integer(), nullable=False),
        sa.Column("form_id", sa.Integer(), nullable=True),
        sa.Column("ip", sqlmodel.sql.sqltypes.AutoString(length=45), nullable=False),
        sa.Column("requested_at", mailctl.db.UTCDateTime(), nullable=False),
        sa.Column("confirmed_at", mailctl.db.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["client_id"],
            ["clients.id"],
            name=op.f("fk_consents_client_id_clients"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["form_id"],
            ["signup_forms.id"],
            name=op.f("fk_consents_form_id_signup_forms"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_consents")),
    )
    with op.batch_alter_table("consents", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_consents_client_id"), ["client_id"], unique=False)

    op.create_table(
        "signup_form_tags",
        sa.Column("form_id", sa.Integer(), nullable=False),
        sa.Column("tag_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["form_id"],
            ["signup_forms.id"],
            name=op.f("fk_signup_form_tags_form_id_signup_forms"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tag_id"],
            ["tags.id"],
            name=op.f("fk_signup_form_tags_tag_id_tags"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("form_id", "tag_id", name=op.f("pk_signup_form_tags")),
    )
    with op.batch_alter_table("signup_form_tags", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_signup_form_tags_tag_id"), ["tag_id"], unique=False)

    op.create_table(
        "mailing_tags",
        sa.Column("mailing_id", sa.Integer(), nullable=False),
        sa.Column("tag_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["mailing_id"],
            ["mailings.id"],
            name=op.f("fk_mailing_tags_mailing_id_mailings"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tag_id"], ["tags.id"], name=op.f("fk_mailing_tags_tag_id_tags"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("mailing_id", "tag_id", name=op.f("pk_mailing_tags")),
    )
    with op.batch_alter_table("mailing_tags", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_mailing_tags_tag_id"), ["tag_id"], unique=False)

    with op.batch_alter_table("clients", schema=None) as batch_op:
        batch_op.add_column(sa.Column("attrs", sa.JSON(), server_default="{}", nullable=False))

    with op.batch_alter_table("mailings", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "audience",
                sqlmodel.sql.sqltypes.AutoString(length=8),
                server_default="clients",
                nullable=False,
            )
        )
        # Autogenerate does not see check constraints; the model's, written by hand.
        batch_op.create_check_constraint(
            "ck_mailings_audience", "audience IN ('clients', 'tags', 'all')"
        )


def downgrade() -> None:
    with op.batch_alter_table("mailings", schema=None) as batch_op:
        batch_op.drop_constraint("ck_mailings_audience", type_="check")
        batch_op.drop_column("audience")

    with op.batch_alter_table("clients", schema=None) as batch_op:
        batch_op.drop_column("attrs")

    with op.batch_alter_table("mailing_tags", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_mailing_tags_tag_id"))

    op.drop_table("mailing_tags")
    with op.batch_alter_table("signup_form_tags", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_signup_form_tags_tag_id"))

    op.drop_table("signup_form_tags")
    with op.batch_alter_table("consents", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_consents_client_id"))

    op.drop_table("consents")
    with op.batch_alter_table("client_tags", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_client_tags_tag_id"))

    op.drop_table("client_tags")
    with op.batch_alter_table("tags", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_tags_owner_id"))

    op.drop_table("tags")
    with op.batch_alter_table("suppressions", schema=None) as batch_op:
        batch_op.drop_index("ix_suppressions_owner_email")

    op.drop_table("suppressions")
    with op.batch_alter_table("signup_forms", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_signup_forms_owner_id"))

    op.drop_table("signup_forms")
    with op.batch_alter_table("client_fields", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_client_fields_owner_id"))

    op.drop_table("client_fields")
    with op.batch_alter_table("spent_tokens", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_spent_tokens_spent_at"))

    op.drop_table("spent_tokens")
