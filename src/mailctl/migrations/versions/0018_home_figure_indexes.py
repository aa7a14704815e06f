"""data at scale: the home figures kept by the database, and indexes for them

Total and active mailings are counts of the mailings table through its indexes. The third
figure, "unique client emails across mailings", was one pass over every client in some
audience (counted by distinct address), so it grew with the clients: 8.5x for 10x of them,
18x (SQLite) and 36x (PostgreSQL) for 10x the clients and 100x the mailings. It is now kept
up to date by triggers, so reading it is one row:

- clients.reached: the client is in the audience of some mailing of its owner (all clients,
  a tag of the client's, or the client linked).
- reach_emails: per address, how many reached clients (of any owner) have it.
- reach_counts: per owner, that owner's reached clients (addresses are unique per owner);
  owner 0: the addresses in reach_emails, the figure across everyone.

Triggers rather than calls in the services: a client, a tag link, a mailing's link or tag, a
mailing's audience change, and every cascade of a deleted user, tag or mailing move them,
whichever code path does it. Each trigger that can change who is reached recomputes `reached`
only for the clients it touches (`reached` is the same expression as services/audiences.py
in_any_audience); the update of `reached` (or of an address) moves the counters.

On PostgreSQL, every trigger first locks the counters' row of owner 0, so changes of reach are
serialised and each one recomputes from what the previous one committed (a plpgsql statement
takes a new snapshot under READ COMMITTED); the lock is taken first every time, so these
triggers cannot deadlock on one another. On SQLite a write transaction is alone anyway.

A later migration that rebuilds one of these tables on SQLite (batch_alter_table with a copy)
drops its triggers; tests/services/test_figures.py checks the figures against an exact count.

The indexes: ix_mailings_audience_owner (audience, owner_id) finds each kind of audience and
the owners of "all clients" ones in the index alone; ix_clients_owner_reached (owner_id,
reached) finds the owner's unreached clients when an "all clients" mailing is added;
ix_clients_email_key (email_key, owner_id) serves the exact count (figures.count_exactly).

Revision ID: 0018
Revises: 0016
Create Date: 2026-12-01 20:30:00
"""

from collections.abc import Callable, Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0018"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

REACHED = """(
    EXISTS (SELECT 1 FROM mailings m
            WHERE m.owner_id = clients.owner_id AND m.audience = 'all')
    OR EXISTS (SELECT 1 FROM mailing_clients mc JOIN mailings m ON m.id = mc.mailing_id
               WHERE mc.client_id = clients.id AND m.audience = 'clients')
    OR EXISTS (SELECT 1 FROM client_tags ct
               JOIN mailing_tags mt ON mt.tag_id = ct.tag_id
               JOIN mailings m ON m.id = mt.mailing_id
               WHERE ct.client_id = clients.id AND m.audience = 'tags'))"""


def grow(where: str) -> str:
    """Clients matching `where` that a change may have brought into an audience."""
    return f"UPDATE clients SET reached = TRUE WHERE {where} AND NOT reached AND {REACHED}"


def shrink(where: str) -> str:
    """Clients matching `where` that a change may have taken out of every audience."""
    return f"UPDATE clients SET reached = FALSE WHERE {where} AND reached AND NOT {REACHED}"


def take_off(row: str) -> list[str]:
    """The counters without `row` (OLD), when it was reached."""
    return [
        f"UPDATE reach_emails SET clients = clients - 1"
        f" WHERE {row}.reached AND email_key = {row}.email_key",
        f"UPDATE reach_counts SET clients = clients - 1 WHERE {row}.reached"
        f" AND (owner_id = {row}.owner_id OR (owner_id = 0 AND NOT EXISTS ("
        f"SELECT 1 FROM reach_emails WHERE email_key = {row}.email_key AND clients > 0)))",
        f"DELETE FROM reach_emails"
        f" WHERE {row}.reached AND email_key = {row}.email_key AND clients <= 0",
    ]


