"""A real panel (`python -m mailctl serve`) for the browser tests, and reading its emails."""

from __future__ import annotations

import email
import email.policy
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path

from tests.support.env import PG_URL

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ROOT = Path(__file__).resolve().parents[2]  # the repository
# CI runs the SQLite and PostgreSQL passes side by side: each keeps its own pictures.
SCREENSHOTS = ROOT / "artifacts" / ("screenshots-postgres" if PG_URL else "screenshots")
ADMIN = "admin@example.com"
MANAGER = "manager@example.com"
EDITOR = "editor@example.com"
START_TIMEOUT = 30.0


@dataclass
class Panel:
    base_url: str
    data_dir: Path
    log: Path

    @property
    def outbox(self) -> Path:
        return self.data_dir / "outbox"

    def url(self, path: str) -> str:
        return self.base_url + path

    def errors(self) -> list[str]:
        """Lines of the server's log that report an error (it logs at WARNING and above)."""
        lines = self.log.read_text(errors="replace").splitlines()
        return [line for line in lines if "Traceback" in line or "ERROR" in line]

    def newest_mail(self, to: str, after: float, timeout: float = 15.0) -> EmailMessage:
        """The newest .eml addressed to `to` written after `after` (a time.time())."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            files = [p for p in self.outbox.glob("*.eml") if p.stat().st_mtime >= after - 1]
            for path in sorted(files, key=lambda p: p.stat().st_mtime, reverse=True):
                message = email.message_from_bytes(
                    path.read_bytes(),
                    policy=email.policy.default,  # type: ignore[arg-type]
                )
                if to in str(message.get("To", "")):
                    return message  # type: ignore[return-value]
            time.sleep(0.1)
        raise AssertionError(f"no email to {to} in {self.outbox} after {timeout}s")


def link_in(message: EmailMessage, prefix: str) -> str:
    """The first absolute URL in the message's text whose path starts with prefix."""
    body = message.get_body(preferencelist=("plain", "html"))
    assert body is not None, "the email has no text part"
    text = body.get_content()
    match = re.search(r"https?://[^/\s\"'<>]+" + re.escape(prefix) + r"[^\s\"'<>]*", text)
    assert match, f"no {prefix} link in: {text}"
    return match.group(0)


def mailctl_cli(env: dict[str, str], *args: str, stdin: str = "") -> None:
    """`python -m mailctl ARGS` with this environment; it must succeed."""
    done = subprocess.run(
        [sys.executable, "-m", "mailctl", *args],
        input=stdin,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, f"mailctl {' '.join(args)} failed:\n{done.stdout}{done.stderr}"
