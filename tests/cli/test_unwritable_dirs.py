"""Data folders that cannot be made (cache.dir or the outbox under a file, a read-only disk).

The cache: the panel refuses to start with one line; a change made from the shell is made, with
one line of warning that the panel's cached figures could not be cleared. The outbox: every
attempt is deferred and the breaker stops the pass. No traceback anywhere (root may write
anywhere else, so "cannot be made" is a path under a plain file)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import terminal
from tests.support.cli import FUTURE, USER1, as_json, fails, new_id, ok


def run_mailctl(argv: list[str], how: str) -> tuple[int | None, str]:
    """A real `mailctl` on a terminal ("pty": what it shows) or through pipes (its stderr)."""
    if how == "pty":
        screen = terminal.run(argv, colour=False)
        return screen.status, screen.text
    command = [sys.executable, "-m", "mailctl", *argv]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    return done.returncode, done.stderr


def lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


@pytest.fixture
def no_cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "a-file").write_text("")
    directory = tmp_path / "a-file" / "cache"
    monkeypatch.setenv("MAILCTL_CACHE_DIR", str(directory))
    return directory


def _warning(directory: Path) -> str:
    return (
        f"warning: cannot open the cache in {directory} (cache.dir): Not a directory;"
        " the panel may show old figures for up to 60s (cache.ttl_seconds)"
    )


def _emails(cli) -> list[str]:  # type: ignore[no-untyped-def]
    return [c["email"] for c in as_json(cli("client", "list", "--json", as_=USER1))]


def test_a_change_from_the_shell_is_made_and_the_cache_warned_about(
    cli, users, no_cache_dir
) -> None:
    result = ok(cli("client", "add", "ann@example.com", as_=USER1))
    assert sorted(lines(result.stderr)) == [
        "added client 1 <ann@example.com>",
        _warning(no_cache_dir),
    ], result.stderr
    assert _emails(cli) == ["ann@example.com"]


@pytest.mark.parametrize("how", ["pipe", "pty"])
def test_the_same_from_a_real_shell(cli, users, no_cache_dir, how: str) -> None:
    code, out = run_mailctl(["--as", USER1, "client", "add", "ann@example.com"], how)
    assert code == 0, out
    assert _warning(no_cache_dir) in lines(out), out
    assert "Traceback" not in out
    assert _emails(cli) == ["ann@example.com"]


def test_one_warning_for_a_command_that_commits_many_times(cli, users, no_cache_dir) -> None:
    source = no_cache_dir.parent.parent / "clients.csv"
    source.write_text("email,full_name,comment\nann@example.com,Ann,\nbob@example.com,Bob,\n")
    message = new_id(cli("message", "add", "--subject", "S", "--body", "B", as_=USER1))
    ok(cli("client", "import", str(source), as_=USER1))
    argv = ["--message", str(message), "--all-clients", "--start", "now", "--every", "once"]
    result = ok(cli("mailing", "add", *argv, as_=USER1))  # the mailing, then its first run
    assert result.stderr.count("warning: cannot open the cache") == 1, result.stderr
    assert "mailing 1: sent 2, deferred 0" in result.stderr, result.stderr


def test_no_warning_when_the_panel_caches_nothing(cli, users, no_cache_dir, monkeypatch) -> None:
    monkeypatch.setenv("MAILCTL_CACHE_TTL_SECONDS", "0")
    result = ok(cli("client", "add", "ann@example.com", as_=USER1))
    assert "warning" not in result.stderr, result.stderr
    assert not no_cache_dir.parent.is_dir()


def test_the_panel_refuses_to_start_in_one_line(cli, no_cache_dir) -> None:
    for argv in (("web", "--port", "1"), ("serve", "--port", "1")):
        result = fails(
            cli(*argv),
            f"error: cannot open the cache in {no_cache_dir} (cache.dir): Not a directory",
        )
        assert result.stderr.count("\n") == 1, result.stderr


@pytest.mark.parametrize("how", ["pipe", "pty"])
def test_the_panel_refuses_from_a_real_shell(cli, no_cache_dir, how: str) -> None:
    code, out = run_mailctl(["web", "--port", "1"], how)
    assert code == 1, out
    assert lines(out) == [
        f"error: cannot open the cache in {no_cache_dir} (cache.dir): Not a directory"
    ], out


@pytest.fixture
def no_outbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "a-file").write_text("")
    monkeypatch.setenv("MAILCTL_DELIVERY_OUTBOX_DIR", str(tmp_path / "a-file" / "outbox"))
    monkeypatch.setenv("MAILCTL_DELIVERY_CIRCUIT_BREAKER", "2")
    return tmp_path / "a-file" / "outbox"


STOP = "stopped after 2 consecutive connection failures (outbox write failed: Not a directory"


def test_an_outbox_that_cannot_be_made_defers_and_stops_the_pass(cli, users, no_outbox) -> None:
    for n in range(4):
        ok(cli("client", "add", f"c{n}@example.com", as_=USER1))
    message = new_id(cli("message", "add", "--subject", "S", "--body", "B", as_=USER1))
    argv = ["--message", str(message), "--all-clients", "--start", "now", "--every", "once"]
    result = ok(cli("mailing", "add", *argv, as_=USER1))  # its first run goes at once
    assert STOP in result.stderr and "Traceback" not in result.stderr, result.stderr
    result = ok(cli("status"))
    assert "pending 2, deferred 2" in result.stdout, result.stdout
    assert not no_outbox.parent.is_dir()


@pytest.mark.parametrize("how", ["pipe", "pty"])
def test_the_outbox_from_a_real_shell(cli, users, no_outbox, how: str) -> None:
    for n in range(4):
        ok(cli("client", "add", f"c{n}@example.com", as_=USER1))
    message = new_id(cli("message", "add", "--subject", "S", "--body", "B", as_=USER1))
    argv = ["--message", str(message), "--all-clients", "--start", FUTURE, "--every", "once"]
    mailing = new_id(cli("mailing", "add", *argv, as_=USER1))
    code, out = run_mailctl(["--as", USER1, "mailing", "send", str(mailing)], how)
    assert code == 0, out
    assert "Traceback" not in out
    assert STOP in out and f"({no_outbox})" in out, out
    assert "pending 2, deferred 2" in ok(cli("status")).stdout
