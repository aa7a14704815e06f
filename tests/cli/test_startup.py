"""Each command imports what it needs and nothing else: the CLI starts fast.

A command runs in a fresh interpreter that, at exit, writes the top-level names of every module
it loaded; the heavy libraries must be absent unless the command needs them. (The start-up
time itself is measured by bench/bench_startup.py, never asserted here.)
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.cli import USER1, ok

HEAVY = {"alembic", "mako", "uvicorn", "starlette", "apscheduler", "argon2", "passlib"}
WRAPPER = """
import atexit, json, runpy, sys
out, sys.argv = sys.argv[1], ["mailctl", *sys.argv[2:]]
names = lambda: sorted({m.split(".")[0] for m in sys.modules})
atexit.register(lambda: open(out, "w").write(json.dumps(names())))
runpy.run_module("mailctl", run_name="__main__")
"""


def loaded(tmp_path: Path, *args: str, stdin: str = "") -> set[str]:
    out = tmp_path / "modules.json"
    done = subprocess.run(
        [sys.executable, "-c", WRAPPER, str(out), *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return set(json.loads(out.read_text()))


@pytest.mark.parametrize(
    "args",
    [
        ("--as", USER1, "client", "list"),
        ("--as", USER1, "client", "list", "--json"),
        ("--as", USER1, "client", "export"),
        ("--as", USER1, "client", "add", "new@example.com"),
        ("--as", USER1, "message", "list"),
        ("--as", USER1, "mailing", "list"),
        ("user", "list"),
        ("stats",),
        ("status",),
        ("config", "show"),
    ],
    ids=" ".join,
)
def test_everyday_commands_load_no_heavy_library(cli, users, tmp_path, args) -> None:
    modules = loaded(tmp_path, *args)
    assert not modules & HEAVY, f"mailctl {' '.join(args)} loaded {sorted(modules & HEAVY)}"


def test_version_and_help_load_not_even_the_database(bare_cli, tmp_path) -> None:
    for args in (("--version",), ("--help",)):
        modules = loaded(tmp_path, *args)
        database = HEAVY | {"sqlalchemy", "sqlmodel"}
        assert not modules & database, (args, sorted(modules & database))


def test_commands_that_need_them_do_load_them(cli, tmp_path) -> None:
    """The check above can fail: these commands do load the libraries it looks for."""
    assert {"passlib", "argon2"} <= loaded(
        tmp_path, "user", "add", "pw@example.com", "--password-stdin", stdin="long-password-9\n"
    )
    assert "alembic" in loaded(tmp_path, "db", "history")
    ok(cli("client", "list"))
