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

On PostgreSQL, changes of reach are serialised by one lock, the row of owner 0 in
reach_counts, and each recomputes from what the previous one committed (a plpgsql statement
takes a new snapshot under READ COMMITTED). The lock is taken by a BEFORE trigger of every
statement that writes clients, their tags, the mailings' links and tags, or adds or deletes a
mailing, before the statement locks any row of its own. Taken later (in the AFTER trigger), it
deadlocked: a transaction that had updated a client (its custom fields) and then changed its
tags waited for the lock, while the holder's recompute of the owner's clients waited for that
client's row. An UPDATE of a mailing (the senders make many) takes it only when the audience
changed, in its AFTER trigger: it locks no row the holder of the lock may wait for. The cost:
writes of clients and audiences of all owners take turns, each for its transaction.
On SQLite a write transaction is alone anyway.

A later migration that rebuilds one of these tables on SQLite (batch_alter_table with a copy)
drops its triggers; tests/cli/test_figures.py checks the figures against an exact count.

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


# (name, table, event, condition, key column, statements). SQLite runs each per row, when the
# condition holds; statements of a trigger with a key column find the clients concerned by
# that column's value (`k` is "= NEW.client_id"). PostgreSQL runs those per statement (an
# import of a thousand clients is one call), `k` being "IN (the changed rows' keys)", and has
# set-based versions of the others (see _postgresql).
Trigger = tuple[str, str, str, str, str | None, Callable[[str], list[str]]]
ALL_GONE = (
    "NOT EXISTS (SELECT 1 FROM mailings o WHERE o.owner_id = clients.owner_id"
    " AND o.audience = 'all')"
)
TRIGGERS: list[Trigger] = [
    ("reach_client_added", "clients", "INSERT", "", "id", lambda k: [grow(f"id {k}")]),
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
    ("reach_tagged", "client_tags", "INSERT", "", "client_id", lambda k: [grow(f"id {k}")]),
    ("reach_untagged", "client_tags", "DELETE", "", "client_id", lambda k: [shrink(f"id {k}")]),
    ("reach_linked", "mailing_clients", "INSERT", "", "client_id", lambda k: [grow(f"id {k}")]),
    ("reach_unlinked", "mailing_clients", "DELETE", "", "client_id", lambda k: [shrink(f"id {k}")]),
    (
        "reach_tag_addressed",
        "mailing_tags",
        "INSERT",
        "",
        "tag_id",
        lambda k: [grow(f"id IN (SELECT client_id FROM client_tags WHERE tag_id {k})")],
    ),
    (
        "reach_tag_unaddressed",
        "mailing_tags",
        "DELETE",
        "",
        "tag_id",
        lambda k: [shrink(f"id IN (SELECT client_id FROM client_tags WHERE tag_id {k})")],
    ),
    (
        "reach_mailing_added",
        "mailings",
        "INSERT",
        "NEW.audience = 'all'",
        "owner_id",
        lambda k: [f"UPDATE clients SET reached = TRUE WHERE owner_id {k} AND NOT reached"],
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
        "owner_id",
        lambda k: [shrink(f"owner_id {k} AND {ALL_GONE}")],
    ),
]

WATCHED = {
    # SQLite's UPDATE triggers fire only on the columns that matter.
    "clients": "reached, email_key, owner_id",
    "mailings": "audience, owner_id",
}


def _row(event: str) -> str:
    return "NEW" if event == "INSERT" else "OLD"


def _sqlite(trigger: Trigger) -> list[str]:
    name, table, event, when, column, body = trigger
    of = f" OF {WATCHED[table]}" if event == "UPDATE" else ""
    condition = f" WHEN {when}" if when else ""
    statements = "".join(f"    {s};\n" for s in body(f"= {_row(event)}.{column}"))
    return [
        f"CREATE TRIGGER {name} AFTER {event}{of} ON {table} FOR EACH ROW{condition}\n"
        f"BEGIN\n{statements}END"
    ]


# PostgreSQL: the rows a statement changed, in its transition tables `before` and `after`.
_MOVED = {
    "UPDATE": "SELECT owner_id, email_key, -1 AS n FROM before WHERE reached"
    " UNION ALL SELECT owner_id, email_key, 1 AS n FROM after WHERE reached",
    "DELETE": "SELECT owner_id, email_key, -1 AS n FROM before WHERE reached",
}
_PAIRS = "before b JOIN after a ON a.id = b.id"


def _counters(event: str) -> list[str]:
    """The counters moved by the reached clients a statement changed, added or removed."""
    moved = f"WITH moved AS ({_MOVED[event]}) "
    by_email = "SELECT email_key, sum(n) AS n FROM moved GROUP BY email_key HAVING sum(n) <> 0"
    return [
        # Before reach_emails moves: addresses that appear (from 0) or disappear (to 0).
        moved + "UPDATE reach_counts SET clients = clients + (SELECT coalesce(sum(CASE"
        " WHEN coalesce(e.clients, 0) = 0 AND d.n > 0 THEN 1"
        " WHEN e.clients > 0 AND e.clients + d.n <= 0 THEN -1 ELSE 0 END), 0)"
        f" FROM ({by_email}) d LEFT JOIN reach_emails e ON e.email_key = d.email_key)"
        " WHERE owner_id = 0",
        moved + f"INSERT INTO reach_emails (email_key, clients) {by_email}"
        " ON CONFLICT (email_key) DO UPDATE SET clients = reach_emails.clients + excluded.clients",
        "DELETE FROM reach_emails WHERE clients <= 0"
        " AND email_key IN (SELECT email_key FROM before)",
        moved + "INSERT INTO reach_counts (owner_id, clients)"
        " SELECT owner_id, sum(n) FROM moved GROUP BY owner_id HAVING sum(n) <> 0"
        " ON CONFLICT (owner_id) DO UPDATE SET clients = reach_counts.clients + excluded.clients",
    ]


