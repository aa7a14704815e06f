"""Refused input: one line on stderr, exit 1 (2 for usage), and the database unchanged."""

from __future__ import annotations

import pytest

from tests.support.cli import FUTURE, USER1, USER2, fails, new_id, ok


@pytest.fixture
def before(setup1, snapshot):  # type: ignore[no-untyped-def]
    state = snapshot()
    yield state
    assert snapshot() == state, "a refused command changed the database"


def test_malformed_email(cli, before) -> None:
    fails(
        cli("client", "add", "ann(at)example.com", as_=USER1), "invalid email 'ann(at)example.com'"
    )
    fails(cli("client", "add", "ann@", as_=USER1), "invalid email")


def test_duplicate_client_ignores_case(cli, before) -> None:
    fails(
        cli("client", "add", "ANN@example.COM", as_=USER1), "client ANN@example.com already exists"
    )


def test_same_email_for_another_user_is_fine(cli, setup1) -> None:
    ok(cli("client", "add", "ann@example.com", as_=USER2))


@pytest.mark.parametrize(
    "argv",
    [
        ("client", "show", "999"),
        ("client", "edit", "999", "--name", "X"),
        ("client", "rm", "999"),
        ("message", "show", "999"),
        ("message", "rm", "999"),
        ("mailing", "show", "999"),
        ("mailing", "disable", "999"),
        ("mailing", "rm", "999"),
    ],
)
def test_unknown_id(cli, before, argv) -> None:
    fails(cli(*argv, as_=USER1), "999 not found")


def test_another_users_objects_are_not_found(cli, setup1, before) -> None:
    c1, m, ml = setup1["clients"][0], setup1["message"], setup1["mailing"]
    for argv, noun in [
        (("client", "show", c1), "client"),
        (("client", "edit", c1, "--name", "Mine now"), "client"),
        (("client", "rm", c1), "client"),
        (("message", "show", m), "message"),
        (("message", "edit", m, "--subject", "X"), "message"),
        (("message", "rm", m), "message"),
        (("mailing", "show", ml), "mailing"),
        (("mailing", "edit", ml, "--every", "day"), "mailing"),
        (("mailing", "disable", ml), "mailing"),
        (("mailing", "rm", ml), "mailing"),
    ]:
        result = fails(cli(*argv, as_=USER2), f"{noun} {argv[2]} not found")
        assert "forbidden" not in result.stderr.lower()


def test_mailing_with_another_users_client_or_message(cli, setup1, before) -> None:
    own = new_id(cli("message", "add", "--subject", "S", "--body", "B", as_=USER2))
    fails(
        cli(
            "mailing",
            "add",
            "--message",
            own,
            "--client",
            setup1["clients"][0],
            "--start",
            FUTURE,
            "--every",
            "once",
            as_=USER2,
        ),
        f"client {setup1['clients'][0]} not found",
    )
    cli("message", "rm", own, as_=USER2)
    fails(
        cli(
            "mailing",
            "add",
            "--message",
            setup1["message"],
            "--all-clients",
            "--start",
            FUTURE,
            "--every",
            "once",
            as_=USER2,
        ),
        f"message {setup1['message']} not found",
    )
    fails(cli("message", "preview", setup1["message"], "--client", 1, as_=USER2), "not found")


def test_end_before_start(cli, setup1, before) -> None:
    fails(
        cli(
            "mailing",
            "add",
            "--message",
            setup1["message"],
            "--all-clients",
            "--start",
            FUTURE,
            "--end",
            "2030-05-01 09:00",
            "--every",
            "day",
            as_=USER1,
        ),
        "the end must be after the start",
    )
    fails(
        cli("mailing", "edit", setup1["mailing"], "--end", "2030-06-01 08:00", as_=USER1),
        "the end must be after the start",
    )


def test_unknown_periodicity(cli, setup1, before) -> None:
    fails(
        cli(
            "mailing",
            "add",
            "--message",
            setup1["message"],
            "--all-clients",
            "--start",
            FUTURE,
            "--every",
            "fortnight",
            as_=USER1,
        ),
        "unknown periodicity 'fortnight': use once, day, week or month",
    )
    fails(
        cli("mailing", "edit", setup1["mailing"], "--every", "hourly", as_=USER1),
        "unknown periodicity",
    )


def test_bad_times(cli, setup1, before) -> None:
    base = ("mailing", "add", "--message", setup1["message"], "--all-clients", "--every", "once")
    fails(cli(*base, "--start", "tomorrow-ish", as_=USER1), "cannot read time 'tomorrow-ish'")
    fails(
        cli(*base, "--start", "2020-01-01 10:00", "--end", "2020-02-01 10:00", as_=USER1),
        "the start and the end are both in the past",
    )


def test_mailing_client_choice_is_a_usage_error(cli, setup1, before) -> None:
    base = ("mailing", "add", "--message", setup1["message"], "--start", FUTURE, "--every", "once")
    fails(cli(*base, as_=USER1), "--all-clients", code=2)
    fails(cli(*base, "--all-clients", "--client", "1", as_=USER1), "--all-clients", code=2)


def test_empty_subject(cli, setup1, before) -> None:
    fails(
        cli("message", "add", "--subject", "  ", "--body", "B", as_=USER1),
        "subject must not be empty",
    )
    fails(
        cli("message", "edit", setup1["message"], "--subject", "", as_=USER1),
        "subject must not be empty",
    )


def test_subject_with_newline(cli, setup1, before) -> None:
    fails(
        cli("message", "add", "--subject", "Hi\nBcc: x@evil.example", "--body", "B", as_=USER1),
        "subject must be a single line",
    )
    fails(cli("message", "edit", setup1["message"], "--subject", "a\rb", as_=USER1), "single line")


def test_unknown_placeholder(cli, setup1, before) -> None:
    fails(
        cli("message", "add", "--subject", "S", "--body", "{{ client.password }}", as_=USER1),
        "body: unknown placeholder client.password; use client.email",
    )
    fails(
        cli("message", "add", "--subject", "{{ user.email }}", "--body", "B", as_=USER1),
        "subject: unknown placeholder user",
    )
    fails(
        cli("message", "add", "--subject", "S", "--body", "{{ client.email ", as_=USER1),
        "body: template error at line 1",
    )


def test_manager_cannot_edit_mailings_or_messages(cli, setup1, before) -> None:
    manager = "manager@example.com"
    fails(
        cli("mailing", "edit", setup1["mailing"], "--every", "day", as_=manager),
        "a manager cannot change mailings",
    )
    fails(
        cli("message", "edit", setup1["message"], "--subject", "X", as_=manager),
        "a manager cannot see messages",
    )
    fails(cli("client", "add", "m@example.com", as_=manager), "a manager cannot add clients")


def test_blocked_user_cannot_act(cli, before) -> None:
    for argv in (
        ("client", "list"),
        ("client", "add", "x@example.com"),
        ("message", "list"),
        ("mailing", "list"),
        ("stats",),
        ("user", "show", "blocked@example.com"),
    ):
        fails(cli(*argv, as_="blocked@example.com"), "user blocked@example.com is blocked")


def test_unknown_acting_user(cli, before) -> None:
    fails(cli("client", "list", as_="ghost@example.com"), "user ghost@example.com not found")


def test_usage_errors_exit_2(cli, before) -> None:
    fails(cli("client", "show", "abc", as_=USER1), "Invalid value for 'client_id'", code=2)
    fails(cli("mailing", "add", "--message", "1", as_=USER1), "Missing option", code=2)


def test_an_id_too_big_for_the_database_is_one_line(cli) -> None:
    fails(cli("client", "show", "99999999999999999999"), "out of range")
