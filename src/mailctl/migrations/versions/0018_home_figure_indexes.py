"""data at scale: indexes for the home figures

The figure "unique client emails across mailings" is one pass over the clients that are in
some mailing's audience (services/audiences.py in_any_audience), counted by distinct
email_key. Measured with EXPLAIN QUERY PLAN on SQLite at 100,000 clients / 10,000 mailings:

- ix_clients_email_key (email_key, owner_id): the count reads this index in email_key order
  and tests owner_id and the rowid in it ("SCAN clients USING COVERING INDEX"), instead of
  the table plus a temporary B-tree for count(DISTINCT): about half the time.
- ix_mailings_audience_owner (audience, owner_id): each kind of audience finds its mailings,
  and the "all clients" kind their owners, in the index alone ("SEARCH mailings USING
  COVERING INDEX ... (audience=?)").

On PostgreSQL (EXPLAIN ANALYZE) the audience index serves the same subqueries (an index-only
scan); the clients are read by a sequential scan either way when most of them qualify.
Indexes, not maintained counters: the audiences of tags and "all clients" are worked out when
a run starts, so a counter would have to follow every client, tag and mailing change.

Revision ID: 0018
Revises: 0016
Create Date: 2026-12-01 20:30:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0018"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("clients") as batch:
        batch.create_index("ix_clients_email_key", ["email_key", "owner_id"], unique=False)
    with op.batch_alter_table("mailings") as batch:
        batch.create_index("ix_mailings_audience_owner", ["audience", "owner_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("mailings") as batch:
        batch.drop_index("ix_mailings_audience_owner")
    with op.batch_alter_table("clients") as batch:
        batch.drop_index("ix_clients_email_key")
