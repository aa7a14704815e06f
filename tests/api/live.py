"""A real `mailctl web` on 127.0.0.1 over a database of its own, for tests that call the API
from outside (schemathesis, the README's curl and Python examples, the benchmark)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.support.procs import wait_for


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def environment(data: Path, **extra: str) -> dict[str, str]:
    """The variables of a fresh mailctl home in `data`, always on a SQLite file: the suite's
    PostgreSQL database is emptied before every test, under a server that outlives one (the
    API's behaviour on PostgreSQL is what the in-process tests of tests/api check there)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAILCTL_")}
    data.mkdir(parents=True, exist_ok=True)
    (data / "mailctl.toml").write_text("")
    env.update(
        MAILCTL_CONFIG=str(data / "mailctl.toml"),
        MAILCTL_GENERAL_DATA_DIR=str(data),
        MAILCTL_DATABASE_URL=f"sqlite:///{data / 'mailctl.db'}",
        MAILCTL_SCHEDULER_TIMEZONE="Europe/Berlin",
        NO_COLOR="1",
        PYTHONUNBUFFERED="1",
        **extra,
    )
    return env


def mailctl(env: dict[str, str], *args: str, input: str | None = None) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "mailctl", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        input=input,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@contextmanager
def panel(env: dict[str, str], data: Path) -> Iterator[str]:
    """`mailctl web` running until the block ends; yields its base URL."""
    port = free_port()
    log_path = data / "web.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "mailctl", "web", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )

        def up() -> bool:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    return True
            except OSError:
                assert proc.poll() is None, log_path.read_text()
                return False

        try:
            wait_for(up, timeout=60, what="mailctl web")
            yield f"http://127.0.0.1:{port}"
        finally:
            proc.terminate()
            proc.wait(timeout=30)
