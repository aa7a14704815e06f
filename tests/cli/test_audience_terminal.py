"""The audience commands as a person runs them: on a pseudo-terminal (a table, the erase
prompt answered) and through a pipe (tab-separated lines, one-line errors)."""

from __future__ import annotations

import os
import sys

import pexpect

from tests.support.cli import USER1, as_json, fails, new_id, ok


def _spawn(*args: str) -> pexpect.spawn:
    env = {**os.environ, "COLUMNS": "120", "NO_COLOR": "1"}
    return pexpect.spawn(
        sys.executable,
        ["-m", "mailctl", "--as", USER1, *args],
        env=env,
        encoding="utf-8",
        timeout=60,
    )


def test_tags_on_a_terminal_and_through_a_pipe(cli, users) -> None:
    ok(cli("client", "add", "ann@example.com", "--tag", "news", "--tag", "vip", as_=USER1))
    ok(cli("client", "add", "bob@example.com", "--tag", "news", as_=USER1))
    term = _spawn("tag", "list")
    term.expect(pexpect.EOF)
    term.close()
    assert term.exitstatus == 0, term.before
    assert "─" in term.before or "━" in term.before  # a drawn table
    assert "news" in term.before and "vip" in term.before
    piped = ok(cli("tag", "list", as_=USER1)).stdout.splitlines()
    assert piped == ["name\tclients\tpublic", "news\t2\tno", "vip\t1\tno"]
    shown = as_json(cli("client", "show", "1", "--json", as_=USER1))
    assert shown["tags"] == "news vip" and shown["consents"] == []  # added by hand: no opt-in
    listed = as_json(cli("client", "list", "--tag", "VIP", "--json", as_=USER1))
    assert [(c["email"], c["tags"]) for c in listed] == [("ann@example.com", "news vip")]
    fails(cli("client", "add", "x@example.com", "--tag", "a;b", as_=USER1), "no ';'")
    fails(
        cli(
            "mailing",
            "add",
            "--message",
            "1",
            "--tag",
            "news",
            "--all-clients",
            "--start",
            "now",
            "--every",
            "once",
            as_=USER1,
        ),
        "not several",
        code=2,
    )
    fails(cli("client", "edit", "1", "--set", "city", as_=USER1), "use NAME=VALUE")
    fails(cli("client", "edit", "1", "--set", "city=Riga", as_=USER1), "no custom field 'city'")
    fails(
        cli("suppression", "rm", "nobody@example.com", "--reason", "x", as_=USER1),
        "is not on the suppression list",
    )


def test_erase_asks_on_a_terminal(cli, users) -> None:
    erin = new_id(cli("client", "add", "erin@example.com", as_=USER1))
    term = _spawn("client", "erase", str(erin))
    term.expect("Erase client")
    term.sendline("y")
    term.expect(pexpect.EOF)
    term.close()
    assert term.exitstatus == 0, term.before
    assert "erased client" in term.before
    fails(cli("client", "show", erin, as_=USER1), f"client {erin} not found")
