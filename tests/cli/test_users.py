from __future__ import annotations

from tests.support.cli import USER1, as_json, fails, new_id, ok

PW = "a long password\n"


def test_add_list_show(cli) -> None:
    uid = new_id(
        cli(
            "user",
            "add",
            "Bob@Example.com",
            "--name",
            "Bob",
            "--role",
            "manager",
            "--password-stdin",
            input=PW,
        )
    )
    rows = as_json(cli("user", "list", "--json"))
    assert [(r["email"], r["role"]) for r in rows] == [
        ("admin@example.com", "admin"),
        ("bob@example.com", "manager"),
    ]
    for row in rows:
        assert "password_hash" not in row and "session_version" not in row
    table = ok(cli("user", "list")).stdout
    assert table.splitlines()[0].startswith("id\temail") and "argon2" not in table
    assert [r["email"] for r in as_json(cli("user", "list", "--role", "manager", "--json"))] == [
        "bob@example.com"
    ]
    assert [r["email"] for r in as_json(cli("user", "list", "--search", "BOB", "--json"))] == [
        "bob@example.com"
    ]
    shown = as_json(cli("user", "show", "bob@example.com", "--json"))
    assert shown["id"] == uid and shown["is_verified"] is True and "password_hash" not in shown
    text = ok(cli("user", "show", uid)).stdout
    assert "bob@example.com" in text and "argon2" not in text


def test_unverified_then_verify(cli) -> None:
    uid = new_id(
        cli("user", "add", "eve@example.com", "--unverified", "--password-stdin", input=PW)
    )
    assert as_json(cli("user", "show", uid, "--json"))["is_verified"] is False
    ok(cli("user", "verify", "eve@example.com"))
    assert as_json(cli("user", "show", uid, "--json"))["is_verified"] is True


def test_edit_block_unblock_role_rm(cli, users) -> None:
    ok(cli("user", "edit", USER1, "--name", "User One", "--email", "one@example.com"))
    shown = as_json(cli("user", "show", "one@example.com", "--json"))
    assert shown["full_name"] == "User One"
    ok(cli("user", "block", "one@example.com"))
    assert as_json(cli("user", "show", shown["id"], "--json"))["is_active"] is False
    fails(cli("client", "list", as_="one@example.com"), "is blocked")
    ok(cli("user", "unblock", "one@example.com"))
    ok(cli("client", "list", as_="one@example.com"))
    ok(cli("user", "set-role", shown["id"], "editor"))
    assert as_json(cli("user", "show", shown["id"], "--json"))["role"] == "editor"
    ok(cli("user", "rm", "one@example.com"))
    fails(cli("user", "show", "one@example.com"), "not found")


def test_user_with_data_can_be_removed(cli, setup1) -> None:
    ok(cli("user", "rm", USER1))
    assert as_json(cli("mailing", "list", "--json")) == []
    assert as_json(cli("client", "list", "--json")) == []


def test_passwd_own_and_admin(cli, users) -> None:
    ok(cli("user", "passwd", "--password-stdin", input="new admin password\n"))
    ok(cli("user", "passwd", "--password-stdin", input="user one new password\n", as_=USER1))
    ok(cli("user", "passwd", USER1, "--password-stdin", input="reset by the admin\n"))
    fails(
        cli("user", "passwd", "--password-stdin", input="short\n", as_=USER1),
        "at least 8 characters",
    )
    fails(
        cli(
            "user",
            "passwd",
            "admin@example.com",
            "--password-stdin",
            input="x" * 10 + "\n",
            as_=USER1,
        ),
        "a user cannot see other users",
    )


def test_manager_lists_and_blocks_but_cannot_create(cli, users, snapshot) -> None:
    manager = "manager@example.com"
    assert len(as_json(cli("user", "list", "--json", as_=manager))) == 6
    ok(cli("user", "block", USER1, as_=manager))
    before = snapshot()
    fails(
        cli("user", "add", "x@example.com", "--password-stdin", input=PW, as_=manager),
        "a manager cannot create users",
    )
    fails(
        cli("user", "block", "admin@example.com", as_=manager), "only an admin can block an admin"
    )
    fails(cli("user", "set-role", USER1, "admin", as_=manager), "a manager cannot change roles")
    fails(cli("user", "list", as_="user2@example.com"), "a user cannot list users")
    assert snapshot() == before


def test_bad_user_input(cli, users, snapshot) -> None:
    before = snapshot()
    fails(cli("user", "add", "not-an-email", "--password-stdin", input=PW), "invalid email")
    fails(cli("user", "add", "USER1@example.com", "--password-stdin", input=PW), "already exists")
    fails(
        cli("user", "add", "z@example.com", "--role", "boss", "--password-stdin", input=PW),
        "unknown role",
    )
    fails(
        cli("user", "add", "z@example.com", "--password-stdin", input="\n"), "the password is empty"
    )
    fails(cli("user", "add", "z@example.com"), "use --password-stdin")
    fails(cli("user", "show", "999"), "user 999 not found")
    fails(cli("user", "rm", "admin@example.com"), "you cannot delete yourself")
    fails(cli("user", "set-role", "admin@example.com", "user"), "last active admin")
    assert snapshot() == before