def put_on(row: str) -> list[str]:
    """The counters with `row` (NEW), when it is reached."""
    return [
        f"INSERT INTO reach_emails (email_key, clients) SELECT {row}.email_key, 1"
        f" WHERE {row}.reached"
        f" ON CONFLICT (email_key) DO UPDATE SET clients = reach_emails.clients + 1",
        f"INSERT INTO reach_counts (owner_id, clients) SELECT {row}.owner_id, 1"
        f" WHERE {row}.reached"
        f" ON CONFLICT (owner_id) DO UPDATE SET clients = reach_counts.clients + 1",
        f"UPDATE reach_counts SET clients = clients + 1 WHERE {row}.reached AND owner_id = 0"
        f" AND (SELECT clients FROM reach_emails WHERE email_key = {row}.email_key) = 1",
    ]


# (name, table, event, condition, column, statements). A trigger with a key `column` acts on
# the clients found by that column of the changed row; its statements take the key's value
# ("NEW.client_id" in a trigger per row; on PostgreSQL, one trigger per statement loops over
# the distinct keys of its transition table, `k`). One without a column runs per row on both.
Trigger = tuple[str, str, str, str, str | None, Callable[[str], list[str]]]
TRIGGERS: list[Trigger] = [
    ("reach_client_added", "clients", "INSERT", "", "id", lambda k: [grow(f"id = {k}")]),
    (
        "reach_client_changed",
        "clients",
        "UPDATE",
        "OLD.reached <> NEW.reached OR ((OLD.reached OR NEW.reached)"
        " AND (OLD.email_key <> NEW.email_key OR OLD.owner_id <> NEW.owner_id))",
        None,
        lambda _: take_off("OLD") + put_on("NEW"),
    ),
    ("reach_client_removed", "clients", "DELETE", "OLD.reached", None, lambda _: take_off("OLD")),
    ("reach_tagged", "client_tags", "INSERT", "", "client_id", lambda k: [grow(f"id = {k}")]),
    ("reach_untagged", "client_tags", "DELETE", "", "client_id", lambda k: [shrink(f"id = {k}")]),
    ("reach_linked", "mailing_clients", "INSERT", "", "client_id", lambda k: [grow(f"id = {k}")]),
    (
        "reach_unlinked",
        "mailing_clients",
        "DELETE",
        "",
        "client_id",
        lambda k: [shrink(f"id = {k}")],
    ),
    (
        "reach_tag_addressed",
        "mailing_tags",
        "INSERT",
        "",
        "tag_id",
        lambda k: [grow(f"id IN (SELECT client_id FROM client_tags WHERE tag_id = {k})")],
    ),
    (
        "reach_tag_unaddressed",
        "mailing_tags",
        "DELETE",
        "",
        "tag_id",
        lambda k: [shrink(f"id IN (SELECT client_id FROM client_tags WHERE tag_id = {k})")],
    ),
    (
        "reach_mailing_added",
        "mailings",
        "INSERT",
        "NEW.audience = 'all'",
        "owner_id",
        lambda k: [f"UPDATE clients SET reached = TRUE WHERE owner_id = {k} AND NOT reached"],
    ),
    (
        "reach_mailing_readdressed",
        "mailings",
        "UPDATE",
        "OLD.audience <> NEW.audience OR OLD.owner_id <> NEW.owner_id",
        None,
        lambda _: [shrink("owner_id = OLD.owner_id"), grow("owner_id = NEW.owner_id")],
    ),
    (
        "reach_mailing_removed",
        "mailings",
        "DELETE",
        # Another kind: its links and tags go by cascade, and their triggers recompute.
        "OLD.audience = 'all'",
        None,
        lambda _: [
            shrink(
                "owner_id = OLD.owner_id AND NOT EXISTS (SELECT 1 FROM mailings o"
                " WHERE o.owner_id = OLD.owner_id AND o.audience = 'all')"
            )
        ],
    ),
]

WATCHED = {
    # UPDATE triggers fire only on the columns that matter.
    "clients": "reached, email_key, owner_id",
    "mailings": "audience, owner_id",
}


def _row(event: str) -> str:
    return "NEW" if event == "INSERT" else "OLD"


