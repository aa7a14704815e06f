"""A real panel (`python -m mailctl serve`) on a free port, and headless Chromium to drive it.

The server runs in a subprocess on the test's own database and data dir (the environment the
autouse `mailctl_env` fixture prepared), so the browser sees exactly what a user would: uvicorn,
the in-process sender, the outbox transport writing .eml files.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.browser import (
    ADMIN,
    CHROMIUM,
    CHROMIUM_ARGS,
    EDITOR,
    MANAGER,
    SCREENSHOTS,
    START_TIMEOUT,
    Panel,
    mailctl_cli,
)
from tests.support.env import PASSWORD
from tests.support.smtp import free_port


def _wait_until_up(proc: subprocess.Popen[bytes], url: str, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"the panel exited with {proc.returncode}:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.1)
    raise AssertionError(f"the panel did not answer on {url}:\n{log.read_text()}")


@pytest.fixture
def panel(mailctl_env: Path, tmp_path: Path) -> Iterator[Panel]:
    """`mailctl serve` on the test database, with an admin, a manager and an editor."""
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is not installed")
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    env = dict(os.environ)
    env.update(
        {
            "MAILCTL_WEB_HOST": "127.0.0.1",
            "MAILCTL_WEB_PORT": str(port),
            "MAILCTL_WEB_BASE_URL": base_url,
            "MAILCTL_SCHEDULER_TICK_SECONDS": "2",
            "MAILCTL_GENERAL_LOG_LEVEL": "WARNING",
        }
    )
    mailctl_cli(env, "init", "--admin", ADMIN, "--password-stdin", stdin=PASSWORD + "\n")
    for address, role in ((MANAGER, "manager"), (EDITOR, "editor")):
        mailctl_cli(
            env, "user", "add", address, "--role", role, "--password-stdin", stdin=PASSWORD + "\n"
        )

    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "mailctl", "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_until_up(proc, base_url + "/", log)
        yield Panel(base_url=base_url, data_dir=mailctl_env, log=log)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


@pytest.fixture
def browser() -> Iterator[Any]:
    """Headless Debian Chromium through Playwright's sync API."""
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is not installed")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def shoot() -> Any:
    """shoot(page, "name"): a full-page PNG under artifacts/screenshots/ (kept by CI)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    def take(page: Any, name: str) -> Path:
        path = SCREENSHOTS / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return take
