"""mailctl in subprocesses (daemons, run-due), a fake crontab, and waiting by polling.

Everything waits by polling with generous deadlines: these tests must pass on a busy
two-core machine, where a subprocess can take seconds just to import.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Engine

from mailctl.db import utcnow
from tests.support.ledger import worker_rows

START_TIMEOUT = 60.0  # a subprocess importing mailctl on a loaded machine
DELIVERY_TIMEOUT = 180.0


def wait_for(
    predicate: Callable[[], Any], *, timeout: float = 10.0, interval: float = 0.05, what: str = ""
) -> Any:
    """Poll until predicate() is truthy and return its value; AssertionError after timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what or predicate}")
        time.sleep(interval)


def later(seconds: float) -> datetime:
    return utcnow() + timedelta(seconds=seconds)


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def alive(self) -> bool:
        return self.popen.poll() is None

    def terminate(self, timeout: float = 30.0) -> tuple[int, float]:
        """SIGTERM; returns (exit code, seconds it took to exit)."""
        began = time.monotonic()
        self.popen.send_signal(signal.SIGTERM)
        code = self.popen.wait(timeout=timeout)
        return code, time.monotonic() - began

    def wait(self, timeout: float) -> int:
        return self.popen.wait(timeout=timeout)


@pytest.fixture
def spawn(tmp_path: Path) -> Iterator[Callable[..., Proc]]:
    """Start `python -m mailctl ARGS` with the test's environment plus `env`."""
    procs: list[Proc] = []

    def start(*args: str, env: dict[str, str] | None = None, name: str = "") -> Proc:
        full_env = os.environ.copy()
        full_env.update(env or {})
        full_env["PYTHONUNBUFFERED"] = "1"
        label = name or args[0]
        log_path = tmp_path / f"{label}-{len(procs)}.log"
        with log_path.open("wb") as out:
            popen = subprocess.Popen(
                [sys.executable, "-m", "mailctl", *args],
                env=full_env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        proc = Proc(label, popen, log_path)
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        if proc.alive():
            proc.popen.kill()
            proc.popen.wait(timeout=30)


def daemon_ready(engine: Engine, proc: Proc) -> Callable[[], bool]:
    """True once the daemon has written its heartbeat (it is up and ticking)."""

    def check() -> bool:
        if not proc.alive():
            raise AssertionError(f"the daemon exited early:\n{proc.log()}")
        return any(w["pid"] == proc.popen.pid for w in worker_rows(engine))

    return check


FAKE_CRONTAB = """#!/bin/sh
# Stands in for cron's crontab(1): keeps the table in one file.
TABLE='{table}'
case "$1" in
  -l) if [ -f "$TABLE" ]; then cat "$TABLE"; else echo "no crontab for $(id -un)" >&2; exit 1; fi ;;
  -) cat > "$TABLE" ;;
  -r) rm -f "$TABLE" ;;
  *) echo "usage: crontab [-l|-r|-]" >&2; exit 2 ;;
esac
"""


@pytest.fixture
def fake_crontab(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A `crontab` command first on PATH; returns the file holding the table."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    table = tmp_path / "crontab.txt"
    script = bin_dir / "crontab"
    script.write_text(FAKE_CRONTAB.format(table=table))
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")
    return table