def _sqlite(trigger: Trigger) -> list[str]:
    name, table, event, when, column, body = trigger
    of = f" OF {WATCHED[table]}" if event == "UPDATE" else ""
    condition = f" WHEN {when}" if when else ""
    statements = "".join(f"    {s};\n" for s in body(f"{_row(event)}.{column}"))
    return [
        f"CREATE TRIGGER {name} AFTER {event}{of} ON {table} FOR EACH ROW{condition}\n"
        f"BEGIN\n{statements}END"
    ]


def _postgresql(trigger: Trigger) -> list[str]:
    """Per statement where the changed rows' keys are enough (an import of a thousand
    clients is one call, each key an index lookup), per row where a row's old and new values
    matter. Every one takes the lock of owner 0's counters first."""
    name, table, event, when, column, body = trigger
    lock = "    PERFORM 1 FROM reach_counts WHERE owner_id = 0 FOR UPDATE;\n"
    if column is None:
        of = f" OF {WATCHED[table]}" if event == "UPDATE" else ""
        each = f"FOR EACH ROW WHEN ({when})"
        declare, code = "", lock + "".join(f"    {s};\n" for s in body(""))
    else:
        of = ""
        each = f"REFERENCING {_row(event)} TABLE AS changed FOR EACH STATEMENT"
        which = f" WHERE {when.replace(f'{_row(event)}.', '')}" if when else ""
        declare = "DECLARE k integer;\n"
        code = (
            lock
            + f"    FOR k IN SELECT DISTINCT {column} FROM changed{which} LOOP\n"
            + "".join(f"        {s};\n" for s in body("k"))
            + "    END LOOP;\n"
        )
    return [
        f"CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$\n{declare}BEGIN\n"
        f"{code}    RETURN NULL;\nEND\n$$",
        f"CREATE TRIGGER {name} AFTER {event}{of} ON {table} {each} EXECUTE FUNCTION {name}()",
    ]


def upgrade() -> None:
    with op.batch_alter_table("clients") as batch:
        batch.create_index("ix_clients_email_key", ["email_key", "owner_id"], unique=False)
    with op.batch_alter_table("mailings") as batch:
        batch.create_index("ix_mailings_audience_owner", ["audience", "owner_id"], unique=False)
    op.add_column(
        "clients", sa.Column("reached", sa.Boolean(), nullable=False, server_default=sa.false())
    )
    op.create_index("ix_clients_owner_reached", "clients", ["owner_id", "reached"])
    op.create_table(
        "reach_emails",
        sa.Column("email_key", sa.String(length=254), nullable=False),
        sa.Column("clients", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("email_key"),
    )
    op.create_table(
        "reach_counts",
        sa.Column("owner_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("clients", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("owner_id"),
    )
    # What is there now, counted once; the triggers keep it from here on.
    op.execute(f"UPDATE clients SET reached = {REACHED}")
    op.execute(
        "INSERT INTO reach_emails (email_key, clients)"
        " SELECT email_key, count(*) FROM clients WHERE reached GROUP BY email_key"
    )
    op.execute(
        "INSERT INTO reach_counts (owner_id, clients)"
        " SELECT owner_id, count(*) FROM clients WHERE reached GROUP BY owner_id"
    )
    op.execute("INSERT INTO reach_counts (owner_id, clients) SELECT 0, count(*) FROM reach_emails")
    make = _postgresql if op.get_bind().dialect.name == "postgresql" else _sqlite
    for trigger in TRIGGERS:
        for statement in make(trigger):
            op.execute(statement)


def downgrade() -> None:
    postgresql = op.get_bind().dialect.name == "postgresql"
    for name, table, *_ in TRIGGERS:
        op.execute(f"DROP TRIGGER {name}" + (f" ON {table}" if postgresql else ""))
        if postgresql:
            op.execute(f"DROP FUNCTION {name}()")
    op.drop_table("reach_counts")
    op.drop_table("reach_emails")
    op.drop_index("ix_clients_owner_reached", table_name="clients")
    with op.batch_alter_table("clients") as batch:
        batch.drop_column("reached")
    with op.batch_alter_table("mailings") as batch:
        batch.drop_index("ix_mailings_audience_owner")
    with op.batch_alter_table("clients") as batch:
        batch.drop_index("ix_clients_email_key")
