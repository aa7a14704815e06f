"""Only `init`, `db upgrade` and the demo create a database; every other command, the panel
and the daemon say there is none and how to make one, and write nothing at all."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support import terminal
from tests.support.cli import fails, ok

pytestmark = pytest.mark.skipif(
    bool(os.environ.get("MAILCTL_TEST_DATABASE_URL")),
    reason="about a SQLite file that is not there (a PostgreSQL database always exists)",
)

NO_DB = "no database at "
HINT = "create it with `mailctl init --admin EMAIL`"


def files_under(root: Path) -> set[Path]:
    return {p for p in root.rglob("*")}


@pytest.fixture
def untouched(tmp_path: Path, mailctl_env: Path):  # type: ignore[no-untyped-def]
    """Nothing may appear under the test's directory: no data dir, no database, no file."""
    assert not mailctl_env.exists()
    before = files_under(tmp_path)
    yield tmp_path
    assert files_under(tmp_path) == before, sorted(files_under(tmp_path) - before)


COMMANDS = [
    ("client", "list"),
    ("client", "show", "1"),
    ("client", "add", "ann@example.com"),
    ("client", "export", "{tmp}/out.csv"),
    ("client", "import", "{tmp}/mailctl.toml"),
    ("message", "list"),
    ("message", "add", "--subject", "S", "--body", "B"),
    ("message", "preview", "1", "--client", "1"),
    ("mailing", "list"),
    ("mailing", "send", "1"),
    ("mailing", "report", "1", "--csv", "{tmp}/report.csv"),
    ("mailing", "logs", "1"),
    ("user", "list"),
    ("user", "add", "x@example.com", "--password-stdin"),
    ("blog", "list"),
    ("stats",),
    ("status",),
    ("run-due",),
    ("db", "current"),
    ("db", "downgrade", "base"),
    ("web", "--port", "1"),
    ("serve", "--port", "1"),
]


@pytest.mark.parametrize("argv", COMMANDS, ids=lambda a: " ".join(a[:2]))
def test_a_command_without_a_database_says_so_and_writes_nothing(bare_cli, untouched, argv) -> None:
    args = [a.replace("{tmp}", str(untouched)) for a in argv]
    result = fails(bare_cli(*args, input="pw-for-nothing-here\n"), NO_DB)
    line = result.stderr.strip()
    assert "\n" not in line and HINT in line, result.stderr


def test_the_panel_without_a_database_refuses_to_start_and_writes_nothing(
    settings, untouched
) -> None:
    from mailctl.errors import NoDatabase
    from mailctl.web.app import create_app

    with pytest.raises(NoDatabase, match=NO_DB):
        create_app(settings)


@pytest.mark.slow
def test_the_daemon_without_a_database_refuses_to_start_and_writes_nothing(untouched) -> None:
    """Waiting for a file only `mailctl init` makes would only look like a running scheduler
    (systemd would show it active). A database server that is down is still waited for
    (scheduling/test_daemon.py), and so is one that goes away while the daemon runs."""
    began = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "mailctl", "daemon", "--tick", "1"],
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.communicate(timeout=30)
    assert proc.returncode == 1, (out, err)
    assert out == "" and err.count("\n") == 1, (out, err)
    assert err.startswith(f"error: {NO_DB}") and HINT in err
    assert time.monotonic() - began < 30


@pytest.mark.slow
def test_the_daemon_on_a_terminal_refuses_in_one_line(untouched) -> None:
    began = time.monotonic()
    screen = terminal.run(["daemon", "--tick", "1"], colour=False)  # pexpect gives up at 60 s
    assert screen.status == 1, screen.text
    [line] = [line for line in screen.text.splitlines() if line.strip()]
    assert line.startswith(f"error: {NO_DB}") and HINT in line, screen.text
    assert time.monotonic() - began < 30


def test_init_and_db_upgrade_do_create_it(bare_cli, mailctl_env: Path) -> None:
    ok(bare_cli("db", "upgrade"))
    assert (mailctl_env / "mailctl.db").is_file()
    ok(bare_cli("init", "--admin", "root@example.com", "--password-stdin", input="pw-pw-pw-pw\n"))
    ok(bare_cli("client", "list"))


def test_init_creates_the_directory_too(bare_cli, mailctl_env: Path) -> None:
    ok(bare_cli("init", "--admin", "root@example.com", "--password-stdin", input="pw-pw-pw-pw\n"))
    assert (mailctl_env / "mailctl.db").is_file()


def test_init_in_a_directory_that_cannot_be_made_is_one_line(bare_cli, tmp_path, monkeypatch):  # type: ignore[no-untyped-def]
    """A file where the database's directory should be (root may write anywhere else)."""
    (tmp_path / "a-file").write_text("")
    monkeypatch.setenv("MAILCTL_DATABASE_URL", f"sqlite:///{tmp_path}/a-file/sub/mailctl.db")
    for argv in (("init", "--admin", "root@example.com", "--password-stdin"), ("db", "upgrade")):
        result = fails(
            bare_cli(*argv, input="pw-pw-pw-pw\n"),
            f"error: cannot create the database's directory {tmp_path}/a-file/sub (database.url):"
            " Not a directory",
        )
        assert result.stderr.count("\n") == 1, result.stderr