def _postgresql(trigger: Trigger) -> list[str]:
    """One call per statement, with the statement's rows in transition tables, where SQLite
    has one per row. Each call that has something to do takes the lock of owner 0's counters
    first, and runs its statements with EXECUTE, so each is planned for the tables' sizes
    now (a plan cached while the tables were small would scan them: quadratic imports)."""
    name, table, event, when, column, body = trigger
    if column is not None:
        which = f" WHERE {when.replace(f'{_row(event)}.', '')}" if when else ""
        tables = f"{_row(event)} TABLE AS changed"
        anything = f"SELECT 1 FROM changed{which}"
        statements = body(f"IN (SELECT {column} FROM changed{which})")
    elif table == "clients":
        tables = "OLD TABLE AS before" + (" NEW TABLE AS after" if event == "UPDATE" else "")
        anything = (
            f"SELECT 1 FROM {_PAIRS} WHERE a.reached <> b.reached OR ((a.reached OR b.reached)"
            " AND (a.email_key <> b.email_key OR a.owner_id <> b.owner_id))"
            if event == "UPDATE"
            else "SELECT 1 FROM before WHERE reached"
        )
        statements = _counters(event)
    else:  # a mailing's audience or owner changed
        tables = "OLD TABLE AS before NEW TABLE AS after"
        changed = f"FROM {_PAIRS} WHERE a.audience <> b.audience OR a.owner_id <> b.owner_id"
        anything = f"SELECT 1 {changed}"
        statements = [
            shrink(f"owner_id IN (SELECT b.owner_id {changed})"),
            grow(f"owner_id IN (SELECT a.owner_id {changed})"),
        ]
    code = "".join(f"        EXECUTE $q${s}$q$;\n" for s in statements)
    return [
        f"CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$\nBEGIN\n"
        f"    IF EXISTS ({anything}) THEN\n"
        f"        {LOCK};\n"
        f"{code}    END IF;\n    RETURN NULL;\nEND\n$$",
        f"CREATE TRIGGER {name} AFTER {event} ON {table} REFERENCING {tables}"
        f" FOR EACH STATEMENT EXECUTE FUNCTION {name}()",
    ]


# PostgreSQL: the statements that take the lock before they lock rows (see the docstring).
LOCKED_FIRST = {
    "clients": "INSERT OR UPDATE OR DELETE",
    "client_tags": "INSERT OR DELETE",
    "mailing_clients": "INSERT OR DELETE",
    "mailing_tags": "INSERT OR DELETE",
    "mailings": "INSERT OR DELETE",
}
LOCK = "PERFORM 1 FROM reach_counts WHERE owner_id = 0 FOR UPDATE"


def _postgresql_locks() -> list[str]:
    made = [
        "CREATE FUNCTION reach_lock() RETURNS trigger LANGUAGE plpgsql AS $$\nBEGIN\n"
        f"    {LOCK};\n    RETURN NULL;\nEND\n$$"
    ]
    for table, events in LOCKED_FIRST.items():
        made.append(
            f"CREATE TRIGGER reach_lock BEFORE {events} ON {table}"
            " FOR EACH STATEMENT EXECUTE FUNCTION reach_lock()"
        )
    return made


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
    postgresql = op.get_bind().dialect.name == "postgresql"
    if postgresql:  # no link may come in between the count and the triggers
        op.execute(
            "LOCK TABLE clients, client_tags, mailings, mailing_clients, mailing_tags"
            " IN SHARE ROW EXCLUSIVE MODE"
        )
    # What is there now, counted once; the triggers keep it from here on.
    op.execute(f"UPDATE clients SET reached = TRUE WHERE {REACHED}")
    op.execute(
        "INSERT INTO reach_emails (email_key, clients)"
        " SELECT email_key, count(*) FROM clients WHERE reached GROUP BY email_key"
    )
    op.execute(
        "INSERT INTO reach_counts (owner_id, clients)"
        " SELECT owner_id, count(*) FROM clients WHERE reached GROUP BY owner_id"
    )
    op.execute("INSERT INTO reach_counts (owner_id, clients) SELECT 0, count(*) FROM reach_emails")
    make = _postgresql if postgresql else _sqlite
    for trigger in TRIGGERS:
        for statement in make(trigger):
            op.execute(statement)
    if postgresql:
        for statement in _postgresql_locks():
            op.execute(statement)


def downgrade() -> None:
    postgresql = op.get_bind().dialect.name == "postgresql"
    if postgresql:
        for table in LOCKED_FIRST:
            op.execute(f"DROP TRIGGER reach_lock ON {table}")
        op.execute("DROP FUNCTION reach_lock()")
    for name, table, *_ in TRIGGERS:
        op.execute(f"DROP TRIGGER {name}" + (f" ON {table}" if postgresql else ""))
        if postgresql:
            op.execute(f"DROP FUNCTION {name}()")
    op.drop_table("reach_counts")
    op.drop_table("reach_emails")
    op.drop_index("ix_clients_owner_reached", table_name="clients")
    # ALTER TABLE ... DROP COLUMN on both (SQLite 3.35+): a batch copy of clients on SQLite
    # would drop the old table, and its foreign keys' cascades would empty the tag links.
    op.execute("ALTER TABLE clients DROP COLUMN reached")
    with op.batch_alter_table("mailings") as batch:
        batch.drop_index("ix_mailings_audience_owner")
    with op.batch_alter_table("clients") as batch:
        batch.drop_index("ix_clients_email_key")
